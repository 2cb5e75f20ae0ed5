"""Record outputs under one TensorFlow/Keras version, compare them under another.

A recording is a folder: manifest.json (format, versions, platform, and per case the case file's
hash, the outcome and the outputs file's hash) and one .npz per case with Keras's outputs as float64,
which holds float16, bfloat16 and float32 values exactly. A recording that is missing, foreign,
of another format version, or altered after it was written is refused with a clear error.
"""

from __future__ import annotations

import hashlib
import io
import json
import platform
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from harness import __version__
from harness.activations import definition_changes
from harness.case import Case
from harness.compare import diff_output
from harness.discovery import load_corpus
from harness.errors import HarnessError
from harness.versions import keras_flavor
from harness.precision import compute_dtype, finfo
from harness.reference_runner import reference_outputs, run_reference
from harness.runner import run_case
from harness.versions import installed_versions

FORMAT = "keras-rnn-harness-recording"
FORMAT_VERSION = 1


class RecordingError(HarnessError):
    """A recording that cannot be trusted or read."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def environment() -> dict:
    versions = installed_versions()
    return {"python": sys.version.split()[0], "platform": platform.platform(), "machine": platform.machine(),
            "tensorflow": versions.get("tensorflow"), "keras": versions.get("keras"), "numpy": versions.get("numpy"),
            "backend": "tensorflow", "keras_flavor": keras_flavor(), "harness": __version__}


def _npz_bytes(outputs: list[dict]) -> bytes:
    arrays = {f"call{n}/{name}": np.asarray(values, dtype=np.float64)
              for n, call in enumerate(outputs, start=1) for name, values in call.items()}
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def record(paths: list, out: Path, modes: tuple[str, ...] | None = None) -> dict:
    """Run every case on the installed Keras and write the recording; returns the manifest."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "cases").mkdir(exist_ok=True)
    cases = {}
    for entry in load_corpus(paths):
        file_hash = _sha256(entry.path.read_bytes()) if entry.path.is_file() else None
        if entry.case is None:
            cases[entry.name] = {"path": str(entry.path), "sha256": file_hash, "outcome": "invalid"}
            continue
        result = run_case(entry.case, modes=modes)
        item = {"path": str(entry.path), "sha256": file_hash, "outcome": result.outcome, "dtype": entry.case.dtype,
                "mode": result.modes[0] if result.modes else None}
        if result.system_outputs is not None:
            data = _npz_bytes(result.system_outputs)
            name = f"cases/{entry.case.name}.npz"
            (out / name).write_bytes(data)
            item.update(file=name, file_sha256=_sha256(data))
        cases[entry.case.name] = item
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION,
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "environment": environment(), "cases": cases}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


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
        path = self.folder / item["file"]
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise RecordingError(f"{self.folder}: outputs of case {name!r} are missing ({exc})") from None
        if _sha256(data) != item.get("file_sha256"):
            raise RecordingError(f"{path}: changed after it was recorded (sha256 does not match manifest.json); "
                                 "re-record rather than edit a recording")
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                calls: dict[int, dict] = {}
                for key in npz.files:
                    call, output = key.split("/", 1)
                    calls.setdefault(int(call.removeprefix("call")), {})[output] = npz[key]
        except Exception as exc:  # noqa: BLE001 - any unreadable file is the same error for the user
            raise RecordingError(f"{path}: not a readable outputs file ({type(exc).__name__}: {exc})") from None
        return [calls[n] for n in sorted(calls)]


def open_recording(folder: Path) -> Recording:
    """Read and check a recording's manifest; raises RecordingError saying what is wrong."""
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        raise RecordingError(f"{folder}: no manifest.json: not a harness recording (make one with `harness record`)")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RecordingError(f"{manifest_path}: not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise RecordingError(f"{manifest_path}: not a harness recording (format is not {FORMAT!r})")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise RecordingError(f"{manifest_path}: recording format version {manifest.get('format_version')!r}; "
                             f"this harness reads version {FORMAT_VERSION}")
    if not isinstance(manifest.get("cases"), dict) or not isinstance(manifest.get("environment"), dict):
        raise RecordingError(f"{manifest_path}: manifest lacks its `cases` or `environment`")
    return Recording(folder, manifest)


# ---------------------------------------------------------------- compare

