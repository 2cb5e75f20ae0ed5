"""Deliberately broken versions of Keras's recurrent layers, patched one at a time into the process that
runs Keras (for `harness selftest`): this process for the tensorflow target, the worker process of the
jax and torch targets (harness/targets/worker.py installs a fault there by its name, `by_name`).

A harness that cannot fail is worthless: each fault here is a plausible Keras defect, and the shipped
corpus must catch every one. Cell faults replace a cell's `call` (LSTMCell, GRUCell, SimpleRNNCell) with
a re-statement of Keras's own step that carries the defect; layer faults wrap `LSTM.call`; Bidirectional
faults re-state `Bidirectional.call`'s merge. Keras 3 only, written with `keras.ops` so that one fault
runs on every Keras 3 backend; a fault that needs one backend's API says so in `backends`. Each fault
names the layer it breaks, and each layer has a control (the re-statement without a defect) that must
pass everything first.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np


@dataclass(frozen=True)
class Fault:
    name: str
    description: str
    install: Callable[[], contextlib.AbstractContextManager]
    layer: str = "LSTM"  # the layer it breaks (Bidirectional cases wrap it too)
    backends: tuple[str, ...] | None = None  # the Keras backends it can be written for; None: every one
    why_backends: str = ""  # why only those, for "not applicable on jax: ..."
    gradients_only: bool = False  # forward values bit-identical: only a target that computes gradients sees it


def _rnn_module(name: str):
    """Keras's module `name`, from the Keras already running in this process (a worker imports it on its own
    backend before installing a fault), or the tensorflow target's Keras."""
    if "keras" not in sys.modules:
        from harness.targets.tensorflow import import_keras  # noqa: PLC0415

        import_keras()
    return importlib.import_module(f"keras.src.layers.rnn.{name}")  # Keras internals, patched on purpose


def _lstm_module():
    return _rnn_module("lstm")


@contextlib.contextmanager
def _patched(cls, name: str, replacement) -> Iterator[None]:
    original = getattr(cls, name)
    setattr(cls, name, replacement(original))
    try:
        yield
    finally:
        setattr(cls, name, original)


def _piecewise_linear(activation, ops, dtype):
    """The activation replaced by linear interpolation between knots 0.5 apart on [-8, 8], constant outside."""
    knots = np.arange(-8.0, 8.0 + 1e-9, 0.5)
    values = np.asarray(activation(knots.astype(dtype)), dtype=np.float64)
    slopes = np.diff(values) / np.diff(knots)

    def approx(x):
        x = ops.clip(x, knots[0], knots[-1])
        y = values[0] + slopes[0] * (x - knots[0])
        for k in range(1, len(slopes)):
            y = y + (slopes[k] - slopes[k - 1]) * ops.relu(x - knots[k])
        return y

    return approx


def _scaled_gradient(ops, value, factor: float):
    """`value` unchanged, whose gradient comes back multiplied by `factor`, on any backend: v - stop_gradient(v)
    is exactly zero forward (so the sum is bit-identical to v) and has gradient 1."""
    frozen = ops.stop_gradient(value)
    return frozen + factor * (value - frozen)


def _executing_eagerly() -> bool:
    import tensorflow as tf  # noqa: PLC0415 - only for the fault that needs it (TensorFlow only)

    return tf.executing_eagerly()


