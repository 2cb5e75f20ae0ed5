"""The reference oracle: one Keras LSTM layer call in float64 NumPy, read beside the equations.

    z_t = x_t @ W + h_{t-1} @ U + b            W: kernel (F, 4n), U: recurrent_kernel (n, 4n), b: bias (4n,)
    z_i, z_f, z_c, z_o = split(z_t, 4)         gate blocks in Keras order i, f, c, o
    i = r(z_i)   f = r(z_f)   o = r(z_o)        r: recurrent_activation
    c~ = g(z_c)                                 g: activation
    c_t = f * c_{t-1} + i * c~
    h_t = o * g(c_t)

Masking (per batch row): at a masked step h and c keep their previous values and the output repeats
the previous output (zeros before the first unmasked step), or is zero with zero_output_for_mask.
go_backwards reads the input from the last step to the first and returns outputs in processing order.

Imports nothing from Keras or TensorFlow (a test enforces it); it never sees the Keras layer's weights.
`rounding`, when given, rounds every intermediate to a lower precision: the same computation with the
rounding error of that precision, used to estimate how much rounding noise a case amplifies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from harness.activations import Activation


@dataclass(frozen=True)
class StepTrace:
    """Every intermediate of one processed step, for `harness explain`."""

    step: int  # processing index (0 = first step processed)
    time: int  # index into the input's time axis
    x: np.ndarray
    mask: np.ndarray | None  # (batch,) booleans, None when unmasked
    z: np.ndarray
    i: np.ndarray
    f: np.ndarray
    c_candidate: np.ndarray
    o: np.ndarray
    c: np.ndarray
    h: np.ndarray
    output: np.ndarray


@dataclass
class ReferenceResult:
    """Outputs of one call: sequences in processing order (batch, steps, units), last output, final h and c."""

    sequences: np.ndarray
    last_output: np.ndarray
    h: np.ndarray
    c: np.ndarray
    trace: list[StepTrace] = field(default_factory=list)


def lstm_forward(
    x: np.ndarray,
    kernel: np.ndarray,
    recurrent_kernel: np.ndarray,
    bias: np.ndarray | None,
    *,
    activation: Activation,
    recurrent_activation: Activation,
    h0: np.ndarray | None = None,
    c0: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    go_backwards: bool = False,
    zero_output_for_mask: bool = False,
    trace: bool = False,
    rounding: Callable[[np.ndarray], np.ndarray] | None = None,
) -> ReferenceResult:
    """Run one LSTM layer call. x: (batch, timesteps, features); mask: (batch, timesteps) booleans."""
    x = np.asarray(x, dtype=np.float64)
    batch, timesteps, _ = x.shape
    units = recurrent_kernel.shape[0]
    W = np.asarray(kernel, dtype=np.float64)
    U = np.asarray(recurrent_kernel, dtype=np.float64)
    b = np.zeros(4 * units) if bias is None else np.asarray(bias, dtype=np.float64)
    g, r = activation, recurrent_activation
    q = rounding or (lambda a: a)

    h = np.zeros((batch, units)) if h0 is None else np.array(h0, dtype=np.float64)
    c = np.zeros((batch, units)) if c0 is None else np.array(c0, dtype=np.float64)
    prev_output = np.zeros((batch, units))
    outputs = []
    steps = []

    with np.errstate(all="ignore"):
        # x_t W of every step as one matrix product (the input does not depend on the recurrence): the same
        # sums, up to float64 summation order, and several times faster than one small product per step
        xw = (x.reshape(batch * timesteps, x.shape[2]) @ W).reshape(batch, timesteps, 4 * units)
    order = range(timesteps - 1, -1, -1) if go_backwards else range(timesteps)
    for step, t in enumerate(order):
        h_tm1, c_tm1 = h, c
        with np.errstate(all="ignore"):  # NaN/Inf in a case must propagate, not warn
            z = q(q(xw[:, t, :]) + q(h_tm1 @ U) + b)
            blocks = z.reshape(batch, 4, units)  # gate blocks i, f, c, o along axis 1, units last
            i, f, o = q(r(blocks[:, (0, 1, 3), :])).transpose(1, 0, 2)  # one call for the three gates
            c_candidate = q(g(blocks[:, 2, :]))
            c_t = q(q(f * c_tm1) + q(i * c_candidate))
            h_t = q(o * q(g(c_t)))
        if mask is None:
            m = None
            h, c, output = h_t, c_t, h_t
        else:
            m = np.asarray(mask[:, t], dtype=bool)
            keep = m[:, None]
            h = np.where(keep, h_t, h_tm1)
            c = np.where(keep, c_t, c_tm1)
            output = np.where(keep, h_t, 0.0 if zero_output_for_mask else prev_output)
        prev_output = output
        outputs.append(output)
        if trace:
            steps.append(StepTrace(step, t, x[:, t, :], m, z, i, f, c_candidate, o, c, h, output))

    sequences = np.stack(outputs, axis=1) if outputs else np.zeros((batch, 0, units))
    return ReferenceResult(sequences=sequences, last_output=prev_output, h=h, c=c, trace=steps)
