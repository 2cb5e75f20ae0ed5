"""harness capture: a case from one layer of a saved model, its input (and the mask and initial states it
receives) computed through the model; the written case runs and passes, and reproduces the layer's own
output in the model; untrusted model and array files are refused clearly, with nothing written."""

import os

import numpy as np
import pytest

from harness.cli import main
from harness.loader import load_case
from harness.runner import run_path

keras = pytest.importorskip("keras")


def _randomize(model, seed=0):
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if layer.get_weights():
            layer.set_weights([rng.normal(scale=0.5, size=w.shape).astype(w.dtype) for w in layer.get_weights()])
    return model


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    tokens = keras.Input((6,), dtype="int32")
    embedded = keras.layers.Embedding(12, 3, mask_zero=True, name="embed")(tokens)
    sequences = keras.layers.LSTM(4, return_sequences=True, name="lstm")(embedded)
    merged = keras.layers.Bidirectional(keras.layers.GRU(2), merge_mode="sum", name="bigru")(sequences)
    functional = _randomize(keras.Model(tokens, keras.layers.Dense(1, name="head")(merged)))
    functional.save(folder / "functional.keras")
    sequential = _randomize(keras.Sequential([keras.Input((5, 2)), keras.layers.Dense(3, name="dense"),
                                              keras.layers.SimpleRNN(2, return_sequences=True, name="rnn")]), 1)
    sequential.save(folder / "sequential.keras")
    x = np.array([[3, 1, 4, 1, 5, 0], [9, 2, 6, 0, 0, 0]])  # right-padded: Embedding(mask_zero) masks the zeros
    np.save(folder / "tokens.npy", x)
    np.save(folder / "steps.npy", np.random.default_rng(2).normal(size=(2, 5, 2)).astype("float32"))
    return folder, functional, sequential, x


def _capture(folder, out, *args):
    return main(["capture", str(folder / args[0]), "--out", str(out), *args[1:]])


@pytest.mark.parametrize("layer, out", [("lstm", "lstm.yaml"), ("bigru", "bigru.json")])
def test_a_captured_layer_of_a_functional_model_runs_and_passes(models, tmp_path, layer, out, capsys):
    folder, model, _, x = models
    assert _capture(folder, tmp_path / out, "functional.keras", "--layer", layer, "--input", str(folder / "tokens.npy")) == 0
    said = capsys.readouterr().out
    assert f"wrote {tmp_path / out}" in said and "with mask" in said
    case = load_case(tmp_path / out)
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / out).stat().st_mode & 0o777 == 0o666 & ~umask  # as open() would, not mkstemp's 0600
    assert case.name == f"functional-{layer}" and case.layer == ("LSTM" if layer == "lstm" else "Bidirectional")
    np.testing.assert_array_equal(case.calls[0].mask, x != 0)  # the mask the Embedding hands the layer
    assert main(["run", str(tmp_path / out)]) == 0


def test_the_captured_case_reproduces_the_layers_output_in_the_model(models, tmp_path):
    folder, model, _, _ = models
    assert _capture(folder, tmp_path / "lstm.yaml", "functional.keras", "--layer", "lstm",
                    "--input", str(folder / "tokens.npy")) == 0
    result = run_path(tmp_path / "lstm.yaml")
    assert result.outcome == "passed", result.details
    loaded = keras.saving.load_model(folder / "functional.keras")
    in_model = keras.Model(loaded.inputs, loaded.get_layer("lstm").output)(np.load(folder / "tokens.npy"))
    np.testing.assert_allclose(result.system_outputs[0]["sequences"], np.asarray(in_model), rtol=1e-6, atol=1e-7)


