"""The comparison: NaN/Inf positions, the three-way verdict, tolerance resolution."""

import numpy as np

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


def test_default_tolerance_grows_with_steps_and_has_noise_floor():
    one = resolve({}, "float32", "h", 1)
    hundred = resolve({}, "float32", "h", 100, noise=1e-3)
    assert (one.rtol, one.atol) == DEFAULTS["float32"]
    assert hundred.rtol == DEFAULTS["float32"][0] * 10 and hundred.noise_floor == NOISE_SAFETY * 1e-3


def test_case_tolerance_wins_per_output_first():
    case_tolerance = {"rtol": 0.1, "h": {"atol": 0.5}}
    h = resolve(case_tolerance, "float16", "h", 50, noise=1.0)
    c = resolve(case_tolerance, "float16", "c", 50, noise=1.0)
    assert (h.rtol, h.atol, h.noise_floor) == (0.1, 0.5, 0.0) and h.source == "case tolerance.h"
    assert c.rtol == 0.1 and c.source == "case tolerance"


def test_mixed_policies_use_the_compute_dtype_defaults():
    assert resolve({}, "mixed_bfloat16", "h", 1).rtol == DEFAULTS["bfloat16"][0]
