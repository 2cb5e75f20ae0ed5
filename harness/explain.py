"""`harness explain`: the reference's step-by-step trace, laid out the way a hand calculation is."""

from __future__ import annotations

from harness import gradients, precision
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
    if case.gradients is not None:
        lines.extend(_backward_lines(case, flavor))
    return "\n".join(lines)


def _backward_lines(case: Case, flavor: str) -> list[str]:
    """A gradient case's backprop through time, after the forward trace: per call, row and step the cotangent
    of each state the step produces."""
    request = case.gradients
    outputs = ", ".join(request.cotangents[0])
    source = ("given in the case" if request.given else
              f"seeded random normal draws (seed {gradients.COTANGENT_SEED} + 100 x call + output index)")
    lines = [f"backward (gradients): L = sum over {outputs} of sum(cotangent * output); cotangents {source}",
             "  steps in processing order; dL/dstate: the cotangent of the state the step produces, through every path",
             "  carried: back from the next step (at the last step: the returned final state's cotangent)"]
    for number, (call, grads) in enumerate(zip(case.calls, gradients.reference_backward(case, flavor)), start=1):
        if len(case.calls) > 1:
            lines.append(f"backward, call {number}")
        lines.extend(case.spec.explain_backward(grads, call.input.shape[0], case.config, call.mask))
    return lines
