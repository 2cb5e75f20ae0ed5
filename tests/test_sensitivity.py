"""Issue 17: the measured per-element default bound (harness/tolerances.py) is tighter where rounding allows it,
falls back to the flat floor where the noise is not local, and catches what the flat bound let through."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from harness import precision, tolerances
from harness.compare import diff_output
from harness.report import tolerance_lines
from harness.faults import h_scaled
from harness.loader import load_case
from harness.selftest import SENSITIVITY, perturbation_shares, run_fault
from harness.tolerances import CHAOTIC, MEASURED, measured, resolve

U32 = 2.0 ** -24

# An LSTM of 4 units over 5 steps, gates and weights of ordinary size: h between about 0.05 and 0.5.
SHORT_LSTM = """name: short-lstm
config: {units: 4, return_sequences: true}
dtype: float32
input: {random: {seed: 11, shape: [2, 5, 3]}}
weights:
  kernel: {random: {seed: 12, scale: 0.5}}
  recurrent_kernel: {random: {seed: 13, scale: 0.5}}
  bias: {random: {seed: 14, scale: 0.2}}
"""

# relu of a cell state that never rises above 0 (every gate's bias -9): h is 0 at every step, and so is h x (1 + eps)
ZERO_LSTM = (SHORT_LSTM.replace("name: short-lstm", "name: zero-lstm")
             .replace("return_sequences: true}", "return_sequences: true, activation: relu}")
             .replace("scale: 0.5}}", "scale: 0.01}}")
             .replace("{random: {seed: 14, scale: 0.2}}", str([-9.0] * 16)))


def test_the_bound_follows_each_element_not_the_largest():
    reference = np.array([[1e-3, 0.9]])
    noise = np.array([[1e-10, 3e-8]])
    tolerance = measured("float32", "h", 1, noise, reference)
    flat = resolve({}, "float32", "h", 1, float(noise.max()))
    assert tolerance.per_element and tolerance.hand_values == flat
    # h x (1 + 3e-6) on both elements: the flat bound (32 unit roundoffs of max(1, |h|)) lets both through
    got = reference * (1 + 3e-6)
    assert diff_output("h", got, reference, None, flat).passed
    caught = diff_output("h", got, reference, None, tolerance)
    assert [m.index for m in caught.mismatches] == [(0, 1)]  # the large element: 2.7e-6 > its bound
    safety, share, rtol, atol, _ = MEASURED["float32"]
    bound = atol * U32 + rtol * U32 * 0.9
    assert max(safety * 3e-8, bound) < 2.7e-6 < flat.atol + flat.rtol * 0.9


def test_a_chaotic_output_keeps_the_flat_floor():
    reference = np.array([[0.5, -0.4, 0.3]])
    noise = np.array([[0.0, 0.0, CHAOTIC * U32 * 3.0]])  # the largest noise beyond local rounding
    tolerance = measured("float32", "h", 4, noise, reference)
    assert not tolerance.per_element and "chaotic" in tolerance.source
    assert tolerance.noise_floor == resolve({}, "float32", "h", 4, float(noise.max())).noise_floor


def test_an_element_whose_rounded_run_was_not_finite_gets_the_largest_noise():
    tolerance = measured("float32", "h", 1, np.array([[np.nan, 1e-8]]), np.array([[0.5, 0.5]]))
    safety = MEASURED["float32"][0]
    assert np.allclose(tolerance.noise_floor, [[safety * 1e-8, safety * 1e-8]])


def test_a_tolerance_written_in_the_case_is_used_as_given(write_case):
    case = load_case(write_case(SHORT_LSTM + "tolerance: {rtol: 0.1, atol: 0.1}\n"))
    from harness.runner import run_case
    result = run_case(case)
    assert result.ok and all(d.tolerance.source == "case tolerance" for _, d in result.diffs)


def test_jittered_samples_draw_the_accumulation_noise_of_products():
    assert not hasattr(precision.emulated_rounding("float32", 0), "product")
    product = precision.emulated_rounding("float32", 1).product
    a, b = np.full((1, 64), 0.5), np.full((64, 1), 0.5)
    drawn = product(a, b)
    assert drawn.shape == (1, 1) and 0 < abs(drawn[0, 0] - 16.0) <= precision.ACCUMULATION_UNITS * U32 * 8 * 16.0


def test_h_perturbation_of_1e_5_is_caught_now_and_was_not_by_the_flat_bound(write_case):
    case = load_case(write_case(SHORT_LSTM))
    assert run_fault(h_scaled(1e-5), [case]).disagreed == ["short-lstm"]
    try:
        tolerances.ENABLED = False
        assert run_fault(h_scaled(1e-5), [case]).failing == []
    finally:
        tolerances.ENABLED = True


def test_perturbation_shares_count_lstm_cases_per_dtype(write_case):
    case = load_case(write_case(SHORT_LSTM))
    shares = perturbation_shares([case])
    assert [(s.dtype, s.epsilon, s.caught, s.total) for s in shares] == [
        ("float32", SENSITIVITY["float32"][0], 1, 1), ("float32", SENSITIVITY["float32"][1], shares[1].caught, 1)]


def test_nothing_measured_keeps_the_flat_default_and_says_nothing_of_chaos():
    for noise, reference in ((np.array([[np.nan, np.nan]]), np.array([[np.nan, 0.5]])), (np.zeros((0, 3)), np.zeros((0, 3)))):
        tolerance = measured("float32", "h", 3, noise, reference)
        assert not tolerance.per_element and tolerance.source == "float32 default, 3 steps"
    assert "chaotic" in measured("float32", "h", 3, np.array([[np.inf, 1e-8]]), np.array([[1.0, 0.5]])).source


def test_a_small_16_bit_output_is_judged_by_its_own_size_down_to_a_quarter():
    u16 = 2.0 ** -11
    reference = np.array([[0.01, -0.02]])
    tolerance = measured("float16", "h", 1, np.zeros_like(reference), reference)
    assert tolerance.scale_floor == MEASURED["float16"].scale_floor == 0.25
    # h x (1 + 1e-2): 20 unit roundoffs of each element, over the bound ...
    caught = diff_output("h", reference * 1.01, reference, None, tolerance)
    assert caught.scale == 0.25 and len(caught.mismatches) == 2
    assert "<= 6.1e-5 + 9.8e-4 x |reference| (float16 measured default, 1 step; atol 2.4e-4 x 0.25, max(0.25, the largest |reference|)" in tolerance_lines(caught)[0]
    # ... while one rounding passes, and atol scaled by max(1, |reference|) let the 20u through
    assert diff_output("h", reference * (1 + u16), reference, None, tolerance).passed
    assert diff_output("h", reference * 1.01, reference, None, replace(tolerance, scale_floor=1.0)).passed


def test_float32_keeps_an_atol_scaled_by_at_least_1():
    reference = np.array([[0.01, 0.02]])
    tolerance = measured("float32", "h", 1, np.zeros_like(reference), reference)
    assert tolerance.scale_floor == 1.0
    assert diff_output("h", reference, reference, None, tolerance).scale == 1.0


def test_a_case_whose_outputs_are_all_zero_witnesses_no_scaling_of_h(write_case):
    case = load_case(write_case(ZERO_LSTM))
    assert [(s.total, s.all_zero) for s in perturbation_shares([case])] == [(0, 1), (0, 1)]


def test_cli_perturbation_prints_each_share_and_what_was_left_out(write_case, capsys):
    from harness.cli import main

    folder = write_case(SHORT_LSTM).parent
    (folder / "zero.yaml").write_text(ZERO_LSTM)
    main(["selftest", str(folder), "--fault", "h-scaled-1e-05", "--perturbation"])
    printed = capsys.readouterr().out.splitlines()
    assert ("h x (1 + 1e-05) caught by 1 of 1 float32 LSTM cases (100%); 1 left out: outputs 0 everywhere"
            in printed), printed
    assert any(line.startswith("h x (1 + 1e-06) caught by ") and line.endswith("; 1 left out: outputs 0 everywhere")
               for line in printed)
