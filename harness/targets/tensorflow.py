"""Keras on TensorFlow (the `tensorflow` target): Keras 3's TensorFlow backend, or Keras 2 where the
installed TensorFlow ships it; modes eager, graph (`tf.function`) and xla (`jit_compile=True`).

Weights are set from the case file, never from initializers (with the default orthogonal initializer
`LSTM(dtype="bfloat16")` cannot even be built on the TF CPU backend). Anything Keras raises becomes a
SystemFailure carrying Keras's message. TensorFlow is imported on first use only.
"""

from __future__ import annotations

import os
import sys
import warnings
from dataclasses import dataclass

import numpy as np

from harness import precision, versions
from harness.case import Case
from harness.errors import SystemFailure
from harness.modes import DEFAULT_MODES, MODES
from harness.targets import build_cache
from harness.targets.base import SystemRun

LABEL = "Keras"
BUILD_STAGE = "building the layer and setting the weights"


def import_keras():
    """The `keras` module on its TensorFlow backend, imported on first use (seconds: only paid when running).
    A KERAS_BACKEND in the user's shell does not apply to this target (the other backends are targets of
    their own); a Keras already imported on another backend in this process is refused, clearly."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "keras" not in sys.modules:
        os.environ["KERAS_BACKEND"] = "tensorflow"
    import keras  # noqa: PLC0415

    backend = keras.backend.backend() if hasattr(keras, "backend") and hasattr(keras.backend, "backend") else "tensorflow"
    if backend != "tensorflow":
        raise RuntimeError(f"Keras was imported on the {backend} backend before the tensorflow target ran: use "
                           f"--target {backend} for that backend")
    return keras


@dataclass
class Prepared:
    case: Case
    layer: object
    arguments: list  # per call: (reset states first?, input tensor, keyword arguments)
    entry: build_cache.Entry | None = None  # the layer's traces, shared with cases of the same structure
    key: tuple = ()  # the structure's key in build_cache


def _call_arguments(case: Case) -> list[tuple[bool, object, dict]]:
    """Per call: (reset states first?, input, keyword arguments) as TensorFlow tensors in the compute dtype,
    which Keras 2 and Keras 3 (TensorFlow backend) both accept. Prepared before Keras runs, so that a
    harness bug is not mistaken for a Keras error."""
    import tensorflow as tf  # noqa: PLC0415 - already imported by Keras

    compute = precision.compute_dtype(case.dtype)
    prepared = []
    for call in case.calls:
        x = tf.convert_to_tensor(precision.round_to(call.input, compute))
        kwargs = {"training": False}
        if call.mask is not None:
            kwargs["mask"] = tf.convert_to_tensor(np.asarray(call.mask, dtype=bool))
        if call.initial_state is not None:
            kwargs["initial_state"] = case.spec.keras_initial_state(
                {name: tf.convert_to_tensor(precision.round_to(s, compute)) for name, s in call.initial_state.items()})
        prepared.append((call.reset_states, x, kwargs))
    return prepared


def set_weights(case: Case, layer, label: str = LABEL) -> None:
    """The case's weights, rounded to the variable dtype, into the layer's variables."""
    variable = precision.variable_dtype(case.dtype)
    try:
        targets = case.spec.keras_variables(layer)
        for name, values in case.weights.items():
            targets[name].assign(precision.round_to(values, variable))
    except Exception as exc:  # noqa: BLE001 - whatever Keras raises is reported, not crashed on
        raise SystemFailure(BUILD_STAGE, exc, label) from exc


def _runner(layer, mode: str):
    """The layer's call as the mode runs it: one tf.function per built layer and mode, shared by the cases
    of one structure through build_cache (which rebuilds it when the code under test changed)."""
    if mode == "eager":
        return lambda x, kwargs: layer(x, **kwargs)
    import tensorflow as tf  # noqa: PLC0415 - already imported by Keras

    return tf.function(lambda x, kwargs: layer(x, **kwargs), jit_compile=mode == "xla", reduce_retracing=False)


class KerasOnTensorFlow:
    """The installed Keras on its TensorFlow backend: the harness's default system under test."""

    name = "tensorflow"
    label = LABEL
    backend = "tensorflow"  # a worker hosting it (targets.recycled) sets KERAS_BACKEND to this
    modes = MODES
    default_modes = DEFAULT_MODES  # a case's `execution:` or the run's --mode choose among these

    def environment(self) -> dict:
        installed = versions.installed_versions()
        return {"tensorflow": installed.get("tensorflow"), "keras": installed.get("keras"), "backend": "tensorflow",
                "keras_flavor": self.semantics()}

    def semantics(self) -> str:
        return versions.keras_flavor()

    def supports(self, case: Case) -> str | None:
        return None

    def gradients(self, case: Case, mode: str) -> list[dict[str, np.ndarray]]:
        """Per call: gradient name -> values (see `gradients` below)."""
        return gradients(self, case, mode)

    def keras_module(self):
        return import_keras()

    def prepare(self, case: Case) -> Prepared:
        try:
            keras = self.keras_module()
        except Exception as exc:  # noqa: BLE001
            raise SystemFailure("importing Keras", exc, self.label) from exc
        arguments = _call_arguments(case)
        key = build_cache.structure_key(case, self.name)
        entry = build_cache.kept(key, keras, lambda: self._build(keras, case))
        with build_cache.dropped_on_failure(key):
            set_weights(case, entry.layer, self.label)  # a weight Keras refuses fails the case as a whole
        return Prepared(case, entry.layer, arguments, entry, key)

    def _build(self, keras, case: Case):
        first = case.calls[0].input
        try:
            return case.spec.build_keras(keras, case.config, case.dtype,
                                         first.shape[0] if case.stateful else None, first.shape[2])
        except Exception as exc:  # noqa: BLE001
            raise SystemFailure(BUILD_STAGE, exc, self.label) from exc

    def run(self, prepared: Prepared, mode: str) -> SystemRun:
        """Every call of the case in one mode, from the case's weights and zero states: both are set again
        first, so nothing an earlier mode did to the layer (even a defect that writes a weight) carries over.
        One layer serves every mode (tests/test_modes.py checks the results equal those of a fresh layer
        per mode, bit for bit)."""
        with build_cache.dropped_on_failure(prepared.key):  # a layer a failure left half-way is never reused
            return self._run(prepared, mode)

    def _run(self, prepared: Prepared, mode: str) -> SystemRun:
        case, layer, arguments = prepared.case, prepared.layer, prepared.arguments
        if mode not in prepared.entry.runners:
            prepared.entry.runners[mode] = _runner(layer, mode)
        call_layer = prepared.entry.runners[mode]
        set_weights(case, layer, self.label)
        if case.stateful:
            try:
                layer.reset_states()  # the states another mode left behind; a fresh layer's are zeros too
            except Exception as exc:  # noqa: BLE001
                raise SystemFailure(f"resetting the states before {mode} mode", exc, self.label) from exc
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
                raise SystemFailure(f"{stage} ({mode} mode)", exc, self.label) from exc
        return SystemRun.from_native([case.spec.keras_outputs(raw, case.config) for raw in raw_outputs])


