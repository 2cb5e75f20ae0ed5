"""check_layer: layers built here pass for every layer spec; wrong hand values, a layer object that does not
do what its config says, and what the harness cannot express each give their own outcome; the case
document round-trips through the loader and `harness run`; `import harness` stays cheap."""

import subprocess
import sys

import numpy as np
import pytest

from harness import check_layer
from harness.cli import main
from harness.loader import load_case

keras = pytest.importorskip("keras")

HAND = "the hand value disagrees with both Keras and the reference"


def _randomize(layer, seed):
    """Weights that are not the initializers' (zero biases, orthogonal kernels hide mapping mistakes)."""
    rng = np.random.default_rng(seed)
    layer.set_weights([rng.normal(scale=0.5, size=w.shape).astype(w.dtype) for w in layer.get_weights()])
    return layer


def _built(layer, features=3, seed=0):
    layer.build((None, None, features))
    return _randomize(layer, seed)


X = np.random.default_rng(1).normal(size=(2, 4, 3)).astype("float32")
MASK = np.array([[True, True, False, True], [True, True, True, False]])


@pytest.mark.parametrize("make, kwargs", [
    (lambda: keras.layers.LSTM(3, return_sequences=True, return_state=True), {"mask": MASK}),
    (lambda: keras.layers.LSTM(2, activation="relu", recurrent_activation="hard_sigmoid", go_backwards=True),
     {"initial_state": [np.ones((2, 2), "float32"), -np.ones((2, 2), "float32")]}),
    (lambda: keras.layers.GRU(3, return_sequences=True), {"mask": MASK}),
    (lambda: keras.layers.GRU(2, reset_after=False, return_state=True), {"initial_state": {"h": np.ones((2, 2))}}),
    (lambda: keras.layers.SimpleRNN(4, return_sequences=True, activation="softsign"), {}),
    (lambda: keras.layers.Bidirectional(keras.layers.GRU(2, return_sequences=True), merge_mode="ave"), {"mask": MASK}),
    (lambda: keras.layers.Bidirectional(keras.layers.LSTM(2), backward_layer=keras.layers.SimpleRNN(
        3, go_backwards=True), merge_mode="concat"), {}),
], ids=["lstm-mask", "lstm-initial-state", "gru", "gru-reset-before", "simple-rnn", "bidirectional-gru",
        "bidirectional-explicit-backward"])
def test_layers_built_here_pass_on_both_sources(make, kwargs):
    result = check_layer(_built(make()), X, **kwargs)
    assert result.passed, result.report
    assert result.outcome == "passed" and result.sources == {"tensorflow": "passed", "layer-object": "passed"}
    assert "PASSED" in result.report


def test_bidirectional_document_states_only_what_keras_does_not_derive():
    derived = check_layer(_built(keras.layers.Bidirectional(keras.layers.LSTM(2, return_sequences=True))), X)
    config = derived.to_case()["config"]
    assert "backward_layer" not in config and "zero_output_for_mask" not in config["layer"]
    assert config["layer"]["type"] == "LSTM" and config["merge_mode"] == "concat"
    explicit = check_layer(_built(keras.layers.Bidirectional(keras.layers.LSTM(2), backward_layer=keras.layers.GRU(
        2, go_backwards=True))), X)
    assert explicit.to_case()["config"]["backward_layer"]["type"] == "GRU"


def _hand_layer():
    """SimpleRNN, 1 unit, linear: h1 = 2 * 1 = 2, h2 = 2 * 1 + 1 * h1 = 4."""
    layer = keras.layers.SimpleRNN(1, activation=None, use_bias=False, dtype="float64")
    layer.build((None, None, 1))
    layer.set_weights([np.array([[2.0]]), np.array([[1.0]])])
    return layer


def test_right_hand_values_pass_and_wrong_ones_fail_with_the_hand_verdict():
    x = np.ones((1, 2, 1))
    assert check_layer(_hand_layer(), x, expected={"h": [[4.0]]}).passed
    wrong = check_layer(_hand_layer(), x, expected={"h": [[5.0]]})
    assert not wrong.passed and wrong.outcome == "failed"
    assert wrong.sources == {"tensorflow": "failed", "layer-object": "failed"}
    assert HAND in wrong.report and "[0, 0]" in wrong.report