def _cell_fault(kind: str, scale: float = 1.0):
    """A faulty LSTMCell.call: Keras's fused step (implementation 2 math) with one defect."""

    @contextlib.contextmanager
    def install():
        lstm = _lstm_module()
        from keras import ops  # noqa: PLC0415

        def replacement(original):
            def call(self, inputs, states, training=False):
                h_tm1, c_tm1 = states[0], states[1]
                if kind == "stop-gradient-h":  # forward values untouched: only training can tell
                    h_tm1 = ops.stop_gradient(h_tm1)
                if kind == "stop-gradient-c":
                    c_tm1 = ops.stop_gradient(c_tm1)
                kernel = _scaled_gradient(ops, self.kernel, 1.01) if kind == "kernel-gradient-scaled" else self.kernel
                z = ops.matmul(inputs, kernel) + ops.matmul(h_tm1, self.recurrent_kernel)
                scaled = kind == "bias-scaled" or (kind == "bias-scaled-when-compiled" and not _executing_eagerly())
                if self.use_bias and kind != "bias-ignored":
                    z = z + (self.bias * 1.001 if scaled else self.bias)
                if kind == "recurrent-kernel-ignored":
                    z = ops.matmul(inputs, self.kernel) + (self.bias if self.use_bias else 0.0)
                z_i, z_f, z_c, z_o = ops.split(z, 4, axis=1)
                r = self.recurrent_activation
                if kind == "recurrent-activation-piecewise-linear":
                    r = _piecewise_linear(self.recurrent_activation, ops, self.compute_dtype)
                i, f, o = r(z_i), r(z_f), r(z_o)
                if kind == "input-forget-swapped":
                    i, f = f, i
                if kind == "forget-candidate-blocks-swapped":
                    z_f, z_c = z_c, z_f
                    f = r(z_f)
                g = self.activation
                if kind == "activation-piecewise-linear":
                    g = _piecewise_linear(self.activation, ops, self.compute_dtype)
                c = f * c_tm1 + i * g(z_c)
                h = g(c) if kind == "output-gate-dropped" else o * g(c)
                if scale != 1.0:  # convert_to_tensor with a dtype: ops.cast would round 1 + eps through float32
                    h = h * ops.convert_to_tensor(scale, dtype=h.dtype)
                return h, [h, c]

            return call

        with _patched(lstm.LSTMCell, "call", replacement):
            yield

    return install


def _layer_fault(kind: str):
    """A faulty LSTM.call: the layer mishandles its mask, state, direction or returned states."""

    @contextlib.contextmanager
    def install():
        lstm = _lstm_module()

        def replacement(original):
            def call(self, sequences, initial_state=None, mask=None, training=False):
                if kind == "mask-ignored":
                    mask = None
                if kind == "initial-state-ignored":
                    initial_state = None
                if kind == "stateful-carry-dropped" and self.stateful and initial_state is None:
                    self.reset_states()
                if kind == "initial-carry-ignored" and initial_state is not None:
                    initial_state = [initial_state[0], initial_state[1] * 0]
                saved_zero = getattr(self, "zero_output_for_mask", False)
                if kind == "masked-steps-output-zero":
                    self.zero_output_for_mask = True
                saved = self.go_backwards
                if kind == "go-backwards-ignored":
                    self.go_backwards = False
                try:
                    out = original(self, sequences, initial_state=initial_state, mask=mask, training=training)
                finally:
                    self.go_backwards = saved
                    self.zero_output_for_mask = saved_zero
                if kind == "h-c-swapped" and self.return_state:
                    out = [out[0], out[2], out[1]]
                if kind == "backwards-sequence-reordered" and self.go_backwards and self.return_sequences:
                    from keras import ops  # noqa: PLC0415

                    first = ops.flip(out[0], axis=1) if isinstance(out, (list, tuple)) else ops.flip(out, axis=1)
                    out = [first, *out[1:]] if isinstance(out, (list, tuple)) else first
                return out

            return call

        with _patched(lstm.LSTM, "call", replacement):
            yield

    return install


# The re-stated cell with no defect: it must pass every case, or "caught" would mean nothing.
CONTROL = Fault("control-no-defect", "Keras's step re-stated without a defect (must pass everything)", _cell_fault("none"))


def h_scaled(epsilon: float) -> Fault:
    return Fault(f"h-scaled-{epsilon:g}", f"h = o * g(c) * (1 + {epsilon:g}), fed back and returned",
                 _cell_fault("h-scaled", 1.0 + epsilon))


@contextlib.contextmanager
def _reset_states_ignored() -> Iterator[None]:
    lstm = _lstm_module()
    with _patched(lstm.LSTM, "reset_states", lambda original: lambda self: None):
        yield


