"""What the converted targets share (saved-model, tflite, onnx): the case's layer, built exactly as the
`tensorflow` target builds it (the same `keras` module, so a Keras fault injected into this process flows
into the converted model too), inside a functional model whose inputs are the input sequence, the mask
(bool) and the initial states, in that order; then each target converts the model and runs the result.

Every case of the corpus with several calls is a stateful one; a converted model has no way to reset
its states (or no states at all), so those cases are refused with the reason (`supports`), never dropped.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from harness import precision, versions
from harness.case import Case
from harness.errors import SystemFailure
from harness.targets.base import SystemRun
from harness.targets.tensorflow import BUILD_STAGE, import_keras, set_weights

INFERENCE_ONLY = "a converted model runs inference only"
MODEL_STAGE = "building the functional model (input, mask, initial states)"


@dataclass
class Prepared:
    case: Case
    model: object  # the functional keras.Model
    layer: object
    names: list[str]  # the model's input names, in order: x, mask?, s0, s1, ...
    feeds: list[list[np.ndarray]]  # per call: the input values, in the order of `names`
    state: dict = field(default_factory=dict)


class ConvertedTarget:
    """The generic part: subclasses set name, label, modes, packages, and write convert() and call()."""

    name = ""
    label = ""
    backend = "tensorflow"  # a worker hosting it (targets.recycled) sets KERAS_BACKEND to this
    modes: tuple[str, ...] = ()
    default_modes: tuple[str, ...] = ()
    packages: tuple[str, ...] = ()
    several_calls = "a stateful case of several calls needs reset_states between them, which the converted model lacks"

    def environment(self) -> dict:
        installed = versions.installed_versions()
        found = {"tensorflow": installed.get("tensorflow"), "keras": installed.get("keras"), "backend": "tensorflow",
                 "keras_flavor": self.semantics()}
        for package in self.packages:
            found[package] = _version(package)
        return found

    def semantics(self) -> str:
        return versions.keras_flavor()

    def supports(self, case: Case) -> str | None:
        if len(case.calls) > 1:
            return self.several_calls
        return None

    def prepare(self, case: Case) -> Prepared:
        keras = import_keras()
        compute = precision.compute_dtype(case.dtype)
        first = case.calls[0]
        batch, steps, features = first.input.shape
        try:
            layer = case.spec.build_keras(keras, case.config, case.dtype, batch if case.stateful else None, features)
        except Exception as exc:  # noqa: BLE001 - whatever Keras raises is reported, not crashed on
            raise SystemFailure(BUILD_STAGE, exc, self.label) from exc
        set_weights(case, layer)
        try:
            x = keras.Input((steps, features), batch_size=batch, dtype=compute, name="x")
            inputs, names, kwargs = [x], ["x"], {}
            if first.mask is not None:
                mask = keras.Input((steps,), batch_size=batch, dtype="bool", name="mask")
                inputs.append(mask)
                names.append("mask")
                kwargs["mask"] = mask
            if first.initial_state is not None:
                states = {}
                for number, (state, values) in enumerate(first.initial_state.items()):
                    states[state] = keras.Input(values.shape[1:], batch_size=batch, dtype=compute, name=f"s{number}")
                    names.append(f"s{number}")
                ordered = case.spec.keras_initial_state(states)
                inputs += ordered
                kwargs["initial_state"] = ordered
                names = names[:len(names) - len(ordered)] + [t.name for t in ordered]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                model = keras.Model(inputs, layer(x, **kwargs))
        except Exception as exc:  # noqa: BLE001
            raise SystemFailure(MODEL_STAGE, exc, self.label) from exc
        feeds = []
        for call in case.calls:
            feed = [_exact(call.input, compute)]
            if call.mask is not None:
                feed.append(np.asarray(call.mask, dtype=bool))
            if call.initial_state is not None:
                by_name = {state: _exact(values, compute) for state, values in call.initial_state.items()}
                feed += case.spec.keras_initial_state(by_name)
            feeds.append(feed)
        return Prepared(case, model, layer, names, feeds)

    def convert(self, prepared: Prepared, mode: str):
        """The converted model for `mode` (raises SystemFailure naming the stage)."""
        raise NotImplementedError

    def call(self, prepared: Prepared, converted, mode: str, feed: list[np.ndarray]) -> list:
        """One call of the converted model: the outputs in Keras's order."""
        raise NotImplementedError

    def run(self, prepared: Prepared, mode: str) -> SystemRun:
        case = prepared.case
        set_weights(case, prepared.layer)
        if case.stateful:
            prepared.layer.reset_states()
        converted = self.convert(prepared, mode)
        raw_outputs = []
        for number, feed in enumerate(prepared.feeds, start=1):
            stage = "running the converted model" if len(prepared.feeds) == 1 else f"running call {number}"
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)
                    raw = self.call(prepared, converted, mode, feed)
                raw_outputs.append([_numpy(part) for part in raw])
            except Exception as exc:  # noqa: BLE001
                raise SystemFailure(f"{stage} ({mode} mode)", exc, self.label) from exc
        return SystemRun.from_native([case.spec.keras_outputs(raw, case.config) for raw in raw_outputs])


def parts(raw) -> list:
    return list(raw) if isinstance(raw, (list, tuple)) else [raw]


def _exact(values: np.ndarray, dtype: str) -> np.ndarray:
    """The values rounded to `dtype`, as a NumPy array of it (bfloat16 through ml_dtypes)."""
    return precision.round_to(values, dtype)


def _numpy(value) -> np.ndarray:
    value = value.numpy() if hasattr(value, "numpy") else value
    return np.asarray(value)


def _version(package: str) -> str | None:
    from importlib import metadata  # noqa: PLC0415

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None
