"""The comparison: NaN/Inf positions, the three-way verdict, tolerance resolution."""

import numpy as np
import pytest

from harness import compare
from harness.compare import diff_output
from harness.tolerances import DEFAULTS, NOISE_SAFETY, Tolerance, resolve

TOL = Tolerance(rtol=1e-6, atol=1e-6, source="test")


def test_equal_outputs_pass():
    diff = diff_output("h", np.array([[1.0, 2.0]]), np.array([[1.0, 2.0]]), None, TOL)
    assert diff.passed and diff.verdict == compare.AGREE and diff.max_error_ratio == 0


def test_nan_positions_must_match():
    assert diff_output("h", np.array([[np.nan, 1.0]]), np.array([[np.nan, 1.0]]), None, TOL).passed
    diff = diff_output("h", np.array([[np.nan, 1.0]]), np.array([[0.5, 1.0]]), None, TOL)
    assert not diff.passed and [m.index for m in diff.mismatches] == [(0, 0)]


def test_infinities_must_match_in_sign():
    assert diff_output("h", np.array([[np.inf]]), np.array([[np.inf]]), None, TOL).passed
    assert not diff_output("h", np.array([[-np.inf]]), np.array([[np.inf]]), None, TOL).passed


def test_difference_just_inside_and_outside_tolerance():
    reference = np.array([[1.0]])
    bound = TOL.atol + TOL.rtol * 1.0
    assert diff_output("h", reference + 0.9 * bound, reference, None, TOL).passed
    assert not diff_output("h", reference + 1.1 * bound, reference, None, TOL).passed


def test_odd_one_out_is_named():
    k, r = np.array([[0.0, 4.0, 0.0]]), np.array([[0.0, 4.0, 0.0]])
    diff = diff_output("h", k, r, np.array([[0.0, 4.0, 1.0]]), TOL)
    assert diff.verdict == compare.ODD_EXPECTED and diff.mismatches[0].index == (0, 2)
    diff = diff_output("h", np.array([[9.0, 4.0, 0.0]]), r, r.copy(), TOL)
    assert diff.verdict == compare.ODD_KERAS and diff.mismatches[0].odd_one == compare.SYSTEM
    diff = diff_output("h", k, np.array([[0.0, 5.0, 0.0]]), k.copy(), TOL)
    assert diff.verdict == compare.ODD_REFERENCE
    diff = diff_output("h", np.array([[1.0]]), np.array([[2.0]]), np.array([[3.0]]), TOL)
    assert diff.verdict == compare.NONE_AGREE


def test_shape_mismatch_is_its_own_failure():
    diff = diff_output("h", np.zeros((1, 3)), np.zeros((1, 2)), None, TOL)
    assert not diff.passed and diff.structure_problem == "shape mismatch: Keras returned shape (1, 3), the reference (1, 2)"


def test_largest_differences_are_reported():
    diff = diff_output("h", np.array([[1.5, 2.0, 4.4]]), np.array([[1.0, 2.0, 4.0]]), None, TOL)
    assert diff.max_abs == 0.5 and abs(diff.max_rel - 0.5) < 1e-12 and len(diff.mismatches) == 2


def test_overflow_of_the_dtype_is_not_a_defect_in_that_row_only():
    keras, reference = np.array([[np.nan, 1.0], [np.nan, 1.0]]), np.array([[3.0, 1.0], [3.0, 1.0]])
    diff = diff_output("h", keras, reference, None, TOL, np.array([True, False]))
    assert diff.overflowed == 1 and [m.index for m in diff.mismatches] == [(1, 0)]
    assert len(diff_output("h", keras, reference, None, TOL).mismatches) == 2


def test_where_even_the_float64_reference_overflowed_the_row_has_nothing_to_compare():
    """Found by harness fuzz --target tflite: exponential activations, the reference NaN (inf - inf), LiteRT 0."""
    system, reference = np.array([[0.0, 1.0], [0.0, 1.0]]), np.array([[np.nan, 1.0], [np.nan, 1.0]])
    diff = diff_output("h", system, reference, None, TOL, np.array([True, False]))
    assert diff.overflowed == 1 and [m.index for m in diff.mismatches] == [(1, 0)]
    assert diff.max_error_ratio == np.inf  # the row that did not overflow still counts


