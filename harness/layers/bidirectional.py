"""Bidirectional: keras.layers.Bidirectional around an LSTM, GRU or SimpleRNN, modelled on Keras's own rules
(keras/src/layers/rnn/bidirectional.py), not guessed:

    forward  = the wrapped layer as configured                (`config.layer`)
    backward = `config.backward_layer` if given, else a copy of the wrapped layer with go_backwards: true
    both layers: zero_output_for_mask is forced to return_sequences
    y, y_rev = forward(x), backward(x); with return_sequences y_rev is flipped back to input order, so that
        merged step t pairs forward step t with backward step t
    merge_mode: concat [y, y_rev] (forward first) | sum y + y_rev | mul y * y_rev | ave (y + y_rev) / 2 |
        null: both returned apart
    states: forward's (h[, c]) then backward's; initial_state is split half and half

Weights are `forward.*` and `backward.*` (each the wrapped layer's kernel, recurrent_kernel, bias); states
are `forward_h`, `forward_c`, `backward_h`, `backward_c` (c only for an LSTM).
"""

from __future__ import annotations

import numpy as np

from harness.errors import Unsupported
from harness.layers.base import ArraySpec, Gradients, LayerSpec, Problem, ReferenceResult
from harness.layers.recurrent import RecurrentSpec

MERGE_MODES = ("concat", "sum", "mul", "ave", None)
DIRECTIONS = ("forward", "backward")


