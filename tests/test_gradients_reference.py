"""The reference's backprop through time (LayerSpec.backward), written by hand in float64, against central
finite differences of the float64 forward reference, for every layer and option; and one step of the seed case
worked out by hand.

The loss is L = sum over the given outputs of sum(cotangent * output). Finite differences: step 1e-6, central;
a gradient passes when max |backward - finite difference| <= 1e-7 * the largest |gradient| of the case (and
1e-7 absolute). Inputs and initial states are perturbed for every batch row at once (rows are independent, and
the loss is taken per row); weights one element at a time.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import yaml

from harness.layers import BIDIRECTIONAL, GRU, LSTM, SIMPLE_RNN

ROOT = Path(__file__).resolve().parents[1]
STEP = 1e-6
RTOL = 1e-7
BATCH, STEPS, FEATURES = 4, 4, 2
# rows: unmasked | trailing padding | leading masked step and a gap | fully masked
MASK = np.array([[1, 1, 1, 1], [1, 1, 0, 0], [0, 1, 0, 1], [0, 0, 0, 0]], dtype=bool)
WORST: list[float] = []


def _case(spec, config, seed, *, masked, initial):
    rng = np.random.default_rng(seed)
    weights = {name: rng.normal(scale=0.5, size=a.shape) for name, a in spec.weights(config, FEATURES).items()}
    x = rng.normal(size=(BATCH, STEPS, FEATURES))
    states = {name: (rng.normal(scale=0.5, size=a.shape) if initial else np.zeros(a.shape))
              for name, a in spec.states(config, BATCH).items()}
    cotangents = {name: rng.normal(size=spec.output_spec(name, config, BATCH, STEPS).shape)
                  for name in spec.outputs(config)}
    return weights, x, states, (MASK if masked else None), cotangents


def _row_losses(spec, config, weights, x, states, mask, cotangents):
    outputs = spec.forward(weights, config, "keras3", x, states, mask).outputs
    return sum((cotangents[name] * outputs[name]).reshape(BATCH, -1).sum(axis=1) for name in cotangents)


def _finite_differences(spec, config, weights, x, states, mask, cotangents):
    loss = lambda w, xx, s: _row_losses(spec, config, w, xx, s, mask, cotangents)  # noqa: E731
    d_weights = {}
    for name, w in weights.items():
        grad = np.zeros_like(w)
        for index in np.ndindex(w.shape):
            plus, minus = w.copy(), w.copy()
            plus[index] += STEP
            minus[index] -= STEP
            grad[index] = (loss({**weights, name: plus}, x, states).sum()
                           - loss({**weights, name: minus}, x, states).sum()) / (2 * STEP)
        d_weights[name] = grad
    d_x = np.zeros_like(x)
    for index in np.ndindex(x.shape[1:]):  # every batch row at once
        plus, minus = x.copy(), x.copy()
        plus[(slice(None), *index)] += STEP
        minus[(slice(None), *index)] -= STEP
        d_x[(slice(None), *index)] = (loss(weights, plus, states) - loss(weights, minus, states)) / (2 * STEP)
    d_states = {}
    for name, s in states.items():
        grad = np.zeros_like(s)
        for unit in range(s.shape[1]):
            plus, minus = s.copy(), s.copy()
            plus[:, unit] += STEP
            minus[:, unit] -= STEP
            grad[:, unit] = (loss(weights, x, {**states, name: plus})
                             - loss(weights, x, {**states, name: minus})) / (2 * STEP)
        d_states[name] = grad
    return d_weights, d_x, d_states


def check_gradients(spec, config, seed, *, masked, initial):
    weights, x, states, mask, cotangents = _case(spec, config, seed, masked=masked, initial=initial)
    got = spec.backward(weights, config, "keras3", x, states, mask, cotangents)
    fd_weights, fd_x, fd_states = _finite_differences(spec, config, weights, x, states, mask, cotangents)
    assert set(got.weights) == set(weights)
    assert set(got.initial_state) == set(states)
    pairs = [(f"weight {name}", got.weights[name], fd_weights[name]) for name in weights]
    pairs += [("input", got.input, fd_x)]
    pairs += [(f"initial state {name}", got.initial_state[name], fd_states[name]) for name in states]
    scale = max(1.0, *(np.abs(fd).max() for _, _, fd in pairs))
    worst = 0.0
    for what, value, fd in pairs:
        assert value.shape == fd.shape, what
        error = np.abs(value - fd).max() / scale
        assert error <= RTOL, f"{what}: relative error {error:.3g}\nbackward\n{value}\nfinite differences\n{fd}"
        worst = max(worst, error)
    WORST.append(worst)
    if mask is not None:  # a fully masked row: only its initial states and the outputs' repeats matter
        assert np.all(got.input[3] == 0)
    assert len(got.trace) == STEPS
    return got


# ---- the cases: every option appears with every layer; the remaining options vary from case to case
# relu comes with random initial states in the LSTM (odd case numbers), for the reason given at BACKWARD
ACTIVATIONS = [("tanh", "sigmoid"), ("relu", "hard_sigmoid"), ("softmax", "sigmoid"), (None, None),
               ("tanh", "softmax"), ("log_softmax", "softsign"), ("swish", "tanh"), ("gelu", "sigmoid")]


def _recurrent_cases(spec, extra: list[dict]):
    cases = []
    for n, (seq, state, backwards, masked) in enumerate(itertools.product((False, True), repeat=4)):
        for k, more in enumerate(extra):
            i = n * len(extra) + k
            activation, recurrent = ACTIVATIONS[i % len(ACTIVATIONS)]
            config = {"units": 2, "activation": activation, "return_sequences": seq, "return_state": state,
                      "go_backwards": backwards, "zero_output_for_mask": bool((i // 2) % 2),
                      "use_bias": i % 3 != 2, **more}
            if "recurrent_activation" in spec.activation_roles:
                config["recurrent_activation"] = recurrent
            cases.append(pytest.param(spec, config, i, masked, bool(i % 2), id=f"{spec.name}-{i}"))
    return cases


RECURRENT_CASES = (_recurrent_cases(LSTM, [{}]) + _recurrent_cases(SIMPLE_RNN, [{}])
                   + _recurrent_cases(GRU, [{"reset_after": True}, {"reset_after": False}]))


@pytest.mark.parametrize(("spec", "config", "seed", "masked", "initial"), RECURRENT_CASES)
def test_recurrent_backward_matches_finite_differences(spec, config, seed, masked, initial):
    check_gradients(spec, config, seed, masked=masked, initial=initial)


WRAPPED = [
    {"type": "LSTM", "units": 2},
    {"type": "GRU", "units": 2, "reset_after": False, "activation": "relu"},
    {"type": "SimpleRNN", "units": 2, "activation": "softmax"},
    {"type": "GRU", "units": 2, "recurrent_activation": "hard_sigmoid", "use_bias": False},
]
# Not relu for an LSTM from zero states: a negative candidate puts c exactly at relu's kink (c = f*0 + i*relu(z_c) = 0),
# where finite differences average the two one-sided derivatives and the reference takes TF's (0).
BACKWARD = [None, {"type": "SimpleRNN", "units": 3, "activation": "tanh"},
            {"type": "LSTM", "units": 2, "activation": "softplus", "recurrent_activation": "log_softmax"}]


def _bidirectional_cases():
    cases = []
    modes = ("concat", "sum", "mul", "ave", None)
    for n, (mode, seq, state) in enumerate(itertools.product(modes, (False, True), (False, True))):
        wrapped = {**WRAPPED[n % len(WRAPPED)], "return_sequences": seq, "return_state": state}
        config = {"merge_mode": mode, "layer": wrapped}
        backward = BACKWARD[n % len(BACKWARD)]
        if backward is not None and (mode in ("concat", None) or backward["units"] == 2):
            config["backward_layer"] = {**backward, "return_sequences": seq, "return_state": state,
                                        "go_backwards": True}
        cases.append(pytest.param(config, n, bool(n % 2), bool((n // 2) % 2), id=f"Bidirectional-{mode}-{n}"))
    return cases


@pytest.mark.parametrize(("config", "seed", "masked", "initial"), _bidirectional_cases())
def test_bidirectional_backward_matches_finite_differences(config, seed, masked, initial):
    got = check_gradients(BIDIRECTIONAL, config, seed, masked=masked, initial=initial)
    assert all(key.startswith(("forward_", "backward_")) for key in got.trace[0])


def test_seed_case_one_step_by_hand():
    """cases/seed/seed-linear-gates.yaml, linear gates, zero states, x = [1, 0]; cotangent 1 on every unit of h
    (return_state: h is the final state), none on the others. Forward (the file's description):
        z = [i 5,2,1 | f 1,1,0 | c 0,2,1 | o 2,1,0];  c = f*0 + i*c~ = [0,4,1];  h = o*c = [0,4,0]
    Backward, dh = [1,1,1]:
        do  = dh * c       = [0,4,1]          dc = dh * o  = [2,1,0]         (g linear: g'(c) = 1)
        di  = dc * c~      = [0,2,0]          df = dc * c_prev = [0,0,0]
        dc~ = dc * i       = [10,2,0]         dc_prev = dc * f = [2,1,0]
        dz  = [di | df | dc~ | do] = [0,2,0 | 0,0,0 | 10,2,0 | 0,4,1]     (r linear)
        d kernel = x^T dz: row 0 = dz, row 1 = 0;   d bias = dz;   d recurrent_kernel = h_prev^T dz = 0
        dx = dz @ kernel^T: row 0 . dz = 2 + 2 + 4 = 8;   row 1 . dz = 2 + 2 = 4
        dh_prev = dz @ recurrent_kernel^T:
            U row 0 [1,0,0 | 1,2,1 | 0,1,2 | 0,1,0] . dz = 0 + 0 + 2 + 4 = 6
            U row 1 [1,1,0 | 0,2,1 | 0,1,2 | 2,0,0] . dz = 2 + 0 + 2 + 0 = 4
            U row 2 [1,0,1 | 2,0,1 | 0,1,1 | 0,1,0] . dz = 0 + 0 + 2 + 4 = 6
    """
    case = yaml.safe_load((ROOT / "cases/seed/seed-linear-gates.yaml").read_text())
    weights = {name: np.array(value, dtype=float) for name, value in case["weights"].items()}
    x = np.array(case["input"], dtype=float)
    zeros = np.zeros((1, 3))
    got = LSTM.backward(weights, case["config"], "keras3", x, {"h": zeros, "c": zeros}, None, {"h": np.ones((1, 3))})
    dz = [0, 2, 0, 0, 0, 0, 10, 2, 0, 0, 4, 1]
    np.testing.assert_array_equal(got.weights["kernel"], [dz, [0] * 12])
    np.testing.assert_array_equal(got.weights["bias"], dz)
    np.testing.assert_array_equal(got.weights["recurrent_kernel"], np.zeros((3, 12)))
    np.testing.assert_array_equal(got.input, [[[8, 4]]])
    np.testing.assert_array_equal(got.initial_state["h"], [[6, 4, 6]])
    np.testing.assert_array_equal(got.initial_state["c"], [[2, 1, 0]])
    (step,) = got.trace
    np.testing.assert_array_equal(step["dh"], [[1, 1, 1]])
    np.testing.assert_array_equal(step["dc"], [[0, 0, 0]])
    np.testing.assert_array_equal(step["doutput"], [[0, 0, 0]])


def test_masked_step_passes_state_cotangent_through():
    """SimpleRNN, units 1, linear, h = x + h_prev: one masked step between two. L = h_final, so dL/dh0 = 1 and the
    masked step's input gets no gradient; trace: the cotangent arriving at every step is 1."""
    weights = {"kernel": np.array([[1.0]]), "recurrent_kernel": np.array([[1.0]])}
    config = {"units": 1, "activation": None, "use_bias": False, "return_state": True}
    got = SIMPLE_RNN.backward(weights, config, "keras3", np.array([[[1.0], [2.0], [3.0]]]), {"h": np.zeros((1, 1))},
                              np.array([[True, False, True]]), {"h": np.ones((1, 1))})
    np.testing.assert_array_equal(got.input.ravel(), [1, 0, 1])
    np.testing.assert_array_equal(got.initial_state["h"], [[1]])
    np.testing.assert_array_equal([step["dh"].item() for step in got.trace], [1, 1, 1])
    assert set(got.weights) == {"kernel", "recurrent_kernel"}  # no bias entry without use_bias


def test_worst_relative_error_is_reported():
    """Runs last in this file: the worst relative error over the finite-difference cases above (pytest -s)."""
    if WORST:
        print(f"\nworst relative error over {len(WORST)} cases: {max(WORST):.3g}")
        assert max(WORST) <= RTOL


@pytest.mark.parametrize("flavor", ["keras3", "keras2"])
def test_every_activation_derivative_matches_finite_differences(flavor):
    """Every activation the reference implements, through Activation.vjp (softmax and log_softmax over the units
    axis), at points away from every kink (seeded normal values, none within 1e-3 of one)."""
    from harness.activations import get_activation, supported_names  # noqa: PLC0415

    x = np.random.default_rng(0).normal(scale=2.5, size=(3, 4))
    g = np.random.default_rng(1).normal(size=(3, 4))
    for name in sorted(supported_names(flavor)):
        act = get_activation(name, flavor)
        fd = np.zeros_like(x)
        for index in np.ndindex(x.shape):
            plus, minus = x.copy(), x.copy()
            plus[index] += STEP
            minus[index] -= STEP
            fd[index] = (np.sum(g * act(plus)) - np.sum(g * act(minus))) / (2 * STEP)
        got = act.vjp(x, act(x), g)
        assert np.abs(got - fd).max() <= RTOL * max(1.0, np.abs(fd).max()), name
        if act.elementwise:
            np.testing.assert_allclose(got, g * act.derivative(x), rtol=0, atol=0)
        else:
            with pytest.raises(ValueError, match="use Activation.vjp"):
                act.derivative(x)
