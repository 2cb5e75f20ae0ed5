"""Keras 3 on a backend other than TensorFlow, in this process: build the layer from its spec, set the
case's weights, call it in each of the backend's modes, return NumPy arrays. Keras reads KERAS_BACKEND
once, at import: this runs in a worker process started for the backend (worker.py), never beside the
TensorFlow target. Backend specifics (modes, dtypes) live in jax.py and torch.py."""

from __future__ import annotations

import importlib
import os
import warnings
from dataclasses import dataclass, field

import numpy as np

from harness import precision, versions
from harness.case import Case
from harness.errors import SystemFailure
from harness.targets import build_cache
from harness.targets.base import SystemRun

BUILD_STAGE = "building the layer and setting the weights"


def import_keras(backend: str):
    """`keras` on `backend`; refuses a Keras already imported on another backend (one backend a process)."""
    os.environ["KERAS_BACKEND"] = backend
    keras = importlib.import_module("keras")
    if keras.backend.backend() != backend:
        raise RuntimeError(f"Keras was imported with the {keras.backend.backend()} backend before the {backend} "
                           "target ran: one backend per process")
    return keras


@dataclass
class Prepared:
    case: Case
    layer: object
    state: dict = field(default_factory=dict)  # what a mode keeps between the calls of one run (variables' values)
    entry: build_cache.Entry | None = None  # the layer's compiled functions, shared with cases of the same structure
    key: tuple = ()  # the structure's key in build_cache

    @property
    def compiled(self) -> dict:
        """Where a mode keeps its compiled function (jax.jit, torch.compile) for the next case of the structure."""
        return self.entry.runners


