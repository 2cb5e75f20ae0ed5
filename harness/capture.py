"""`harness capture MODEL.keras --layer NAME --input X.npy --out CASE.yaml`: a case from one layer of a saved model.

The layer's config and weights come from the model (harness/layer_document.py, as for check_layer); its
input is computed by running the model from X up to that layer: a model of the model's inputs and the
tensors the layer was called with (its sequence input, the mask an Embedding(mask_zero) or Masking layer
hands it, initial states taken from other tensors), so the case receives exactly what the layer received.
With `--layer-input`, X already is the layer's input (and `--mask M.npy` its mask).

A model file is untrusted input like a case file: only the `.keras` format is read, with Keras's
`safe_mode=True` (a Python lambda inside is refused, never deserialized), and `.npy` files without pickles;
an input array is held to the `elements` limit from its header, before it is read. The written case is
checked by the loader (from the written file, before it replaces anything at --out), so it runs like any
other case file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from harness import limits
from harness.errors import InvalidCase
from harness.layer_document import is_modelled, layer_document, layer_type, write_document


class CaptureError(Exception):
    """Why nothing was captured, in words for the command line (exit 2)."""


def load_array(path: Path, what: str) -> np.ndarray:
    """A .npy array without pickles, its element count checked from the header before it is read."""
    try:
        header = np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise CaptureError(f"{what} {path}: no such file") from None
    except (ValueError, OSError) as exc:
        raise CaptureError(f"{what} {path}: not a .npy array without pickles: {exc}") from None
    problem = limits.array_problem(what, tuple(header.shape))
    if problem:
        raise CaptureError(problem.render(str(path)))
    return np.array(header)


def load_model(path: Path):
    if path.suffix != ".keras":
        raise CaptureError(f"{path}: only the .keras format is read (Keras 3's zip, loaded with safe_mode=True); "
                           "re-save the model with model.save('model.keras')")
    if not path.is_file():
        raise CaptureError(f"{path}: no such file")
    from harness.targets.tensorflow import import_keras  # noqa: PLC0415 - Keras only when capturing

    keras = import_keras()
    try:
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as exc:  # noqa: BLE001 - whatever Keras refuses is the message
        raise CaptureError(f"{path}: Keras cannot load it (safe_mode=True): {type(exc).__name__}: "
                           f"{str(exc).strip()}") from None


def recurrent_layers(model) -> list:
    return [layer for layer in model.layers if is_modelled(layer)]


def find_layer(model, name: str):
    names = ", ".join(f"{layer.name} ({layer_type(layer)})" for layer in recurrent_layers(model)) or "none"
    found = next((layer for layer in model.layers if layer.name == name), None)
    if found is None:
        raise CaptureError(f"the model has no layer {name!r}; its recurrent layers: {names}")
    if not is_modelled(found):
        raise CaptureError(f"layer {name!r} ({layer_type(found)}) is not a recurrent layer the harness models "
                           f"(LSTM, GRU, SimpleRNN, Bidirectional); the model's recurrent layers: {names}")
    return found


def _call_tensors(layer):
    """(sequence input, mask or None, [initial states]) the layer was called with in the model's graph."""
    nodes = getattr(layer, "_inbound_nodes", None) or []
    if len(nodes) != 1:
        raise CaptureError(f"layer {layer.name!r} is called {len(nodes)} times in the model: its input is not one "
                           "tensor; give it with --layer-input")
    arguments = nodes[0].arguments
    kwargs = dict(arguments.kwargs)
    sequence = arguments.args[0] if arguments.args else kwargs.get("sequences", kwargs.get("inputs"))
    states = kwargs.get("initial_state") or []
    return sequence, kwargs.get("mask"), list(states if isinstance(states, (list, tuple)) else [states])


def layer_call_from_model(model, layer, model_inputs: list[np.ndarray]):
    """The layer's input, mask and initial states when the model runs on `model_inputs`."""
    import keras  # noqa: PLC0415 - imported by load_model

    if len(model_inputs) != len(model.inputs):
        raise CaptureError(f"the model has {len(model.inputs)} input(s) and {len(model_inputs)} --input array(s) were "
                           "given: one --input per model input, in order"
                           + "".join(f"\n  input {k}: {t.name}, shape {tuple(t.shape)}" for k, t in enumerate(model.inputs)))
    sequence, mask, states = _call_tensors(layer)
    wanted = [sequence] + ([mask] if mask is not None else []) + states
    try:
        upto = keras.Model(model.inputs, wanted)
        values = upto(list(model_inputs), training=False)
    except Exception as exc:  # noqa: BLE001
        raise CaptureError(f"running the model up to layer {layer.name!r} failed: {type(exc).__name__}: "
                           f"{str(exc).strip()}") from None
    values = values if isinstance(values, (list, tuple)) else [values]  # Keras unwraps a one-output list
    values = [np.asarray(keras.ops.convert_to_numpy(v)) for v in values]
    x = values[0]
    got_mask = values[1].astype(bool) if mask is not None else None
    got_states = values[1 + (mask is not None):] or None
    return x, got_mask, got_states


