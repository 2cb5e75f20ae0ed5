"""What a layer spec is: everything the harness knows about one Keras layer, in one place.

A spec owns the config keys it models (and those with no forward effect), its defaults, the shapes of
its weights and states with the reason for each shape (for error messages), the outputs it returns and
their axes, its float64 reference, what `harness explain` prints, and how its Keras object is built and
given the case's weights. Nothing here imports Keras: the Keras-facing methods receive the `keras`
module from the system under test, so one spec serves every backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

Rounding = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class ArraySpec:
    """The shape a weight, state or output must have, and why (shown when a file gets it wrong)."""

    shape: tuple[int, ...]
    why: str = ""


@dataclass(frozen=True)
class StepTrace:
    """Every intermediate of one processed step, for `harness explain`: name -> (batch, ...) values."""

    step: int  # processing index (0 = first step processed)
    time: int  # index into the input's time axis
    mask: np.ndarray | None  # (batch,) booleans, None when unmasked
    values: dict[str, np.ndarray]


@dataclass
class ReferenceResult:
    """One call of the reference: every output the layer can return (name -> float64 array), the
    states a stateful layer carries into its next call, and the step trace when asked for."""

    outputs: dict[str, np.ndarray]
    states: dict[str, np.ndarray]
    trace: list[StepTrace] = field(default_factory=list)
    # sub-results of wrapped layers (Bidirectional: "forward", "backward"), for explain
    parts: dict[str, "ReferenceResult"] = field(default_factory=dict)


@dataclass
class Gradients:
    """The reference's backprop through time for one call, float64: the gradients of
    L = sum over the given outputs of sum(cotangent * output)."""

    weights: dict[str, np.ndarray]  # dL/d each weight, by the forward's weight names and shapes
    input: np.ndarray  # dL/dx, x's shape
    initial_state: dict[str, np.ndarray]  # dL/d each initial state, by state name
    # per processed step (processing order): the cotangents arriving at that step ("dh", "dc", "doutput", ...)
    trace: list[dict[str, np.ndarray]] = field(default_factory=list)


@dataclass(frozen=True)
class Problem:
    """A config-dependent reason why an output or weight cannot be given (the loader adds the field)."""

    message: str
    hint: str | None = None
    expected: str | None = None


class LayerSpec:
    """Base of every layer spec. Subclasses fill in the class attributes and the methods below."""

    name: str = ""
    description: str = ""  # one line for the schema and the README
    # Config keys whose meaning the reference implements, and those with no effect on an inference-mode
    # forward pass once the weights are set from the case (they change Keras's code path, never the math).
    modelled: frozenset[str] = frozenset()
    no_forward_effect: frozenset[str] = frozenset()
    defaults: dict = {}

    # ---- the case format
    def stateful(self, config: dict) -> bool:
        """Whether the layer keeps its states between calls."""
        return config.get("stateful", False)

    def extra_definitions(self) -> dict:
        """Schema definitions of the layer's own, beyond config, weights, states, expected and tolerance."""
        return {}

    def config_schema(self) -> dict:
        """The JSON Schema of `config:` for this layer."""
        raise NotImplementedError

    def weights(self, config: dict, features: int) -> dict[str, ArraySpec]:
        """The weights this config has, by name ("kernel", or "forward.kernel" for wrapped layers)."""
        raise NotImplementedError

    def weights_schema(self) -> dict:
        raise NotImplementedError

    def missing_weight(self, name: str, config: dict, spec: ArraySpec) -> Problem:
        """Why a weight this config needs must be given."""
        return Problem("missing required weight", expected=f"shape {spec.shape} {spec.why}")

    def absent_weight(self, name: str, config: dict) -> Problem | None:
        """Why a weight this layer can have is not part of this config (e.g. bias without use_bias)."""
        return None

    def states(self, config: dict, batch: int) -> dict[str, ArraySpec]:
        """The initial_state entries, by name, in the order Keras takes them."""
        raise NotImplementedError

    def states_schema(self) -> dict:
        raise NotImplementedError

    def expected_schema(self) -> dict:
        raise NotImplementedError

    def outputs(self, config: dict) -> tuple[str, ...]:
        """The outputs Keras returns for this config, hence those compared, in report order."""
        raise NotImplementedError

    def output_spec(self, name: str, config: dict, batch: int, steps: int) -> ArraySpec:
        raise NotImplementedError

    def not_returned(self, name: str, config: dict) -> Problem:
        """Why this config does not return output `name` (for `expected:` and `tolerance:` entries)."""
        return Problem(f"this config does not return `{name}`",
                       expected=f"outputs of this config: {', '.join(self.outputs(config))}")

    def output_names(self) -> tuple[str, ...]:
        """Every output name this layer can return under some config (schema keys)."""
        raise NotImplementedError

    def axes(self, output: str) -> str:
        """The axes of an output, for report tables: "batch, step, unit" or "batch, unit"."""
        if output.startswith("grad."):  # a gradient has its variable's axes
            name = output.removeprefix("grad.")
            if name == "input":
                return "batch, step, feature"
            return "batch, unit" if name.startswith("initial_state") else "row, column" if "kernel" in name else "index"
        return "batch, step, unit" if output.endswith("sequences") else "batch, unit"

    def expected_fallback(self, name: str, expected: dict, config: dict) -> np.ndarray | None:
        """A hand value for output `name` implied by another one (LSTM: `output` is `h` unless masked
        steps output zeros); None when there is none."""
        return None

    def describe(self, config: dict) -> tuple[list[str], list[str]]:
        """The config in a report's first line: ["key=value", ...] and the flags that are set."""
        raise NotImplementedError

    def coverage_dimensions(self, activations: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
        """The layer's own coverage dimensions (its config) and the values its cases should cover;
        `activations` is every activation the reference implements."""
        raise NotImplementedError

    def coverage_values(self, config: dict, canonical) -> dict[str, set[str]]:
        """The values of those dimensions one config covers; `canonical(name)` resolves an activation."""
        raise NotImplementedError

    def activations(self, config: dict) -> dict[str, str | None]:
        """Role -> activation name as configured (defaults applied): what the reference must implement."""
        return {}

    # ---- the reference
    def check_supported(self, config: dict, flavor: str) -> None:
        """Raise Unsupported (or NotApplicable) when the reference cannot model this config."""
        raise NotImplementedError

    def forward(self, weights: dict[str, np.ndarray], config: dict, flavor: str, x: np.ndarray,
                states: dict[str, np.ndarray], mask: np.ndarray | None, *, trace: bool = False,
                rounding: Rounding | None = None) -> ReferenceResult:
        """One layer call in float64. `states` always holds every state (zeros when none was given)."""
        raise NotImplementedError

    def backward(self, weights: dict[str, np.ndarray], config: dict, flavor: str, x: np.ndarray,
                 states: dict[str, np.ndarray], mask: np.ndarray | None,
                 cotangents: dict[str, np.ndarray]) -> Gradients:
        """Backprop through time in float64, by hand (no autodiff library), for forward()'s arguments.
        `cotangents`: output name -> dL/d that output (its shape); a missing output has zero cotangent."""
        raise NotImplementedError(f"{self.name}: no backward reference")

    def explain(self, config: dict, flavor: str) -> list[str]:
        """The equations and definitions, as `harness explain` prints them above the trace."""
        raise NotImplementedError

    def explain_result(self, result: ReferenceResult, batch: int, config: dict) -> list[str]:
        """The trace of one call, per batch row."""
        lines = []
        for row in range(batch):
            lines.append(f"batch row {row}:")
            for step in result.trace:
                lines.extend(self.explain_step(step, row, config))
        return lines

    def explain_step(self, step: StepTrace, row: int, config: dict) -> list[str]:
        raise NotImplementedError

    def explain_backward(self, grads: Gradients, batch: int, config: dict, mask: np.ndarray | None) -> list[str]:
        """The backward trace of one call (backward()'s result), per batch row, steps in processing order."""
        raise NotImplementedError(f"{self.name}: no backward trace")

    # ---- the Keras object (any Keras: 3 on any backend, or 2)
    def build_keras(self, keras, config: dict, dtype: str, batch: int | None, features: int):
        """A built Keras layer with neutral initializers (the case's weights are assigned next)."""
        raise NotImplementedError

    def keras_variables(self, layer) -> dict[str, object]:
        """Weight name -> the Keras variable that holds it."""
        raise NotImplementedError

    def keras_outputs(self, raw, config: dict, convert=np.asarray) -> dict[str, np.ndarray]:
        """What the Keras call returned -> output name -> array (in Keras's dtype)."""
        raise NotImplementedError

    def keras_initial_state(self, states: dict[str, object]) -> list:
        """initial_state entries (name -> tensor) as the list Keras's call takes."""
        return list(states.values())