def gradients(system: KerasOnTensorFlow, case: Case, mode: str) -> list[dict[str, np.ndarray]]:
    """Per call: gradient name -> float64 values, from tf.GradientTape (eager) or the same tape inside a
    tf.function (graph, xla). The weights are the layer's variables; the input and initial states are
    watched tensors. Raises SystemFailure."""
    prepared = system.prepare(case)
    layer = prepared.layer
    with build_cache.dropped_on_failure(prepared.key):
        return tape_gradients(case, case.spec.keras_variables(layer), lambda x, kwargs: layer(x, **kwargs),
                              layer.reset_states, prepared.arguments, mode, system.label,
                              traced=prepared.entry.gradient_runners)


def tape_gradients(case: Case, variables: dict, call, reset, arguments: list, mode: str, label: str,
                   run_as: str | None = None, traced: dict | None = None) -> list[dict[str, np.ndarray]]:
    """The calls `arguments` (per call: reset first?, input, keyword arguments) of `call(x, kwargs)` (the
    layer's raw outputs) differentiated one by one with a GradientTape, run as `run_as` (default: `mode`;
    eager, graph or xla); `variables` are the spec's name -> tf.Variable, `reset` resets a stateful layer's
    states. `traced`: where the traced tape is kept for the next case of the same structure (build_cache).
    What the `tensorflow`, `tf-keras` and `saved-model` targets share."""
    import tensorflow as tf  # noqa: PLC0415

    from harness.targets import differentiate  # noqa: PLC0415

    wanted = differentiate.wanted_weights(case, variables)
    spec, config = case.spec, case.config  # the structure only: a kept trace must not hold this case's values

    def one_call(x, kwargs, cotangents):
        states = kwargs.get("initial_state") or []
        with tf.GradientTape() as tape:
            tape.watch(x)
            for state in states:
                tape.watch(state)
            outputs = spec.keras_outputs(call(x, kwargs), config, convert=lambda p: p)
            loss = tf.add_n([tf.reduce_sum(tf.cast(outputs[name], tf.float64) * tf.cast(cotangent, tf.float64))
                             for name, cotangent in cotangents.items()])
        return tape.gradient(loss, [variables[name] for name in wanted] + [x] + list(states))

    run_as = run_as or mode
    traced = {} if traced is None else traced
    signature = (run_as, tuple(wanted))
    if signature not in traced:
        traced[signature] = one_call if run_as == "eager" else tf.function(one_call, jit_compile=run_as == "xla",
                                                                           reduce_retracing=False)
    run = traced[signature]
    if case.stateful:
        reset()
    shapes = {name: tuple(variable.shape) for name, variable in variables.items()}
    results = []
    for number, (first_reset, x, kwargs) in enumerate(arguments):
        try:
            if first_reset:
                reset()
            cotangents = {name: tf.convert_to_tensor(value) for name, value in case.gradients.cotangents[number].items()}
            grads = run(x, kwargs, cotangents)
        except Exception as exc:  # noqa: BLE001
            raise SystemFailure(f"differentiating call {number + 1} ({mode} mode)", exc, label) from exc
        results.append(differentiate.collect(case, number, differentiate.sources(case, number, variables),
                                             [None if g is None else g.numpy() for g in grads], shapes))
    return results