def _gru_fault(kind: str):
    """A faulty GRUCell.call: Keras's step (implementation 2 math, both reset_after forms) with one defect."""

    @contextlib.contextmanager
    def install():
        gru = _rnn_module("gru")
        from keras import ops  # noqa: PLC0415

        def replacement(original):
            def call(self, inputs, states, training=False):
                h_tm1 = states[0] if isinstance(states, (list, tuple)) else states
                n = self.units
                input_bias = recurrent_bias = None
                if self.use_bias:
                    if self.reset_after:
                        input_bias, recurrent_bias = self.bias[0], self.bias[1]
                        if kind == "recurrent-bias-dropped":
                            recurrent_bias = recurrent_bias * 0
                    else:
                        input_bias = self.bias
                matrix_x = ops.matmul(inputs, self.kernel)
                if input_bias is not None:
                    matrix_x = matrix_x + input_bias
                x_z, x_r, x_h = matrix_x[:, :n], matrix_x[:, n:2 * n], matrix_x[:, 2 * n:]
                if kind == "z-r-blocks-swapped":
                    x_z, x_r = x_r, x_z
                if self.reset_after:
                    inner = ops.matmul(h_tm1, self.recurrent_kernel)
                    if recurrent_bias is not None:
                        inner = inner + recurrent_bias
                else:
                    inner = ops.matmul(h_tm1, self.recurrent_kernel[:, :2 * n])
                z = self.recurrent_activation(x_z + inner[:, :n])
                r = self.recurrent_activation(x_r + inner[:, n:2 * n])
                if self.reset_after and kind != "reset-before-product":
                    recurrent_h = r * inner[:, 2 * n:]
                else:
                    recurrent_h = ops.matmul(r * h_tm1, self.recurrent_kernel[:, 2 * n:])
                    if self.reset_after and recurrent_bias is not None:
                        recurrent_h = recurrent_h + recurrent_bias[2 * n:]
                hh = self.activation(x_h + recurrent_h)
                h = (1 - z) * h_tm1 + z * hh if kind == "interpolation-flipped" else z * h_tm1 + (1 - z) * hh
                return h, [h] if isinstance(states, (list, tuple)) else h

            return call

        with _patched(gru.GRUCell, "call", replacement):
            yield

    return install


def _simple_rnn_fault(kind: str):
    """A faulty SimpleRNNCell.call: Keras's step with one defect."""

    @contextlib.contextmanager
    def install():
        simple_rnn = _rnn_module("simple_rnn")
        from keras import ops  # noqa: PLC0415

        def replacement(original):
            def call(self, sequence, states, training=False):
                prev_output = states[0] if isinstance(states, (list, tuple)) else states
                h = ops.matmul(sequence, self.kernel)
                if self.bias is not None:
                    h = h + self.bias
                    if kind == "bias-added-twice":
                        h = h + self.bias
                kernel = ops.transpose(self.recurrent_kernel) if kind == "recurrent-kernel-transposed" else self.recurrent_kernel
                output = h + ops.matmul(prev_output, kernel)
                if self.activation is not None:
                    output = self.activation(output)
                return output, [output] if isinstance(states, (list, tuple)) else output

            return call

        with _patched(simple_rnn.SimpleRNNCell, "call", replacement):
            yield

    return install


