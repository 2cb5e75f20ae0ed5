"""Classifying a recording against the installed version: bit-identical, within or beyond tolerance
(with the cause: which side agrees with the reference, and any semantic change of Keras's definitions),
edited, new, missing or not comparable. Each case is judged with the tolerances of the mode it was
recorded in. A gradient case's gradients (`grad.<name>`) are judged like its outputs, with the gradient
tolerances of the run; a recording made without them (an older harness, or a target that does not
differentiate) compares the outputs alone and says so."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from harness.activations import definition_changes
from harness.case import Case
from harness.compare import diff_output
from harness.discovery import load_corpus
from harness.precision import compute_dtype, finfo
from harness.gradients import reference_gradients
from harness.recording.store import GRADIENT_PREFIX, Recording, environment, file_sha256
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
    changed: list[str] = field(default_factory=list)  # the outputs whose bits changed: "h", "grad.kernel", "call 2 h"

    def to_json(self) -> dict:
        return {"case": self.name, "change": self.kind, "detail": self.detail, "max_ulps": self.max_ulps,
                "max_abs_diff": self.max_abs, "cause": self.cause, "changed_outputs": self.changed}


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


def _agree(case: Case, outputs: list[dict], flavor: str, tolerances) -> bool:
    """Whether recorded outputs (and gradients, `grad.<name>`) agree with the reference of that Keras's semantics."""
    reference_calls = run_reference(case, flavor)
    has_gradients = any(name.startswith(GRADIENT_PREFIX) for values in outputs for name in values)
    gradient_calls = reference_gradients(case, flavor) if has_gradients else [{} for _ in reference_calls]
    for number, (values, ref, grads) in enumerate(zip(outputs, reference_calls, gradient_calls), start=1):
        expected = {**reference_outputs(case, ref), **{GRADIENT_PREFIX + name: value for name, value in grads.items()}}
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
        new = _with_gradients(result)
        if item.get("mode") and result.modes and item["mode"] != result.modes[0]:
            comparison.changes.append(CaseChange(name, NOT_COMPARABLE, f"recorded in {item['mode']} mode, "
                                                 f"now run first in {result.modes[0]} mode: record again"))
            continue
        if old is None or new is None:
            comparison.changes.append(_without_outputs(name, item.get("outcome"), result, old is not None))
            continue
        old, new, note = _common_gradients(old, new, system, result.modes[0] if result.modes else None)
        change = _compare_outputs(entry.case, old, new, result, old_flavor, new_flavor)
        if note:
            change.detail = f"{change.detail}; {note}" if change.detail else note
        comparison.changes.append(change)
    for name in sorted(set(recorded) - seen):
        comparison.changes.append(CaseChange(name, MISSING, f"recorded from {recorded[name].get('path')}, not found now"))
    return comparison


def _with_gradients(result) -> list[dict] | None:
    """The run's outputs of its first mode, each call with its gradients beside them as `grad.<name>`."""
    if result.system_outputs is None:
        return None
    grads = result.system_gradients or [{} for _ in result.system_outputs]
    return [{**outputs, **{GRADIENT_PREFIX + name: value for name, value in g.items()}}
            for outputs, g in zip(result.system_outputs, grads, strict=True)]


def _has_gradients(calls: list[dict]) -> bool:
    return any(name.startswith(GRADIENT_PREFIX) for call in calls for name in call)


def _without_gradients(calls: list[dict]) -> list[dict]:
    return [{name: value for name, value in call.items() if not name.startswith(GRADIENT_PREFIX)} for call in calls]


def _common_gradients(old: list[dict], new: list[dict], system, mode: str | None) -> tuple[list[dict], list[dict], str]:
    """Compare gradients only where both sides could have them: a recording made without them (an older harness)
    or a system that does not differentiate in the recorded mode compares the outputs alone, and the note says
    so. A system that differentiates but now returns no gradient where the recording has one is a change (left
    to the caller)."""
    if _has_gradients(new) and not _has_gradients(old):
        return old, _without_gradients(new), "gradients not compared: the recording has none (recorded without them)"
    if _has_gradients(old) and not _has_gradients(new):
        why = (dict(getattr(system, "no_gradients", {})).get(mode) if getattr(system, "gradients", None) is not None
               else "it does not compute them")
        if why:
            return _without_gradients(old), new, f"gradients not compared: the {system.name} target: {why}"
    return old, new, ""


