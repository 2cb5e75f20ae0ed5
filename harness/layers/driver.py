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
# step_vjp(x_projection_t, previous states, d output, d new states)
#     -> (d x_projection_t, d previous states, weight gradients of this step by weight name,
#         dL/d each new state through every path: its output, the next step, the returned final state)
StepVJP = Callable[[np.ndarray, dict[str, np.ndarray], np.ndarray, dict[str, np.ndarray]],
                   tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray]]]


def product(q, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b as the rounding `q` computes it: exact, or with a draw of the accumulation's rounding noise
    (precision.emulated_rounding's jittered samples). Not rounded here: the cell rounds it."""
    accumulate = getattr(q, "product", None)
    if accumulate is not None:
        return accumulate(a, b)
    with np.errstate(all="ignore"):
        return a @ b


def input_projection(x: np.ndarray, kernel: np.ndarray, q=None) -> np.ndarray:
    """x_t @ kernel for every step at once, (batch, timesteps, columns): the same sums as one product per
    step up to float64 summation order, and several times faster."""
    batch, timesteps, features = x.shape
    return product(q, x.reshape(batch * timesteps, features), kernel).reshape(batch, timesteps, kernel.shape[1])


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


def scan_vjp(step: Step, step_vjp: StepVJP, projected: np.ndarray, states: dict[str, np.ndarray], units: int, *,
             mask: np.ndarray | None = None, go_backwards: bool = False, zero_output_for_mask: bool = False,
             d_sequences: np.ndarray | None = None, d_last_output: np.ndarray | None = None,
             d_final_states: dict[str, np.ndarray] | None = None,
             ) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray], list[dict[str, np.ndarray]]]:
    """Backprop through `scan` (same arguments), by hand in float64. Cotangents: `d_sequences` (batch,
    timesteps, units) in processing order, `d_last_output` (batch, units), `d_final_states` by state name;
    None means zero. Returns (d projected in input time order, d initial states, weight gradients summed over
    the steps, trace): the trace has one entry per processed step, in processing order, with the cotangents
    arriving at that step: "d<state>" of each state the step produces (from the next step, or the returned
    final state) and "doutput" of its output; and "d<state>_total", dL/d that state through every path (what
    the cell adds from its output; at a masked row the state is kept, so it is the arriving cotangent).

    The walk runs in reverse processing order. At a masked row the state is kept: its cotangent passes
    through to the previous state unchanged and the cell gets none; the row's output is the previous output
    (its cotangent flows there) or zeros with zero_output_for_mask (it flows nowhere). The output before the
    first step is zeros, not the initial state: its cotangent is dropped."""
    batch, timesteps, _ = projected.shape
    order = list(range(timesteps - 1, -1, -1) if go_backwards else range(timesteps))
    # forward again, keeping each step's previous states (the cell's intermediates are recomputed by step_vjp)
    previous = []
    for t in order:
        previous.append(states)
        with np.errstate(all="ignore"):
            _, new_states, _ = step(projected[:, t, :], states)
        if mask is None:
            states = new_states
        else:
            keep = np.asarray(mask[:, t], dtype=bool)[:, None]
            states = {name: np.where(keep, new_states[name], states[name]) for name in states}
    zeros = np.zeros((batch, units))
    d_states = {name: np.zeros_like(value) for name, value in states.items()}
    for name, value in (d_final_states or {}).items():
        d_states[name] = d_states[name] + value
    d_carry = zeros if d_last_output is None else np.asarray(d_last_output, dtype=np.float64)  # d output of the step
    d_projected = np.zeros_like(projected)
    weight_grads: dict[str, np.ndarray] = {}
    trace = []
    for index in range(len(order) - 1, -1, -1):
        t = order[index]
        d_output = d_carry if d_sequences is None else d_carry + d_sequences[:, index, :]
        arriving = {**{f"d{name}": value for name, value in d_states.items()}, "doutput": d_output}
        if mask is None:
            d_cell_output, d_new, passed = d_output, d_states, None
            d_carry = zeros
        else:
            keep = np.asarray(mask[:, t], dtype=bool)[:, None]
            d_cell_output = np.where(keep, d_output, 0.0)
            d_new = {name: np.where(keep, value, 0.0) for name, value in d_states.items()}
            passed = {name: np.where(keep, 0.0, value) for name, value in d_states.items()}
            d_carry = zeros if zero_output_for_mask else np.where(keep, 0.0, d_output)
        with np.errstate(all="ignore"):
            d_x, d_previous, grads, d_total = step_vjp(projected[:, t, :], previous[index], d_cell_output, d_new)
        if mask is not None:
            d_total = {name: np.where(keep, value, d_states[name]) for name, value in d_total.items()}
        trace.append({**arriving, **{f"d{name}_total": value for name, value in d_total.items()}})
        d_projected[:, t, :] = d_x
        d_states = d_previous if passed is None else {name: d_previous[name] + passed[name] for name in d_previous}
        for name, value in grads.items():
            weight_grads[name] = weight_grads[name] + value if name in weight_grads else value
    trace.reverse()
    return d_projected, d_states, weight_grads, trace
