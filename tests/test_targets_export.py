"""The converted and legacy targets: tf-keras (Keras 2 in a worker), saved-model (.keras round trip and
model.export), tflite (LiteRT) and onnx (tf2onnx + onnxruntime). Each is tested only where its packages
are installed (`make setup` installs them all)."""

import pytest

from harness import faults, targets
from harness.across_targets import run_on_targets
from harness.loader import load_case

from conftest import REPO

SEED = REPO / "cases" / "seed" / "seed-linear-gates.yaml"
STATEFUL = REPO / "cases" / "bidirectional" / "stateful" / "gru-stateful-calls.yaml"
CONVERTED = ("saved-model", "tflite", "onnx")
NEW = ("tf-keras", *CONVERTED)


def installed(*names):
    return [n for n in names if n in targets.installed()]


def run(path, name):
    return run_on_targets(load_case(path), [targets.get(name)])


def test_the_new_targets_are_registered_in_order():
    assert targets.NAMES == ("tensorflow", "jax", "torch", *NEW)


def test_a_missing_package_is_refused_naming_it(monkeypatch):
    real = targets.metadata.version

    def version(package):
        if package in ("ai-edge-litert", "tf-keras"):
            raise targets.metadata.PackageNotFoundError(package)
        return real(package)

    monkeypatch.setattr(targets.metadata, "version", version)
    with pytest.raises(ValueError, match=r"target 'tflite' needs ai-edge-litert, which is not installed: "
                                         r'pip install "\.\[export\]"'):
        targets.parse_targets("tensorflow,tflite")
    with pytest.raises(ValueError, match="target 'tf-keras' needs tf-keras, .*--no-deps"):
        targets.parse_targets("tf-keras")
    assert "tflite" not in targets.parse_targets("all")


@pytest.mark.parametrize("name", installed(*NEW))
def test_each_target_runs_the_seed_in_every_mode_and_agrees(name):
    result = run(SEED, name)
    assert result.outcome == "passed", result.details
    assert result.modes == targets.get(name).default_modes


def test_tf_keras_follows_keras2_semantics():
    if "tf-keras" not in targets.installed():
        pytest.skip("tf-keras is not installed")
    system = targets.get("tf-keras")
    assert system.semantics() == "keras2" and system.environment()["tf_keras"]
    # hard_sigmoid is clip(0.2x + 0.5) in Keras 2: passes because the reference follows Keras 2 there
    assert run(REPO / "cases" / "gru" / "activations" / "activation-hard-sigmoid.yaml", "tf-keras").outcome == "passed"
    celu = run(REPO / "cases" / "activations" / "activation-celu.yaml", "tf-keras")
    assert celu.outcome == "skipped" and "celu" in celu.message


@pytest.mark.parametrize("name", installed(*CONVERTED))
def test_a_stateful_case_of_several_calls_is_skipped_saying_why(name):
    result = run(STATEFUL, name)
    assert result.outcome == "skipped"
    assert result.message.startswith(f"target {name} cannot express it: ") and "stateful case of several calls" in result.message


@pytest.mark.parametrize(("name", "case", "words"), [
    ("tflite", "cases/dtypes/float16-two-steps.yaml", "float16"),
    ("tflite", "cases/dtypes/float64-tanh-sigmoid.yaml", "float64"),
    ("tflite", "cases/dtypes/mixed_float16-one-step.yaml", "mixed_float16"),
    ("tflite", "cases/dtypes/bfloat16-one-step.yaml", "bfloat16"),
    ("onnx", "cases/dtypes/float64-tanh-sigmoid.yaml", "does not support double"),
    ("onnx", "cases/dtypes/bfloat16-one-step.yaml", "bfloat16"),
])
def test_what_a_converter_cannot_express_is_skipped_with_its_reason(name, case, words):
    if name not in targets.installed():
        pytest.skip(f"{name} is not installed")
    result = run(REPO / case, name)
    assert result.outcome == "skipped" and words in result.message, result.message


@pytest.mark.parametrize("name", installed(*CONVERTED))
def test_a_keras_fault_flows_into_the_converted_model(name):
    with faults.h_scaled(1e-2).install():
        result = run(SEED, name)
    assert result.outcome == "failed", result.details


def test_a_conversion_failure_names_the_stage(monkeypatch):
    if "tflite" not in targets.installed():
        pytest.skip("tflite is not installed")
    import tensorflow as tf

    def refuse(model):
        raise RuntimeError("no converter today")

    monkeypatch.setattr(tf.lite.TFLiteConverter, "from_keras_model", refuse)
    result = run(SEED, "tflite")
    assert result.outcome == "keras-error"
    assert "converting to TFLite" in result.message and "no converter today" in result.message


@pytest.mark.parametrize("activation", ["selu", "elu", "softplus", "log_sigmoid", "mish", "softsign"])
def test_onnx_refuses_float64_activations_onnxruntime_has_no_double_kernel_for(write_case, activation):
    """Found by harness fuzz --target onnx: "Could not find an implementation for Selu(6)" at load time."""
    if "onnx" not in targets.installed():
        pytest.skip("onnx is not installed")
    path = write_case(f"layer: SimpleRNN\nconfig: {{units: 1, activation: {activation}, use_bias: false}}\n"
                      "dtype: float64\ninput: [[[0.5]]]\nweights: {kernel: [[0.3]], recurrent_kernel: [[0.2]]}\n")
    result = run(path, "onnx")
    assert result.outcome == "skipped" and "no double kernel" in result.message, result.message
