"""Run a case on a real Keras layer and return plain NumPy arrays.

Weights are set from the case file, never from initializers (with the default orthogonal initializer
`LSTM(dtype="bfloat16")` cannot even be built on the TF CPU backend). Anything Keras raises becomes a
KerasFailure carrying Keras's message. TensorFlow is imported on first use only.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from importlib import metadata

import numpy as np

from harness import precision
from harness.case import Case
from harness.errors import KerasFailure

_NEUTRAL_INITIALIZERS = {"kernel_initializer": "zeros", "recurrent_initializer": "zeros", "bias_initializer": "zeros"}


def keras_flavor() -> str:
    """"keras3" or "keras2", from the installed Keras distribution, without importing it."""
    try:
        major = int(metadata.version("keras").split(".")[0])
    except metadata.PackageNotFoundError:
        major = 2  # only tf.keras (Keras 2) is available
    return "keras3" if major >= 3 else "keras2"


def _keras():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras  # noqa: PLC0415 - TensorFlow's import costs seconds; only pay it when running Keras

    return keras


@dataclass
class KerasRun:
    """What Keras returned: per call, output name -> float64 values (exact for every float dtype), and
    the dtype Keras returned each output in."""

    outputs: list[dict[str, np.ndarray]]
    dtypes: list[dict[str, str]]


def _outputs(case: Case, raw) -> dict[str, np.ndarray]:
    """Output name -> the array as Keras returned it (its own dtype)."""
    parts = [np.asarray(p) for p in (raw if isinstance(raw, (list, tuple)) else [raw])]
    first = parts[0]
    outputs = {}
    if case.return_sequences:
        outputs["sequences"] = first
    if case.return_state:
        if not case.return_sequences:
            outputs["output"] = first
        outputs["h"], outputs["c"] = parts[1], parts[2]
    else:
        outputs["h"] = first[:, -1, :] if case.return_sequences else first
    return outputs


def _call_arguments(case: Case, compute: str) -> list[tuple[bool, object, dict]]:
    """Per call: (reset states first?, input, keyword arguments) as TensorFlow tensors in the compute dtype,
    which Keras 2 and Keras 3 (TensorFlow backend) both accept. Prepared before Keras runs, so that a
    harness bug is not mistaken for a Keras error."""
    import tensorflow as tf  # noqa: PLC0415 - already imported by Keras

    prepared = []
    for call in case.calls:
        x = tf.convert_to_tensor(precision.round_to(call.input, compute))
        kwargs = {"training": False}
        if call.mask is not None:
            kwargs["mask"] = tf.convert_to_tensor(np.asarray(call.mask, dtype=bool))
        if call.initial_state is not None:
            kwargs["initial_state"] = [tf.convert_to_tensor(precision.round_to(s, compute)) for s in call.initial_state]
        prepared.append((call.reset_states, x, kwargs))
    return prepared


def _build(case: Case, keras):
    """A fresh layer built for the case's shapes, with neutral initializers (the weights come next)."""
    first = case.calls[0].input
    try:
        layer_cls = getattr(keras.layers, case.layer)
        layer = layer_cls(**{**_NEUTRAL_INITIALIZERS, **case.config, "dtype": case.dtype})
        layer.build((first.shape[0] if case.stateful else None, None, first.shape[2]))
    except Exception as exc:  # noqa: BLE001 - whatever Keras raises is reported, not crashed on
        raise KerasFailure("building the layer and setting the weights", exc) from exc
    return layer


def _set_weights(case: Case, layer) -> None:
    """The case's weights, rounded to the variable dtype, into the cell's variables."""
    variable = precision.variable_dtype(case.dtype)
    weights = {name: precision.round_to(values, variable) for name, values in case.weights.items()}
    try:
        cell = layer.cell
        cell.kernel.assign(weights["kernel"])
        cell.recurrent_kernel.assign(weights["recurrent_kernel"])
        if case.use_bias:
            cell.bias.assign(weights["bias"])
    except Exception as exc:  # noqa: BLE001
        raise KerasFailure("building the layer and setting the weights", exc) from exc


def _runner(layer, mode: str):
    """The layer's call as the mode runs it. A new tf.function per case and mode: a trace is never shared
    between cases, so nothing one case did (or a Keras patched in between) can leak into another."""
    if mode == "eager":
        return lambda x, kwargs: layer(x, **kwargs)
    import tensorflow as tf  # noqa: PLC0415 - already imported by Keras

    return tf.function(lambda x, kwargs: layer(x, **kwargs), jit_compile=mode == "xla", reduce_retracing=False)


def _run_mode(case: Case, layer, mode: str, arguments) -> KerasRun:
    """Every call of the case in one mode, from the case's weights and zero states: both are set again
    first, so nothing an earlier mode did to the layer (even a defect that writes a weight) carries over."""
    call_layer = _runner(layer, mode)
    _set_weights(case, layer)
    if case.stateful:
        try:
            layer.reset_states()  # the states another mode left behind; a fresh layer's are zeros too
        except Exception as exc:  # noqa: BLE001
            raise KerasFailure(f"resetting the states before {mode} mode", exc) from exc
    raw_outputs = []
    for number, (reset, x, kwargs) in enumerate(arguments, start=1):
        stage = "running the layer" if len(arguments) == 1 else f"running call {number}"
        try:
            if reset:
                layer.reset_states()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # e.g. "softmax over an axis of size 1": the case's choice
                raw_outputs.append(call_layer(x, kwargs))
        except Exception as exc:  # noqa: BLE001
            raise KerasFailure(f"{stage} ({mode} mode)", exc) from exc
    native = [_outputs(case, raw) for raw in raw_outputs]
    return KerasRun(outputs=[{k: v.astype(np.float64) for k, v in call.items()} for call in native],
                    dtypes=[{k: str(v.dtype) for k, v in call.items()} for call in native])


def run_keras_modes(case: Case, modes: tuple[str, ...]) -> dict[str, KerasRun | KerasFailure]:
    """Build one layer and run every call of the case in each mode. A failure to build or to set the weights
    raises KerasFailure; a mode that fails is reported as that mode's KerasFailure and the other modes still run.
    One layer serves every mode, its weights set again and its states reset before each (tests/test_modes.py
    checks the results equal those of a fresh layer per mode, bit for bit)."""
    keras = _keras()
    arguments = _call_arguments(case, precision.compute_dtype(case.dtype))
    layer = _build(case, keras)
    _set_weights(case, layer)  # a weight Keras refuses fails the case as a whole, not mode by mode
    results: dict[str, KerasRun | KerasFailure] = {}
    for mode in modes:
        try:
            results[mode] = _run_mode(case, layer, mode, arguments)
        except KerasFailure as failure:
            results[mode] = failure
    return results


def run_keras(case: Case, mode: str = "eager") -> KerasRun:
    """One mode on a fresh layer; raises KerasFailure."""
    result = run_keras_modes(case, (mode,))[mode]
    if isinstance(result, KerasFailure):
        raise result
    return result
