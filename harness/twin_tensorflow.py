"""The 16-bit twin of Keras's LSTM on TensorFlow's CPU kernels: the reference's computation, rounded op by op
exactly as those kernels round it (issue 17).

Against float64, Keras's 16-bit error is a few unit roundoffs per step, as large as a small defect: a bound that
leaves room for it lets h x (1 + 1e-2) through in a quarter of short cases. Against this twin, Keras on
TensorFlow (eager and graph; XLA fuses and rounds elsewhere) is bit-identical, so the twin bound can be a few
unit roundoffs and a multiple of the measured noise, and what exceeds it is not rounding. What the twin
emulates, each checked on this machine over every finite float16 value or on matrices of 4 to 32 terms
(tests/test_twin_tensorflow.py, bench/kernel_rounding.py):

    MatMul          accumulates in float32 and rounds once            (= the exact product, rounded)
    Add, Mul        round once
    tanh            rounds once                                       (TF differs at 2 of 63488 values, by 1 ulp)
    sigmoid         Eigen's generic logistic in half: e = exp(x) rounded; 1 if e is inf, else e / (1 + e),
                    each step rounded                                 (differs at 2 values, by 1 ulp)
    relu, linear    exact
    hard_sigmoid    Keras 3: relu6(x + 3) / 6, each op rounded        (identical everywhere), eager only: in
                    graph mode Grappler rewrites its constants (the division, and more inside the cell)
    softsign        x / (|x| + 1), each op rounded                    (identical everywhere)
    elu             x < 0: exp(x) - 1, each op rounded                (identical everywhere)
    swish (silu)    x sigmoid(x), sigmoid as above                    (differs where sigmoid does)
    gelu            tf.nn.gelu: (0.5 x) erfc(-x (1/sqrt 2)), each op rounded  (identical everywhere), eager only
    softplus        TensorFlow's Softplus kernel: t = log(Eigen's epsilon) + 2, each rounded; x > -t: x;
                    x < t: exp(x); else log1p(exp(x)), each op in float32 and rounded  (identical everywhere). Eigen's
                    float16 epsilon is 2^-13, not 2^-10 (bfloat16: 2^-7), so t = -7.0 in float16

bfloat16 (and mixed_bfloat16) rounds with the same ops and agrees on every bfloat16 value but the subnormals
(below 1.2e-38, which TensorFlow flushes to zero; the twin's absolute bound is far above them), in eager mode
only: in graph mode TensorFlow's bfloat16 LSTM differs from it by up to thousands of u in long cases (fused
ops that keep float32 between them). And the LSTM
cell in Keras 3's op order: implementation 2, z = ((x W + h U) + b); implementation 1,
z = ((x W + b) + h U); c = f c_prev + i g(z_c); h = o g(c); alone, or as both directions of a Bidirectional
(its sum, mul or ave merge rounded once, as Keras's; its rebuilt layers at implementation 2, as Keras
runs them). GRU and SimpleRNN: the reference's cells, which already round op by op in Keras 3's order, with
these activations. Any other layer, activation or dtype has no twin
(`why_not` says why), and the measured default alone judges it. The weights are taken from the case file, as
for the reference: nothing here reads the layer.
"""

from __future__ import annotations

import functools
import math
import os

import numpy as np

from harness import precision
from harness.activations import canonical_name
from harness.case import Case
from harness.layers.bidirectional import BidirectionalSpec
from harness.layers.gru import GRUSpec
from harness.layers.lstm import LSTMSpec
from harness.layers.simple_rnn import SimpleRNNSpec
from harness.reference_runner import reference_outputs, run_reference

# HARNESS_TWIN=off turns it off (a machine whose TensorFlow kernels round differently from these: say so in an
# issue); bench/sensitivity.py turns it off to print the figures without it in the same run
ENABLED = os.environ.get("HARNESS_TWIN", "on").strip().lower() not in ("off", "0", "false", "no")
TARGET = "tensorflow"
MODES = ("eager", "graph")  # xla fuses elementwise ops and keeps float32 between them: not this rounding
DTYPES = ("float16", "mixed_float16", "bfloat16", "mixed_bfloat16")


