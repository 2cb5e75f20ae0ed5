"""`harness explain`: the reference's step-by-step trace, laid out the way a hand calculation is."""

from __future__ import annotations

from harness import precision
from harness.case import Case
from harness.reference_runner import run_reference


def explain_case(case: Case, flavor: str) -> str:
    """Every intermediate of every step, per batch row, with the equations and definitions used."""
    spec = case.spec
    results = run_reference(case, flavor, trace=True)
    lines = [f"case {case.name} ({case.path}), dtype {case.dtype}, reference semantics {flavor}",
             *spec.explain(case.config, flavor)]
    if case.dtype != "float64":
        lines.append(f"  inputs and weights rounded to {precision.compute_dtype(case.dtype)} as Keras sees them, "
                     "then computed in float64")
    for number, (call, result) in enumerate(zip(case.calls, results), start=1):
        if len(case.calls) > 1:
            lines.append(f"call {number}" + (" (states reset first)" if call.reset_states else ""))
        lines.extend(spec.explain_result(result, call.input.shape[0], case.config))
    return "\n".join(lines)
