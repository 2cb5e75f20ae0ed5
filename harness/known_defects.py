"""Known upstream defects of the installed stack, in one place: which case documents they concern.

Each defect is pinned by a known-failure case of the corpus (its `case` file); the fuzzer and the
tolerance survey skip the configurations listed here, since drawing them would only rediscover the
defect. tests/test_known_defects.py keeps this list and the corpus's known_failure cases in step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from harness import layers
from harness.activations import canonical_name


# The targets that run Keras's TensorFlow-backend code (or TensorFlow's ops): Keras 3 on TF, Keras 2 (the
# same code in tf_keras), and the models saved or converted from a Keras 3 layer on TF.
TENSORFLOW_CODE = ("tensorflow", "tf-keras", "saved-model", "tflite", "onnx")
# Keras 3's own layer code (not a backend's): every target that runs Keras 3
KERAS3_CODE = ("tensorflow", "jax", "torch", "saved-model", "tflite", "onnx")


@dataclass(frozen=True)
class KnownDefect:
    case: str  # the corpus file that pins it (relative to the repository)
    reason: str
    applies: Callable[[dict], bool]  # on a case document
    targets: tuple[str, ...] = ("tensorflow",)  # the systems under test that have it


def layer_configs(doc: dict) -> Iterator[tuple[str, dict]]:
    """(layer name, effective Keras config) of every recurrent layer a case document runs: the layer
    itself, or a Bidirectional's two directions as Keras derives them."""
    spec = layers.get(doc.get("layer"))
    directions = getattr(spec, "directions", None)
    if directions is None:
        yield spec.name, doc["config"]
        return
    for inner_spec, inner in directions(doc["config"]).values():
        yield inner_spec.name, inner


def _uses(doc: dict, activation: str) -> bool:
    return any(activation in (config.get("activation"), config.get("recurrent_activation"))
               for _, config in layer_configs(doc))


uses = _uses


def _masked(doc: dict) -> bool:
    return any("mask" in entry for entry in doc.get("calls", [doc]))


def _uneven_bidirectional_states(doc: dict) -> bool:
    if doc.get("layer") != "Bidirectional" or not any("initial_state" in e for e in doc.get("calls", [doc])):
        return False
    counts = {len(layers.get(name).state_names) for name, _ in layer_configs(doc)}
    return len(counts) > 1


def _state_before_masked_steps(doc: dict) -> bool:
    """A mask with a state that is not zero when the first steps are masked: given, or carried by a stateful layer."""
    calls = doc.get("calls", [doc])
    return _masked(doc) and (any("initial_state" in e for e in calls) or (doc_stateful(doc) and len(calls) > 1))


def _bidirectional_uneven_return_state(doc: dict) -> bool:
    """A Bidirectional with return_state whose two layers differ in their numbers of states."""
    if doc.get("layer") != "Bidirectional" or not doc["config"]["layer"].get("return_state"):
        return False
    return len({len(layers.get(name).state_names) for name, _ in layer_configs(doc)}) > 1


def _lstm_nan_batch(doc: dict) -> bool:
    """An unmasked LSTM (alone or in a Bidirectional) fed a NaN, in a batch of two or more."""
    return (not _masked(doc) and any(name == "LSTM" for name, _ in layer_configs(doc))
            and _nan_input(doc, batch_of=2))


def _nan_input(doc: dict, batch_of: int = 1) -> bool:
    for entry in doc.get("calls", [doc]):
        values = entry.get("input")
        if isinstance(values, (list, np.ndarray)):
            try:
                array = np.asarray(values, dtype=float)
            except (TypeError, ValueError):  # a ragged or non-numeric document: not for this predicate to judge
                continue
            if array.ndim == 3 and array.shape[0] >= batch_of and np.isnan(array).any():
                return True
    return False


def doc_stateful(doc: dict) -> bool:
    return any(config.get("stateful") for _, config in layer_configs(doc))


def _torch_stateful_backward_in_place(doc: dict) -> bool:
    """A stateful LSTM or GRU (also inside Bidirectional) differentiated, with a call that has no mask (that call
    runs the optimized loop: a masked call runs the generic one, which copies the states)."""
    return (doc.get("gradients") is not None and any("mask" not in entry for entry in doc.get("calls", [doc]))
            and any(name in ("LSTM", "GRU") and config.get("stateful") and config.get("use_cudnn", "auto") is not False
                    for name, config in layer_configs(doc)))


def _exp_minus_one(doc: dict) -> bool:
    """elu or selu: TensorFlow's kernels compute exp(x) - 1 (tensorflow/tensorflow#116943)."""
    return _uses(doc, "elu") or _uses(doc, "selu")


