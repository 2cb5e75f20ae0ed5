"""A built Keras layer -> a case document (the plain data a case file holds), and writing one as a file.

What is read from the layer: its class (the layer spec), `get_config()` (the keyword arguments), its dtype
policy and its weights (through the spec's `keras_variables`, so they get the spec's names: kernel,
recurrent_kernel, bias, forward.kernel, ...). Everything becomes literal arrays, so the document is the
whole truth: the case rebuilds the layer from it. Nothing here imports Keras or TensorFlow; the layer's
own methods are all that is called.

The config is copied as Keras gives it, so a key the harness does not model reaches the loader and is its
clear error ("config: additional property 'time_major' ..."), never silently dropped. The only keys left
out are those that say nothing about a forward pass once the weights are literal, or that are the case
file's own fields: `name`, `trainable`, `dtype` (the case's `dtype:`), the initializers (the weights are
given), regularizers and constraints (training only), `seed` when None, and Keras 2's `time_major` when
False (its default layout). A Bidirectional's wrapped layers lose `zero_output_for_mask` when it is the
value Bidirectional forces anyway, and its `backward_layer` when it is the one Keras derives by default.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import yaml

from harness import layers
from harness.errors import InvalidCase, Problem

# keys of get_config() that are not keyword arguments the case states
_CASE_FIELDS = frozenset({"name", "trainable", "dtype"})
# no effect on a forward pass once the weights are literal (training only, or the initial weights)
_TRAINING_ONLY = frozenset({"kernel_initializer", "recurrent_initializer", "bias_initializer", "kernel_regularizer",
                            "recurrent_regularizer", "bias_regularizer", "activity_regularizer", "kernel_constraint",
                            "recurrent_constraint", "bias_constraint"})
# key -> the value at which it says nothing (left out then; any other value reaches the loader)
_SILENT_DEFAULTS = {"seed": None, "time_major": False}


def layer_type(layer) -> str:
    """The Keras class name of a layer: what `layer:` names in a case."""
    return type(layer).__name__


def is_modelled(layer) -> bool:
    return layer_type(layer) in layers.SPECS


def not_modelled(layer, where: str) -> InvalidCase:
    """The error for a layer the harness has no spec for (a Dense, a ConvLSTM, a custom class)."""
    return InvalidCase(where, [Problem("layer", "not a recurrent layer the harness models",
                                       expected=", ".join(layers.SPECS), found=f"{layer_type(layer)} "
                                       f"({type(layer).__module__})", hint="check_layer and harness capture take "
                                       "a Keras LSTM, GRU, SimpleRNN or Bidirectional layer")])


def _clean(config: dict) -> dict:
    return {key: value for key, value in config.items()
            if key not in _CASE_FIELDS and key not in _TRAINING_ONLY
            and not (key in _SILENT_DEFAULTS and value == _SILENT_DEFAULTS[key])}


def _wrapped(serialized, forced_zero_output: bool) -> dict:
    """A Bidirectional's serialized wrapped layer ({class_name, config}) -> {type, keyword arguments}."""
    if not isinstance(serialized, dict) or "config" not in serialized:
        return serialized  # not Keras's serialization: the loader says what is wrong with it
    config = _clean(serialized["config"])
    if config.get("zero_output_for_mask") == forced_zero_output:
        config.pop("zero_output_for_mask")  # Bidirectional forces it to return_sequences anyway
    return {"type": serialized.get("class_name"), **config}


def layer_config(layer) -> dict:
    """The case's `config:` for this layer (see the module docstring for what is left out)."""
    config = layer.get_config()
    if layer_type(layer) != "Bidirectional":
        return _clean(config)
    found = {key: value for key, value in config.items() if key not in _CASE_FIELDS}
    forced = bool(layer.forward_layer.return_sequences)
    found["layer"] = _wrapped(found.get("layer"), forced)
    backward = found.get("backward_layer")
    if backward is not None:
        backward = _wrapped(backward, forced)
        derived = {**found["layer"], "go_backwards": not found["layer"].get("go_backwards", False)}
        if backward == derived:
            backward = None  # the backward layer Keras derives from the forward one: no need to state it
    if backward is None:
        found.pop("backward_layer", None)
    else:
        found["backward_layer"] = backward
    return found


def dtype_name(layer) -> str:
    """The dtype policy's name (float32, mixed_float16, ...): the case's `dtype:`."""
    policy = getattr(layer, "dtype_policy", None)
    return str(getattr(policy, "name", None) or layer.dtype)