def test_a_sequential_layer_from_the_model_input_or_from_its_own_input(models, tmp_path):
    folder, _, model, _ = models
    assert _capture(folder, tmp_path / "rnn.yaml", "sequential.keras", "--layer", "rnn",
                    "--input", str(folder / "steps.npy")) == 0
    through = load_case(tmp_path / "rnn.yaml")
    expected = np.asarray(model.get_layer("dense")(np.load(folder / "steps.npy")))
    np.testing.assert_allclose(through.calls[0].input, expected, rtol=1e-6)
    assert through.calls[0].mask is None
    np.save(tmp_path / "layer-x.npy", expected)
    np.save(tmp_path / "layer-mask.npy", np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=bool))
    assert _capture(folder, tmp_path / "direct.yaml", "sequential.keras", "--layer", "rnn", "--layer-input",
                    "--input", str(tmp_path / "layer-x.npy"), "--mask", str(tmp_path / "layer-mask.npy"),
                    "--name", "rnn-direct") == 0
    direct = load_case(tmp_path / "direct.yaml")
    assert direct.name == "rnn-direct" and direct.calls[0].mask.sum() == 8
    assert main(["run", str(tmp_path / "rnn.yaml"), str(tmp_path / "direct.yaml")]) == 0


def test_a_missing_or_non_recurrent_layer_names_the_recurrent_ones(models, tmp_path, capsys):
    folder = models[0]
    out = tmp_path / "case.yaml"
    assert _capture(folder, out, "functional.keras", "--layer", "nope", "--input", str(folder / "tokens.npy")) == 2
    assert ("harness capture: the model has no layer 'nope'; its recurrent layers: lstm (LSTM), bigru (Bidirectional)"
            in capsys.readouterr().err)
    assert _capture(folder, out, "functional.keras", "--layer", "head", "--input", str(folder / "tokens.npy")) == 2
    assert ("layer 'head' (Dense) is not a recurrent layer the harness models (LSTM, GRU, SimpleRNN, Bidirectional); "
            "the model's recurrent layers: lstm (LSTM), bigru (Bidirectional)") in capsys.readouterr().err
    assert not out.exists()


def test_untrusted_files_are_refused_and_nothing_is_written(models, tmp_path, capsys):
    folder = models[0]
    out = tmp_path / "case.yaml"
    unsafe = keras.Sequential([keras.Input((3, 2)), keras.layers.Lambda(lambda t: t * 2), keras.layers.LSTM(2, name="l")])
    unsafe.save(tmp_path / "lambda.keras")
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 2), "float32"))
    assert main(["capture", str(tmp_path / "lambda.keras"), "--layer", "l", "--input", str(tmp_path / "x.npy"),
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "Keras cannot load it (safe_mode=True)" in err and "lambda" in err
    np.save(tmp_path / "pickled.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    assert _capture(folder, out, "functional.keras", "--layer", "lstm", "--input", str(tmp_path / "pickled.npy")) == 2
    assert "not a .npy array without pickles" in capsys.readouterr().err
    np.save(tmp_path / "huge.npy", np.zeros((1, 1, 3), "float32"))
    assert main(["capture", str(folder / "functional.keras"), "--layer", "lstm", "--input", str(tmp_path / "huge.npy"),
                 "--out", str(out), "--limit", "elements=2"]) == 2
    assert "beyond the limit elements=2" in capsys.readouterr().err
    (tmp_path / "model.h5").write_text("not a model")
    assert main(["capture", str(tmp_path / "model.h5"), "--layer", "l", "--input", str(tmp_path / "x.npy"),
                 "--out", str(out)]) == 2
    assert "only the .keras format is read" in capsys.readouterr().err
    assert not out.exists()


def test_a_captured_case_the_loader_refuses_is_not_written(models, tmp_path, capsys):
    folder = models[0]
    np.save(tmp_path / "wrong-features.npy", np.zeros((1, 4, 5), "float32"))  # the LSTM reads 3 features
    out = tmp_path / "case.yaml"
    assert _capture(folder, out, "functional.keras", "--layer", "lstm", "--layer-input",
                    "--input", str(tmp_path / "wrong-features.npy")) == 1
    err = capsys.readouterr().err
    assert "the captured case is not valid, nothing was written" in err
    assert f"{out}:" in err and "weights.kernel: wrong shape" in err
    assert not out.exists() and not list(tmp_path.glob(".case*"))