class LSTM(keras.layers.LSTM):
    """A layer whose object does not do what its config and weights say: h scaled by 1.001 in its own call."""

    def call(self, *args, **kwargs):
        return keras.tree.map_structure(lambda t: t * 1.001, super().call(*args, **kwargs))


def test_a_layer_object_that_differs_from_its_config_is_the_odd_one_out():
    result = check_layer(_built(LSTM(3, return_sequences=True)), X)
    assert result.outcome == "failed", result.report
    assert result.sources == {"tensorflow": "passed", "layer-object": "failed"}
    assert result.message.startswith("layer-object is the odd one out among targets (tensorflow agrees with the "
                                     "reference)")
    assert "YOUR LAYER" in result.report  # the mismatch table names the source


def test_what_the_harness_cannot_express_is_an_invalid_result_with_the_loaders_message():
    def my_activation(x):
        return x

    custom = _built(keras.layers.SimpleRNN(2, activation=my_activation))
    result = check_layer(custom, X)
    assert result.outcome == "invalid" and not result.passed and result.sources == {}
    assert result.message == "config.activation: unknown activation"
    assert "<check_layer simple_rnn" in result.report and "'config': 'my_activation'" in result.report
    assert result.to_case()["config"]["activation"]["config"] == "my_activation"  # what was read, to see or fix
    dense = keras.layers.Dense(2)
    dense.build((None, 3))
    result = check_layer(dense, X)
    assert result.outcome == "invalid" and result.message == "layer: not a recurrent layer the harness models"
    assert "found:    Dense" in result.report
    wrong_input = check_layer(_built(keras.layers.GRU(2)), X[0])
    assert wrong_input.outcome == "invalid" and "input must be 3-D" in wrong_input.message


def test_misuse_raises():
    with pytest.raises(ValueError, match="is not built"):
        check_layer(keras.layers.LSTM(2), X)
    with pytest.raises(ValueError, match="initial_state: 1 arrays given; .* takes 2: h, c"):
        check_layer(_built(keras.layers.LSTM(2)), X, initial_state=[np.zeros((2, 2))])


def test_a_stateful_layer_object_is_not_called():
    layer = keras.layers.LSTM(2, stateful=True)
    layer.build((2, None, 3))
    _randomize(layer, 3)
    result = check_layer(layer, X)
    assert result.passed and result.sources == {"tensorflow": "passed", "layer-object": "skipped"}
    assert "a stateful layer object is not called" in result.message


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_the_case_document_round_trips_through_the_loader_and_harness_run(tmp_path, suffix, capsys):
    layer = _built(keras.layers.LSTM(3, return_sequences=True, return_state=True, dtype="float64"), seed=5)
    weights = [w.copy() for w in layer.get_weights()]
    weights[0][0, 0] = np.nan  # a NaN weight must survive both formats
    layer.set_weights(weights)
    result = check_layer(layer, X, mask=MASK, name="my-lstm", tolerance={"rtol": 1e-9, "atol": 1e-9})
    assert result.passed, result.report
    path = result.save(tmp_path / f"my-lstm{suffix}")
    case = load_case(path)
    assert case.name == "my-lstm" and case.dtype == "float64" and case.layer == "LSTM"
    np.testing.assert_array_equal(case.weights["kernel"], layer.get_weights()[0])  # NaN included: bit-exact
    np.testing.assert_array_equal(case.calls[0].mask, MASK)
    np.testing.assert_array_equal(case.calls[0].input, X.astype(np.float64))
    assert main(["run", str(path)]) == 0
    assert "PASSED" in capsys.readouterr().out
    # the saved case pins the layer: a hand value that is wrong fails it
    broken = dict(result.to_case(), expected={"h": np.zeros((2, 3)).tolist()}, name="my-lstm-wrong")
    from harness.layer_document import write_document

    write_document(broken, tmp_path / f"wrong{suffix}")
    assert main(["run", str(tmp_path / f"wrong{suffix}")]) == 1


def test_import_harness_stays_cheap():
    code = ("import sys, harness\n"
            "heavy = [m for m in ('numpy', 'tensorflow', 'keras', 'yaml') if m in sys.modules]\n"
            "assert not heavy, heavy\n"
            "from harness import check_layer\n"
            "assert callable(check_layer) and 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
