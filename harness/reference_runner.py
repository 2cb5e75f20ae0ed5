"""Feed a case to the reference: the case file's own weights, rounded as the case's dtype rounds them.

Says "unsupported" for anything the reference does not implement, instead of ignoring it.
"""

from __future__ import annotations

import numpy as np

from harness import precision
from harness.activations import get_activation
from harness.case import Case
from harness.errors import Unsupported
from harness.reference import ReferenceResult, lstm_forward

# Config keys whose meaning the reference implements.
MODELLED = {"units", "activation", "recurrent_activation", "use_bias", "return_sequences", "return_state",
            "go_backwards", "stateful", "zero_output_for_mask"}
# Config keys with no effect on an inference-mode forward pass once the weights are set from the case;
# they change the Keras code path (worth testing), never the math.
NO_FORWARD_EFFECT = {"unroll", "implementation", "use_cudnn", "unit_forget_bias", "dropout", "recurrent_dropout",
                     "seed", "kernel_initializer", "recurrent_initializer", "bias_initializer",
                     "kernel_regularizer", "recurrent_regularizer", "bias_regularizer", "activity_regularizer",
                     "kernel_constraint", "recurrent_constraint", "bias_constraint"}


def check_supported(case: Case, flavor: str) -> None:
    """Raise Unsupported if the reference cannot model this case."""
    if case.layer != "LSTM":
        raise Unsupported(f"layer {case.layer!r}: the reference implements only LSTM so far")
    unknown = sorted(set(case.config) - MODELLED - NO_FORWARD_EFFECT)
    if unknown:
        raise Unsupported(f"config option(s) {', '.join(unknown)} are not modelled by the reference")
    get_activation(case.config.get("activation", "tanh"), flavor)
    get_activation(case.config.get("recurrent_activation", "sigmoid"), flavor)


def run_reference(case: Case, flavor: str, trace: bool = False,
                  rounding_sample: int | None = None) -> list[ReferenceResult]:
    """One ReferenceResult per call, state carried between calls as a stateful Keras layer carries it.

    With a rounding_sample, every intermediate is rounded to the case's compute dtype (float32 for
    float64 cases): sample 0 rounds to nearest, sample k > 0 jitters each value by up to half a unit in
    the last place first (seeded by k), a different draw of the same rounding noise. See noise.py.
    """
    check_supported(case, flavor)
    activation = get_activation(case.config.get("activation", "tanh"), flavor)
    recurrent_activation = get_activation(case.config.get("recurrent_activation", "sigmoid"), flavor)
    kernel = precision.weight_as_computed(case.weights["kernel"], case.dtype)
    recurrent_kernel = precision.weight_as_computed(case.weights["recurrent_kernel"], case.dtype)
    bias = precision.weight_as_computed(case.weights["bias"], case.dtype) if case.use_bias else None
    batch, units = case.calls[0].input.shape[0], case.units
    rounding = None if rounding_sample is None else precision.emulated_rounding(case.dtype, rounding_sample)

    results = []
    h = c = np.zeros((batch, units))
    for call in case.calls:
        if call.reset_states or not case.stateful:
            h = c = np.zeros((batch, units))
        if call.initial_state is not None:
            h, c = (precision.input_as_computed(s, case.dtype) for s in call.initial_state)
        result = lstm_forward(
            precision.input_as_computed(call.input, case.dtype), kernel, recurrent_kernel, bias,
            activation=activation, recurrent_activation=recurrent_activation, h0=h, c0=c, mask=call.mask,
            go_backwards=case.config.get("go_backwards", False),
            zero_output_for_mask=case.config.get("zero_output_for_mask", False), trace=trace,
            rounding=rounding,
        )
        h, c = result.h, result.c
        results.append(result)
    return results


def reference_outputs(case: Case, result: ReferenceResult) -> dict[str, np.ndarray]:
    """The reference's values for exactly the outputs Keras returns for this config."""
    values = {"sequences": result.sequences, "output": result.last_output, "h": result.h, "c": result.c}
    if not case.return_state:
        values["h"] = result.last_output  # Keras returns the last output, not the state
    return {name: values[name] for name in case.compared_outputs()}
