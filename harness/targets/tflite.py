"""The layer converted to TFLite (the `tflite` target): the case's layer in a functional model (mask and
initial states as model inputs), `tf.lite.TFLiteConverter.from_keras_model`, run by LiteRT's
interpreter (`ai_edge_litert.interpreter.Interpreter`, its signature runner). Mode `interpreter`.
Every Keras RNN becomes a WHILE loop (never the fused LSTM op).

Refused (supports): float16, float64 and bfloat16 layers and the mixed policies (the converter cannot
express them: see DTYPE_REASONS), and a stateful case of several calls (the state is a resource
variable that `reset_all_variables()` does not reset)."""

from __future__ import annotations

import contextlib
import io

import numpy as np

from harness.case import Case
from harness.errors import SystemFailure
from harness.targets.converted import INFERENCE_ONLY, ConvertedTarget, Prepared

DTYPE_REASONS = {
    "float16": "TFLite has no float16 kernels for the RNN's ops (the converter says: 'tf.Transpose' op is neither "
               "a custom op nor a flex op ... Some ops are not supported by the native TFLite runtime); TFLite's "
               "float16 is weight quantization of a float32 model, another thing",
    "float64": "TFLite has no float64 kernels for the RNN's ops (the converter says: 'tf.Transpose' op is neither "
               "a custom op nor a flex op ... Some ops are not supported by the native TFLite runtime)",
    "bfloat16": "the TFLite converter refuses bfloat16 inputs (ValueError: Unsupported TensorFlow type "
                "<dtype: 'bfloat16'> provided for the input type)",
}


class TFLite(ConvertedTarget):
    name = "tflite"
    label = "TFLite (LiteRT)"
    modes = ("interpreter",)
    default_modes = ("interpreter",)
    no_gradients = {"interpreter": INFERENCE_ONLY}
    packages = ("ai-edge-litert",)
    several_calls = ("a stateful case of several calls needs reset_states between them: a TFLite model keeps the "
                     "state in a resource variable that Interpreter.reset_all_variables() does not reset")

    def supports(self, case: Case) -> str | None:
        dtype = case.dtype
        if dtype.startswith("mixed_"):
            return (f"{dtype}: a mixed policy computes in {dtype[6:]}, and "
                    + DTYPE_REASONS["float16" if dtype == "mixed_float16" else "bfloat16"])
        if dtype in DTYPE_REASONS:
            return DTYPE_REASONS[dtype]
        return super().supports(case)

    def convert(self, prepared: Prepared, mode: str):
        import tensorflow as tf  # noqa: PLC0415
        from ai_edge_litert.interpreter import Interpreter  # noqa: PLC0415

        try:
            with contextlib.redirect_stdout(io.StringIO()):  # "Saved artifact at ...": the converter's own export
                flat = tf.lite.TFLiteConverter.from_keras_model(prepared.model).convert()
        except Exception as exc:  # noqa: BLE001
            raise SystemFailure("converting to TFLite", exc, self.label) from exc
        try:
            interpreter = Interpreter(model_content=flat)
            return interpreter.get_signature_runner()
        except Exception as exc:  # noqa: BLE001
            raise SystemFailure("loading the TFLite model into the LiteRT interpreter", exc, self.label) from exc

    def call(self, prepared: Prepared, converted, mode: str, feed: list) -> list:
        outputs = converted(**dict(zip(prepared.names, feed)))
        return [np.asarray(outputs[key]) for key in sorted(outputs, key=lambda k: int(k.rsplit("_", 1)[-1]))]
