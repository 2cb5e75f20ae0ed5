"""The generic recurrent driver: what every Keras recurrent layer does around its cell.

    for each step t (from the last to the first with go_backwards):
        output_t, states_t = cell(x_t, states_{t-1})
        masked row: states_t = states_{t-1}; output_t = previous output (zeros before the first
                    unmasked step), or zeros with zero_output_for_mask
    sequences are returned in processing order (with go_backwards, index 0 is the last input step)

The cell is a layer spec's `step`; it sees the input projection x_t @ kernel of its step (computed for
all steps at once: it does not depend on the recurrence) and the states by name.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from harness.layers.base import StepTrace

# step(x_projection_t, states) -> (output, new states, intermediates for the trace)
Step = Callable[[np.ndarray, dict[str, np.ndarray]], tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray]]]


def input_projection(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """x_t @ kernel for every step at once, (batch, timesteps, columns): the same sums as one product per
    step up to float64 summation order, and several times faster."""
    batch, timesteps, features = x.shape
    with np.errstate(all="ignore"):
        return (x.reshape(batch * timesteps, features) @ kernel).reshape(batch, timesteps, kernel.shape[1])


def scan(step: Step, projected: np.ndarray, states: dict[str, np.ndarray], units: int, *,
         mask: np.ndarray | None = None, go_backwards: bool = False, zero_output_for_mask: bool = False,
         trace: bool = False, x: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], list[StepTrace]]:
    """Run the cell over the steps. Returns (sequences in processing order, last output, final states,
    trace). `mask`: (batch, timesteps) booleans; `x`, the raw input, only feeds the trace."""
    batch, timesteps, _ = projected.shape
    prev_output = np.zeros((batch, units))
    outputs, steps = [], []
    order = range(timesteps - 1, -1, -1) if go_backwards else range(timesteps)
    for index, t in enumerate(order):
        with np.errstate(all="ignore"):  # NaN/Inf in a case must propagate, not warn
            output, new_states, intermediates = step(projected[:, t, :], states)
        if mask is None:
            m = None
            states = new_states
        else:
            m = np.asarray(mask[:, t], dtype=bool)
            keep = m[:, None]
            states = {name: np.where(keep, new_states[name], states[name]) for name in states}
            output = np.where(keep, output, 0.0 if zero_output_for_mask else prev_output)
        prev_output = output
        outputs.append(output)
        if trace:
            shown = {"x": x[:, t, :]} if x is not None else {}
            steps.append(StepTrace(index, t, m, {**shown, **intermediates, **states, "output": output}))
    sequences = np.stack(outputs, axis=1) if outputs else np.zeros((batch, 0, units))
    return sequences, prev_output, states, steps
