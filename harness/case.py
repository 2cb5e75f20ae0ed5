"""The validated, in-memory form of a case: plain data, float64 arrays, nothing that needs Keras."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

OUTPUT_NAMES = ("sequences", "output", "h", "c")


def compared_outputs(config: dict) -> tuple[str, ...]:
    """Which outputs Keras returns for this layer config, hence which are compared."""
    return_sequences = config.get("return_sequences", False)
    return_state = config.get("return_state", False)
    names = ["sequences"] if return_sequences else []
    if return_state and not return_sequences:
        names.append("output")  # returned beside h; differs from h with zero_output_for_mask
    names.append("h")  # the returned state, or the last output when states are not returned
    if return_state:
        names.append("c")
    return tuple(names)


@dataclass(frozen=True)
class Call:
    """One call of the layer: input (batch, timesteps, features) and what goes with it."""

    input: np.ndarray
    mask: np.ndarray | None = None  # (batch, timesteps) bool
    initial_state: tuple[np.ndarray, np.ndarray] | None = None  # (h, c), each (batch, units)
    reset_states: bool = False
    expected: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class Case:
    """A loaded case. `calls` has one entry unless the case file used `calls:` (stateful layers)."""

    name: str
    path: Path
    config: dict  # keyword arguments of the Keras layer, as written in the file
    dtype: str
    weights: dict[str, np.ndarray]  # kernel, recurrent_kernel, and bias when use_bias
    calls: list[Call]
    layer: str = "LSTM"
    description: str = ""
    tags: tuple[str, ...] = ()
    tolerance: dict = field(default_factory=dict)  # as written: {rtol, atol, <output>: {rtol, atol}}
    known_failure: dict | None = None  # {reason, upstream?, when?}: a known defect of what is under test
    requires: dict = field(default_factory=dict)  # {keras|tensorflow|numpy: specifier}: where the case applies
    execution: tuple[str, ...] | None = None  # the case's own execution modes; None: the run's default

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
        return self.config.get("stateful", False)

    def compared_outputs(self) -> tuple[str, ...]:
        return compared_outputs(self.config)