def _bidirectional_fault(kind: str):
    """A faulty Bidirectional.call: Keras's two-layer path re-stated with one defect."""

    @contextlib.contextmanager
    def install():
        bidirectional = _rnn_module("bidirectional")
        from keras import ops  # noqa: PLC0415

        def replacement(original):
            def call(self, sequences, initial_state=None, mask=None, training=None):
                forward_state = backward_state = None
                if initial_state is not None:
                    half = len(initial_state) // 2
                    forward_state, backward_state = initial_state[:half], initial_state[half:]
                y = self.forward_layer(sequences, initial_state=forward_state, mask=mask, training=training)
                y_rev = self.backward_layer(sequences, initial_state=backward_state, mask=mask, training=training)
                states = ()
                if self.return_state:
                    forward_states, backward_states = tuple(y[1:]), tuple(y_rev[1:])
                    if kind == "states-swapped" and len(forward_states) == len(backward_states):
                        forward_states, backward_states = backward_states, forward_states
                    states = forward_states + backward_states
                    y, y_rev = y[0], y_rev[0]
                if self.return_sequences and kind != "backward-not-flipped":
                    y_rev = ops.flip(y_rev, axis=1)
                if kind == "halves-swapped":
                    y, y_rev = y_rev, y
                merged = {"concat": lambda: ops.concatenate([y, y_rev], axis=-1), "sum": lambda: y + y_rev,
                          "ave": lambda: (y + y_rev) / 2, "mul": lambda: y * y_rev,
                          None: lambda: (y, y_rev)}[self.merge_mode]()
                if self.return_state:
                    return (merged + states) if self.merge_mode is None else (merged,) + states
                return merged

            return call

        with _patched(bidirectional.Bidirectional, "call", replacement):
            yield

    return install


# Per layer: the re-stated code without a defect. It must pass every case, or "caught" would mean nothing.
CONTROLS: dict[str, Fault] = {
    "GRU": Fault("gru-control-no-defect", "Keras's GRU step re-stated without a defect", _gru_fault("none"), "GRU"),
    "SimpleRNN": Fault("simple-rnn-control-no-defect", "Keras's SimpleRNN step re-stated without a defect",
                       _simple_rnn_fault("none"), "SimpleRNN"),
    "Bidirectional": Fault("bidirectional-control-no-defect", "Keras's Bidirectional merge re-stated without a defect",
                           _bidirectional_fault("none"), "Bidirectional"),
}

FAMILY_FAULTS: tuple[Fault, ...] = (
    Fault("gru-z-r-swapped", "GRU: the z and r column blocks are read in the wrong order", _gru_fault("z-r-blocks-swapped"), "GRU"),
    Fault("gru-interpolation-flipped", "GRU: h = (1 - z) * h_prev + z * hh (the update gate reversed)",
          _gru_fault("interpolation-flipped"), "GRU"),
    Fault("gru-recurrent-bias-dropped", "GRU (reset_after): the recurrent bias row is ignored",
          _gru_fault("recurrent-bias-dropped"), "GRU"),
    Fault("gru-reset-before-product", "GRU (reset_after): the reset gate applied before the recurrent product",
          _gru_fault("reset-before-product"), "GRU"),
    Fault("simple-rnn-bias-added-twice", "SimpleRNN: the bias is added twice", _simple_rnn_fault("bias-added-twice"),
          "SimpleRNN"),
    Fault("simple-rnn-recurrent-kernel-transposed", "SimpleRNN: h_prev @ recurrent_kernel^T",
          _simple_rnn_fault("recurrent-kernel-transposed"), "SimpleRNN"),
    Fault("bidirectional-halves-swapped", "Bidirectional: the merged halves in the wrong order (backward first)",
          _bidirectional_fault("halves-swapped"), "Bidirectional"),
    Fault("bidirectional-backward-not-flipped", "Bidirectional: the backward sequence is not flipped back to input order",
          _bidirectional_fault("backward-not-flipped"), "Bidirectional"),
    Fault("bidirectional-states-swapped", "Bidirectional: forward and backward states swapped in the returned states",
          _bidirectional_fault("states-swapped"), "Bidirectional"),
)

# Faults that leave every forward value bit-identical and break only the gradients: caught only by
# gradient cases (cases/gradients/).
GRADIENT_FAULTS: tuple[Fault, ...] = (
    Fault("stop-gradient-previous-h", "backprop truncated: stop_gradient on h_{t-1} (forward unchanged)",
          _cell_fault("stop-gradient-h"), gradients_only=True),
    Fault("stop-gradient-previous-c", "backprop truncated: stop_gradient on c_{t-1} (forward unchanged)",
          _cell_fault("stop-gradient-c"), gradients_only=True),
    Fault("kernel-gradient-scaled", "the kernel's gradient is multiplied by 1.01 (forward unchanged)",
          _cell_fault("kernel-gradient-scaled"), gradients_only=True),
)