def test_an_exact_value_beyond_the_dtypes_range_is_not_compared_in_an_overflow_row():
    """Found by the tolerance survey of issue 17 on torch (cases/numeric/chaotic-mixed-bfloat16-beyond-range.yaml):
    a chaotic row where the exact run grew past bfloat16's largest while PyTorch's stayed finite and small."""
    largest = 3.4e38
    system, reference = np.array([[1e6, 1.0], [1e6, 1.0]]), np.array([[7e52, 1.0], [7e52, 1.0]])
    diff = diff_output("h", system, reference, None, TOL, np.array([True, False]), range_limit=largest)
    assert diff.beyond_range == 1 and diff.overflowed == 0 and [m.index for m in diff.mismatches] == [(1, 0)]
    assert diff.max_error_ratio == pytest.approx(7e52 / (2e-6 * 7e52))  # from the row without overflow only
    within = diff_output("h", np.array([[1e6]]), np.array([[1e30]]), None, TOL, np.array([True]), range_limit=largest)
    assert within.beyond_range == 0 and len(within.mismatches) == 1  # a value the dtype can hold is still compared
    assert len(diff_output("h", system, reference, None, TOL, np.array([True, False])).mismatches) == 2


def test_the_chaotic_case_passes_on_torch_and_its_report_says_what_was_not_compared():
    from harness import targets
    from harness.loader import load_case
    from harness.runner import run_case

    result = run_case(load_case("cases/numeric/chaotic-mixed-bfloat16-beyond-range.yaml"), system=targets.get("torch"))
    assert result.ok, result.details
    assert ("note: 52 elements not compared: their exact value lies beyond bfloat16's range, in batch rows where the "
            "rounded reference runs out of range too") in result.details


def test_default_tolerance_grows_with_steps_and_has_noise_floor():
    one = resolve({}, "float32", "h", 1)
    hundred = resolve({}, "float32", "h", 100, noise=1e-3)
    assert (one.rtol, one.atol) == DEFAULTS["float32"] and one.source == "float32 default, 1 step"
    assert hundred.rtol == DEFAULTS["float32"][0] * 10 and hundred.noise_floor == NOISE_SAFETY * 1e-3


def test_case_tolerance_wins_per_output_first():
    case_tolerance = {"rtol": 0.1, "h": {"atol": 0.5}}
    h = resolve(case_tolerance, "float16", "h", 50, noise=1.0)
    c = resolve(case_tolerance, "float16", "c", 50, noise=1.0)
    assert (h.rtol, h.atol, h.noise_floor) == (0.1, 0.5, 0.0) and h.source == "case tolerance.h"
    assert c.rtol == 0.1 and c.source == "case tolerance"


def test_mixed_policies_use_the_compute_dtype_defaults():
    assert resolve({}, "mixed_bfloat16", "h", 1).rtol == DEFAULTS["bfloat16"][0]


# ---------------------------------------------------------------- hand values written to a few decimals

from harness import hand_values  # noqa: E402
from harness.report import tolerance_lines  # noqa: E402

F32 = Tolerance(*DEFAULTS["float32"], source="float32 default, 1 step")
TRUE = np.array([[0.7615941559557649, -0.46211715726000974, 0.9640275800758169]])  # tanh(1), tanh(-0.5), tanh(2)


def test_written_decimals_come_from_the_shortest_repr():
    assert [hand_values.decimals(v) for v in (0.7616, 4.0, 1.5e-07, 0.1, 1e20, -0.25)] == [4, 0, 8, 1, 0, 2]
    assert hand_values.written_decimals(np.array([[0.7616, -0.4621, 0.964, np.nan]])) == 4
    assert hand_values.decimals_needed(F32.atol) == 6 and hand_values.decimals_needed(DEFAULTS["float64"][0]) == 15


def test_hand_values_rounded_to_4_decimals_are_said_to_be_rounded():
    diff = diff_output("h", TRUE, TRUE.copy(), np.round(TRUE, 4), F32)
    assert not diff.passed and diff.rounded_decimals == 4
    assert diff.verdict == ("the hand values look rounded to 4 decimals (within half a unit of the last decimal of both "
                            "Keras and the reference, which agree): write at least 6 decimals, or set "
                            "`expected_tolerance: {atol: 5e-5}`")