def capture(model_path: Path, layer_name: str, inputs: list[Path], out: Path, *, layer_input: bool = False,
            mask_path: Path | None = None, name: str | None = None) -> dict:
    """Write the case file; returns its document. Raises CaptureError (nothing written) or InvalidCase
    (the loader's problems with the captured case; nothing written)."""
    if not out.parent.is_dir():
        raise CaptureError(f"--out {out}: the folder {out.parent} does not exist")
    if out.suffix not in (".yaml", ".yml", ".json"):
        raise CaptureError(f"--out {out}: a case file ends in .yaml, .yml or .json")
    if mask_path is not None and not layer_input:
        raise CaptureError("--mask goes with --layer-input: otherwise the mask is the one the model computes")
    arrays = [load_array(path, "input") for path in inputs]
    mask = load_array(mask_path, "mask") if mask_path is not None else None
    model = load_model(model_path)
    layer = find_layer(model, layer_name)
    if layer_input:
        if len(arrays) != 1:
            raise CaptureError("--layer-input takes one --input: the layer's (batch, timesteps, features) input")
        x, states, source = arrays[0], None, f"{inputs[0].name} given as the layer's input"
    else:
        x, model_mask, states = layer_call_from_model(model, layer, arrays)
        mask = model_mask
        received = [word for word, value in (("mask", mask), ("initial states", states)) if value is not None]
        source = (f"computed by running the model on {', '.join(p.name for p in inputs)} up to the layer"
                  + (f", with the {' and '.join(received)} the layer receives there" if received else ""))
    document = layer_document(
        layer, x, mask=mask, initial_state=states, name=name or f"{model_path.stem}-{layer.name}".replace("_", "-"),
        description=f"captured by `harness capture` from {model_path.name}, layer {layer.name!r} "
                    f"({layer_type(layer)}), with its config and weights; input {source}")

    def check(written: Path) -> None:
        from harness.loader import load_case  # noqa: PLC0415

        try:
            load_case(written)
        except InvalidCase as error:  # name the file the user asked for, not the temporary one
            raise InvalidCase(str(out), error.problems) from None

    write_document(document, out, check)
    return document


# ---------------------------------------------------------------- the command line

def add_subcommand(sub) -> None:
    """`harness capture ...` (cli.py adds it to its subcommands)."""
    command = sub.add_parser("capture", help="write a case from one recurrent layer of a saved .keras model")
    command.add_argument("model", help="a model saved in the .keras format (loaded with safe_mode=True)")
    command.add_argument("--layer", required=True, metavar="NAME", help="the recurrent layer's name in the model")
    command.add_argument("--input", required=True, action="append", metavar="X.npy",
                         help="the model's input (one per model input, in order); with --layer-input, the layer's")
    command.add_argument("--layer-input", action="store_true",
                         help="X already is the layer's (batch, timesteps, features) input: the model is not run")
    command.add_argument("--mask", metavar="M.npy", help="with --layer-input: the layer's (batch, timesteps) mask")
    command.add_argument("--out", required=True, metavar="CASE", help="the case file to write (.yaml, .yml or .json)")
    command.add_argument("--name", help="the case's name (default: MODEL-LAYER)")
    command.set_defaults(func=run_command)


def run_command(args) -> int:
    import sys  # noqa: PLC0415

    out = Path(args.out)
    try:
        document = capture(Path(args.model), args.layer, [Path(p) for p in args.input], out,
                           layer_input=args.layer_input, mask_path=Path(args.mask) if args.mask else None,
                           name=args.name)
    except CaptureError as exc:
        print(f"harness capture: {exc}", file=sys.stderr)
        return 2
    except InvalidCase as error:
        print(f"harness capture: the captured case is not valid, nothing was written:\n{error.render()}",
              file=sys.stderr)
        return 1
    shape = "x".join(str(n) for n in np.shape(document["input"]))
    extras = ", ".join(word for word, key in (("mask", "mask"), ("initial state", "initial_state")) if key in document)
    print(f"wrote {out}: {document['layer']} {args.layer!r}, dtype {document['dtype']}, input {shape}"
          + (f" with {extras}" if extras else "") + f"; run it with: harness run {out}")
    return 0
