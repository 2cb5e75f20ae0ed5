"""Storing recordings: the format, the manifest, atomic writes under a lock, bounded reads.

A recording is a folder: manifest.json (format, versions, platform, and per case the case file's
hash, the outcome and the outputs file's hash) and one .npz per case with the system's outputs as
float64, which holds float16, bfloat16 and float32 values exactly, and for a gradient case its gradients
beside them (`callN/grad.<name>`, as the run's report names them). A recording that is missing,
foreign, of another format version, or altered after it was written is refused with a clear error.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import re
import secrets
import shutil
import stat
import sys
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from harness import __version__, limits, targets
from harness.discovery import load_corpus
from harness.errors import HarnessError
from harness.runner import run_case
from harness.versions import installed_versions, keras_flavor

FORMAT = "keras-rnn-harness-recording"
FORMAT_VERSION = 1


class RecordingError(HarnessError):
    """A recording that cannot be trusted or read."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def environment(target: str = targets.DEFAULT_TARGET) -> dict:
    """Versions of everything that shapes the outputs, and the system under test that produced them."""
    versions = installed_versions()
    system = targets.get(target)
    return {"python": sys.version.split()[0], "platform": platform.platform(), "machine": platform.machine(),
            "tensorflow": versions.get("tensorflow"), "keras": versions.get("keras"), "numpy": versions.get("numpy"),
            "backend": "tensorflow", "keras_flavor": keras_flavor(), "harness": __version__,
            **system.environment(), "target": target}


def _npz_bytes(outputs: list[dict], gradients: list[dict] | None = None) -> bytes:
    """One array per call and output, `callN/OUTPUT`, and per gradient `callN/grad.NAME` (GRADIENT_PREFIX)."""
    arrays = {f"call{n}/{name}": np.asarray(values, dtype=np.float64)
              for n, call in enumerate(outputs, start=1) for name, values in call.items()}
    arrays.update({f"call{n}/{GRADIENT_PREFIX}{name}": np.asarray(values, dtype=np.float64)
                   for n, call in enumerate(gradients or [], start=1) for name, values in call.items()})
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def record(paths: list, out: Path, modes: tuple[str, ...] | None = None, warn=None,
           target: str = targets.DEFAULT_TARGET, shard=None) -> dict:
    """Run every case on the installed Keras and write the recording; returns the manifest.

    The recording is written atomically under a lock (see the storage functions below): a second
    `record` into the same folder is refused while this one runs, a crash or kill leaves the previous
    recording intact, and a folder that is not a recording is never overwritten. `warn` receives a line
    when an existing recording is replaced. With `shard` (harness/sharding.py), only that shard's case files
    are run, and the manifest says which shard it holds (`harness merge` combines the shards)."""
    from harness.sharding import select  # noqa: PLC0415

    check_destination(out)
    with recording_lock(out):
        previous = check_destination(out)  # again, under the lock: another record may have just finished
        with Staging(out) as staging:
            cases = {}
            for entry in select(load_corpus(paths), [Path(p) for p in paths], shard):
                file_hash = file_sha256(entry.path)
                if entry.case is None:
                    cases[entry.name] = {"path": str(entry.path), "sha256": file_hash, "outcome": "invalid"}
                    continue
                result = run_case(entry.case, modes=modes, system=targets.get(target))
                item = {"path": str(entry.path), "sha256": file_hash, "outcome": result.outcome, "dtype": entry.case.dtype,
                        "mode": result.modes[0] if result.modes else None}
                if result.system_outputs is not None:
                    data = _npz_bytes(result.system_outputs, result.system_gradients)
                    item.update(file=staging.add(_npz_name(entry.case.name), data), file_sha256=_sha256(data))
                cases[entry.case.name] = item
            manifest = {"format": FORMAT, "format_version": FORMAT_VERSION,
                        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                        "environment": environment(target), "cases": cases,
                        **({"shard": shard.to_json()} if shard else {})}
            if previous is not None and warn:
                env = previous.environment
                warn(f"replacing the recording in {out} ({len(previous.manifest['cases'])} cases, recorded "
                     f"{previous.manifest.get('created')} under TensorFlow {env.get('tensorflow')}) with {len(cases)} cases")
                dropped = sorted(set(previous.manifest["cases"]) - set(cases))
                if dropped:
                    warn(f"{len(dropped)} cases of the previous recording are not in the new one: "
                         + ", ".join(dropped[:10]) + (" ..." if len(dropped) > 10 else ""))
            staging.commit(manifest)
    return manifest


