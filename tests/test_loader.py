"""The loader fed broken files: every problem names the file, the field, what was expected and found."""

import textwrap

import numpy as np
import pytest

from harness.errors import InvalidCase
from harness.loader import load_case

GOOD = textwrap.dedent("""\
    config: {units: 3}
    input: [[[1, 0]]]
    weights:
      kernel: [[2, 1, 1, 0, 0, 0, 0, 1, 1, 0, 1, 0], [1, 1, 0, 1, 1, 0, 0, 1, 1, 0, 0, 0]]
      recurrent_kernel: {random: {seed: 1, shape: [3, 12]}}
      bias: [3, 1, 0, 1, 1, 0, 0, 1, 0, 2, 0, 0]
    """)


def problems(path):
    with pytest.raises(InvalidCase) as info:
        load_case(path)
    return info.value


def test_good_file_loads_with_defaults(write_case):
    case = load_case(write_case(GOOD, "my-case.yaml"))
    assert case.name == "my-case"
    assert case.dtype == "float32" and case.layer == "LSTM"
    assert case.weights["kernel"].shape == (2, 12)
    assert case.weights["recurrent_kernel"].shape == (3, 12)
    assert case.compared_outputs() == ("h",)


def test_wrong_kernel_shape_names_field_and_derived_shape(write_case):
    path = write_case(GOOD.replace("[2, 1, 1, 0, 0, 0, 0, 1, 1, 0, 1, 0], ", "[2, 1, 1, 0, 0, 0, 0, 1, 1, 0], ")
                      .replace("[1, 1, 0, 1, 1, 0, 0, 1, 1, 0, 0, 0]", "[1, 1, 0, 1, 1, 0, 0, 1, 1, 0]"))
    error = problems(path)
    assert error.render() == (
        "invalid case file (1 problem)\n"
        f"{path}:4: weights.kernel: wrong shape\n"
        "  expected: shape (2, 12) (features=2 from input, 4*units=12; column blocks are gates i, f, c, o)\n"
        "  found:    shape (2, 10)"
    )


def test_yaml_syntax_error_has_line(write_case):
    path = write_case("config: {units: 3\ninput: [[[1]]]\n")
    text = problems(path).render()
    assert f"{path}:" in text and "YAML syntax error" in text
    assert problems(path).problems[0].line is not None


def test_json_syntax_error_has_line(write_case):
    path = write_case('{"config": {"units": 3},\n "input": [[[1]]],\n}', "bad.json")
    error = problems(path)
    assert error.problems[0].line == 3
    assert "JSON syntax error" in error.render()


def test_unknown_field_suggests_the_right_name(write_case):
    error = problems(write_case(GOOD.replace("config: {units: 3}", "config: {units: 3, go_backward: true}")))
    [p] = error.problems
    assert (p.field, p.message, p.found, p.hint) == ("config.go_backward", "unknown field", "'go_backward'",
                                                     "did you mean 'go_backwards'?")


def test_missing_units(write_case):
    [p] = problems(write_case(GOOD.replace("config: {units: 3}", "config: {return_state: true}"))).problems
    assert (p.field, p.message) == ("config.units", "missing required field")


def test_non_numeric_entry_points_at_the_element(write_case):
    [p] = problems(write_case(GOOD.replace("bias: [3, 1,", "bias: [3, x,"))).problems
    assert (p.field, p.message, p.found) == ("weights.bias[1]", "not a number", "'x'")


def test_unknown_activation(write_case):
    [p] = problems(write_case(GOOD.replace("{units: 3}", "{units: 3, activation: tanhh}"))).problems
    assert (p.field, p.message, p.found) == ("config.activation", "unknown activation", "'tanhh'")
    assert "'tanh'" in p.hint


def test_mask_shape_must_match_input(write_case):
    [p] = problems(write_case(GOOD + "mask: [[true, false]]\n")).problems
    assert p.field == "mask" and p.message == "wrong shape"
    assert p.expected == "shape (1, 1) (batch=1, timesteps=1 from input)" and p.found == "shape (1, 2)"