_h = precision.emulated_rounding("float16", 0)  # to nearest float16, kept as float64: the activations' default


def _sigmoid(z: np.ndarray, r=_h) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        e = r(np.exp(z))
        return np.where(np.isinf(e) & (e > 0), 1.0, r(e / r(1.0 + e)))


# Eigen's NumTraits<T>::epsilon(), which TensorFlow's Softplus kernel takes its threshold from: for half it is
# 0x0800 = 2^-13 (the float16 machine epsilon is 2^-10; measured: 2^-10 gives 867 wrong values, 2^-13 none)
_EIGEN_EPSILON = {"float16": 2.0 ** -13, "bfloat16": 2.0 ** -7}


def _softplus(z: np.ndarray, r=_h) -> np.ndarray:
    threshold = r(r(np.log(_EIGEN_EPSILON[r.compute])) + 2.0)
    with np.errstate(over="ignore"):
        # exp and log1p in float32, as Eigen computes them for 16-bit types (in float64, then rounded: 2 float16
        # values differ)
        e = r(np.exp(z.astype(np.float32)))
        return np.where(z > -threshold, z, np.where(z < threshold, e, r(np.log1p(e.astype(np.float32)))))


_erfc = np.vectorize(math.erfc, otypes=[np.float64])
_SQRT_HALF = 0.7071067811865476

# name -> f(z, rounding); eager mode. GRAPH_ACTIVATIONS below leaves out what graph mode rewrites.
ACTIVATIONS = {
    "tanh": lambda z, r=_h: r(np.tanh(z)),
    "sigmoid": _sigmoid,
    "relu": lambda z, r=_h: r(np.maximum(z, 0.0)),
    "linear": lambda z, r=_h: z,
    "hard_sigmoid": lambda z, r=_h: r(np.clip(r(z + 3.0), 0.0, 6.0) / 6.0),
    "softsign": lambda z, r=_h: r(z / r(np.abs(z) + 1.0)),
    "elu": lambda z, r=_h: np.where(z < 0, r(r(np.exp(np.minimum(z, 0.0))) - 1.0), z),
    "swish": lambda z, r=_h: r(z * _sigmoid(z, r)),
    # tf.nn.gelu(approximate=False): 0.5 x erfc(-x / sqrt(2)), with the constant 1/sqrt(2) in the compute dtype
    "gelu": lambda z, r=_h: r(r(0.5 * z) * r(_erfc(r(-z * r(_SQRT_HALF))))),
    "softplus": _softplus,
}
# Grappler rewrites the constants of hard_sigmoid and gelu in graph mode (the division by 6 becomes a product with
# 1/6, and more inside the cell): measured to differ, so no twin for them there
GRAPH_ACTIVATIONS = {name: f for name, f in ACTIVATIONS.items() if name not in ("hard_sigmoid", "gelu")}


def why_not(case: Case, target: str, mode: str) -> str | None:
    """Why the case has no twin on this target and mode; None when it has one."""
    if target != TARGET or mode not in MODES:
        return f"the twin emulates TensorFlow's CPU kernels in {' and '.join(MODES)} mode"
    if case.layer not in LAYERS and case.layer != "Bidirectional":
        return f"the twin models {', '.join(LAYERS)} and Bidirectional, not {case.layer}"
    if case.dtype not in DTYPES:
        return f"the twin computes in 16 bits ({', '.join(DTYPES)}), not {case.dtype}"
    if mode == "graph" and precision.compute_dtype(case.dtype) == "bfloat16":
        return "graph mode rewrites bfloat16 ops (oneDNN fusions that keep float32 between them): eager only"
    table = GRAPH_ACTIVATIONS if mode == "graph" else ACTIVATIONS
    for name in case.spec.activations(case.config).values():  # a Bidirectional's: both directions'
        if canonical_name(name) not in table:
            return f"the twin has no 16-bit {canonical_name(name)} as TensorFlow computes it in {mode} mode"
    return None