def _numbers(array) -> list:
    """A float64 nested list (exact for every float dtype a layer holds); NaN and Inf stay floats, which
    YAML writes as .nan/.inf and the JSON writer turns into the strings the loader reads."""
    return np.asarray(array).astype(np.float64).tolist()


def layer_weights(layer) -> dict:
    """The layer's weights by the spec's names, nested as a case writes them ({forward: {kernel: ...}})."""
    if not layer.built or not layer.weights:
        raise ValueError(f"the {layer_type(layer)} layer {layer.name!r} is not built: it has no weights yet "
                         "(call it once, or layer.build(input_shape), and set its weights)")
    variables = layers.get(layer_type(layer)).keras_variables(layer)
    nested: dict = {}
    for name, variable in variables.items():
        *parents, leaf = name.split(".")
        place = nested
        for parent in parents:
            place = place.setdefault(parent, {})
        place[leaf] = _numbers(variable.numpy() if hasattr(variable, "numpy") else variable)
    return nested


def to_numpy(value):
    for method in ("detach", "cpu"):  # a torch tensor
        if hasattr(value, method):
            value = getattr(value, method)()
    return np.asarray(value.numpy() if hasattr(value, "numpy") else value)


def states_by_name(layer, config: dict, initial_state, batch: int) -> dict:
    """initial_state as the user gives it -> {state name: array}: a dict by the harness's names (h, c,
    forward_h, ...) is taken as is; a list or tuple is in the order Keras's call takes them."""
    if isinstance(initial_state, dict):
        return {name: _numbers(to_numpy(value)) for name, value in initial_state.items()}
    names = list(layers.get(layer_type(layer)).states(config, batch))
    given = list(initial_state)
    if len(given) != len(names):
        raise ValueError(f"initial_state: {len(given)} arrays given; a {layer_type(layer)} with this config takes "
                         f"{len(names)}: {', '.join(names)} (or pass a dict by those names)")
    return {name: _numbers(to_numpy(value)) for name, value in zip(names, given)}


def layer_document(layer, inputs, *, mask=None, initial_state=None, expected=None, tolerance=None,
                   name: str | None = None, description: str | None = None) -> dict:
    """The case document of one call of `layer` on `inputs` (batch, timesteps, features). Raises
    InvalidCase (field `layer`) for a layer the harness has no spec for, ValueError for an unbuilt one."""
    if not is_modelled(layer):
        raise not_modelled(layer, f"<layer {getattr(layer, 'name', '?')}>")
    x = to_numpy(inputs)
    config = layer_config(layer)
    doc: dict = {"name": name or f"layer-{layer.name}".replace("_", "-"),
                 "description": description or f"{layer_type(layer)} {layer.name!r} with its own config and weights",
                 "layer": layer_type(layer), "config": config, "dtype": dtype_name(layer), "input": _numbers(x),
                 "weights": layer_weights(layer)}
    if mask is not None:
        doc["mask"] = to_numpy(mask).astype(bool).tolist()
    if initial_state is not None:
        doc["initial_state"] = states_by_name(layer, config, initial_state, x.shape[0] if x.ndim else 0)
    if expected is not None:
        doc["expected"] = {key: _numbers(to_numpy(value)) for key, value in expected.items()}
    if tolerance is not None:
        doc["tolerance"] = tolerance
    return doc


# ---------------------------------------------------------------- writing a document as a case file

class _FlowLists(yaml.SafeDumper):
    """Mappings in block style, lists (the arrays) in flow style: one readable line per row."""


def _represent_list(dumper, data):
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True)


_FlowLists.add_representer(list, _represent_list)


def _json_safe(value):
    """NaN and Inf as the strings a JSON case file uses ("nan", "inf", "-inf")."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    return value


def document_text(doc: dict, suffix: str) -> str:
    """The document as a case file's text: JSON for `.json`, else YAML (floats in their shortest exact form)."""
    if suffix == ".json":
        return json.dumps(_json_safe(doc), indent=1) + "\n"
    return yaml.dump(doc, Dumper=_FlowLists, sort_keys=False, width=120, allow_unicode=True)


def write_document(doc: dict, path: Path, check=None) -> None:
    """Write atomically (beside, then rename). `check(temporary_path)` runs on the written file before the
    rename: when it raises, nothing is left at `path`."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # as open() would: mkstemp's 0600 would hide a case file from others
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(document_text(doc, path.suffix))
        if check is not None:
            check(Path(temporary))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
