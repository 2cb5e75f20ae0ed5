"""The reference against values worked out by hand, not against Keras."""

import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from harness.activations import get_activation, supported_names
from harness.errors import Unsupported
from harness.layers import LSTM

LINEAR = get_activation(None)


def lstm_forward(x, kernel, recurrent_kernel, bias, *, activation, recurrent_activation, h0=None, c0=None, mask=None,
                 go_backwards=False, zero_output_for_mask=False, trace=False):
    """The LSTM spec's reference on plain arrays, its results by name."""
    units = recurrent_kernel.shape[0]
    config = {"units": units, "activation": activation.name, "recurrent_activation": recurrent_activation.name,
              "use_bias": bias is not None, "return_sequences": True, "return_state": True,
              "go_backwards": go_backwards, "zero_output_for_mask": zero_output_for_mask}
    weights = {"kernel": kernel, "recurrent_kernel": recurrent_kernel, **({"bias": bias} if bias is not None else {})}
    zeros = np.zeros((x.shape[0], units))
    states = {"h": zeros if h0 is None else h0, "c": zeros if c0 is None else c0}
    result = LSTM.forward(weights, config, "keras3", x, states, mask, trace=trace)
    return SimpleNamespace(sequences=result.outputs["sequences"], last_output=result.outputs["output"],
                           h=result.states["h"], c=result.states["c"],
                           trace=[SimpleNamespace(time=s.time, **s.values) for s in result.trace])
SEED = dict(
    kernel=np.array([[2, 1, 1, 0, 0, 0, 0, 1, 1, 0, 1, 0], [1, 1, 0, 1, 1, 0, 0, 1, 1, 0, 0, 0]], float),
    recurrent_kernel=np.array([[1, 0, 0, 1, 2, 1, 0, 1, 2, 0, 1, 0], [1, 1, 0, 0, 2, 1, 0, 1, 2, 2, 0, 0],
                               [1, 0, 1, 2, 0, 1, 0, 1, 1, 0, 1, 0]], float),
    bias=np.array([3, 1, 0, 1, 1, 0, 0, 1, 0, 2, 0, 0], float),
)


def test_seed_example_by_hand():
    result = lstm_forward(np.array([[[1.0, 0.0]]]), **SEED, activation=LINEAR, recurrent_activation=LINEAR, trace=True)
    step = result.trace[0]
    np.testing.assert_array_equal(step.z, [[5, 2, 1, 1, 1, 0, 0, 2, 1, 2, 1, 0]])
    np.testing.assert_array_equal(result.c, [[0, 4, 1]])
    np.testing.assert_array_equal(result.h, [[0, 4, 0]])  # o * c, not c: the output gate matters


def _one_unit(x, mask=None, go_backwards=False, zero_output_for_mask=False, h0=None, c0=None):
    # units 1, linear: z = [x, x + h, 2x + h, x]; c = (x + h) * c + x * (2x + h); h = x * c
    return lstm_forward(np.array(x, float).reshape(1, -1, 1), np.array([[1.0, 1, 2, 1]]), np.array([[0.0, 1, 1, 0]]),
                        None, activation=LINEAR, recurrent_activation=LINEAR, mask=mask, go_backwards=go_backwards,
                        zero_output_for_mask=zero_output_for_mask, h0=h0, c0=c0)


def test_two_steps_by_hand():
    # step 0, x=1: c = 0 + 1*2 = 2, h = 2; step 1, x=1: z = [1, 3, 4, 1]: c = 3*2 + 1*4 = 10, h = 10
    result = _one_unit([1, 1])
    np.testing.assert_array_equal(result.sequences.ravel(), [2, 10])


def test_masked_step_keeps_state_and_repeats_output():
    result = _one_unit([1, 5, 1], mask=np.array([[True, False, True]]))
    np.testing.assert_array_equal(result.sequences.ravel(), [2, 2, 10])
    np.testing.assert_array_equal(result.c.ravel(), [10])