class _TwinActivations:
    """A reference layer spec whose activations are TensorFlow's 16-bit kernels (ACTIVATIONS), rounded by
    `rounding`. GRU and SimpleRNN need nothing else: their reference steps already round op by op in Keras 3's
    order."""

    def __init__(self, table: dict, rounding):
        self.table, self.rounding = table, rounding

    def resolved_activations(self, config, flavor):
        return {role: functools.partial(self.table[canonical_name(name)], r=self.rounding)
                for role, name in self.activations(config).items()}


class _TwinLSTM(_TwinActivations, LSTMSpec):
    """The LSTM cell in Keras 3's op order (the reference's LSTM step adds in another order), each op rounded
    by `q` (the compute dtype, to nearest); the driver, states and outputs are the reference's."""

    def step_function(self, weights, config, flavor, q):
        units = config["units"]
        acts = self.resolved_activations(config, flavor)
        activation, gate = acts["activation"], acts["recurrent_activation"]
        recurrent, bias = weights["recurrent_kernel"], weights.get("bias")
        bias_first = config.get("implementation", 2) == 1  # implementation 1 adds the bias to x W per gate first

        def step(xw_t, states):
            z = q(xw_t)
            if bias is not None and bias_first:
                z = q(z + bias)
            z = q(z + q(states["h"] @ recurrent))
            if bias is not None and not bias_first:
                z = q(z + bias)
            i, f, c_candidate, o = (z[:, k * units:(k + 1) * units] for k in range(4))
            i, f, o = gate(i), gate(f), gate(o)
            c = q(q(f * states["c"]) + q(i * activation(c_candidate)))
            h = q(o * activation(c))
            return h, {"h": h, "c": c}, {}

        return step


class _TwinGRU(_TwinActivations, GRUSpec):
    pass


class _TwinSimpleRNN(_TwinActivations, SimpleRNNSpec):
    pass


class _TwinBidirectional(BidirectionalSpec):
    """Keras's Bidirectional rebuilds its forward layer, and its backward one unless given, from the layer's
    config, and Keras 3's LSTM and GRU leave `implementation` out of get_config: those directions run
    implementation 2 whatever the case says (docs/defects/keras-rnn-config-drops-implementation.md). The
    float64 reference does not care (the two are the same sums); the twin rounds as Keras really runs."""

    def directions(self, config: dict) -> dict:
        rebuilt = ("forward",) if config.get("backward_layer") else ("forward", "backward")
        return {direction: (spec, {key: value for key, value in inner.items()
                                   if key != "implementation" or direction not in rebuilt})
                for direction, (spec, inner) in super().directions(config).items()}


LAYERS = ("LSTM", "GRU", "SimpleRNN")


def _twin_spec(case: Case, mode: str):
    """The twin's spec of the case's layer; a Bidirectional's merge (sum, mul, ave: one rounding each; ave's
    halving is exact) is the reference's, rounded as Keras rounds it."""
    table = GRAPH_ACTIVATIONS if mode == "graph" else ACTIVATIONS
    rounding = precision.emulated_rounding(case.dtype, 0)  # what run_reference rounds with: the same function
    layers = {name: spec(table, rounding) for name, spec in
              (("LSTM", _TwinLSTM), ("GRU", _TwinGRU), ("SimpleRNN", _TwinSimpleRNN))}
    return _TwinBidirectional(layers) if case.layer == "Bidirectional" else layers[case.layer]


def twin_calls(case: Case, mode: str) -> list[dict[str, np.ndarray]]:
    """Per call, the twin's value of every output the reference returns, in `mode` (call why_not first): the
    reference's run rounded to nearest (rounding_sample 0: the case's weights and inputs rounded as Keras rounds
    them, states carried between calls), with the twin's cell."""
    return [reference_outputs(case, result)
            for result in run_reference(case, "keras3", rounding_sample=0, spec=_twin_spec(case, mode))]
