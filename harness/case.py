"""The validated, in-memory form of a case: plain data, float64 arrays, nothing that needs Keras."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from harness import layers
from harness.layers.base import LayerSpec


@dataclass(frozen=True)
class Call:
    """One call of the layer: input (batch, timesteps, features) and what goes with it."""

    input: np.ndarray
    mask: np.ndarray | None = None  # (batch, timesteps) bool
    initial_state: dict[str, np.ndarray] | None = None  # state name -> (batch, units), every state of the layer
    reset_states: bool = False
    expected: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class Case:
    """A loaded case. `calls` has one entry unless the case file used `calls:` (stateful layers)."""

    name: str
    path: Path
    config: dict  # keyword arguments of the Keras layer, as written in the file
    dtype: str
    weights: dict[str, np.ndarray]  # by the layer spec's weight names, e.g. kernel, recurrent_kernel, bias
    calls: list[Call]
    layer: str = layers.DEFAULT_LAYER
    description: str = ""
    tags: tuple[str, ...] = ()
    tolerance: dict = field(default_factory=dict)  # as written: {rtol, atol, <output>: {rtol, atol}}
    expected_tolerance: dict = field(default_factory=dict)  # {rtol?, atol?}: the hand values' bound only
    known_failure: dict | None = None  # {reason, upstream?, when?}: a known defect of what is under test
    requires: dict = field(default_factory=dict)  # {keras|tensorflow|numpy: specifier}: where the case applies
    execution: tuple[str, ...] | None = None  # the case's own execution modes; None: the run's default
    targets: tuple[str, ...] | None = None  # the systems under test the case runs on; None: any
    gradients: object | None = None  # a gradients.GradientRequest: the case also checks gradients

    @property
    def spec(self) -> LayerSpec:
        return layers.get(self.layer)

    @property
    def units(self) -> int:
        return self.config["units"]

    @property
    def use_bias(self) -> bool:
        return self.config.get("use_bias", True)

    @property
    def return_sequences(self) -> bool:
        return self.config.get("return_sequences", False)

    @property
    def return_state(self) -> bool:
        return self.config.get("return_state", False)

    @property
    def stateful(self) -> bool:
        return self.spec.stateful(self.config)

    def compared_outputs(self) -> tuple[str, ...]:
        """Which outputs the layer returns for this config, hence which are compared."""
        return self.spec.outputs(self.config)
