"""`harness explain`: the reference's step-by-step trace, laid out the way a hand calculation is."""

from __future__ import annotations

import numpy as np

from harness import precision
from harness.activations import get_activation
from harness.case import Case
from harness.reference_runner import run_reference


def _vec(values: np.ndarray) -> str:
    return "[" + ", ".join(f"{v:.6g}" for v in np.asarray(values).tolist()) + "]"


def explain_case(case: Case, flavor: str) -> str:
    """Every intermediate of every step, per batch row, with the equations and definitions used."""
    results = run_reference(case, flavor, trace=True)
    g = get_activation(case.config.get("activation", "tanh"), flavor)
    r = get_activation(case.config.get("recurrent_activation", "sigmoid"), flavor)
    lines = [
        f"case {case.name} ({case.path}), dtype {case.dtype}, reference semantics {flavor}",
        f"  g = activation = {g.name}: {g.formula}",
        f"  r = recurrent_activation = {r.name}: {r.formula}",
        "  z = x @ kernel + h_prev @ recurrent_kernel + bias; blocks i, f, c, o",
        "  i = r(z_i)  f = r(z_f)  c~ = g(z_c)  o = r(z_o);  c = f * c_prev + i * c~;  h = o * g(c)",
    ]
    if case.dtype != "float64":
        lines.append(f"  inputs and weights rounded to {precision.compute_dtype(case.dtype)} as Keras sees them, "
                     "then computed in float64")
    units = case.units
    for number, (call, result) in enumerate(zip(case.calls, results), start=1):
        if len(case.calls) > 1:
            lines.append(f"call {number}" + (" (states reset first)" if call.reset_states else ""))
        for b in range(call.input.shape[0]):
            lines.append(f"batch row {b}:")
            for s in result.trace:
                masked = s.mask is not None and not s.mask[b]
                lines.append(f"  step {s.step} (input time {s.time}){'  MASKED: h, c kept' if masked else ''}")
                lines.append(f"    x  = {_vec(s.x[b])}")
                z = s.z[b]
                lines.append(f"    z  = i {_vec(z[:units])} | f {_vec(z[units:2 * units])} | "
                             f"c {_vec(z[2 * units:3 * units])} | o {_vec(z[3 * units:])}")
                lines.append(f"    i  = {_vec(s.i[b])}   f = {_vec(s.f[b])}")
                lines.append(f"    c~ = {_vec(s.c_candidate[b])}   o = {_vec(s.o[b])}")
                lines.append(f"    c  = {_vec(s.c[b])}")
                lines.append(f"    h  = {_vec(s.h[b])}   output = {_vec(s.output[b])}")
    return "\n".join(lines)
