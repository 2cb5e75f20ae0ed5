"""Adapters that tests run in worker processes (InWorker imports them there by name, from tests/, which is on
the path pytest gives the workers): a Keras cell patched inside the worker, and a worker that dies."""

from __future__ import annotations

import os

from harness.targets.jax import KerasOnJax
from harness.targets.torch import KerasOnTorch


class _StatesGradientStopped:
    """While differentiating, Keras's own LSTMCell.call gets its states through stop_gradient: every forward
    value is unchanged, backprop through time is cut (a plausible gradient-only defect, patched where the
    backend runs). The forward run is the real one."""

    def gradients(self, case, mode):
        from keras import ops  # noqa: PLC0415 - the worker's Keras, on its backend
        from keras.src.layers.rnn import lstm  # noqa: PLC0415

        original = lstm.LSTMCell.call

        def call(cell, inputs, states, training=False):
            return original(cell, inputs, [ops.stop_gradient(s) for s in states], training=training)

        lstm.LSTMCell.call = call
        try:
            return super().gradients(case, mode)
        finally:
            lstm.LSTMCell.call = original


class JaxStatesGradientStopped(_StatesGradientStopped, KerasOnJax):
    pass


class TorchStatesGradientStopped(_StatesGradientStopped, KerasOnTorch):
    pass


class DiesWhileDifferentiating(KerasOnTorch):
    """Runs forward as the torch target does; its worker process dies while differentiating."""

    name = "dies"  # a worker of its own

    def gradients(self, case, mode):
        os._exit(3)
