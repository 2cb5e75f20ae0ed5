"""Feed a case to the reference: the case file's own weights, rounded as the case's dtype rounds them.

The layer spec computes; this module owns what is the same for every layer: the rounding of weights,
inputs and states to the case's dtypes, and the states a stateful layer carries from call to call.
Says "unsupported" for anything the reference does not implement, instead of ignoring it.
"""

from __future__ import annotations

import numpy as np

from harness import precision
from harness.case import Case
from harness.layers.base import ReferenceResult


def check_supported(case: Case, flavor: str) -> None:
    """Raise Unsupported (or NotApplicable) if the reference cannot model this case."""
    case.spec.check_supported(case.config, flavor)


def _zero_states(case: Case) -> dict[str, np.ndarray]:
    batch = case.calls[0].input.shape[0]
    return {name: np.zeros(state.shape) for name, state in case.spec.states(case.config, batch).items()}


def run_reference(case: Case, flavor: str, trace: bool = False,
                  rounding_sample: int | None = None, spec=None) -> list[ReferenceResult]:
    """One ReferenceResult per call, state carried between calls as a stateful Keras layer carries it.

    With a rounding_sample, every intermediate is rounded to the case's compute dtype (float32 for
    float64 cases): sample 0 rounds to nearest, sample k > 0 jitters each value by up to half a unit in
    the last place first (seeded by k), a different draw of the same rounding noise. See noise.py.
    `spec` replaces the case's layer spec (the 16-bit twin, harness/twin_tensorflow.py, computes its cell
    in another op order).
    """
    spec = spec or case.spec
    check_supported(case, flavor)
    weights = {name: precision.weight_as_computed(values, case.dtype) for name, values in case.weights.items()}
    rounding = None if rounding_sample is None else precision.emulated_rounding(case.dtype, rounding_sample)

    results = []
    states = _zero_states(case)
    for call in case.calls:
        if call.reset_states or not case.stateful:
            states = _zero_states(case)
        if call.initial_state is not None:
            states = {name: precision.input_as_computed(s, case.dtype) for name, s in call.initial_state.items()}
        result = spec.forward(weights, case.config, flavor, precision.input_as_computed(call.input, case.dtype),
                              states, call.mask, trace=trace, rounding=rounding)
        states = result.states
        results.append(result)
    return results


def reference_outputs(case: Case, result: ReferenceResult) -> dict[str, np.ndarray]:
    """The reference's values for exactly the outputs the layer returns for this config."""
    return {name: result.outputs[name] for name in case.compared_outputs()}