def _npz_name(case_name: str) -> str:
    """A case's outputs file name: its name (names are [A-Za-z0-9_.+-]), shortened to fit any file system."""
    if len(case_name) <= 100:
        return f"{case_name}.npz"
    return f"{case_name[:80]}-{_sha256(case_name.encode())[:16]}.npz"


# ---------------------------------------------------------------- storage: atomic write, lock, bounded reads
#
# Layout: DIR/manifest.json is the only commit point. Outputs are written into DIR/.staging-<pid>-<random>/,
# which is renamed to DIR/cases-<stamp>/ once complete; then a new manifest.json referring to it replaces
# the old one with one rename; then the previous outputs folder is removed. A kill at any moment leaves
# manifest.json naming complete outputs (the old or the new ones); leftovers are removed by the next record.

LOCK_NAME = ".lock"
_OUTPUT_DIR = re.compile(r"^cases(-[0-9A-Za-z]+)?$")
# callN/ then an output name of any layer spec (sequences, h, forward_c, ...), or a gradient: grad. then a weight
# (kernel, forward.recurrent_kernel), `input`, or initial_state.<state> (initial_state.h, initial_state.backward_c):
# at most two dotted words of the same letters, so a key never holds a path, a space or an empty word.
GRADIENT_PREFIX = "grad."
_WORD = r"[a-z][a-z_]{0,40}"
_NPZ_KEY = re.compile(rf"^call([1-9][0-9]{{0,5}})/({_WORD}|grad\.{_WORD}(?:\.{_WORD})?)$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def check_destination(out: Path) -> Recording | None:
    """Refuse to write into anything but a new or empty folder or an existing recording; returns the
    existing recording, if any."""
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise RecordingError(f"{out}: exists and is not a folder: refusing to overwrite it")
    if not out.exists():
        return None
    if (out / "manifest.json").exists() or (out / "manifest.json").is_symlink():
        try:
            return open_recording(out)
        except RecordingError as exc:
            raise RecordingError(f"{out}: holds a manifest.json that is not a readable harness recording ({exc}); "
                                 "refusing to overwrite it: remove it or choose another --out") from None
    try:
        others = sorted(p.name for p in out.iterdir() if p.name != LOCK_NAME and not p.name.startswith(".staging-"))
    except OSError as exc:
        raise RecordingError(f"{out}: cannot read the folder ({exc.strerror or exc})") from None
    if others:
        raise RecordingError(f"{out}: exists and is not a harness recording (no manifest.json; it holds "
                             f"{', '.join(others[:3])}{' ...' if len(others) > 3 else ''}): refusing to overwrite it; "
                             "choose a new or empty folder")
    return None


@contextmanager
def recording_lock(out: Path):
    """An exclusive lock on DIR/.lock for the whole record; a second record into DIR fails at once.
    The operating system releases it when the process ends, however it ends."""
    import fcntl

    try:
        out.mkdir(parents=True, exist_ok=True)
        fd = os.open(out / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as exc:
        raise RecordingError(f"{out}: cannot create the recording folder or its lock ({exc.strerror or exc})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RecordingError(f"{out}: another `harness record` is writing this recording (it holds "
                                 f"{out / LOCK_NAME}); wait for it to finish or record elsewhere") from None
        yield
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Staging:
    """The new recording's outputs, written beside the current one and committed by renames."""

    def __init__(self, out: Path):
        self.out = out
        self.folder = out / f".staging-{os.getpid()}-{secrets.token_hex(4)}"
        self.final = f"cases-{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%S')}{secrets.token_hex(3)}"
        self.committed = False

    def __enter__(self):
        try:
            self.folder.mkdir()
        except OSError as exc:
            raise RecordingError(f"{self.out}: cannot write into the folder ({exc.strerror or exc})") from None
        return self

    def add(self, name: str, data: bytes) -> str:
        """Write one outputs file; returns its path relative to the recording, as the manifest names it."""
        with open(self.folder / name, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        return f"{self.final}/{name}"

    def commit(self, manifest: dict) -> None:
        os.rename(self.folder, self.out / self.final)
        temporary = self.out / ".manifest.json.tmp"
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(manifest, indent=2) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.out / "manifest.json")  # the commit
        _fsync_dir(self.out)
        self.committed = True
        self._remove_leftovers()

    def _remove_leftovers(self) -> None:
        """Earlier outputs folders and staging folders of interrupted records (we hold the lock)."""
        for path in self.out.iterdir():
            if path.name == self.final or path.is_symlink():
                continue
            if path.is_dir() and (_OUTPUT_DIR.match(path.name) or path.name.startswith(".staging-")):
                shutil.rmtree(path, ignore_errors=True)

    def __exit__(self, *exc_info):
        if not self.committed:
            shutil.rmtree(self.folder, ignore_errors=True)
            (self.out / ".manifest.json.tmp").unlink(missing_ok=True)
        return False


def file_sha256(path: Path) -> str | None:
    """SHA-256 of a regular file, read in chunks (a case file of any size, never a device or a pipe);
    None when it is not a readable regular file."""
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            return None
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        return digest.hexdigest()
    except OSError:
        return None


def read_inside(folder: Path, relative: str, what: str) -> bytes:
    """A regular file inside the recording folder, at most `recording_bytes` long: an absolute path, `..`,
    or a link leading out of the folder is refused, and nothing is read without a size bound."""
    limit = int(limits.get("recording_bytes"))
    parts = Path(relative).parts
    if Path(relative).is_absolute() or ".." in parts or not parts:
        raise RecordingError(f"{folder}: {what}: {relative[:200]!r} is not a path inside the recording")
    path = folder / relative
    real_folder = os.path.realpath(folder)
    if os.path.commonpath([real_folder, os.path.realpath(path)]) != real_folder:
        raise RecordingError(f"{folder}: {what}: {relative[:200]!r} leads outside the recording")
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise RecordingError(f"{path}: {what} is not a regular file")
        if info.st_size > limit:
            raise RecordingError(f"{path}: {what} is {info.st_size} bytes: beyond the limit recording_bytes={limit}; "
                                 + limits.how_to_raise("recording_bytes"))
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise RecordingError(f"{path}: {what} cannot be read ({exc.strerror or exc})") from None
    if len(data) > limit:
        raise RecordingError(f"{path}: {what} grew beyond the limit recording_bytes={limit}")
    return data


def read_outputs_file(path: Path, data: bytes) -> list[dict]:
    """The arrays of an outputs file, checked before they are loaded: a zip of `callN/OUTPUT` float arrays
    of at most 3 dimensions, whose unpacked size is within `recording_bytes`."""
    limit = int(limits.get("recording_bytes"))
    calls: dict[int, dict] = {}
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            if sum(m.file_size for m in archive.infolist()) > limit:
                raise RecordingError(f"{path}: unpacks beyond the limit recording_bytes={limit}")
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            for key in npz.files:
                match = _NPZ_KEY.fullmatch(key)  # fullmatch: `$` alone would accept a trailing newline
                if not match:
                    raise RecordingError(f"{path}: unexpected array {key[:80]!r} (expected callN/sequences, h, c or "
                                         "output, or a gradient callN/grad.kernel, grad.initial_state.h, ...)")
                array = npz[key]
                if array.dtype.kind != "f" or array.ndim > 3:
                    raise RecordingError(f"{path}: {key}: {array.dtype} array of {array.ndim} dimensions; "
                                         "outputs are real floating-point arrays of at most 3 dimensions")
                calls.setdefault(int(match.group(1)), {})[match.group(2)] = array.astype(np.float64)
    except RecordingError:
        raise
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same error for the user
        raise RecordingError(f"{path}: not a readable outputs file ({type(exc).__name__}: {exc})") from None
    if sorted(calls) != list(range(1, len(calls) + 1)):
        raise RecordingError(f"{path}: calls {sorted(calls)} are not numbered 1, 2, ...")
    return [calls[n] for n in sorted(calls)]


def check_manifest_cases(manifest_path: Path, cases: dict) -> None:
    """Every entry of the manifest's `cases`, before any is used: a wrong type, an unknown outcome, dtype or
    mode, or an outputs file named without its hash is a RecordingError naming the entry and the field."""
    from harness.modes import MODES
    from harness.precision import POLICIES
    from harness.runner import OUTCOMES

    def bad(name, field, found, expected):
        return RecordingError(f"{manifest_path}: case {str(name)[:80]!r}: {field}: {expected}, found {str(found)[:80]!r}")

    for name, item in cases.items():
        if not isinstance(item, dict):
            raise bad(name, "entry", type(item).__name__, "expected an object")
        for field in ("path", "sha256", "mode", "dtype"):
            if item.get(field) is not None and not isinstance(item[field], str):
                raise bad(name, field, item[field], "expected a string or null")
        if item.get("outcome") not in OUTCOMES:
            raise bad(name, "outcome", item.get("outcome"), f"expected one of {', '.join(OUTCOMES)}")
        if item.get("dtype") is not None and item["dtype"] not in POLICIES:
            raise bad(name, "dtype", item["dtype"], f"expected one of {', '.join(POLICIES)}")
        if item.get("mode") is not None and item["mode"] not in MODES:
            raise bad(name, "mode", item["mode"], f"expected one of {', '.join(MODES)}")
        if "file" in item:
            if not isinstance(item["file"], str) or not item["file"]:
                raise bad(name, "file", item["file"], "expected a path inside the recording")
            if not isinstance(item.get("file_sha256"), str) or not _HEX64.match(item["file_sha256"]):
                raise bad(name, "file_sha256", item.get("file_sha256"), "expected the outputs file's SHA-256")
            if item.get("dtype") is None:
                raise bad(name, "dtype", None, "expected the case's dtype beside its outputs")


@dataclass
class Recording:
    folder: Path
    manifest: dict

    @property
    def environment(self) -> dict:
        return self.manifest["environment"]

    def outputs(self, name: str) -> list[dict] | None:
        item = self.manifest["cases"][name]
        if "file" not in item:
            return None
        data = read_inside(self.folder, item["file"], f"outputs of case {name!r}")
        path = self.folder / item["file"]
        if _sha256(data) != item.get("file_sha256"):
            raise RecordingError(f"{path}: changed after it was recorded (sha256 does not match manifest.json); "
                                 "re-record rather than edit a recording")
        return read_outputs_file(path, data)


def open_recording(folder: Path) -> Recording:
    """Read and check a recording's manifest, every entry of it; raises RecordingError saying what is wrong."""
    manifest_path = folder / "manifest.json"
    if not folder.is_dir():
        raise RecordingError(f"{folder}: no such folder: not a harness recording (make one with `harness record`)")
    if not manifest_path.exists():
        raise RecordingError(f"{folder}: no manifest.json: not a harness recording (make one with `harness record`)")
    data = read_inside(folder, "manifest.json", "manifest.json")
    try:
        manifest = json.loads(data.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RecordingError(f"{manifest_path}: not valid JSON ({exc})") from None
    except (RecursionError, ValueError) as exc:
        raise RecordingError(f"{manifest_path}: not a readable manifest ({type(exc).__name__})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise RecordingError(f"{manifest_path}: not a harness recording (format is not {FORMAT!r})")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise RecordingError(f"{manifest_path}: recording format version {repr(manifest.get('format_version'))[:40]}; "
                             f"this harness reads version {FORMAT_VERSION}")
    if not isinstance(manifest.get("cases"), dict) or not isinstance(manifest.get("environment"), dict):
        raise RecordingError(f"{manifest_path}: manifest lacks its `cases` or `environment`")
    flavor = manifest["environment"].get("keras_flavor")
    if flavor is not None and flavor not in ("keras2", "keras3"):
        raise RecordingError(f"{manifest_path}: environment.keras_flavor: expected keras2 or keras3, found {str(flavor)[:40]!r}")
    check_manifest_cases(manifest_path, manifest["cases"])
    return Recording(folder, manifest)