def _without_outputs(name: str, old_outcome: str | None, result, had_outputs: bool) -> CaseChange:
    """One side has no outputs: Keras raised there, or the case did not run there at all."""
    detail = f"outcome when recorded: {old_outcome}; now: {result.outcome}"
    if not had_outputs and old_outcome == "keras-error" and result.system_outputs is not None:
        return CaseChange(name, BEYOND, detail, cause="Keras raised when recorded and runs now")
    if had_outputs and result.outcome == "keras-error":
        return CaseChange(name, BEYOND, f"{detail} ({result.message})", cause="Keras raises now and did not when recorded")
    return CaseChange(name, NOT_COMPARABLE, detail + " (it did not run on one side: nothing to compare)")


def _structure(old: list[dict], new: list[dict]) -> str:
    """What differs between the two sides' output names and shapes, call by call ("" when nothing)."""
    if len(old) != len(new):
        return f"{len(old)} calls recorded, {len(new)} now"
    found = []
    for number, (a, b) in enumerate(zip(old, new), start=1):
        where = f"call {number} " if len(new) > 1 else ""
        found += [f"{where}{k} only in the recording" for k in sorted(set(a) - set(b))]
        found += [f"{where}{k} only now" for k in sorted(set(b) - set(a))]
        found += [f"{where}{k} shape {a[k].shape} -> {b[k].shape}" for k in sorted(set(a) & set(b)) if a[k].shape != b[k].shape]
    return ", ".join(found)


def _compare_outputs(case: Case, old: list[dict], new: list[dict], result, old_flavor: str, new_flavor: str) -> CaseChange:
    structure = _structure(old, new)
    if structure:
        return CaseChange(case.name, BEYOND, f"the outputs' names or shapes changed: {structure}", cause="structural change")
    pairs = [(n, k, old[n - 1][k], new[n - 1][k]) for n in range(1, len(new) + 1) for k in new[n - 1]]
    counts = ulp_histogram([(a, b) for _, _, a, b in pairs], case.dtype)
    changed = [(n, k, a, b) for n, k, a, b in pairs if a.tobytes() != b.tobytes()]
    if not changed:
        return CaseChange(case.name, IDENTICAL, ulp_counts=counts)
    label = lambda n, k: f"call {n} {k}" if len(new) > 1 else k  # noqa: E731
    names = [label(n, k) for n, k, _, _ in changed]
    recorded_mode = result.modes[0]  # the outputs compared are that mode's: so are the tolerances
    tolerances = {(number, diff.output): diff.tolerance for number, diff in result.diffs if diff.mode == recorded_mode}
    ulps = [_ulps(a, b, case.dtype) for _, _, a, b in changed]
    largest = int(np.argmax(ulps))
    max_ulps = ulps[largest]
    with np.errstate(invalid="ignore"):
        max_abs = max(float(np.nanmax(np.abs(a - b), initial=0.0)) for _, _, a, b in changed)
    where = f"; changed: {', '.join(names)}"
    within = all(diff_output(k, b, a, None, tolerances[(n, k)]).passed for n, k, a, b in changed)
    if within:
        return CaseChange(case.name, WITHIN, f"largest change {max_ulps:.3g} ulps (in {names[largest]}){where}",
                          max_ulps, max_abs, ulp_counts=counts, changed=names)
    beyond = [label(n, k) for n, k, a, b in changed if not diff_output(k, b, a, None, tolerances[(n, k)]).passed]
    old_ok = _agree(case, old, old_flavor, tolerances)
    new_ok = result.outcome in ("passed", "xpassed")
    return CaseChange(case.name, BEYOND, f"largest change {max_abs:.3g} ({max_ulps:.3g} ulps); beyond tolerance: "
                      f"{', '.join(beyond)}{where}", max_ulps, max_abs, _cause(case, old_ok, new_ok, old_flavor, new_flavor),
                      counts, changed=names)


