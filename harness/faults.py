"""Deliberately broken versions of Keras's LSTM, patched in-process one at a time (for `harness selftest`).

A harness that cannot fail is worthless: each fault here is a plausible Keras defect, and the shipped
corpus must catch every one. Cell faults replace `LSTMCell.call` with a re-statement of Keras's own
step that carries the defect; layer faults wrap `LSTM.call`. Keras 3 only.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np


@dataclass(frozen=True)
class Fault:
    name: str
    description: str
    install: Callable[[], contextlib.AbstractContextManager]


def _lstm_module():
    from harness.targets.tensorflow import import_keras

    import_keras()
    from keras.src.layers.rnn import lstm  # noqa: PLC0415 - Keras internals, patched on purpose

    return lstm


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


def _cell_fault(kind: str, scale: float = 1.0):
    """A faulty LSTMCell.call: Keras's fused step (implementation 2 math) with one defect."""

    @contextlib.contextmanager
    def install():
        lstm = _lstm_module()
        import tensorflow as tf  # noqa: PLC0415
        from keras import ops  # noqa: PLC0415

        def replacement(original):
            def call(self, inputs, states, training=False):
                h_tm1, c_tm1 = states[0], states[1]
                z = ops.matmul(inputs, self.kernel) + ops.matmul(h_tm1, self.recurrent_kernel)
                scaled = kind == "bias-scaled" or (kind == "bias-scaled-when-compiled" and not tf.executing_eagerly())
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
          _cell_fault("bias-scaled-when-compiled")),
)