def _unrolled_backwards_zeroing(doc: dict) -> bool:
    return _masked(doc) and any(all(config.get(k) for k in ("unroll", "go_backwards", "zero_output_for_mask",
                                                              "return_sequences"))
                                for _, config in layer_configs(doc))


def _silu_in_while_loop_differentiated(doc: dict) -> bool:
    """silu (swish) in a layer that is not unrolled (it runs in a while loop), differentiated."""
    return doc.get("gradients") is not None and any(
        "swish" in {canonical_name(config.get("activation")), canonical_name(config.get("recurrent_activation"))}
        and not config.get("unroll") for _, config in layer_configs(doc))


def _exact_zero(values) -> bool:
    """Values as a document gives them that hold an exact 0: a literal 0, or a random draw of scale 0."""
    if isinstance(values, dict):
        if isinstance(values.get("random"), dict):
            return values["random"].get("scale", 1) == 0
        return any(_exact_zero(v) for v in values.values())
    if isinstance(values, (list, np.ndarray)):
        try:
            return bool((np.asarray(values, dtype=float) == 0).any())
        except (TypeError, ValueError):
            return False
    return values == 0


def _celu_at_zero_differentiated(doc: dict) -> bool:
    """celu, differentiated, where a pre-activation can be exactly 0: a zero input or zero weights."""
    return (doc.get("gradients") is not None and _uses(doc, "celu")
            and (any(_exact_zero(entry.get("input")) for entry in doc.get("calls", [doc]))
                 or _exact_zero(doc.get("weights") or {})))


def _batch(values) -> int | None:
    """The batch size of an input as a document gives it (values, or a random draw's shape), None if unknown."""
    if isinstance(values, dict):
        shape = (values.get("random") or {}).get("shape") if isinstance(values.get("random"), dict) else None
        return shape[0] if isinstance(shape, list) and shape else None
    if isinstance(values, (list, np.ndarray)):
        return len(values) if np.ndim(values) else None
    return None


def _gemm_rewriter_vector_constant(doc: dict) -> bool:
    """float32, a static batch of 1, no initial state, and an unrolled implementation-1 layer without bias: a
    GRU with reset_after, or an LSTM with a linear recurrent activation (tf2onnx folds the zero state into
    a Gemm's beta)."""
    if doc.get("dtype", "float32") != "float32" or doc.get("layer") == "Bidirectional":
        return False
    if any("initial_state" in entry for entry in doc.get("calls", [doc])):
        return False
    if any(_batch(entry.get("input")) not in (1, None) for entry in doc.get("calls", [doc])):
        return False
    for name, config in layer_configs(doc):
        if config.get("implementation") != 1 or not config.get("unroll") or config.get("use_bias", True):
            continue
        if name == "GRU" and config.get("reset_after", True):
            return True
        if name == "LSTM" and config.get("recurrent_activation", "sigmoid") in (None, "linear"):
            return True
    return False