class BidirectionalSpec(LayerSpec):
    name = "Bidirectional"
    description = ("keras.layers.Bidirectional around an LSTM, GRU or SimpleRNN: weights forward.* and "
                   "backward.*, states forward_h, forward_c, backward_h, backward_c")
    modelled = frozenset({"merge_mode", "layer", "backward_layer"})
    no_forward_effect = frozenset()

    def __init__(self, inner: dict[str, RecurrentSpec]):
        self.inner = inner  # type name -> spec of a layer Bidirectional can wrap

    # ---- the two directions
    def directions(self, config: dict) -> dict[str, tuple[RecurrentSpec, dict]]:
        """direction -> (the wrapped layer's spec, its Keras config), as Keras derives them."""
        forward = dict(config["layer"])
        forward_spec = self.inner[forward.pop("type")]
        if config.get("backward_layer") is not None:
            backward = dict(config["backward_layer"])
            backward_spec = self.inner[backward.pop("type")]
        else:
            backward_spec, backward = forward_spec, {**forward, "go_backwards": True}
        found = {}
        for direction, spec, inner in (("forward", forward_spec, forward), ("backward", backward_spec, backward)):
            inner = {**inner, "zero_output_for_mask": inner.get("return_sequences", False)}  # forced by Keras
            found[direction] = (spec, inner)
        return found

    def _wrapped(self, config: dict) -> dict:
        return config["layer"]

    def stateful(self, config: dict) -> bool:
        return self._wrapped(config).get("stateful", False)

    def extra_definitions(self) -> dict:
        return {"Bidirectional.wrapped": self.wrapped_schema()}

    @staticmethod
    def merge_mode(config: dict) -> str | None:
        return config.get("merge_mode", "concat")

    # ---- the case format
    def config_schema(self) -> dict:
        return {"type": "object", "additionalProperties": False, "required": ["layer"],
                "description": "Keyword arguments of keras.layers.Bidirectional; the wrapped layers as "
                               "{type, <keyword arguments of that layer>}.",
                "properties": {"merge_mode": {"enum": list(MERGE_MODES), "default": "concat"},
                               "layer": {"$ref": "#/definitions/Bidirectional.wrapped"},
                               "backward_layer": {"$ref": "#/definitions/Bidirectional.wrapped"}}}

    def wrapped_schema(self) -> dict:
        """A wrapped layer: `type` plus that layer's own config keys."""
        branches = []
        for name, spec in self.inner.items():
            own = spec.config_schema()
            branches.append({"if": {"properties": {"type": {"const": name}}},
                             "then": {**own, "properties": {"type": {"const": name}, **own["properties"]}}})
        return {"type": "object", "required": ["type", "units"],
                "description": "The wrapped layer: `type` (LSTM, GRU or SimpleRNN) and its keyword arguments.",
                "properties": {"type": {"enum": list(self.inner)}}, "allOf": branches}

    def weights(self, config: dict, features: int) -> dict[str, ArraySpec]:
        found = {}
        for direction, (spec, inner) in self.directions(config).items():
            for name, array in spec.weights(inner, features).items():
                found[f"{direction}.{name}"] = ArraySpec(array.shape, f"{array.why} of the {direction} {spec.name}")
        return found

    def weights_schema(self) -> dict:
        one = {"type": "object", "additionalProperties": False, "required": ["kernel", "recurrent_kernel"],
               "properties": {"kernel": {"description": "(features, blocks*units)", "$ref": "#/definitions/array"},
                              "recurrent_kernel": {"description": "(units, blocks*units)", "$ref": "#/definitions/array"},
                              "bias": {"description": "as the wrapped layer's bias; required when use_bias is true",
                                       "$ref": "#/definitions/array"}}}
        return {"type": "object", "additionalProperties": False, "required": list(DIRECTIONS),
                "properties": {direction: one for direction in DIRECTIONS}}

    def missing_weight(self, name: str, config: dict, spec: ArraySpec) -> Problem:
        direction, own = name.split(".", 1)
        inner_spec, inner = self.directions(config)[direction]
        found = inner_spec.missing_weight(own, inner, spec)
        return Problem(f"{found.message} for the {direction} layer", found.hint, found.expected)

    def absent_weight(self, name: str, config: dict) -> Problem | None:
        direction, own = name.split(".", 1) if "." in name else (name, "")
        if direction not in DIRECTIONS:
            return None
        inner_spec, inner = self.directions(config)[direction]
        found = inner_spec.absent_weight(own, inner)
        return Problem(f"{found.message} (the {direction} layer)", found.hint) if found else None

    def states(self, config: dict, batch: int) -> dict[str, ArraySpec]:
        return {f"{direction}_{name}": ArraySpec(array.shape, f"{array.why}, the {direction} {spec.name}")
                for direction, (spec, inner) in self.directions(config).items()
                for name, array in spec.states(inner, batch).items()}

    def states_schema(self) -> dict:
        names = [f"{d}_{s}" for d in DIRECTIONS for s in ("h", "c")]
        return {"type": "object", "additionalProperties": False,
                "description": "Every state of both directions: forward_h (and forward_c for an LSTM), then "
                               "backward_h (and backward_c)",
                "properties": {name: {"description": "(batch, units)", "$ref": "#/definitions/array"} for name in names}}

    def outputs(self, config: dict) -> tuple[str, ...]:
        wrapped = self._wrapped(config)
        kind = "sequences" if wrapped.get("return_sequences", False) else "output"
        names = [kind] if self.merge_mode(config) is not None else [f"{d}_{kind}" for d in DIRECTIONS]
        if wrapped.get("return_state", False):
            names += [f"{d}_{s}" for d, (spec, _) in self.directions(config).items() for s in spec.state_names]
        return tuple(names)

    def output_names(self) -> tuple[str, ...]:
        return ("sequences", "output", *(f"{d}_{kind}" for d in DIRECTIONS for kind in ("sequences", "output")),
                *(f"{d}_{s}" for d in DIRECTIONS for s in ("h", "c")))

    def _units(self, name: str, config: dict) -> tuple[int, str]:
        """The last axis of an output and why."""
        directions = self.directions(config)
        if name.startswith(DIRECTIONS):
            direction = name.split("_", 1)[0]
            units = directions[direction][1]["units"]
            return units, f"units={units} of the {direction} layer"
        forward, backward = (directions[d][1]["units"] for d in DIRECTIONS)
        if self.merge_mode(config) == "concat":
            return forward + backward, f"forward units {forward} + backward units {backward} (concat)"
        return forward, f"units={forward}"

    def output_spec(self, name: str, config: dict, batch: int, steps: int) -> ArraySpec:
        units, why = self._units(name, config)
        if name.endswith("sequences"):
            return ArraySpec((batch, steps, units), f"(batch={batch}, timesteps={steps}, {why})")
        return ArraySpec((batch, units), f"(batch={batch}, {why})")

    def not_returned(self, name: str, config: dict) -> Problem:
        return Problem(f"this Bidirectional config does not return `{name}`",
                       expected=f"outputs of this config: {', '.join(self.outputs(config))}",
                       hint="sequences need return_sequences and states return_state in `layer`; merge_mode null "
                            "returns forward_* and backward_* apart")

    def expected_schema(self) -> dict:
        return {"type": "object", "additionalProperties": False, "minProperties": 1,
                "description": "Hand-computed values: a third oracle.",
                "properties": {name: {"$ref": "#/definitions/numbers"} for name in self.output_names()}}

    def describe(self, config: dict) -> tuple[list[str], list[str]]:
        parts = []
        for direction, (spec, inner) in self.directions(config).items():
            shown, flags = spec.describe(inner)
            flags = [f for f in flags if f != "go_backwards"]
            parts.append(f"{direction}={spec.name}(" + ", ".join(shown + flags) + ")")
        return [*parts, f"merge_mode={self.merge_mode(config)}"], []

    def coverage_dimensions(self, activations):
        bools = ("false", "true")
        return {"wrapped layer": tuple(self.inner), "merge_mode": tuple("null" if m is None else m for m in MERGE_MODES),
                "backward layer": ("copy of the wrapped layer", "given", "given, another type"),
                "return_sequences": bools, "return_state": bools, "activation": ("tanh", "other")}

    def coverage_values(self, config, canonical):
        directions = self.directions(config)
        wrapped = self._wrapped(config)
        given = config.get("backward_layer")
        backward = ("copy of the wrapped layer" if given is None else
                    "given" if given.get("type") == wrapped["type"] else "given, another type")
        flag = lambda key: {str(bool(wrapped.get(key, False))).lower()}  # noqa: E731
        acts = {canonical(name) for spec, inner in directions.values() for name in spec.activations(inner).values()}
        mode = self.merge_mode(config)
        return {"wrapped layer": {spec.name for spec, _ in directions.values()},
                "merge_mode": {"null" if mode is None else mode}, "backward layer": {backward},
                "return_sequences": flag("return_sequences"), "return_state": flag("return_state"),
                "activation": {"other" if acts - {"tanh", "sigmoid"} else "tanh"}}

    def fuzz_config(self, draw, st, activations, *, units: int, steps: int, stateful: bool) -> dict:
        names = list(self.inner)
        forward_type = draw(st.sampled_from(names))
        wrapped = self.inner[forward_type].fuzz_config(draw, st, activations, units=units, steps=steps, stateful=stateful)
        wrapped = {"type": forward_type, **{k: v for k, v in wrapped.items()
                                            if k not in ("go_backwards", "zero_output_for_mask")}}
        merge_mode = draw(st.sampled_from(list(MERGE_MODES)))
        config = {"merge_mode": merge_mode, "layer": wrapped}
        if draw(st.booleans()):
            backward_type = draw(st.sampled_from(names))
            own = self.inner[backward_type].fuzz_config(draw, st, activations, units=units, steps=steps,
                                                        stateful=stateful)
            shared = {k: wrapped[k] for k in ("return_sequences", "return_state", "stateful")}
            config["backward_layer"] = {"type": backward_type,
                                        **{k: v for k, v in own.items() if k != "zero_output_for_mask"},
                                        **shared, "go_backwards": True}
        return config

    def activations(self, config: dict) -> dict[str, str | None]:
        return {f"{d} {role}": name for d, (spec, inner) in self.directions(config).items()
                for role, name in spec.activations(inner).items()}

    # ---- the reference
    def check_supported(self, config: dict, flavor: str) -> None:
        for spec, inner in self.directions(config).values():
            spec.check_supported(inner, flavor)
        if self.merge_mode(config) not in MERGE_MODES:
            raise Unsupported(f"merge_mode {self.merge_mode(config)!r} is not modelled by the reference")

    def forward(self, weights, config, flavor, x, states, mask, *, trace=False, rounding=None) -> ReferenceResult:
        q = rounding or (lambda a: a)
        parts, outputs, final = {}, {}, {}
        sequences = self._wrapped(config).get("return_sequences", False)
        for direction, (spec, inner) in self.directions(config).items():
            own = {name.split(".", 1)[1]: w for name, w in weights.items() if name.startswith(direction + ".")}
            own_states = {name: states[f"{direction}_{name}"] for name in spec.state_names}
            result = spec.forward(own, inner, flavor, x, own_states, mask, trace=trace, rounding=rounding)
            parts[direction] = result
            final.update({f"{direction}_{name}": value for name, value in result.states.items()})
            outputs.update({f"{direction}_{name}": result.outputs[name] for name in spec.state_names})
        # what each layer returns: its sequence (the backward one flipped back to input order) or last output
        y = parts["forward"].outputs["sequences" if sequences else "output"]
        y_rev = parts["backward"].outputs["sequences" if sequences else "output"]
        if sequences:
            y_rev = y_rev[:, ::-1, :]
        kind = "sequences" if sequences else "output"
        outputs[f"forward_{kind}"], outputs[f"backward_{kind}"] = y, y_rev
        mode = self.merge_mode(config)
        with np.errstate(all="ignore"):
            if mode == "concat":
                outputs[kind] = np.concatenate([y, y_rev], axis=-1)
            elif mode == "sum":
                outputs[kind] = q(y + y_rev)
            elif mode == "mul":
                outputs[kind] = q(y * y_rev)
            elif mode == "ave":
                outputs[kind] = q(q(y + y_rev) / 2)
        return ReferenceResult(outputs=outputs, states=final, parts=parts)

    def backward(self, weights, config, flavor, x, states, mask, cotangents) -> Gradients:
        """Split the merged output's cotangent between the directions (concat: by columns; sum: both; ave: half
        each; mul: times the other direction's output), flip the backward direction's sequence cotangent to its
        processing order, and backprop each wrapped layer; the input gradient is the sum of both."""
        unknown = sorted(set(cotangents) - set(self.output_names()))
        if unknown:
            raise ValueError(f"Bidirectional has no output(s) {', '.join(unknown)}")
        d = {name: np.asarray(value, dtype=np.float64) for name, value in cotangents.items()}
        directions = self.directions(config)
        sequences = self._wrapped(config).get("return_sequences", False)
        kind = "sequences" if sequences else "output"
        # the cotangents of y (forward) and y_rev (backward, in input order), as the merge hands them on
        split = {direction: d.get(f"{direction}_{kind}") for direction in DIRECTIONS}
        merged = d.get(kind)
        mode = self.merge_mode(config)
        if merged is not None and mode is not None:
            if mode == "concat":
                units = directions["forward"][1]["units"]
                parts = {"forward": merged[..., :units], "backward": merged[..., units:]}
            elif mode == "sum":
                parts = {"forward": merged, "backward": merged}
            elif mode == "ave":
                parts = {"forward": merged / 2, "backward": merged / 2}
            else:  # mul
                outputs = self.forward(weights, config, flavor, x, states, mask).outputs
                parts = {"forward": merged * outputs[f"backward_{kind}"], "backward": merged * outputs[f"forward_{kind}"]}
            split = {direction: parts[direction] if split[direction] is None else split[direction] + parts[direction]
                     for direction in DIRECTIONS}
        d_weights, d_states, traces = {}, {}, {}
        d_input = np.zeros(np.shape(x))
        for direction, (spec, inner) in directions.items():
            own = {name.split(".", 1)[1]: w for name, w in weights.items() if name.startswith(direction + ".")}
            own_states = {name: states[f"{direction}_{name}"] for name in spec.state_names}
            inner_d = {name: d[f"{direction}_{name}"] for name in spec.state_names if f"{direction}_{name}" in d}
            if split[direction] is not None:
                d_y = split[direction]
                inner_d[kind] = d_y[:, ::-1, :] if sequences and direction == "backward" else d_y
            got = spec.backward(own, inner, flavor, x, own_states, mask, inner_d)
            d_weights.update({f"{direction}.{name}": value for name, value in got.weights.items()})
            d_states.update({f"{direction}_{name}": value for name, value in got.initial_state.items()})
            d_input = d_input + got.input
            traces[direction] = got.trace
        trace = [{f"{direction}_{key}": value for direction in DIRECTIONS for key, value in traces[direction][k].items()}
                 for k in range(len(traces["forward"]))]
        return Gradients(weights=d_weights, input=d_input, initial_state=d_states, trace=trace)

    def explain(self, config: dict, flavor: str) -> list[str]:
        lines = []
        for direction, (spec, inner) in self.directions(config).items():
            lines.append(f"  {direction} layer: {spec.name}, go_backwards={inner.get('go_backwards', False)}, "
                         f"zero_output_for_mask={inner['zero_output_for_mask']} (Bidirectional forces it to "
                         "return_sequences)")
            lines.extend("  " + line for line in spec.explain(inner, flavor))
        lines.append(f"  merge_mode={self.merge_mode(config)}; the backward sequence is flipped back to input order "
                     "before merging")
        return lines

    def explain_result(self, result: ReferenceResult, batch: int, config: dict) -> list[str]:
        lines = []
        for direction, (spec, inner) in self.directions(config).items():
            lines.append(f"{direction} layer ({spec.name}):")
            lines.extend("  " + line for line in spec.explain_result(result.parts[direction], batch, inner))
        return lines

    def explain_backward(self, grads: Gradients, batch: int, config: dict, mask) -> list[str]:
        """Each direction's backward trace in its own processing order (the backward layer's step 0 is the last
        input step), from the cotangents the merge hands it."""
        lines = []
        for direction, (spec, inner) in self.directions(config).items():
            prefix = f"{direction}_"
            own = Gradients(weights={}, input=grads.input,
                            initial_state={name.removeprefix(prefix): value for name, value in grads.initial_state.items()
                                           if name.startswith(prefix)},
                            trace=[{key.removeprefix(prefix): value for key, value in entry.items() if key.startswith(prefix)}
                                   for entry in grads.trace])
            lines.append(f"{direction} layer ({spec.name}):")
            lines.extend("  " + line for line in spec.explain_backward(own, batch, inner, mask))
        return lines

    # ---- the Keras object
    def build_keras(self, keras, config: dict, dtype: str, batch: int | None, features: int):
        from harness.layers.recurrent import NEUTRAL_INITIALIZERS  # noqa: PLC0415

        def wrapped(entry: dict):
            entry = dict(entry)
            return getattr(keras.layers, entry.pop("type"))(**{**NEUTRAL_INITIALIZERS, **entry, "dtype": dtype})

        backward = wrapped(config["backward_layer"]) if config.get("backward_layer") is not None else None
        layer = keras.layers.Bidirectional(wrapped(config["layer"]), merge_mode=self.merge_mode(config),
                                           backward_layer=backward, dtype=dtype)
        layer.build((batch, None, features))
        return layer

    def keras_variables(self, layer) -> dict[str, object]:
        found = {}
        for direction, inner in (("forward", layer.forward_layer), ("backward", layer.backward_layer)):
            found.update({f"{direction}.{name}": variable
                          for name, variable in self.inner[type(inner).__name__].keras_variables(inner).items()})
        return found

    def keras_outputs(self, raw, config: dict, convert=np.asarray) -> dict[str, np.ndarray]:
        parts = [convert(p) for p in (raw if isinstance(raw, (list, tuple)) else [raw])]
        names = self.outputs(config)
        return dict(zip(names, parts, strict=True))


def make(inner: dict[str, RecurrentSpec]) -> BidirectionalSpec:
    return BidirectionalSpec(inner)
