"""What LSTM, GRU and SimpleRNN share: a cell over the generic driver, the same options and outputs.

A subclass states its gate blocks, its states, its defaults and its `step`; everything else (config
schema, outputs, masks, go_backwards, stateful carry, the Keras object) is here once.
"""

from __future__ import annotations

import numpy as np

from harness import activations
from harness.errors import Unsupported
from harness.layers import driver
from harness.layers.base import ArraySpec, Gradients, LayerSpec, Problem, ReferenceResult, Rounding, StepTrace

_NAME_OR_NULL = {"type": ["string", "null"],
                 "description": "A Keras built-in name; no effect on the forward pass once weights are set."}
_INACTIVE = {"type": "number", "minimum": 0, "exclusiveMaximum": 1,
             "description": "Inactive: layers are called with training=False."}

# Options every recurrent layer models the same way.
_MODELLED = frozenset({"units", "activation", "use_bias", "return_sequences", "return_state", "go_backwards",
                       "stateful", "zero_output_for_mask"})
_NO_FORWARD_EFFECT = frozenset({"unroll", "dropout", "recurrent_dropout", "seed", "kernel_initializer",
                                "recurrent_initializer", "bias_initializer", "kernel_regularizer",
                                "recurrent_regularizer", "bias_regularizer", "activity_regularizer",
                                "kernel_constraint", "recurrent_constraint", "bias_constraint"})

NEUTRAL_INITIALIZERS = {"kernel_initializer": "zeros", "recurrent_initializer": "zeros", "bias_initializer": "zeros"}


def vec(values) -> str:
    return "[" + ", ".join(f"{v:.6g}" for v in np.asarray(values).tolist()) + "]"