def test_a_real_mistake_among_rounded_hand_values_is_still_a_mistake():
    wrong = np.round(TRUE, 4)
    wrong[0, 1] += 3e-4  # beyond half a unit of the 4th decimal
    diff = diff_output("h", TRUE, TRUE.copy(), wrong, F32)
    assert diff.rounded_decimals is None and diff.verdict == compare.ODD_EXPECTED
    whole = diff_output("h", np.array([[0.0, 4.0, 0.3]]), np.array([[0.0, 4.0, 0.3]]), np.array([[0.0, 4.0, 0.0]]), F32)
    assert whole.verdict == compare.ODD_EXPECTED  # whole numbers are exact hand values, not rounded ones


def test_rounding_is_not_claimed_when_keras_and_the_reference_disagree():
    diff = diff_output("h", TRUE + 1e-3, TRUE.copy(), np.round(TRUE, 4), F32)
    assert diff.rounded_decimals is None and not diff.verdict.startswith("the hand values look rounded")


def test_hand_values_written_to_every_decimal_their_bound_needs_are_not_called_rounded():
    # the float32 elu case: Keras 2.5e-6 relative off exact hand values held to 1e-6, within the default's
    # absolute part of the reference; rounding to 18 decimals explains nothing
    keras = TRUE * (1 + 2.5e-6)
    tight = Tolerance(1e-6, 0.0, "case expected_tolerance")
    diff = diff_output("h", keras, TRUE.copy(), TRUE.copy(), F32, expected_tolerance=tight)
    assert not diff.passed and diff.rounded_decimals is None
    assert not diff.verdict.startswith("the hand values look rounded")


def test_expected_tolerance_applies_to_the_hand_values_only():
    hand = Tolerance(0.0, 5e-5, "case expected_tolerance")
    assert diff_output("h", TRUE, TRUE.copy(), np.round(TRUE, 4), F32, expected_tolerance=hand).passed
    keras_off = diff_output("h", TRUE + 1e-3, TRUE.copy(), np.round(TRUE, 4), F32, expected_tolerance=hand)
    assert not keras_off.passed and keras_off.verdict == compare.ODD_KERAS  # the Keras-vs-reference bound is unchanged


def test_largest_difference_covers_every_element_and_mismatch_figures_stay_apart():
    passing = diff_output("h", np.array([[1.0 + 4e-7, 2.0]]), np.array([[1.0, 2.0]]), None, F32)
    assert passing.passed and passing.max_abs == 0 and abs(passing.largest_abs - 4e-7) < 1e-15
    assert abs(passing.largest_rel - 4e-7) < 1e-15
    failing = diff_output("h", np.array([[1.5, 2.0, np.nan]]), np.array([[1.0, 0.0, 1.0]]), None, F32)
    assert failing.largest_abs == np.inf and failing.largest_rel == np.inf  # NaN against a number
    near_zero = diff_output("h", np.array([[1e-9, 1.0]]), np.array([[0.0, 1.0]]), None, F32)
    assert near_zero.largest_abs == 1e-9 and near_zero.largest_rel == 0  # relative to a reference of 0: not counted


def test_the_tolerance_line_says_the_bound_in_words_and_numbers():
    diff = diff_output("h", np.array([[0.0, 4.0]]), np.array([[0.0, 4.0]]), np.array([[0.0, 5.0]]), F32)
    assert tolerance_lines(diff) == [
        "    allowed: |Keras - reference| <= 7.6e-6 + 1.9e-6 x |reference| (float32 default, 1 step; "
        "atol 1.9e-6 x 4, the largest |reference|)",
        "    hand values: |hand - Keras|, |hand - reference| held to the same bound"]
    floored = Tolerance(1e-5, 3.1e-6, "float32 default, 30 steps", noise_floor=4.2e-5)
    diff = diff_output("h", np.array([[0.5]]), np.array([[0.5]]), None, floored)
    assert tolerance_lines(diff) == [
        "    allowed: |Keras - reference| <= 3.1e-6 + 1.0e-5 x |reference| (float32 default, 30 steps); never less "
        "than 4.2e-5 (30 x the rounding noise measured for this case)"]
    hand = diff_output("h", TRUE, TRUE.copy(), TRUE.copy(), F32, expected_tolerance=Tolerance(0.0, 5e-5, "case expected_tolerance"))
    assert tolerance_lines(hand)[1] == ("    hand values: |hand - Keras|, |hand - reference| <= 5.0e-5 + 0 x |reference| "
                                        "(case expected_tolerance)")