FAULTS: tuple[Fault, ...] = (
    Fault("output-gate-dropped", "h = g(c): the output gate is forgotten", _cell_fault("output-gate-dropped")),
    Fault("input-forget-swapped", "the input and forget gates are swapped", _cell_fault("input-forget-swapped")),
    Fault("bias-scaled", "the bias is multiplied by 1.001", _cell_fault("bias-scaled")),
    Fault("mask-ignored", "the mask is dropped", _layer_fault("mask-ignored")),
    Fault("initial-state-ignored", "initial_state is dropped", _layer_fault("initial-state-ignored")),
    Fault("go-backwards-ignored", "go_backwards is treated as false", _layer_fault("go-backwards-ignored")),
    Fault("h-c-swapped", "h and c are swapped in the returned states", _layer_fault("h-c-swapped")),
    Fault("stateful-carry-dropped", "a stateful layer forgets its state between calls", _layer_fault("stateful-carry-dropped")),
    h_scaled(1e-4),
    h_scaled(1e-5),
    Fault("recurrent-activation-piecewise-linear",
          "the recurrent activation is replaced by linear interpolation between knots 0.5 apart",
          _cell_fault("recurrent-activation-piecewise-linear")),
)

# Further plausible defects, beyond the list the project started with: the corpus must catch them too.
MORE_FAULTS: tuple[Fault, ...] = (
    Fault("forget-candidate-blocks-swapped", "the f and c column blocks of z are read in the wrong order",
          _cell_fault("forget-candidate-blocks-swapped")),
    Fault("bias-ignored", "the bias is not added", _cell_fault("bias-ignored")),
    Fault("recurrent-kernel-ignored", "h_{t-1} @ recurrent_kernel is dropped", _cell_fault("recurrent-kernel-ignored")),
    Fault("activation-piecewise-linear", "the activation (not the gates) is replaced by a piecewise-linear interpolation",
          _cell_fault("activation-piecewise-linear")),
    Fault("masked-steps-output-zero", "masked steps output zeros instead of repeating the last output",
          _layer_fault("masked-steps-output-zero")),
    Fault("initial-carry-ignored", "initial_state's c is replaced by zeros (h is kept)", _layer_fault("initial-carry-ignored")),
    Fault("backwards-sequence-reordered", "with go_backwards the sequence is returned in input order",
          _layer_fault("backwards-sequence-reordered")),
    Fault("reset-states-ignored", "reset_states() does nothing", _reset_states_ignored),
    Fault("bias-scaled-when-compiled", "the bias is multiplied by 1.001 under tf.function only (eager is right)",
          _cell_fault("bias-scaled-when-compiled"), backends=("tensorflow",),
          why_backends="it tells compiled from eager with tf.executing_eagerly(), a TensorFlow API (no test of "
                       "\"compiled\" works on every backend: JAX traces even its eager loop, lax.scan)"),
)

# Every fault `harness selftest` knows, by name: what a worker process is told to install.
EVERY: tuple[Fault, ...] = FAULTS + MORE_FAULTS + FAMILY_FAULTS + GRADIENT_FAULTS
_H_SCALED = "h-scaled-"


def by_name(name: str) -> Fault:
    """The fault called `name`: a listed fault, a control, or any `h-scaled-EPS` (the perturbation search's);
    KeyError for an unknown name."""
    for fault in (*EVERY, CONTROL, *CONTROLS.values()):
        if fault.name == name:
            return fault
    if name.startswith(_H_SCALED):
        try:
            epsilon = float(name[len(_H_SCALED):])
        except ValueError:
            raise KeyError(name) from None
        if h_scaled(epsilon).name == name:
            return h_scaled(epsilon)
    raise KeyError(name)
