"""The case format's JSON Schema (draft-07), assembled from the layer specs.

What every case shares is written here; what depends on the layer (config keys, weights, initial
states, expected outputs, per-output tolerances) comes from its spec, as a draft-07 conditional on
`layer`. The committed harness/case.schema.json is this schema written out (`python -m harness.schema
> harness/case.schema.json`); a test keeps the two equal, so editors validate what the loader does.
"""

from __future__ import annotations

import json

from harness import layers
from harness.activations import KERAS_ACTIVATION_NAMES
from harness.layers.base import LayerSpec
from harness.modes import MODES
from harness.precision import POLICIES
from harness.targets import NAMES as TARGET_NAMES

_VERSIONS_KEY = {"type": "string", "description": "a version specifier, e.g. '>=3' or '<2.16'"}
_PAIR = {"rtol": {"type": "number", "minimum": 0}, "atol": {"type": "number", "minimum": 0}}
_MASK = {"description": "(batch, timesteps): true = step is used",
         "oneOf": [{"type": "array", "items": {"type": "array", "items": {"anyOf": [{"type": "boolean"},
                                                                                   {"enum": [0, 1]}]}}},
                   {"$ref": "#/definitions/random"}]}
_INPUT = {"description": "(batch, timesteps, features); a generated input needs shape: [batch, timesteps, features]",
          "$ref": "#/definitions/array"}