IDENTICAL = "bit-identical"
WITHIN = "changed within tolerance"
BEYOND = "changed beyond tolerance"
NEW = "new case"
MISSING = "case missing"
EDITED = "case file edited since recorded"
NOT_COMPARABLE = "not comparable"
KINDS = (BEYOND, WITHIN, IDENTICAL, EDITED, NEW, MISSING, NOT_COMPARABLE)


@dataclass
class CaseChange:
    name: str
    kind: str
    detail: str = ""
    max_ulps: float = 0.0
    max_abs: float = 0.0
    cause: str = ""  # for BEYOND: which side agrees with the reference, and why

    def to_json(self) -> dict:
        return {"case": self.name, "change": self.kind, "detail": self.detail, "max_ulps": self.max_ulps,
                "max_abs_diff": self.max_abs, "cause": self.cause}


@dataclass
class Comparison:
    old: dict
    new: dict
    changes: list[CaseChange] = field(default_factory=list)

    @property
    def beyond(self) -> list[CaseChange]:
        return [c for c in self.changes if c.kind == BEYOND]


def _ulps(old: np.ndarray, new: np.ndarray, dtype: str) -> float:
    """Largest distance in units in the last place of the case's compute dtype (at the old value)."""
    both = np.isfinite(old) & np.isfinite(new)
    if not both.any():
        return 0.0
    info = finfo(compute_dtype(dtype))
    _, exponent = np.frexp(old[both])  # |old| = m * 2**exponent with 0.5 <= m < 1
    ulp = np.maximum(np.ldexp(1.0, exponent - 1 - int(info.nmant)), float(info.smallest_subnormal))
    return float(np.max(np.abs(new[both] - old[both]) / ulp))


def _agree(case: Case, outputs: list[dict], reference_calls, tolerances) -> bool:
    for number, (values, ref) in enumerate(zip(outputs, reference_calls), start=1):
        expected = reference_outputs(case, ref)
        for name, array in values.items():
            if not diff_output(name, array, expected[name], None, tolerances[(number, name)]).passed:
                return False
    return True


def _cause(case: Case, old_ok: bool, new_ok: bool, old_flavor: str, new_flavor: str) -> str:
    changes = [c for c in (definition_changes(case.config.get("activation", "tanh"), old_flavor, new_flavor),
                           definition_changes(case.config.get("recurrent_activation", "sigmoid"), old_flavor, new_flavor))
               if c]
    semantic = f"semantic change in Keras ({old_flavor} -> {new_flavor}): " + "; ".join(sorted(set(changes))) if changes else ""
    if old_ok and new_ok:
        return semantic or "both versions agree with the reference within tolerance (the change is near the tolerance edge)"
    if old_ok:
        return "REGRESSION: the old version agrees with the reference, the new one does not" + (f"; {semantic}" if semantic else "")
    if new_ok:
        return "FIXED: the new version agrees with the reference, the old one did not" + (f"; {semantic}" if semantic else "")
    return "neither version agrees with the reference" + (f"; {semantic}" if semantic else "")


def compare(recording: Recording, paths: list, modes: tuple[str, ...] | None = None) -> Comparison:
    """Classify every case against the recording."""
    comparison = Comparison(recording.environment, environment())
    recorded = recording.manifest["cases"]
    old_flavor, new_flavor = recording.environment.get("keras_flavor", "keras3"), keras_flavor()
    seen = set()
    for entry in load_corpus(paths):
        name = entry.name
        seen.add(name)
        if name not in recorded:
            comparison.changes.append(CaseChange(name, NEW, f"not in the recording ({entry.path})"))
            continue
        item = recorded[name]
        if item.get("sha256") != (_sha256(entry.path.read_bytes()) if entry.path.is_file() else None):
            comparison.changes.append(CaseChange(name, EDITED, f"{entry.path} differs from the recorded file; re-record to compare"))
            continue
        if entry.case is None:
            comparison.changes.append(CaseChange(name, NOT_COMPARABLE, "invalid case file"))
            continue
        old = recording.outputs(name)
        result = run_case(entry.case, modes=modes)
        new = result.system_outputs
        if item.get("mode") and result.modes and item["mode"] != result.modes[0]:
            comparison.changes.append(CaseChange(name, NOT_COMPARABLE, f"recorded in {item['mode']} mode, "
                                                 f"now run first in {result.modes[0]} mode: record again"))
            continue
        if old is None or new is None:
            comparison.changes.append(_without_outputs(name, item.get("outcome"), result, old is not None))
            continue
        comparison.changes.append(_compare_outputs(entry.case, old, new, result, old_flavor, new_flavor))
    for name in sorted(set(recorded) - seen):
        comparison.changes.append(CaseChange(name, MISSING, f"recorded from {recorded[name].get('path')}, not found now"))
    return comparison


