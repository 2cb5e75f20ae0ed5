"""Verdict policy, in one place: which values each output is judged against, with which tolerance, and
what turns a comparison into an outcome.

- Hand values: an output without its own hand value may take one implied by another (the layer spec
  says which: an LSTM's `output` is its `h` unless masked steps output zeros).
- Tolerances: the case's own, else the dtype default floored by the measured rounding noise; the hand
  values are held to the case's `expected_tolerance` when it gives one (missing rtol or atol: 0), else to
  the same bound.
- Dtypes: every output must come back in the case's compute dtype (a system ignoring the policy fails).
- Pairing: calls and outputs are paired strictly; an output the system did not return is a failure.
- known_failure: a failure of a known defect is xfailed, a pass of it xpassed.
"""

from __future__ import annotations

import numpy as np

from harness.case import Case
from harness.compare import OutputDiff, diff_output, two_way
from harness.known_defects import case_document, known_defect
from harness.noise import NoiseEstimate
from harness.precision import compute_dtype, finfo
from harness.reference_runner import reference_outputs
from harness import tolerances
from harness.tolerances import Tolerance, measured, resolve, twin_bound, written_in_case
from harness.versions import unmet


def compare_case(case: Case, system_calls: list[dict], reference_calls: list, noise: NoiseEstimate | None = None,
                 system_dtypes: list[dict] | None = None, label: str = "Keras",
                 twin: list[dict] | None = None) -> list[tuple[int, OutputDiff]]:
    """Diff every compared output of every call; `noise` sets the floor of default tolerances and
    the rows where the dtype's range ran out. `twin`: per call, the outputs of the system's own rounding
    of the computation (harness/twin_tensorflow.py), which every element judged by the measured
    default must also be within tolerances.twin_bound of."""
    diffs = []
    spec = case.spec
    calls = zip(case.calls, system_calls, reference_calls, strict=True)
    given = case.expected_tolerance
    hand = Tolerance(given.get("rtol", 0.0), given.get("atol", 0.0), "case expected_tolerance") if given else None
    largest = float(finfo(compute_dtype(case.dtype)).max)
    for number, (call, system_out, ref_result) in enumerate(calls, start=1):
        ref_out = reference_outputs(case, ref_result)
        rows = noise.overflow_rows[number - 1] if noise else None
        steps = call.input.shape[1]
        for name in case.compared_outputs():
            expected = call.expected.get(name)
            if expected is None:
                expected = spec.expected_fallback(name, call.expected, case.config)
            elements = noise.per_element[number - 1].get(name) if noise and noise.per_element else None
            if elements is not None and elements.size and np.isnan(elements).all():
                # every element's rounded runs overflowed (a chaotic row): no element has a noise of its own,
                # so the output's, measured per call over the runs that held, sets the floor as for gradients
                elements = None
            if elements is not None and tolerances.ENABLED and not written_in_case(case.tolerance, name):
                tolerance = measured(case.dtype, name, steps, elements, ref_out[name])
            else:
                tolerance = resolve(case.tolerance, case.dtype, name, steps,
                                    noise.per_call[number - 1][name] if noise else 0.0)
            if name not in system_out:
                diff = OutputDiff(output=name, tolerance=tolerance, total=int(ref_out[name].size), label=label,
                                  structure_problem=f"{label} did not return `{name}`", verdict=two_way(label))
                diffs.append((number, diff))
                continue
            twinned = None
            if twin is not None and tolerance.per_element and name in twin[number - 1]:
                values = twin[number - 1][name]
                twinned = (values, twin_bound(case.dtype, steps, elements, values, ref_out[name]))
            diff = diff_output(name, system_out[name], ref_out[name], expected, tolerance, rows, label,
                               hand if expected is not None else None, largest, twinned)
            returned = system_dtypes[number - 1][name] if system_dtypes else None
            if returned and returned != compute_dtype(case.dtype) and diff.structure_problem is None:
                diff.structure_problem = (f"dtype mismatch: {label} returned {returned}, but dtype {case.dtype} "
                                          f"computes in {compute_dtype(case.dtype)}")
                diff.verdict = f"{label} ignored the case's dtype policy"
            diffs.append((number, diff))
    return diffs


def known_failure_applies(case: Case, target: str = "tensorflow") -> bool:
    """Whether the case's known defect concerns the installed versions and this target (elsewhere the
    case must pass)."""
    known = case.known_failure
    return (bool(known) and not unmet(known.get("when", {}))
            and (known.get("targets") is None or target in known["targets"]))


def apply_known_failure(case: Case, result, target: str = "tensorflow"):
    """Apply a case's known_failure marker: a failure becomes xfailed, a pass becomes xpassed. On a target
    other than the default, a failure in a configuration of a documented defect of that target
    (harness/known_defects.py) is xfailed too, naming it; a pass there stays a pass (such a defect does not
    show in every case it may concern)."""
    if known_failure_applies(case, target):
        reason = case.known_failure["reason"]
        upstream = f" ({case.known_failure['upstream']})" if case.known_failure.get("upstream") else ""
    else:
        defect = known_defect(case_document(case), target) if target != "tensorflow" else None
        if defect is None or result.outcome not in ("failed", "keras-error"):
            return result
        reason, upstream = defect.reason, f" ({defect.case})"
    if result.outcome in ("failed", "keras-error"):
        result.outcome = "xfailed"
        result.message = f"known failure{upstream}: {reason}; still failing: {result.message}"
        result.details = f"KNOWN FAILURE{upstream}: {reason}\n{result.details}"
    elif result.outcome == "passed":
        result.outcome = "xpassed"
        result.message = f"known failure no longer fails{upstream}: remove `known_failure` from the case file"
        result.details = f"XPASSED: {result.message}\n{result.details}"
    return result