DEFINITIONS = {
    "activation": {"description": "A Keras built-in activation name; null means linear.",
                   "anyOf": [{"type": "null"}, {"enum": sorted(KERAS_ACTIVATION_NAMES)}]},
    "number": {"anyOf": [{"type": "number"}, {"enum": ["nan", "inf", "-inf", "+inf"]}],
               "description": "A number; the strings nan, inf, -inf allow non-finite values in JSON."},
    "numbers": {"anyOf": [{"$ref": "#/definitions/number"},
                          {"type": "array", "items": {"$ref": "#/definitions/numbers"}}]},
    "array": {"anyOf": [{"$ref": "#/definitions/numbers"}, {"$ref": "#/definitions/random"}]},
    "random": {"type": "object", "additionalProperties": False, "required": ["random"], "properties": {"random": {
        "type": "object", "additionalProperties": False, "required": ["seed"], "properties": {
            "seed": {"type": "integer", "minimum": 0},
            "distribution": {"enum": ["normal", "uniform", "bernoulli"], "default": "normal"},
            "mean": {"type": "number"}, "scale": {"type": "number", "minimum": 0},
            "low": {"type": "number"}, "high": {"type": "number"},
            "p": {"type": "number", "minimum": 0, "maximum": 1, "description": "bernoulli: probability of true/1"},
            "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}}}}}},
    "versions": {"type": "object", "minProperties": 1, "additionalProperties": False,
                 "properties": {key: _VERSIONS_KEY for key in ("tensorflow", "keras", "numpy")}},
}


def _tolerance(outputs) -> dict:
    per_output = {"type": "object", "additionalProperties": False, "minProperties": 1, "properties": _PAIR}
    return {"type": "object", "additionalProperties": False, "minProperties": 1,
            "description": "rtol/atol for every output, and/or per output.",
            "properties": {**_PAIR, **{name: per_output for name in outputs}}}


def _call_entry(initial_state: dict, expected: dict) -> dict:
    return {"type": "object", "additionalProperties": False, "required": ["input"], "properties": {
        "input": {"description": "(batch, timesteps, features)", "$ref": "#/definitions/array"},
        "mask": _MASK,
        "initial_state": initial_state,
        "reset_states": {"type": "boolean", "description": "Reset the layer's states to zeros before this call."},
        "expected": expected}}


def _layer_parts(spec: LayerSpec) -> dict:
    """The properties whose contents depend on the layer."""
    return {"config": spec.config_schema(), "weights": spec.weights_schema(),
            "initial_state": spec.states_schema(), "expected": spec.expected_schema(),
            "tolerance": _tolerance(spec.output_names())}


def _conditional(spec: LayerSpec) -> dict:
    condition = {"properties": {"layer": {"const": spec.name}}}
    if spec.name != layers.DEFAULT_LAYER:
        condition["required"] = ["layer"]  # an absent `layer` is the default layer
    parts = _layer_parts(spec)
    name = spec.name
    return {"if": condition, "then": {"properties": {
        **{key: {"$ref": f"#/definitions/{name}.{key}"} for key in parts},
        "calls": {"items": _call_entry({"$ref": f"#/definitions/{name}.initial_state"},
                                       {"$ref": f"#/definitions/{name}.expected"})}}}}


def assemble() -> dict:
    """The whole schema, from the shared parts and every layer spec."""
    definitions = dict(DEFINITIONS)
    for spec in layers.SPECS.values():
        definitions.update({f"{spec.name}.{key}": value for key, value in _layer_parts(spec).items()})
        definitions.update(spec.extra_definitions())
    layer_names = list(layers.SPECS)
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": "https://example.invalid/keras-rnn-harness/case.schema.json",
        "title": "Keras recurrent layer test case",
        "description": "One case of the differential test harness: a layer configuration, weights, inputs, "
                       "and optional hand-computed expected values.",
        "type": "object",
        "additionalProperties": False,
        "required": ["config", "weights"],
        "properties": {
            "name": {"type": "string", "pattern": "^[A-Za-z0-9_][A-Za-z0-9_.+-]*$",
                     "description": "Defaults to the file stem; unique across a run."},
            "description": {"type": "string"},
            "tags": {"type": "array", "uniqueItems": True,
                     "items": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_-]*$"}},
            "layer": {"enum": layer_names, "default": layers.DEFAULT_LAYER,
                      "description": "The Keras layer: " + "; ".join(s.description for s in layers.SPECS.values())},
            "config": {"type": "object", "description": "Keyword arguments of the Keras layer (see `layer`)."},
            "dtype": {"enum": list(POLICIES), "default": "float32"},
            "execution": {
                "description": "How Keras runs the layer: eager, graph (tf.function), xla (tf.function with "
                               "jit_compile), all, or a list of modes. The case passes only when every mode agrees "
                               "with the reference. Default: the run's (--mode; eager and graph unless set).",
                "anyOf": [{"enum": [*MODES, "all"]},
                          {"type": "array", "minItems": 1, "uniqueItems": True, "items": {"enum": list(MODES)}}]},
            "targets": {"description": "Run the case only on these systems under test (default: any); the others "
                                       "report it skipped, saying why.",
                        "type": "array", "minItems": 1, "uniqueItems": True,
                        "items": {"enum": list(TARGET_NAMES)}},
            "input": _INPUT,
            "calls": {"type": "array", "minItems": 1, "description": "Stateful layers: calls run in order on one layer.",
                      "items": _call_entry({"type": "object"}, {"type": "object"})},
            "weights": {"type": "object", "description": "The layer's weights by name (see `layer`)."},
            "initial_state": {"type": "object", "description": "The layer's states by name (see `layer`)."},
            "mask": _MASK,
            "expected": {"type": "object", "description": "Hand-computed values: a third oracle."},
            "tolerance": {"type": "object", "description": "rtol/atol for every output, and/or per output."},
            "expected_tolerance": {
                "type": "object", "additionalProperties": False, "minProperties": 1, "properties": _PAIR,
                "description": "rtol/atol for the hand values (`expected`) only, against Keras and the reference, "
                               "e.g. {atol: 5e-5} for values written to 4 decimals; the Keras-vs-reference bound "
                               "(`tolerance`) stays as it is. Default: that same bound."},
            "gradients": {
                "type": "object", "additionalProperties": False,
                "description": "Also check gradients: the loss is the sum over outputs of sum(cotangent * output).",
                "properties": {
                    "cotangents": {"type": "object", "description": "Per compared output (default: seeded random).",
                                   "additionalProperties": {"$ref": "#/definitions/array"}},
                    "wrt": {"type": "array", "minItems": 1, "uniqueItems": True,
                            "description": "Weight names, input, initial_state (default: every one the case has).",
                            "items": {"type": "string"}},
                    "expected": {"type": "object", "description": "Hand values: kernel, input, initial_state.h, ...",
                                 "additionalProperties": {"$ref": "#/definitions/numbers"}},
                    "tolerance": {"type": "object", "additionalProperties": False, "minProperties": 1,
                                  "properties": _PAIR}}},
            "known_failure": {
                "type": "object", "additionalProperties": False, "required": ["reason"],
                "description": "A known defect of the installed Keras/TensorFlow: a failure is reported as 'xfailed' "
                               "and keeps the run green; a pass is reported as 'xpassed' (the defect is fixed: remove "
                               "this marker).",
                "properties": {"reason": {"type": "string", "minLength": 1},
                               "targets": {"description": "The systems under test that have the defect (default: "
                                                          "every one).", "type": "array", "minItems": 1,
                                           "uniqueItems": True, "items": {"enum": list(TARGET_NAMES)}},
                               "upstream": {"type": "string", "description": "Where the defect is reported upstream."},
                               "when": {"description": "The defect is known only for these versions; elsewhere the "
                                                       "case must pass.", "$ref": "#/definitions/versions"}}},
            "requires": {"description": "Run only where the installed versions match; elsewhere the case is 'skipped' "
                                        "(e.g. hand values that follow Keras 3 definitions).",
                         "$ref": "#/definitions/versions"},
        },
        "allOf": [_conditional(spec) for spec in layers.SPECS.values()],
        "definitions": definitions,
    }


# Every top-level field a case may have: a JSON document with none of them is not a case (discovery.not_a_case).
CASE_FIELDS = tuple(assemble()["properties"])


def render() -> str:
    return json.dumps(assemble(), indent=2) + "\n"


if __name__ == "__main__":
    print(render(), end="")