DEFECTS: tuple[KnownDefect, ...] = (
    KnownDefect("cases/regressions/tensorflow-gelu-float64-constant.yaml",
                "float64 gelu: TF rounds 1/sqrt(2) to float32",
                lambda doc: doc.get("dtype") == "float64" and _uses(doc, "gelu"), targets=TENSORFLOW_CODE),
    KnownDefect("cases/regressions/tensorflow-leaky-relu-float64-alpha.yaml",
                "float64 leaky_relu: TF's slope is a float32 attribute",
                lambda doc: doc.get("dtype") == "float64" and _uses(doc, "leaky_relu"), targets=TENSORFLOW_CODE),
    KnownDefect("cases/regressions/tensorflow-elu-16-bit-cancellation.yaml",
                "elu and selu in 16 bits: TF computes exp(x) - 1, which cancels near 0 (tensorflow/tensorflow#116943)",
                lambda doc: doc.get("dtype") in ("float16", "bfloat16", "mixed_float16", "mixed_bfloat16")
                and _exp_minus_one(doc),
                targets=("tensorflow", "tf-keras", "saved-model")),
    KnownDefect("cases/regressions/tensorflow-elu-float32-cancellation.yaml",
                "elu and selu in float32: TF computes exp(x) - 1, which cancels near 0 (tensorflow/tensorflow#116943)",
                lambda doc: doc.get("dtype", "float32") == "float32" and _exp_minus_one(doc),
                targets=("tensorflow", "tf-keras", "saved-model", "onnx")),
    KnownDefect("cases/regressions/keras-squareplus-float32-cancellation.yaml",
                "squareplus below float64: Keras's formula cancels for negative x",
                lambda doc: doc.get("dtype", "float32") != "float64" and _uses(doc, "squareplus"),
                targets=KERAS3_CODE),  # Keras's own formula, on every backend
    KnownDefect("cases/regressions/keras-unroll-go-backwards-zero-output-mask.yaml",
                "unroll + go_backwards + zero_output_for_mask: outputs zeroed with the unreversed mask "
                "(Bidirectional forces zero_output_for_mask on its backward layer)",
                _unrolled_backwards_zeroing, targets=TENSORFLOW_CODE),
    KnownDefect("cases/gru/regressions/keras-unroll-go-backwards-zero-output-mask.yaml",
                "unroll + go_backwards + zero_output_for_mask (GRU)", _unrolled_backwards_zeroing, targets=TENSORFLOW_CODE),
    KnownDefect("cases/simple-rnn/regressions/keras-unroll-go-backwards-zero-output-mask.yaml",
                "unroll + go_backwards + zero_output_for_mask (SimpleRNN)", _unrolled_backwards_zeroing, targets=TENSORFLOW_CODE),
    KnownDefect("cases/regressions/keras-bidirectional-unroll-mask-backward-zeroed.yaml",
                "unrolled Bidirectional with a mask and return_sequences zeroes the backward half at the wrong steps",
                _unrolled_backwards_zeroing, targets=TENSORFLOW_CODE),
    KnownDefect("cases/regressions/keras-bidirectional-stateful-return-state-compute-mask.yaml",
                "stateful Bidirectional with return_state raises TypeError in compute_mask",
                lambda doc: doc.get("layer") == "Bidirectional" and all(
                    doc["config"]["layer"].get(k) for k in ("stateful", "return_state")), targets=KERAS3_CODE),
    KnownDefect("cases/regressions/keras-bidirectional-mixed-types-initial-state.yaml",
                "Bidirectional splits initial_state half and half, whatever its layers' numbers of states",
                _uneven_bidirectional_states, targets=KERAS3_CODE + ("tf-keras",)),
    KnownDefect("cases/targets/keras-jax-leading-masked-steps-output-initial-state.yaml",
                "Keras on JAX outputs the initial state, not zeros, at masked steps before the first unmasked one",
                _state_before_masked_steps, targets=("jax",)),
    KnownDefect("cases/targets/keras-jax-stateful-jit-state-not-carried.yaml",
                "stateful layers on JAX do not carry their states between jitted stateless calls",
                lambda doc: doc_stateful(doc) and len(doc.get("calls", [doc])) > 1, targets=("jax",)),
    KnownDefect("cases/targets/keras-torch-stateful-mixed-precision-state-lost.yaml",
                "stateful layers on PyTorch under mixed_float16 do not carry their states between calls",
                lambda doc: doc_stateful(doc) and str(doc.get("dtype")).startswith("mixed_"), targets=("torch",)),
    KnownDefect("cases/targets/keras-float64-computed-in-float32-jax-torch.yaml",
                "float64 layers compute in float32 on Keras 3's JAX and PyTorch backends (result_type)",
                lambda doc: doc.get("dtype") == "float64", targets=("jax", "torch")),
    KnownDefect("cases/targets/keras-torch-stateful-lstm-gru-backward-inplace.yaml",
                "a stateful LSTM or GRU on PyTorch cannot be differentiated (its state is written in place)",
                _torch_stateful_backward_in_place, targets=("torch",)),
    KnownDefect("cases/targets/keras-torch-nan-through-hard-shrink.yaml",
                "hard_shrink and soft_shrink send NaN to NaN on PyTorch, to 0 on TensorFlow and JAX",
                lambda doc: _uses(doc, "hard_shrink") or _uses(doc, "soft_shrink"), targets=("torch", "onnx")),
    KnownDefect("cases/targets/keras-jax-unroll-zero-output-for-mask-ignored.yaml",
                "Keras on JAX ignores zero_output_for_mask in its unrolled loop (Bidirectional forces it)",
                lambda doc: _masked(doc) and any(c.get("unroll") and c.get("zero_output_for_mask")
                                                 for _, c in layer_configs(doc)), targets=("jax",)),
    KnownDefect("cases/targets/keras-torch-unroll-with-mask-raises.yaml",
                "unrolled go_backwards layers with a mask raise AttributeError on Keras's PyTorch backend",
                lambda doc: _masked(doc) and any(c.get("unroll") and c.get("go_backwards")
                                                 for _, c in layer_configs(doc)), targets=("torch",)),
    KnownDefect("cases/targets/keras-jax-gru-mixed-precision-jit.yaml",
                "a GRU under mixed precision fails to jit on JAX (lax.scan carry and step output dtypes differ)",
                lambda doc: str(doc.get("dtype")).startswith("mixed_") and any(
                    name == "GRU" for name, _ in layer_configs(doc)), targets=("jax",)),
    KnownDefect("cases/targets/tf-keras-stateful-initial-state-mixed-precision-graph.yaml",
                "Keras 2 cannot trace a stateful RNN given an initial_state under mixed precision (tf.cond branches "
                "float32 vs float16)",
                lambda doc: str(doc.get("dtype")).startswith("mixed_") and doc_stateful(doc)
                and any("initial_state" in e for e in doc.get("calls", [doc])), targets=("tf-keras",)),
    KnownDefect("cases/targets/tf-keras-unroll-mask-zero-output-raises.yaml",
                "Keras 2: an unrolled layer with a mask and zero_output_for_mask raises ValueError (shape not compatible)",
                lambda doc: _masked(doc) and any(config.get("unroll") and config.get("zero_output_for_mask")
                                                 and not config.get("return_sequences")
                                                 for _, config in layer_configs(doc)), targets=("tf-keras",)),
    KnownDefect("cases/targets/keras-jax-gru-no-bias-16-bit.yaml",
                "a GRU without bias fails on JAX in 16-bit dtypes (the fused GRU's float32 zero bias promotes the step)",
                lambda doc: doc.get("dtype") in ("float16", "bfloat16", "mixed_float16", "mixed_bfloat16")
                and not _masked(doc) and any(
                    name == "GRU" and not config.get("use_bias", True) and config.get("reset_after", True)
                    and not config.get("unroll") for name, config in layer_configs(doc)), targets=("jax",)),
    KnownDefect("cases/targets/keras-bidirectional-functional-uneven-states.yaml",
                "a functional model of a Bidirectional with return_state whose layers differ in states has one "
                "output too many (Bidirectional.compute_output_shape)",
                _bidirectional_uneven_return_state, targets=("saved-model", "tflite", "onnx")),
    KnownDefect("cases/targets/onnxruntime-lstm-nan-input-finite-output.yaml",
                "onnxruntime's LSTM op returns finite values for a NaN input (batch of two or more)",
                _lstm_nan_batch, targets=("onnx",)),
    KnownDefect("cases/targets/onnx-nan-at-masked-step-leaks.yaml",
                "converted by tf2onnx and run by onnxruntime, a NaN at a masked step reaches the state",
                lambda doc: _masked(doc) and _nan_input(doc), targets=("onnx",)),
    KnownDefect("cases/targets/tensorflow-saved-model-silu-in-while-loop-gradient.yaml",
                "a SavedModel whose while loop applies silu cannot be differentiated after reloading",
                _silu_in_while_loop_differentiated, targets=("saved-model",)),
    KnownDefect("cases/targets/keras-jax-float16-sigmoid-underflow.yaml",
                "JAX's float16 sigmoid is 1 / (1 + exp(-x)) in float16: exp overflows below x = -11.09, so sigmoid "
                "and swish/silu return 0 there (swish(-11.5) = 0, not -1.2e-4)",
                lambda doc: doc.get("dtype") in ("float16", "mixed_float16") and any(
                    "swish" in {canonical_name(config.get("activation")),
                                canonical_name(config.get("recurrent_activation"))}
                    for _, config in layer_configs(doc)), targets=("jax",)),
    KnownDefect("cases/targets/tf2onnx-gemm-rewriter-vector-beta.yaml",
                "tf2onnx's Gemm rewriter makes a FLOATS beta of a (1, units) constant: onnxruntime rejects the model",
                _gemm_rewriter_vector_constant, targets=("onnx",)),
    KnownDefect("cases/targets/keras-tensorflow-celu-gradient-at-zero.yaml",
                "celu's gradient at exactly 0 is 2 on TensorFlow (max and min both pass the whole gradient at the tie)",
                _celu_at_zero_differentiated, targets=("tensorflow", "saved-model")),
    KnownDefect("cases/targets/keras-export-stateful-rnn-fails.yaml",
                "model.export of a stateful RNN fails (the exported batch is None, the state variable's is fixed)",
                doc_stateful, targets=("saved-model",)),
)


def known_defect(doc: dict, target: str = "tensorflow") -> KnownDefect | None:
    """The documented defect of `target` a case document would run into, or None."""
    return next((defect for defect in DEFECTS if target in defect.targets and defect.applies(doc)), None)


def case_document(case) -> dict:
    """What the predicates read of a loaded case, as a document: layer, config, dtype, masks and states."""
    calls = [{"input": call.input, **({"mask": True} if call.mask is not None else {}),
              **({"initial_state": True} if call.initial_state is not None else {})} for call in case.calls]
    return {"layer": case.layer, "config": case.config, "dtype": case.dtype, "calls": calls,
            **({"gradients": True} if case.gradients is not None else {})}
