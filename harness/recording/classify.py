"""Classifying a recording against the installed version: bit-identical, within or beyond tolerance
(with the cause: which side agrees with the reference, and any semantic change of Keras's definitions),
edited, new, missing or not comparable. Each case is judged with the tolerances of the mode it was
recorded in."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from harness.activations import definition_changes
from harness.case import Case
from harness.compare import diff_output
from harness.discovery import load_corpus
from harness.precision import compute_dtype, finfo
from harness.recording.store import Recording, environment, file_sha256
from harness.reference_runner import reference_outputs, run_reference
from harness.runner import run_case
from harness import targets

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
    ulp_counts: tuple[int, ...] = ()  # compared outputs: elements per ULP_EDGES bin (for the HTML histogram)

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

    @property
    def compared(self) -> list[CaseChange]:
        """The cases whose outputs were compared (the others were new, missing, edited or not comparable)."""
        return [c for c in self.changes if c.kind in (IDENTICAL, WITHIN, BEYOND)]


def ulp_distances(old: np.ndarray, new: np.ndarray, dtype: str) -> np.ndarray:
    """Per element finite on both sides, the distance in units in the last place of the case's compute
    dtype (at the old value); flat."""
    both = np.isfinite(old) & np.isfinite(new)
    info = finfo(compute_dtype(dtype))
    _, exponent = np.frexp(old[both])  # |old| = m * 2**exponent with 0.5 <= m < 1
    ulp = np.maximum(np.ldexp(1.0, exponent - 1 - int(info.nmant)), float(info.smallest_subnormal))
    return np.abs(new[both] - old[both]) / ulp


def _ulps(old: np.ndarray, new: np.ndarray, dtype: str) -> float:
    """Largest distance in units in the last place of the case's compute dtype (at the old value)."""
    return float(np.max(ulp_distances(old, new, dtype), initial=0.0))


# Bins of the ulp histogram (`harness compare --html`): unchanged, 1, 2, 3-4, 5-8, ... 2^19+1-2^20, beyond.
ULP_EDGES = (0.0, 0.5, 1.5, 2.5) + tuple(2.0 ** k + 0.5 for k in range(2, 21)) + (np.inf,)
ULP_LABELS = ("0", "1", "2") + tuple(f"{2 ** (k - 1) + 1}-{2 ** k}" for k in range(2, 21)) + (f">{2 ** 20}",)


def ulp_histogram(pairs, dtype: str) -> tuple[int, ...]:
    """Counts of elements per ULP_EDGES bin, over (old, new) array pairs (elements finite on both sides).
    Bin "0" is exactly the unchanged elements: a change of less than an ulp (from 0, where the ulp is taken
    as 2^-(mantissa bits + 1)) counts as 1."""
    parts = []
    for old, new in pairs:
        both = np.isfinite(old) & np.isfinite(new)
        parts.append(np.where(old[both] == new[both], 0.0, np.maximum(ulp_distances(old, new, dtype), 1.0)))
    distances = np.concatenate(parts or [np.zeros(0)])
    return tuple(int(n) for n in np.histogram(distances, bins=ULP_EDGES)[0])


def _agree(case: Case, outputs: list[dict], reference_calls, tolerances) -> bool:
    for number, (values, ref) in enumerate(zip(outputs, reference_calls), start=1):
        expected = reference_outputs(case, ref)
        for name, array in values.items():
            if not diff_output(name, array, expected[name], None, tolerances[(number, name)]).passed:
                return False
    return True


def _cause(case: Case, old_ok: bool, new_ok: bool, old_flavor: str, new_flavor: str) -> str:
    changes = [c for c in (definition_changes(name, old_flavor, new_flavor)
                           for name in case.spec.activations(case.config).values()) if c]
    semantic = f"semantic change in Keras ({old_flavor} -> {new_flavor}): " + "; ".join(sorted(set(changes))) if changes else ""
    if old_ok and new_ok:
        return semantic or "both versions agree with the reference within tolerance (the change is near the tolerance edge)"
    if old_ok:
        return "REGRESSION: the old version agrees with the reference, the new one does not" + (f"; {semantic}" if semantic else "")
    if new_ok:
        return "FIXED: the new version agrees with the reference, the old one did not" + (f"; {semantic}" if semantic else "")
    return "neither version agrees with the reference" + (f"; {semantic}" if semantic else "")


def compare(recording: Recording, paths: list, modes: tuple[str, ...] | None = None,
            target: str | None = None) -> Comparison:
    """Classify every case against the recording, on the target it was recorded on (or `target`: compare
    one system under test with another's recording, e.g. JAX against TensorFlow)."""
    target = target or recording.environment.get("target", targets.DEFAULT_TARGET)
    system = targets.get(target)
    comparison = Comparison(recording.environment, environment(target))
    recorded = recording.manifest["cases"]
    old_flavor, new_flavor = recording.environment.get("keras_flavor", "keras3"), system.semantics()
    seen = set()
    for entry in load_corpus(paths):
        name = entry.name
        seen.add(name)
        if name not in recorded:
            comparison.changes.append(CaseChange(name, NEW, f"not in the recording ({entry.path})"))
            continue
        item = recorded[name]
        if item.get("sha256") != file_sha256(entry.path):
            comparison.changes.append(CaseChange(name, EDITED, f"{entry.path} differs from the recorded file; re-record to compare"))
            continue
        if entry.case is None:
            comparison.changes.append(CaseChange(name, NOT_COMPARABLE, "invalid case file"))
            continue
        old = recording.outputs(name)
        result = run_case(entry.case, modes=modes, system=system)
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
    counts = ulp_histogram([(a, b) for _, _, a, b in pairs], case.dtype)
    if all(a.tobytes() == b.tobytes() for _, _, a, b in pairs):
        return CaseChange(case.name, IDENTICAL, ulp_counts=counts)
    recorded_mode = result.modes[0]  # the outputs compared are that mode's: so are the tolerances
    tolerances = {(number, diff.output): diff.tolerance for number, diff in result.diffs if diff.mode == recorded_mode}
    max_ulps = max(_ulps(a, b, case.dtype) for _, _, a, b in pairs)
    with np.errstate(invalid="ignore"):
        max_abs = max(float(np.nanmax(np.abs(a - b), initial=0.0)) for _, _, a, b in pairs)
    within = all(diff_output(k, b, a, None, tolerances[(n, k)]).passed for n, k, a, b in pairs)
    if within:
        return CaseChange(case.name, WITHIN, f"largest change {max_ulps:.3g} ulps", max_ulps, max_abs,
                          ulp_counts=counts)
    old_ok = _agree(case, old, run_reference(case, old_flavor), tolerances)
    new_ok = result.outcome in ("passed", "xpassed")
    return CaseChange(case.name, BEYOND, f"largest change {max_abs:.3g} ({max_ulps:.3g} ulps)", max_ulps, max_abs,
                      _cause(case, old_ok, new_ok, old_flavor, new_flavor), counts)


