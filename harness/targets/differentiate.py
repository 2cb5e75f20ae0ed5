"""What every target's gradients share, whatever computes them (GradientTape, jax.vjp, torch.autograd): the
names a call differentiates, in the order the backend's list holds them (the wanted weights, `input`,
`initial_state.<name>` in the order the call passes the states), and turning what the backend returned
into float64 arrays by name: a variable the loss does not reach (the backend says None) gets zeros of its
shape, and the names outside the case's `wrt` are dropped. Imports no backend."""

from __future__ import annotations

import numpy as np

from harness.case import Case
from harness.gradients import INITIAL_STATE, INPUT


def wanted_weights(case: Case, variables: dict) -> list[str]:
    """The weight names differentiated, in the order of `wrt` (`variables`: the spec's name -> variable)."""
    return [name for name in case.gradients.wrt if name in variables]


def state_names(case: Case, number: int) -> list[str]:
    """`initial_state.<name>` for each state call `number` (0-based) passes, in the order Keras takes them."""
    given = case.calls[number].initial_state
    if given is None:
        return []
    return [f"{INITIAL_STATE}.{name}" for name in case.spec.keras_initial_state({name: name for name in given})]


def sources(case: Case, number: int, variables: dict) -> list[str]:
    """The names, in order, of what a backend differentiates call `number` with respect to: the wanted
    weights, the input, the initial states (when the call gives them)."""
    return wanted_weights(case, variables) + [INPUT] + state_names(case, number)


def collect(case: Case, number: int, names: list[str], grads: list, shapes: dict[str, tuple]) -> dict[str, np.ndarray]:
    """name -> float64 gradient for every name the case compares. `grads` are the backend's values in the
    order of `names` (None: the loss does not reach it, so zeros); `shapes` are the weights' shapes."""
    request, call = case.gradients, case.calls[number]
    found = {}
    for name, grad in zip(names, grads, strict=True):
        if name == INPUT and INPUT not in request.wrt:
            continue
        if name.startswith(f"{INITIAL_STATE}.") and INITIAL_STATE not in request.wrt:
            continue
        if grad is None:
            shape = (call.input.shape if name == INPUT else
                     call.initial_state[name.split(".", 1)[1]].shape if name.startswith(f"{INITIAL_STATE}.") else
                     shapes[name])
            found[name] = np.zeros(shape)
        else:
            found[name] = np.asarray(grad).astype(np.float64)
    return found

