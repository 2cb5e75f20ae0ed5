"""The layer converted to ONNX (the `onnx` target): the case's layer in a functional model (mask and
initial states as model inputs), `tf2onnx.convert.from_function` of a `tf.function` around it (opset 17),
run by onnxruntime (CPU). Mode `onnxruntime`. tf2onnx turns an unmasked LSTM (and Bidirectional LSTM)
into ONNX's LSTM op, everything else into a Loop.

Refused (supports): float64 with an LSTM (onnxruntime's LSTM op does not support double), bfloat16
(onnxruntime's Loop type inference fails), and a stateful case of several calls (the converted graph
is stateless: the state is frozen at its value at conversion)."""

from __future__ import annotations

from harness import known_defects
from harness.case import Case
from harness.errors import SystemFailure
from harness.targets.converted import INFERENCE_ONLY, ConvertedTarget, Prepared

OPSET = 17
# Activations whose TensorFlow op tf2onnx leaves unconverted inside the RNN's Loop, so that onnxruntime
# refuses the model ("No Op registered for Expm1 with domain_version of 17").
UNCONVERTED = {"celu": "Expm1", "gelu": "Erfc"}
# Activations tf2onnx converts to an ONNX op that onnxruntime's CPU provider has no double kernel for
# ("Could not find an implementation for Selu(6) node"; found by harness fuzz --target onnx).
NO_DOUBLE = {"selu": "Selu", "elu": "Elu", "softplus": "Softplus", "log_sigmoid": "Softplus", "mish": "Softplus",
             "softsign": "Softsign"}


def _has_lstm(case: Case) -> bool:
    if case.layer == "LSTM":
        return True
    config = case.config
    return case.layer == "Bidirectional" and "LSTM" in (config["layer"].get("type"),
                                                        (config.get("backward_layer") or {}).get("type"))


class Onnx(ConvertedTarget):
    name = "onnx"
    label = "ONNX (tf2onnx + onnxruntime)"
    modes = ("onnxruntime",)
    default_modes = ("onnxruntime",)
    no_gradients = {"onnxruntime": INFERENCE_ONLY}
    packages = ("tf2onnx", "onnx", "onnxruntime")
    several_calls = ("a stateful case of several calls cannot be expressed: tf2onnx freezes the state variable at "
                     "its value at conversion, so the ONNX graph is stateless")

    def supports(self, case: Case) -> str | None:
        if "bfloat16" in case.dtype:
            return ("bfloat16: onnxruntime cannot load the converted Loop ([TypeInferenceError] Graph attribute "
                    "inferencing failed ... Tensor element type mismatch. 16 != 10)")
        document = known_defects.case_document(case)
        for activation, op in UNCONVERTED.items():
            if known_defects.uses(document, activation):
                return (f"{activation}: tf2onnx leaves TensorFlow's {op} op unconverted inside the loop, and "
                        f"onnxruntime refuses the model (No Op registered for {op} with domain_version of {OPSET})")
        if case.dtype == "float64":
            for activation, op in NO_DOUBLE.items():
                if known_defects.uses(document, activation):
                    return (f"float64 {activation}: onnxruntime's CPU provider has no double kernel for {op} "
                            f"(Could not find an implementation for {op}(6))")
        if case.dtype == "float64" and _has_lstm(case):
            return "float64 LSTM: onnxruntime's LSTM op does not support double (LSTM operator does not support double yet)"
        return super().supports(case)

    def convert(self, prepared: Prepared, mode: str):
        import onnxruntime  # noqa: PLC0415
        import tensorflow as tf  # noqa: PLC0415
        import tf2onnx  # noqa: PLC0415

        model = prepared.model
        signature = [tf.TensorSpec(value.shape, tf.as_dtype(value.dtype), name=name)
                     for name, value in zip(prepared.names, prepared.feeds[0])]
        function = tf.function(lambda *inputs: model(list(inputs), training=False), input_signature=signature)
        try:
            proto, _ = tf2onnx.convert.from_function(function, input_signature=signature, opset=OPSET)
        except Exception as exc:  # noqa: BLE001
            raise SystemFailure("converting to ONNX (tf2onnx)", exc, self.label) from exc
        try:
            return onnxruntime.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001
            raise SystemFailure("loading the ONNX model into onnxruntime", exc, self.label) from exc

    def call(self, prepared: Prepared, converted, mode: str, feed: list) -> list:
        names = [i.name for i in converted.get_inputs()]
        return converted.run(None, dict(zip(names, feed)))
