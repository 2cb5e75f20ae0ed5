"""The gradient bound's noise floor: a case that amplifies a rounding-sized change (chaotic weights, long
sequences) gets a bound from that measurement, a well-conditioned one keeps the default."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from harness import gradients, targets
from harness.versions import keras_flavor

from conftest import REPO

sys.path.insert(0, str(REPO / "bench"))
from gradient_bounds import bench_case  # noqa: E402


def _ratios(case, noise):
    system = targets.get("tensorflow")
    reference = gradients.reference_gradients(case, keras_flavor())
    found = system.gradients(case, "eager")
    return max(d.max_error_ratio for _, d in gradients.compare(case, found, reference, "Keras", "eager", noise))


def test_a_chaotic_float64_case_is_held_to_its_measured_noise_not_the_flat_bound():
    """SimpleRNN, float64, weights of scale 3 (bench/gradient_bounds.py --scale 3): without the floor the flat
    bound is exceeded (a false alarm); with it the case passes."""
    without, with_floor = [], []
    for seed in (1, 2, 3):
        case = bench_case("SimpleRNN", "float64", 64, seed, 3.0)
        reference = gradients.reference_gradients(case, keras_flavor())
        noise = gradients.gradient_noise(case, keras_flavor(), reference)
        without.append(_ratios(case, None))
        with_floor.append(_ratios(case, noise))
    assert max(without) > 1.0, without
    assert max(with_floor) < 1.0, with_floor


def test_a_well_conditioned_case_keeps_the_default_bound():
    case = bench_case("LSTM", "float32", 16, 1, 0.5)
    reference = gradients.reference_gradients(case, keras_flavor())
    noise = gradients.gradient_noise(case, keras_flavor(), reference)
    system = targets.get("tensorflow")
    found = system.gradients(case, "eager")
    diffs = [d for _, d in gradients.compare(case, found, reference, "Keras", "eager", noise)]
    assert all(d.tolerance.noise_floor < d.tolerance.atol for d in diffs)  # the floor does not loosen it
    assert all(np.isfinite(value) for call in noise for value in call.values())


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_noise_is_deterministic(dtype):
    case = bench_case("GRU", dtype, 8, 2, 1.0)
    reference = gradients.reference_gradients(case, keras_flavor())
    assert gradients.gradient_noise(case, keras_flavor(), reference) == gradients.gradient_noise(
        case, keras_flavor(), reference)


def test_a_gradient_is_accepted_as_overflow_only_where_the_forward_ran_out_of_range():
    """Found by harness fuzz --target tf-keras: float32 NaN where the float64 gradient is 1e246, in a case whose
    forward overflowed float32."""
    from harness.loader import load_case  # noqa: PLC0415

    case = load_case(REPO / "cases" / "gradients" / "gru-50-steps.yaml")  # no hand values
    reference = gradients.reference_gradients(case, keras_flavor())
    system = [{name: value.copy() for name, value in call.items()} for call in reference]
    system[0]["input"].flat[0] = np.nan
    system[0]["kernel"].flat[0] = np.nan
    batch = case.calls[0].input.shape[0]

    def failing(rows):
        return {d.output for _, d in gradients.compare(case, system, reference, "Keras", "eager", None, rows)
                if not d.passed}

    assert failing(None) == {"grad.input", "grad.kernel"}
    assert failing([np.zeros(batch, dtype=bool)]) == {"grad.input", "grad.kernel"}
    assert failing([np.ones(batch, dtype=bool)]) == set()


CHAOTIC_CASE = REPO / "cases" / "gradients" / "gradients-chaotic-bfloat16-exponential-gates.yaml"


def test_a_chaotic_forward_puts_its_noise_share_under_the_gradient_bound(monkeypatch):
    """Found by the fuzzer: gradients through a forward whose mixed_bfloat16 rounding noise is 90x its size.
    With the chaotic share the case passes; without it, the same run fails (the check can fail)."""
    from harness.loader import load_case
    from harness.noise import estimate_noise
    from harness.reference_runner import run_reference
    from harness.runner import run_case

    case = load_case(CHAOTIC_CASE)
    calls = run_reference(case, keras_flavor())
    assert gradients.chaotic_share(case, calls, estimate_noise(case, keras_flavor(), calls))[0] > 10
    assert run_case(case).outcome == "passed"
    monkeypatch.setattr(gradients, "chaotic_share", lambda case, calls, noise: None)
    assert run_case(case).outcome == "failed"


@pytest.mark.parametrize("name", ["lstm-float64-60-steps.yaml", "gru-50-steps.yaml", "lstm-saturated-gates.yaml",
                                  "simple-rnn-relu-masked.yaml"])
def test_an_ordinary_forward_has_no_chaotic_share(name):
    """The share is zero unless the forward's noise is not local: the gradient bounds of the corpus are unchanged."""
    from harness.loader import load_case
    from harness.noise import estimate_noise
    from harness.reference_runner import run_reference

    case = load_case(REPO / "cases" / "gradients" / name)
    calls = run_reference(case, keras_flavor())
    assert set(gradients.chaotic_share(case, calls, estimate_noise(case, keras_flavor(), calls))) == {0.0}