def _without_outputs(name: str, old_outcome: str | None, result, had_outputs: bool) -> CaseChange:
    """One side has no outputs: Keras raised there, or the case did not run there at all."""
    detail = f"outcome when recorded: {old_outcome}; now: {result.outcome}"
    if not had_outputs and old_outcome == "keras-error" and result.system_outputs is not None:
        return CaseChange(name, BEYOND, detail, cause="Keras raised when recorded and runs now")
    if had_outputs and result.outcome == "keras-error":
        return CaseChange(name, BEYOND, f"{detail} ({result.message})", cause="Keras raises now and did not when recorded")
    return CaseChange(name, NOT_COMPARABLE, detail + " (it did not run on one side: nothing to compare)")


def _compare_outputs(case: Case, old: list[dict], new: list[dict], result, old_flavor: str, new_flavor: str) -> CaseChange:
    if [sorted(c) for c in old] != [sorted(c) for c in new]:
        return CaseChange(case.name, BEYOND, "the outputs' names or shapes changed", cause="structural change")
    pairs = [(n, k, old[n - 1][k], new[n - 1][k]) for n in range(1, len(new) + 1) for k in new[n - 1]]
    if any(a.shape != b.shape for _, _, a, b in pairs):
        return CaseChange(case.name, BEYOND, "the outputs' names or shapes changed", cause="structural change")
    if all(a.tobytes() == b.tobytes() for _, _, a, b in pairs):
        return CaseChange(case.name, IDENTICAL)
    tolerances = {(number, diff.output): diff.tolerance for number, diff in result.diffs}
    max_ulps = max(_ulps(a, b, case.dtype) for _, _, a, b in pairs)
    with np.errstate(invalid="ignore"):
        max_abs = max(float(np.nanmax(np.abs(a - b), initial=0.0)) for _, _, a, b in pairs)
    within = all(diff_output(k, b, a, None, tolerances[(n, k)]).passed for n, k, a, b in pairs)
    if within:
        return CaseChange(case.name, WITHIN, f"largest change {max_ulps:.3g} ulps", max_ulps, max_abs)
    old_ok = _agree(case, old, run_reference(case, old_flavor), tolerances)
    new_ok = result.outcome in ("passed", "xpassed")
    return CaseChange(case.name, BEYOND, f"largest change {max_abs:.3g} ({max_ulps:.3g} ulps)", max_ulps, max_abs,
                      _cause(case, old_ok, new_ok, old_flavor, new_flavor))


def markdown(comparison: Comparison) -> str:
    """A report for a pull-request comment."""
    old, new = comparison.old, comparison.new
    counts = {kind: sum(1 for c in comparison.changes if c.kind == kind) for kind in KINDS}
    lines = ["## LSTM numerics: recorded vs installed", "",
             "| | recorded | now |", "|---|---|---|"]
    for key in ("tensorflow", "keras", "numpy", "python", "platform", "harness"):
        lines.append(f"| {key} | {old.get(key)} | {new.get(key)} |")
    lines += ["", " | ".join(f"**{counts[k]}** {k}" for k in KINDS if counts[k]), ""]
    beyond = comparison.beyond
    if beyond:
        lines += ["### Changed beyond tolerance", "", "| case | largest change | cause |", "|---|---|---|"]
        lines += [f"| `{c.name}` | {c.detail} | {c.cause} |" for c in beyond]
        lines.append("")
    within = [c for c in comparison.changes if c.kind == WITHIN]
    if within:
        lines += ["### Changed within tolerance", "", "| case | largest change |", "|---|---|"]
        lines += [f"| `{c.name}` | {c.max_ulps:.3g} ulps |" for c in sorted(within, key=lambda c: -c.max_ulps)]
        lines.append("")
    for kind in (EDITED, NEW, MISSING, NOT_COMPARABLE):
        items = [c for c in comparison.changes if c.kind == kind]
        if items:
            lines += [f"### {kind[0].upper() + kind[1:]}", ""] + [f"- `{c.name}`: {c.detail}" for c in items] + [""]
    return "\n".join(lines)