def test_bias_refused_without_use_bias(write_case):
    [p] = problems(write_case(GOOD.replace("{units: 3}", "{units: 3, use_bias: false}"))).problems
    assert p.field == "weights.bias" and "use_bias is false" in p.message


def test_bias_required_with_use_bias(write_case):
    [p] = problems(write_case(GOOD.replace("  bias: [3, 1, 0, 1, 1, 0, 0, 1, 0, 2, 0, 0]\n", ""))).problems
    assert p.field == "weights.bias" and p.expected == "shape (12,) (4*units=12)"


def test_python_object_tag_is_refused_and_not_executed(write_case, tmp_path):
    marker = tmp_path / "pwned"
    path = write_case(GOOD + f"description: !!python/object/apply:os.system ['touch {marker}']\n")
    text = problems(path).render()
    assert "refused a YAML tag" in text and "python/object/apply:os.system" in text
    assert not marker.exists()


def test_duplicate_keys_are_errors(write_case):
    error = problems(write_case(GOOD + "config: {units: 4}\n"))
    assert "duplicate key 'config'" in error.render()


def test_yaml_exponent_without_dot_is_a_number(write_case):
    case = load_case(write_case(GOOD + "tolerance: {rtol: 1e-5, atol: 2E-6}\n"))
    assert case.tolerance == {"rtol": 1e-05, "atol": 2e-06}


def test_nan_and_inf_strings_in_json(write_case):
    path = write_case('{"config": {"units": 1, "use_bias": false}, "input": [[["nan"], ["-inf"]]],'
                      ' "weights": {"kernel": [[1, 1, 1, 1]], "recurrent_kernel": [[0, 0, 0, 0]]}}', "c.json")
    x = load_case(path).calls[0].input
    assert np.isnan(x[0, 0, 0]) and x[0, 1, 0] == -np.inf


def test_calls_need_stateful(write_case):
    text = GOOD.replace("input: [[[1, 0]]]\n", "calls:\n  - input: [[[1, 0]]]\n")
    [p] = problems(write_case(text)).problems
    assert p.field == "calls" and p.expected == "config.stateful: true"


def test_generated_input_needs_shape(write_case):
    [p] = problems(write_case(GOOD.replace("input: [[[1, 0]]]", "input: {random: {seed: 3}}"))).problems
    assert p.field == "input.random" and "needs a shape" in p.message


def test_expected_c_requires_return_state(write_case):
    [p] = problems(write_case(GOOD + "expected: {c: [[0, 0, 0]]}\n")).problems
    assert p.field == "expected.c" and "return_state" in p.message


def test_several_problems_are_all_reported(write_case):
    text = GOOD.replace("{units: 3}", "{units: 3, activation: tanhh, go_backward: true}")
    error = problems(write_case(text))
    assert [p.field for p in error.problems] == ["config.activation", "config.go_backward"]
    assert error.render().startswith("invalid case file (2 problems)\n")


@pytest.mark.parametrize("text,found", [("", "an empty file"), ("- 1\n- 2\n", "a list")])
def test_file_must_hold_a_mapping(write_case, text, found):
    [p] = problems(write_case(text)).problems
    assert p.found == found


def test_expected_tolerance_is_read_and_checked(write_case):
    case = load_case(write_case(GOOD + "expected: {h: [[0.1, 0.2, 0.3]]}\nexpected_tolerance: {atol: 5e-5}\n"))
    assert case.expected_tolerance == {"atol": 5e-05} and case.tolerance == {}
    [p] = problems(write_case(GOOD + "expected_tolerance: {atol: 5e-5}\n")).problems
    assert p.field == "expected_tolerance" and p.message == "there are no hand values for it to apply to"
    [p] = problems(write_case(GOOD + "expected: {h: [[0, 0, 0]]}\nexpected_tolerance: {atl: 5e-5}\n")).problems
    assert p.field == "expected_tolerance.atl" and p.message == "unknown field" and p.hint == "did you mean 'atol'?"
    [p] = problems(write_case(GOOD + "expected: {h: [[0, 0, 0]]}\nexpected_tolerance: {atol: .inf}\n")).problems
    assert p.field == "expected_tolerance.atol" and p.message == "a tolerance must be a finite number"