class RecurrentSpec(LayerSpec):
    """A Keras recurrent layer: one cell run by the generic driver."""

    gates: tuple[str, ...] = ()  # column blocks of kernel and recurrent_kernel, in Keras's order
    state_names: tuple[str, ...] = ("h",)
    modelled = _MODELLED
    no_forward_effect = _NO_FORWARD_EFFECT
    extra_config: dict = {}  # config schema entries beyond the shared ones (after `unroll`)
    after_config: dict = {}  # ... and after `zero_output_for_mask`
    activation_roles: tuple[str, ...] = ("activation",)
    keras_only: dict[str, str] = {}  # config key -> the Keras version range it exists in

    # ---- the case format
    def config_schema(self) -> dict:
        properties = {
            "units": {"type": "integer", "minimum": 1},
            **{role: {"$ref": "#/definitions/activation"} for role in self.activation_roles},
            "use_bias": {"type": "boolean"},
            "return_sequences": {"type": "boolean"},
            "return_state": {"type": "boolean"},
            "go_backwards": {"type": "boolean"},
            "stateful": {"type": "boolean"},
            "unroll": {"type": "boolean"},
            **self.extra_config,
            "zero_output_for_mask": {"type": "boolean"},
            **self.after_config,
            "dropout": _INACTIVE,
            "recurrent_dropout": _INACTIVE,
            "seed": {"type": ["integer", "null"]},
            **{key: _NAME_OR_NULL for key in ("kernel_initializer", "recurrent_initializer", "bias_initializer",
                                              "kernel_regularizer", "recurrent_regularizer", "bias_regularizer",
                                              "activity_regularizer", "kernel_constraint", "recurrent_constraint",
                                              "bias_constraint")},
        }
        return {"type": "object", "additionalProperties": False, "required": ["units"],
                "description": f"Keyword arguments of keras.layers.{self.name}.", "properties": properties}

    @property
    def blocks(self) -> int:
        return len(self.gates)

    def _columns(self, units: int) -> str:
        return f"{self.blocks}*units={self.blocks * units}" if self.blocks > 1 else f"units={units}"

    def _gate_note(self) -> str:
        if self.blocks == 1:
            return ""
        return f"; column blocks are gates {', '.join(self.gates)}"

    def bias_shape(self, config: dict) -> tuple[tuple[int, ...], str]:
        units = config["units"]
        return (self.blocks * units,), f"({self._columns(units)})"

    def weights(self, config: dict, features: int) -> dict[str, ArraySpec]:
        units, columns = config["units"], self.blocks * config["units"]
        found = {
            "kernel": ArraySpec((features, columns),
                                f"(features={features} from input, {self._columns(units)}{self._gate_note()})"),
            "recurrent_kernel": ArraySpec((units, columns), f"(units={units}, {self._columns(units)})"),
        }
        if config.get("use_bias", True):
            found["bias"] = ArraySpec(*self.bias_shape(config))
        return found

    def weights_schema(self) -> dict:
        shapes = f"{self.blocks}*units" if self.blocks > 1 else "units"
        gates = f"; column blocks are gates {', '.join(self.gates)}" if self.blocks > 1 else ""
        return {"type": "object", "additionalProperties": False, "required": ["kernel", "recurrent_kernel"],
                "properties": {
                    "kernel": {"description": f"(features, {shapes}){gates}", "$ref": "#/definitions/array"},
                    "recurrent_kernel": {"description": f"(units, {shapes})", "$ref": "#/definitions/array"},
                    "bias": {"description": f"{self.bias_description()}; required when use_bias is true, refused "
                                            "when false", "$ref": "#/definitions/array"}}}

    def bias_description(self) -> str:
        return f"({self.blocks}*units,)" if self.blocks > 1 else "(units,)"

    def missing_weight(self, name: str, config: dict, spec: ArraySpec) -> Problem:
        return Problem("missing: use_bias is true (the Keras default)",
                       expected=f"shape {spec.shape} {spec.why}",
                       hint="add `bias:`, or set `use_bias: false` under `config`")

    def absent_weight(self, name: str, config: dict) -> Problem | None:
        if name == "bias" and not config.get("use_bias", True):
            return Problem("given, but use_bias is false: the layer has no bias",
                           hint="remove `bias:`, or set `use_bias: true`")
        return None

    def states(self, config: dict, batch: int) -> dict[str, ArraySpec]:
        units = config["units"]
        return {name: ArraySpec((batch, units), f"(batch={batch}, units={units})") for name in self.state_names}

    def states_schema(self) -> dict:
        return {"type": "object", "additionalProperties": False, "required": list(self.state_names),
                "properties": {name: {"description": "(batch, units)", "$ref": "#/definitions/array"}
                               for name in self.state_names}}

    def outputs(self, config: dict) -> tuple[str, ...]:
        return_sequences = config.get("return_sequences", False)
        return_state = config.get("return_state", False)
        names = ["sequences"] if return_sequences else []
        if return_state and not return_sequences:
            names.append("output")  # returned beside h; differs from h with zero_output_for_mask
        names.append("h")  # the returned state, or the last output when states are not returned
        if return_state:
            names.extend(self.state_names[1:])
        return tuple(names)

    def output_names(self) -> tuple[str, ...]:
        return ("sequences", "output", *self.state_names)

    def output_spec(self, name: str, config: dict, batch: int, steps: int) -> ArraySpec:
        units = config["units"]
        if name == "sequences":
            return ArraySpec((batch, steps, units), f"(batch={batch}, timesteps={steps}, units={units})")
        return ArraySpec((batch, units), f"(batch={batch}, units={units})")

    def expected_schema(self) -> dict:
        described = {
            "sequences": "(batch, timesteps, units), in the order Keras returns them",
            "h": "(batch, units): the final hidden state",
            **{name: f"(batch, units): the final {self.state_word(name)}; only with return_state" for name in self.state_names[1:]},
            "output": "(batch, units): the last output; only with return_state and not return_sequences "
                      "(differs from h with zero_output_for_mask)",
        }
        return {"type": "object", "additionalProperties": False, "minProperties": 1,
                "description": "Hand-computed values: a third oracle.",
                "properties": {name: {"description": text, "$ref": "#/definitions/numbers"}
                               for name, text in described.items()}}

    def not_returned(self, name: str, config: dict) -> Problem:
        if name == "sequences":
            return Problem("Keras returns no sequence with return_sequences: false",
                           hint="set `return_sequences: true`, or give the final state as `h`")
        if name == "output":
            return Problem("`output` is the last output returned beside the states; "
                           "it exists only with return_state: true and return_sequences: false",
                           hint="give the final hidden state as `h`")
        return Problem(f"Keras returns the {self.state_word(name)} only with return_state: true",
                       hint=f"set `return_state: true` under `config`, or remove `{name}`")

    def state_word(self, name: str) -> str:
        return {"c": "carry"}.get(name, f"state {name}")

    def expected_fallback(self, name: str, expected: dict, config: dict) -> np.ndarray | None:
        if name == "output" and "h" in expected and not config.get("zero_output_for_mask"):
            return expected["h"]  # the last output is the final h unless masked steps output zeros
        return None

    def describe(self, config: dict) -> tuple[list[str], list[str]]:
        shown = [f"{k}={config[k]}" for k in ("units", "activation", "recurrent_activation") if k in config]
        flags = [k for k in ("return_sequences", "return_state", "go_backwards", "stateful", "unroll") if config.get(k)]
        if not config.get("use_bias", True):
            flags.append("use_bias=False")
        if "reset_after" in config:
            shown.append(f"reset_after={config['reset_after']}")
        return shown, flags

    coverage_flags: tuple[str, ...] = ()  # boolean config keys with a coverage dimension of their own
    coverage_choices: dict[str, tuple[str, str]] = {}  # config key -> (its values, the default)

    def coverage_dimensions(self, activations):
        dims = {role: activations for role in self.activation_roles}
        if len(self.activation_roles) == 2:
            dims["gate activations"] = ("fused tanh/sigmoid", "other")
        bools = ("false", "true")
        dims.update({"go_backwards": bools, "return_sequences": bools, "return_state": bools, "units": ("1", "2+"),
                     "unroll": bools, "use_bias": bools})
        dims.update({key: bools for key in self.coverage_flags})
        dims.update({key: values for key, (values, _) in self.coverage_choices.items()})
        return dims

    def coverage_values(self, config, canonical):
        acts = {role: canonical(config.get(role, self.defaults[role])) for role in self.activation_roles}
        values = {role: {name} - {None} for role, name in acts.items()}
        if len(self.activation_roles) == 2:
            fused = (acts["activation"], acts["recurrent_activation"]) == ("tanh", "sigmoid")
            values["gate activations"] = {"fused tanh/sigmoid" if fused else "other"}
        flag = lambda key, default=False: {str(bool(config.get(key, default))).lower()}  # noqa: E731
        values.update({"go_backwards": flag("go_backwards"), "return_sequences": flag("return_sequences"),
                       "return_state": flag("return_state"),
                       "units": {"1" if config["units"] == 1 else "2+"},
                       "unroll": flag("unroll"), "use_bias": flag("use_bias", True)})
        values.update({key: flag(key, self.defaults.get(key, False)) for key in self.coverage_flags})
        values.update({key: {str(config.get(key, default))} for key, (_, default) in self.coverage_choices.items()})
        return values

    def fuzz_config(self, draw, st, activations, *, units: int, steps: int, stateful: bool) -> dict:
        """A random config (hypothesis `draw` and strategies `st`), shrinking toward the defaults. Each
        activation is drawn uniformly from the default first, every other one, then None (linear):
        `sampled_from` shrinks toward its first element, and a `one_of` of a default, the rest and None would
        draw the default and linear a third of the time each."""
        config = {"units": units}
        for role in self.activation_roles:
            default = self.defaults[role]
            config[role] = draw(st.sampled_from([default, *(a for a in activations if a != default), None]))
        config.update({"use_bias": draw(st.booleans()), "return_sequences": draw(st.booleans()),
                       "return_state": draw(st.booleans()), "go_backwards": draw(st.booleans()),
                       "stateful": stateful, "unroll": draw(st.booleans()) if steps <= 8 else False})
        for key in self.coverage_flags:
            config[key] = draw(st.booleans())
        for key, (values, _) in self.coverage_choices.items():
            config[key] = int(draw(st.sampled_from(values)))
        if draw(st.booleans()):
            config["zero_output_for_mask"] = draw(st.booleans())
        return config

    def activations(self, config: dict) -> dict[str, str | None]:
        return {role: config.get(role, self.defaults[role]) for role in self.activation_roles}

    # ---- the reference
    def check_supported(self, config: dict, flavor: str) -> None:
        unknown = sorted(set(config) - self.modelled - self.no_forward_effect)
        if unknown:
            raise Unsupported(f"config option(s) {', '.join(unknown)} are not modelled by the reference")
        for name in self.activations(config).values():
            activations.get_activation(name, flavor)

    def resolved_activations(self, config: dict, flavor: str) -> dict[str, activations.Activation]:
        return {role: activations.get_activation(name, flavor) for role, name in self.activations(config).items()}

    def step_function(self, weights: dict[str, np.ndarray], config: dict, flavor: str, q: Rounding):
        """The cell: step(x_projection_t, states) -> (output, new states, intermediates)."""
        raise NotImplementedError

    def forward(self, weights, config, flavor, x, states, mask, *, trace=False, rounding=None) -> ReferenceResult:
        x = np.asarray(x, dtype=np.float64)
        units = config["units"]
        q = rounding or (lambda a: a)
        step = self.step_function(weights, config, flavor, q)
        projected = driver.input_projection(x, weights["kernel"], q)
        sequences, last_output, final, steps = driver.scan(
            step, projected, {name: np.asarray(states[name], dtype=np.float64) for name in self.state_names}, units,
            mask=mask, go_backwards=config.get("go_backwards", False),
            zero_output_for_mask=config.get("zero_output_for_mask", False), trace=trace, x=x)
        outputs = {"sequences": sequences, "output": last_output,
                   "h": final["h"] if config.get("return_state", False) else last_output,
                   **{name: final[name] for name in self.state_names[1:]}}
        return ReferenceResult(outputs=outputs, states=final, trace=steps)

    def step_vjp_function(self, weights: dict[str, np.ndarray], config: dict, flavor: str):
        """The cell's vector-Jacobian product, by hand in float64 (driver.StepVJP):
        step_vjp(x_projection_t, previous states, d output, d new states)
            -> (d x_projection_t, d previous states, this step's gradients of the recurrent weights and bias,
                dL/d each new state through every path)."""
        raise NotImplementedError(f"{self.name}: no backward step")

    def backward(self, weights, config, flavor, x, states, mask, cotangents) -> Gradients:
        x = np.asarray(x, dtype=np.float64)
        weights = {name: np.asarray(w, dtype=np.float64) for name, w in weights.items()}
        units = config["units"]
        unknown = sorted(set(cotangents) - set(self.output_names()))
        if unknown:
            raise ValueError(f"{self.name} has no output(s) {', '.join(unknown)}")
        d = {name: np.asarray(value, dtype=np.float64) for name, value in cotangents.items()}
        # the outputs as forward() builds them: `output` is the last output; `h` is the final state with
        # return_state, else the last output; the other states are final states
        d_last = d.get("output")
        d_final = {name: d[name] for name in self.state_names[1:] if name in d}
        if "h" in d:
            if config.get("return_state", False):
                d_final["h"] = d["h"]
            else:
                d_last = d["h"] if d_last is None else d_last + d["h"]
        step = self.step_function(weights, config, flavor, lambda a: a)
        step_vjp = self.step_vjp_function(weights, config, flavor)
        projected = driver.input_projection(x, weights["kernel"])
        d_projected, d_initial, grads, trace = driver.scan_vjp(
            step, step_vjp, projected, {name: np.asarray(states[name], dtype=np.float64) for name in self.state_names},
            units, mask=mask, go_backwards=config.get("go_backwards", False),
            zero_output_for_mask=config.get("zero_output_for_mask", False), d_sequences=d.get("sequences"),
            d_last_output=d_last, d_final_states=d_final)
        batch, timesteps, features = x.shape
        flat = d_projected.reshape(batch * timesteps, -1)
        with np.errstate(all="ignore"):
            d_kernel = x.reshape(batch * timesteps, features).T @ flat
            d_x = (flat @ weights["kernel"].T).reshape(x.shape)
        d_weights = {"kernel": d_kernel}
        for name, w in weights.items():
            if name != "kernel":
                d_weights[name] = grads.get(name, np.zeros_like(w)).reshape(w.shape)
        return Gradients(weights=d_weights, input=d_x, initial_state=d_initial, trace=trace)

    def explain_step(self, step: StepTrace, row: int, config: dict) -> list[str]:
        masked = step.mask is not None and not step.mask[row]
        kept = ", ".join(self.state_names)
        lines = [f"  step {step.step} (input time {step.time}){f'  MASKED: {kept} kept' if masked else ''}",
                 f"    x  = {vec(step.values['x'][row])}"]
        return lines + self.explain_values(step.values, row, config["units"])

    def explain_values(self, values: dict, row: int, units: int) -> list[str]:
        raise NotImplementedError

    def explain_backward(self, grads: Gradients, batch: int, config: dict, mask: np.ndarray | None) -> list[str]:
        """Per row and step (processing order): dL/d each state the step produces, through every path, and what
        it is made of: `carried` back from the next step (at the last step: the returned final state's
        cotangent) plus, for h, the cotangent of the step's output, for the other states (c) what flows back
        through h. At a masked row the state is kept: dL/dstate is what is carried, passed on unchanged."""
        steps = len(grads.trace)
        go_backwards = config.get("go_backwards", False)
        dropped = config.get("zero_output_for_mask", False)
        lines = []
        for row in range(batch):
            lines.append(f"batch row {row}:")
            for index, entry in enumerate(grads.trace):
                t = steps - 1 - index if go_backwards else index
                masked = mask is not None and not mask[row, t]
                kept = (f"{', '.join(self.state_names)} kept, their cotangents" if len(self.state_names) > 1
                        else f"{self.state_names[0]} kept, its cotangent")
                lines.append(f"  step {index} (input time {t})"
                             + (f"  MASKED: {kept} passed to the previous step" if masked else ""))
                for k, name in enumerate(self.state_names):
                    total, carried = entry[f"d{name}_total"][row], entry[f"d{name}"][row]
                    if masked:
                        parts = f"carried {vec(carried)}"
                    elif k == 0:
                        parts = f"= carried {vec(carried)} + output {vec(entry['doutput'][row])}"
                    else:
                        parts = f"= carried {vec(carried)} + through {self.state_names[0]}"
                    lines.append(f"    dL/d{name} = {vec(total)}   {parts}")
                if masked:
                    fate = "dropped (zero_output_for_mask)" if dropped else "passed to the previous output"
                    lines.append(f"    output's cotangent {vec(entry['doutput'][row])}: {fate}")
            lines.append("  initial state: " + "   ".join(f"dL/d{name} = {vec(grads.initial_state[name][row])}"
                                                          for name in self.state_names))
        return lines

    # ---- the Keras object
    def build_keras(self, keras, config: dict, dtype: str, batch: int | None, features: int):
        layer = getattr(keras.layers, self.name)(**{**NEUTRAL_INITIALIZERS, **config, "dtype": dtype})
        layer.build((batch, None, features))
        return layer

    def keras_variables(self, layer) -> dict[str, object]:
        cell = layer.cell
        found = {"kernel": cell.kernel, "recurrent_kernel": cell.recurrent_kernel}
        if cell.use_bias:
            found["bias"] = cell.bias
        return found

    def keras_outputs(self, raw, config: dict, convert=np.asarray) -> dict[str, np.ndarray]:
        parts = [convert(p) for p in (raw if isinstance(raw, (list, tuple)) else [raw])]
        first = parts[0]
        return_sequences = config.get("return_sequences", False)
        outputs = {}
        if return_sequences:
            outputs["sequences"] = first
        if config.get("return_state", False):
            if not return_sequences:
                outputs["output"] = first
            outputs.update(zip(self.state_names, parts[1:]))
        else:
            outputs["h"] = first[:, -1, :] if return_sequences else first
        return outputs
