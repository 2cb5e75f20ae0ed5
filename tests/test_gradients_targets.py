"""Gradients on the targets other than `tensorflow`: jax (eager, jit) and torch (eager) differentiate in their
worker processes, tf-keras and saved-model with a GradientTape; the converted targets say gradients are
unsupported, and why. The whole of cases/gradients on every target runs under pytest (README, Gradients):
    pytest -n 2 cases/gradients --harness-target jax,torch,tf-keras,saved-model,tflite,onnx
"""

import pytest

from harness import targets
from harness.across_targets import run_on_targets
from harness.errors import SystemFailure
from harness.loader import load_case
from harness.runner import gradient_note, run_case
from harness.targets.converted import INFERENCE_ONLY
from harness.targets.worker import InWorker

from conftest import REPO

HAND_SEED = REPO / "cases" / "gradients" / "hand-seed-one-step.yaml"
MASKED_GAP = REPO / "cases" / "gradients" / "lstm-masked-gap.yaml"
BACKENDS = [n for n in ("jax", "torch") if n in targets.installed()]


def test_the_note_for_a_target_without_gradients_is_pinned():
    assert (gradient_note("tflite", ("interpreter",), {"interpreter": INFERENCE_ONLY})
            == "gradients unsupported on the tflite target: a converted model runs inference only")
    assert gradient_note("torch", ("eager", "compile"), {"compile": "why"}) == (
        "gradients unsupported on the torch target in compile mode: why")
    assert gradient_note("jax", ("eager", "jit"), {}) is None


class Forward:
    """The real tensorflow target, forward only (no `gradients`): a target that cannot differentiate."""

    def __init__(self):
        self.real = targets.get()
        self.name, self.label, self.modes = "forward-only", "Keras forward", self.real.modes

    def __getattr__(self, name):
        if name == "gradients":
            raise AttributeError(name)
        return getattr(self.real, name)


def test_a_target_without_gradients_says_unsupported_and_its_forward_decides():
    result = run_case(load_case(HAND_SEED), system=Forward())
    assert result.outcome == "passed"
    assert result.message.endswith("; gradients unsupported on the forward-only target: it does not compute them")
    assert not any(d.output.startswith("grad.") for _, d in result.diffs)


@pytest.mark.parametrize("name", [n for n in ("tflite", "onnx") if n in targets.installed()])
def test_a_converted_target_says_inference_only(name):
    result = run_on_targets(load_case(HAND_SEED), [targets.get(name)])
    assert result.outcome == "passed", result.details
    assert result.message.endswith(f"; gradients unsupported on the {name} target: a converted model runs inference only")


@pytest.mark.parametrize("name", BACKENDS)
def test_a_backend_differentiates_every_mode_in_its_worker(name):
    system = targets.get(name)
    result = run_on_targets(load_case(HAND_SEED), [system])
    assert result.outcome == "passed", result.details
    assert "unsupported" not in result.message
    compared = {(d.mode, d.output) for _, d in result.diffs if d.output.startswith("grad.")}
    wanted = {"grad.kernel", "grad.recurrent_kernel", "grad.bias", "grad.input", "grad.initial_state.h",
              "grad.initial_state.c"}
    assert compared == {(mode, output) for mode in system.default_modes for output in wanted}


@pytest.mark.parametrize("name", BACKENDS)
def test_a_mistaken_hand_gradient_fails_naming_it(name, write_case):
    text = HAND_SEED.read_text()
    assert text.count("- - [8, 4]") == 1
    result = run_on_targets(load_case(write_case(text.replace("- - [8, 4]", "- - [8, 5]"))), [targets.get(name)])
    assert result.outcome == "failed"
    assert "grad.input" in result.message and "grad.kernel" not in result.message, result.message


@pytest.mark.parametrize("name,adapter", [("jax", "worker_fakes.JaxStatesGradientStopped"),
                                          ("torch", "worker_fakes.TorchStatesGradientStopped")])
def test_a_keras_cell_patched_in_the_worker_is_caught_by_gradients_alone(name, adapter):
    """Backprop cut at the states inside the worker's Keras: the forward passes, the gradients fail."""
    if name not in targets.installed():
        pytest.skip(f"{name} is not installed")
    hook = "harness.targets.jax.before_import" if name == "jax" else None
    result = run_case(load_case(MASKED_GAP), system=InWorker(adapter, hook))
    assert result.outcome == "failed", result.details
    failing = {d.output for _, d in result.diffs if not d.passed}
    assert failing and all(output.startswith("grad.") for output in failing), failing
    assert "grad.recurrent_kernel" in failing and "grad.recurrent_kernel" in result.message


def test_torch_compile_mode_is_said_to_be_forward_only():
    if "torch" not in targets.installed():
        pytest.skip("torch is not installed")
    assert set(targets.get("torch").no_gradients) == {"compile"}


def test_a_worker_that_dies_while_differentiating_is_a_system_failure():
    if "torch" not in targets.installed():
        pytest.skip("torch is not installed")
    system = InWorker("worker_fakes.DiesWhileDifferentiating")
    with pytest.raises(SystemFailure, match="while differentiating in its worker process \\(eager mode; the process "
                                            "died\\)"):
        system.gradients(load_case(HAND_SEED), "eager")
