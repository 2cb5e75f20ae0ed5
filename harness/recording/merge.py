"""Merging the recordings of shards (`harness record --shard K/N`) into one, as an unsharded `harness record`
writes it, so that `harness compare MERGED` works as with one recording.

Each outputs file is copied byte for byte after its hash is checked against its manifest, and each manifest
entry is kept as it is: nothing here reads the arrays' names, so whatever a recording holds per case
(outputs, gradients, ...) is merged alike. Refused, naming the folders: recordings of different
environments (versions, target, machine; only the platform string, which names the kernel build, may
differ), a case in two recordings, a shard twice or missing, shards of different splits.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from harness.recording.store import (FORMAT, FORMAT_VERSION, Recording, RecordingError, Staging, _sha256,
                                     check_destination, open_recording, read_inside, recording_lock)

_KNOWN = {"format", "format_version", "created", "environment", "cases", "shard", "merged_from"}
_MAY_DIFFER = {"platform"}  # the kernel build of a CI machine; versions, target and machine must agree


def _check_environments(recordings: list[Recording]) -> None:
    first = recordings[0]
    for other in recordings[1:]:
        a, b = first.environment, other.environment
        keys = [k for k in sorted(set(a) | set(b)) if k not in _MAY_DIFFER and a.get(k) != b.get(k)]
        if keys:
            raise RecordingError(f"{first.folder} and {other.folder} were recorded in different environments: "
                                 + "; ".join(f"{k}: {a.get(k)!r} vs {b.get(k)!r}" for k in keys))
        for key in sorted((set(first.manifest) | set(other.manifest)) - _KNOWN):  # a field of a later format
            if first.manifest.get(key) != other.manifest.get(key):
                raise RecordingError(f"{first.folder} and {other.folder} differ in their manifests' {key!r}")


def _check_shards(recordings: list[Recording]) -> None:
    shards = {r.folder: r.manifest.get("shard") for r in recordings}
    sharded = {folder: s for folder, s in shards.items() if s is not None}
    if not sharded:
        return  # recordings of disjoint sets of cases, merged as they are
    for folder, shard in shards.items():
        if not isinstance(shard, dict) or not all(isinstance(shard.get(k), int) for k in ("index", "count")):
            other = next(iter(sharded))
            raise RecordingError(f"{folder} is not a shard's recording (manifest `shard`: {shard!r}) but {other} is: "
                                 "merge the recordings of one sharded record")
    count = next(iter(sharded.values()))["count"]
    seen: dict[int, Path] = {}
    for folder, shard in sharded.items():
        if shard["count"] != count:
            first = next(iter(sharded))
            raise RecordingError(f"{first} is shard {sharded[first]['index']}/{count} but {folder} is shard "
                                 f"{shard['index']}/{shard['count']}: shards of different splits")
        if shard["index"] in seen:
            raise RecordingError(f"shard {shard['index']}/{count} is given twice: {seen[shard['index']]} and {folder}")
        seen[shard["index"]] = folder
    missing = [f"{i}/{count}" for i in range(1, count + 1) if i not in seen]
    if missing:
        raise RecordingError(f"shard {', '.join(missing)} missing: {len(recordings)} recordings given for {count} shards")


def merge_recordings(folders: list[Path], out: Path, warn=None) -> dict:
    """Write the merged recording to `out` (atomically, under its lock, as `record` does); returns its manifest."""
    resolved_out = out.resolve()
    for folder in folders:
        if folder.resolve() == resolved_out:
            raise RecordingError(f"{out}: is also one of the recordings to merge: choose a new --out")
    if len({f.resolve() for f in folders}) != len(folders):
        raise RecordingError("a recording is given twice: " + ", ".join(map(str, folders)))
    recordings = [open_recording(folder) for folder in folders]
    _check_environments(recordings)
    _check_shards(recordings)
    owner: dict[str, Path] = {}
    for recording in recordings:
        for name in recording.manifest["cases"]:
            if name in owner:
                raise RecordingError(f"case {name!r} is in both {owner[name]} and {recording.folder}")
            owner[name] = recording.folder
    check_destination(out)
    with recording_lock(out):
        previous = check_destination(out)
        with Staging(out) as staging:
            cases, written = {}, set()
            every = [(name, item, r) for r in recordings for name, item in r.manifest["cases"].items()]
            for name, item, recording in sorted(every, key=lambda e: (Path(str(e[1].get("path", ""))), e[0])):
                item = dict(item)
                if "file" in item:
                    data = read_inside(recording.folder, item["file"], f"outputs of case {name!r}")
                    if _sha256(data) != item["file_sha256"]:
                        raise RecordingError(f"{recording.folder / item['file']}: changed after it was recorded "
                                             "(sha256 does not match manifest.json)")
                    file_name = Path(item["file"]).name
                    if file_name in written:
                        raise RecordingError(f"{recording.folder}: case {name!r}: its outputs file name {file_name!r} "
                                             "is taken by another case")
                    written.add(file_name)
                    item["file"] = staging.add(file_name, data)
                cases[name] = item
            first = recordings[0].manifest
            manifest = {"format": FORMAT, "format_version": FORMAT_VERSION,
                        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                        "environment": first["environment"], "cases": cases,
                        **{k: v for k, v in first.items() if k not in _KNOWN},
                        "merged_from": [{"folder": str(r.folder), "created": r.manifest.get("created"),
                                         "shard": r.manifest.get("shard"),
                                         "platform": r.environment.get("platform")} for r in recordings]}
            if previous is not None and warn:
                warn(f"replacing the recording in {out} ({len(previous.manifest['cases'])} cases, recorded "
                     f"{previous.manifest.get('created')})")
            staging.commit(manifest)
    return manifest