def test_zero_output_for_mask_zeroes_output_but_carries_state():
    result = _one_unit([1, 5], mask=np.array([[True, False]]), zero_output_for_mask=True)
    np.testing.assert_array_equal(result.sequences.ravel(), [2, 0])
    assert result.last_output.ravel()[0] == 0 and result.h.ravel()[0] == 2


def test_first_step_masked_outputs_zero_and_keeps_initial_state():
    result = _one_unit([1, 1], mask=np.array([[False, True]]), h0=np.array([[1.0]]), c0=np.array([[3.0]]))
    # step 1 from h=1, c=3, x=1: z = [1, 2, 3, 1]: c = 2*3 + 1*3 = 9, h = 9
    np.testing.assert_array_equal(result.sequences.ravel(), [0, 9])


def test_go_backwards_reads_last_step_first_and_returns_processing_order():
    # backwards over [1, 2]: step 0 reads x=2: c = 2*4 = 8, h = 16; step 1 reads x=1 with h=16, c=8:
    # z = [1, 17, 18, 1]: c = 17*8 + 1*18 = 154, h = 154
    result = _one_unit([1, 2], go_backwards=True)
    np.testing.assert_array_equal(result.sequences.ravel(), [16, 154])
    assert [s.time for s in lstm_forward(np.ones((1, 3, 1)), np.ones((1, 4)), np.ones((1, 4)), None,
                                         activation=LINEAR, recurrent_activation=LINEAR, go_backwards=True,
                                         trace=True).trace] == [2, 1, 0]


@pytest.mark.parametrize("name,x,y", [
    ("sigmoid", 0.0, 0.5), ("tanh", 0.0, 0.0), ("relu", -2.0, 0.0), ("relu6", 7.0, 6.0), ("elu", 0.0, 0.0),
    ("softsign", 1.0, 0.5), ("softplus", 0.0, np.log(2.0)), ("swish", 0.0, 0.0), ("silu", 2.0, 2.0 / (1 + np.exp(-2.0))),
    ("exponential", 1.0, np.e), ("leaky_relu", -1.0, -0.2), ("gelu", 1.0, 0.8413447460685429),
    ("hard_silu", 3.0, 3.0), ("selu", 1.0, 1.0507009873554805), ("linear", -3.5, -3.5),
])
def test_activation_values_by_hand(name, x, y):
    assert get_activation(name)(np.array([x]))[0] == pytest.approx(y, rel=1e-15, abs=1e-300)


def test_hard_sigmoid_follows_the_keras_version():
    x = np.array([-3.0, 1.5, 2.5, 3.0])
    np.testing.assert_allclose(get_activation("hard_sigmoid", "keras3")(x), [0.0, 0.75, 2.5 / 6 + 0.5, 1.0])
    np.testing.assert_allclose(get_activation("hard_sigmoid", "keras2")(x), [0.0, 0.8, 1.0, 1.0])
    assert "Keras 3" in get_activation("hard_sigmoid", "keras3").formula


def test_sigmoid_does_not_overflow():
    np.testing.assert_array_equal(get_activation("sigmoid")(np.array([-1000.0, 1000.0])), [0.0, 1.0])


def test_unimplemented_activation_is_unsupported_not_ignored():
    with pytest.raises(Unsupported, match="'sparsemax' is not implemented"):
        get_activation("sparsemax")
    assert "glu" not in supported_names()


def test_nan_propagates():
    result = _one_unit([np.nan, 1])
    assert np.isnan(result.sequences).all()


def test_reference_imports_neither_keras_nor_tensorflow():
    # nor an autodiff library: the reference's gradients (LayerSpec.backward) are written by hand
    code = ("import sys, harness.layers, harness.reference_runner, harness.activations, harness.explain, harness.noise;"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('keras', 'tensorflow', 'tf_keras', 'jax', 'jaxlib',"
            " 'torch', 'autograd')];"
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