class KerasBackend:
    """The generic part of a Keras 3 backend target; subclasses set name, label, backend and modes and
    may override supports() and call()."""

    name = ""
    label = ""
    backend = ""
    modes: tuple[str, ...] = ("eager",)
    default_modes: tuple[str, ...] = ("eager",)
    packages: tuple[str, ...] = ()

    def environment(self) -> dict:
        installed = versions.installed_versions()
        return {"keras": installed.get("keras"), "backend": self.backend, "keras_flavor": self.semantics(),
                **{package: _version(package) for package in self.packages}}

    def semantics(self) -> str:
        return "keras3"

    def supports(self, case: Case) -> str | None:
        return None

    def keras(self):
        return import_keras(self.backend)

    def prepare(self, case: Case) -> Prepared:
        """The built layer: a kept one for a case of a structure seen before (build_cache), else a new one."""
        try:
            keras = self.keras()
        except Exception as exc:  # noqa: BLE001
            raise SystemFailure("importing Keras", exc, self.label) from exc
        key = build_cache.structure_key(case, self.name)
        entry = build_cache.kept(key, keras, lambda: self._build(keras, case))
        with build_cache.dropped_on_failure(key):
            self.set_weights(case, entry.layer)
        return Prepared(case, entry.layer, entry=entry, key=key)

    def _build(self, keras, case: Case):
        try:
            first = case.calls[0].input
            return case.spec.build_keras(keras, case.config, case.dtype,
                                         first.shape[0] if case.stateful else None, first.shape[2])
        except Exception as exc:  # noqa: BLE001 - whatever Keras raises is reported, not crashed on
            raise SystemFailure(BUILD_STAGE, exc, self.label) from exc

    def set_weights(self, case: Case, layer) -> None:
        variable = precision.variable_dtype(case.dtype)
        try:
            targets = case.spec.keras_variables(layer)
            for name, values in case.weights.items():
                targets[name].assign(self.tensor(precision.round_to(values, variable), variable))
        except Exception as exc:  # noqa: BLE001
            raise SystemFailure(BUILD_STAGE, exc, self.label) from exc

    def tensor(self, values: np.ndarray, dtype: str):
        """A backend tensor holding exactly `values` (already rounded to `dtype`), in `dtype`."""
        keras = self.keras()
        exact = np.asarray(values).astype(np.float64 if dtype == "float64" else np.float32)
        return keras.ops.convert_to_tensor(exact, dtype=dtype)

    def arguments(self, case: Case) -> list[tuple[bool, object, dict]]:
        keras = self.keras()
        compute = precision.compute_dtype(case.dtype)
        prepared = []
        for call in case.calls:
            kwargs = {"training": False}
            if call.mask is not None:
                kwargs["mask"] = keras.ops.convert_to_tensor(np.asarray(call.mask, dtype=bool))
            if call.initial_state is not None:
                kwargs["initial_state"] = case.spec.keras_initial_state(
                    {name: self.tensor(precision.round_to(s, compute), compute) for name, s in call.initial_state.items()})
            prepared.append((call.reset_states, self.tensor(precision.round_to(call.input, compute), compute), kwargs))
        return prepared

    def gradients(self, case: Case, mode: str) -> list[dict[str, np.ndarray]]:
        """Per call: gradient name -> float64 values, each call differentiated on its own (a stateful layer's
        carried state a constant of the call, as the `tensorflow` target does); raises SystemFailure. The
        backend's own differentiation is `vjp`."""
        prepared = self.prepare(case)
        with build_cache.dropped_on_failure(prepared.key):  # a layer a failure left half-way is never reused
            return self._gradients(case, prepared, mode)

    def _gradients(self, case: Case, prepared: Prepared, mode: str) -> list[dict[str, np.ndarray]]:
        from harness.targets import differentiate  # noqa: PLC0415

        variables = case.spec.keras_variables(prepared.layer)
        wanted = [variables[name] for name in differentiate.wanted_weights(case, variables)]
        shapes = {name: tuple(variable.shape) for name, variable in variables.items()}
        arguments = self._fresh_arguments(case, prepared, mode)
        results = []
        for number, (reset, x, kwargs) in enumerate(arguments):
            try:
                if reset:
                    self.reset(prepared, mode)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)
                    grads = self.vjp(prepared, mode, wanted, x, kwargs, case.gradients.cotangents[number])
            except Exception as exc:  # noqa: BLE001
                raise SystemFailure(f"differentiating call {number + 1} ({mode} mode)", exc, self.label) from exc
            results.append(differentiate.collect(case, number, differentiate.sources(case, number, variables),
                                                 grads, shapes))
        return results

    def _fresh_arguments(self, case: Case, prepared: Prepared, mode: str) -> list:
        """The calls' arguments, the states reset first for a stateful case (what run and gradients start from)."""
        try:
            arguments = self.arguments(case)
            if case.stateful:
                self.reset(prepared, mode)
        except Exception as exc:  # noqa: BLE001
            raise SystemFailure(f"preparing the inputs ({mode} mode)", exc, self.label) from exc
        return arguments

    def vjp(self, prepared: Prepared, mode: str, wanted: list, x, kwargs, cotangents: dict) -> list:
        """One call's gradients of sum over `cotangents` of sum(cotangent * output), with respect to the
        variables `wanted`, the input `x` and the initial states in kwargs, in that order, as arrays NumPy
        reads (None where the loss does not reach); a stateful layer's states advance as the forward call's do."""
        raise NotImplementedError

    def call(self, prepared: Prepared, mode: str, x, kwargs):
        """One call of the layer in `mode` (eager here; subclasses add their compiled modes)."""
        return prepared.layer(x, **kwargs)

    def reset(self, prepared: Prepared, mode: str) -> None:
        prepared.layer.reset_states()

    def run(self, prepared: Prepared, mode: str) -> SystemRun:
        with build_cache.dropped_on_failure(prepared.key):  # a layer a failure left half-way is never reused
            return self._run(prepared, mode)

    def _run(self, prepared: Prepared, mode: str) -> SystemRun:
        case, layer = prepared.case, prepared.layer
        keras = self.keras()
        self.set_weights(case, layer)
        prepared.state = {}
        arguments = self._fresh_arguments(case, prepared, mode)
        raw_outputs = []
        for number, (reset, x, kwargs) in enumerate(arguments, start=1):
            stage = "running the layer" if len(arguments) == 1 else f"running call {number}"
            try:
                if reset:
                    self.reset(prepared, mode)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)
                    raw = self.call(prepared, mode, x, kwargs)
                parts = raw if isinstance(raw, (list, tuple)) else [raw]
                raw_outputs.append([keras.ops.convert_to_numpy(p) for p in parts])
            except Exception as exc:  # noqa: BLE001
                raise SystemFailure(f"{stage} ({mode} mode)", exc, self.label) from exc
        return SystemRun.from_native([case.spec.keras_outputs(raw, case.config) for raw in raw_outputs])


def _version(package: str) -> str | None:
    from importlib import metadata  # noqa: PLC0415

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None
