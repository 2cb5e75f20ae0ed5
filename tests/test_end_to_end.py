"""End to end: pytest collection (pytester, in subprocesses: a second in-process run aborts inside
TensorFlow) and the CLI, with a correct case that passes and a
perturbed one that fails, a broken file that fails alone, and Keras errors and unsupported cases."""

import json
import os
import xml.etree.ElementTree as ET

import pytest

from harness.cli import main
from harness.runner import run_path
from harness.versions import module_origin

from fakes import AlteredSystem

WRONG_HAND = ("name: seed-linear-gates", "name: seed-mistaken-hand-value"), ("  h: [[0, 4, 0]]", "  h: [[0, 4, 1]]")


def wrong_hand(seed_text: str) -> str:
    for old, new in WRONG_HAND:
        assert old in seed_text
        seed_text = seed_text.replace(old, new)
    return seed_text


@pytest.fixture
def corpus(pytester, seed_text):
    pytester.makeconftest('pytest_plugins = ["harness.pytest_collect"]')
    pytester.makeini("[pytest]\nharness_case_dirs = cases\n")
    cases = pytester.mkdir("cases")
    (cases / "seed.yaml").write_text(seed_text)
    (cases / "wrong.yaml").write_text(wrong_hand(seed_text))
    (cases / "broken.yaml").write_text("config: {units: 3}\ninput: [[[1, 0]]\n")
    (pytester.path / "not-a-case.yaml").write_text("this: is outside cases/")
    return pytester


def test_pytest_passes_the_seed_and_fails_the_mistaken_hand_value(corpus):
    result = corpus.runpytest_subprocess("-p", "no:cacheprovider", "-v")
    result.assert_outcomes(passed=1, failed=2)
    out = result.stdout.str()
    result.stdout.fnmatch_lines(["cases/broken.yaml::broken FAILED*", "cases/seed.yaml::seed-linear-gates PASSED*",
                                 "cases/wrong.yaml::seed-mistaken-hand-value FAILED*"])
    assert "the hand value disagrees with both Keras and the reference" in out
    result.stdout.fnmatch_lines(["*h: 1 of 3 elements mismatched*",
                                 "    allowed: |Keras - reference| <= 2.4e-7 + 2.4e-7 x |reference| (float32 measured "
                                 "default, 1 step; atol 6.0e-8 x 4, the largest |reference|), or 10 x that element's "
                                 "measured rounding noise where larger (1.4e-6 to 4.8e-6 here)",
                                 "    hand values: |hand - Keras|, |hand - reference| <= 7.6e-6 + 1.9e-6 x |reference| "
                                 "(float32 default, 1 step; atol 1.9e-6 x 4, the largest |reference|); never less than "
                                 "1.4e-5 (30 x the rounding noise measured for this case)",
                                 "*[[]0, 2[]]*0*0*1*expected*"])
    assert "broken.yaml:3: YAML syntax error: did not find expected ',' or ']' (while parsing a flow sequence)" in out


def test_pytest_collects_case_files_named_anywhere_and_skips_reports(corpus, tmp_path_factory, seed_text):
    elsewhere = tmp_path_factory.mktemp("elsewhere")  # outside the project: no ini file, no conftest there
    (elsewhere / "mine.yaml").write_text(seed_text.replace("name: seed-linear-gates", "name: mine"))
    (corpus.path / "cases" / "report.json").write_text('[{"case": "seed-linear-gates", "outcome": "passed"}]')
    (corpus.path / "cases" / "half.json").write_text('{"name": "half"}')  # case-like: collected, and invalid
    result = corpus.runpytest_subprocess("-p", "no:cacheprovider", "-v", str(elsewhere / "mine.yaml"), "cases")
    result.assert_outcomes(passed=2, failed=3)
    result.stdout.fnmatch_lines(["*::mine PASSED*"])  # pytest names a file outside its rootdir by the item alone
    assert "report.json" not in result.stdout.str() and "half.json::half FAILED" in result.stdout.str()
    alone = corpus.runpytest_subprocess("-p", "no:cacheprovider", str(elsewhere / "mine.yaml"))  # rootdir: elsewhere
    alone.assert_outcomes(passed=1)


def test_tags_become_markers(corpus):
    result = corpus.runpytest_subprocess("-p", "no:cacheprovider", "-m", "seed", "-W", "error::pytest.PytestUnknownMarkWarning")
    result.assert_outcomes(passed=1, failed=1)  # the two seed-tagged cases; the broken file has no tags


def test_junitxml_carries_the_failure_text(corpus):
    corpus.runpytest_subprocess("-p", "no:cacheprovider", "--junitxml=report.xml")
    tree = ET.parse(corpus.path / "report.xml")
    failures = {tc.get("name"): tc.find("failure") for tc in tree.iter("testcase")}
    assert failures["seed-linear-gates"] is None
    text = failures["seed-mistaken-hand-value"].text
    assert "h[batch, unit]" in text and "odd one out" in text


def test_xdist_gives_the_same_outcomes(corpus):
    result = corpus.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2")
    result.assert_outcomes(passed=1, failed=2)


def test_duplicate_names_fail_the_later_file(pytester, seed_text):
    pytester.makeconftest('pytest_plugins = ["harness.pytest_collect"]')
    pytester.makeini("[pytest]\nharness_case_dirs = cases\n")
    cases = pytester.mkdir("cases")
    (cases / "a.yaml").write_text(seed_text)
    (cases / "b.yaml").write_text(seed_text)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*b.yaml*name: duplicate case name 'seed-linear-gates'*", "*also used by*a.yaml*"])


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_cli_run_exit_codes_and_json_report(tmp_path, seed_text, capsys):
    (tmp_path / "seed.yaml").write_text(seed_text)
    assert main(["run", str(tmp_path / "seed.yaml")]) == 0
    (tmp_path / "wrong.yaml").write_text(wrong_hand(seed_text))
    (tmp_path / "broken.json").write_text("{")
    report = tmp_path / "report.json"
    assert main(["run", str(tmp_path), "--report-json", str(report)]) == 1
    rows = {row["case"]: row for row in json.loads(report.read_text())}
    assert {name: row["outcome"] for name, row in rows.items()} == {
        "seed-linear-gates": "passed", "seed-mistaken-hand-value": "failed", "broken": "invalid"}
    assert rows["seed-mistaken-hand-value"]["path"].endswith("wrong.yaml")
    assert "hand value disagrees" in rows["seed-mistaken-hand-value"]["message"]
    assert "JSON syntax error" in rows["broken"]["details"]
    assert report.stat().st_mode & 0o777 == 0o666 & ~_umask()  # a report to share, as open() would write it
    out = capsys.readouterr().out
    assert "3 cases" in out and "invalid" in out
    keras = module_origin("keras")
    assert out.splitlines()[0].startswith(f"Keras {keras['version']} from {keras['path']}")  # which Keras ran
    assert out.splitlines()[-3:] == [  # the run ends with what did not pass
        "2 cases did not pass:", f"  INVALID      broken  {tmp_path / 'broken.json'}  JSON syntax error: Expecting "
        "property name enclosed in double quotes (column 2)",
        f"  FAILED       seed-mistaken-hand-value  {tmp_path / 'wrong.yaml'}  " + rows["seed-mistaken-hand-value"]["message"]]
    environment = rows["seed-linear-gates"]["environment"]
    assert (environment["keras"], environment["keras_path"]) == (keras["version"], keras["path"])
    h = next(o for o in rows["seed-mistaken-hand-value"]["outputs"] if o["output"] == "h" and o["mode"] == "eager")
    assert h["mismatch_max_abs_diff"] == 1 and h["max_abs_diff"] == 0  # Keras = reference; only the hand value is off


def test_failures_only_prints_only_what_did_not_pass(tmp_path, seed_text, capsys):
    (tmp_path / "seed.yaml").write_text(seed_text)
    (tmp_path / "broken.json").write_text("{")
    assert main(["run", str(tmp_path), "-q", "--mode", "eager"]) == 1
    out = capsys.readouterr().out
    assert "PASSED" not in out and "seed-linear-gates" not in out
    assert out.count("INVALID      broken") == 2 and "1 case did not pass:" in out  # its line, and the list at the end


def test_report_json_gives_the_largest_difference_of_passing_outputs(seed_text, write_case):
    def nudged(mode, run):  # within the tolerance: the case passes, but it moved
        for outputs in run.outputs:
            outputs["h"] = outputs["h"] * (1 + 1e-7)
        return run

    result = run_path(write_case(seed_text), system=AlteredSystem(nudged))
    assert result.outcome == "passed", result.details
    rows = {(o["mode"], o["output"]): o for o in result.to_json()["outputs"]}
    h, c = rows[("eager", "h")], rows[("eager", "c")]
    assert h["passed"] and h["max_abs_diff"] == pytest.approx(4e-7, rel=1e-6) and h["max_rel_diff"] == pytest.approx(1e-7)
    assert h["mismatch_max_abs_diff"] is None and h["mismatch_max_rel_diff"] is None and h["mismatched"] == 0
    assert c["max_abs_diff"] == 0


ROUNDED = """\
name: rounded-hand
description: linear gates i = o = 1, f = 0, so h = tanh(tanh(x W_c)) = [tanh(tanh(1)), tanh(tanh(2))] = [0.64201499, 0.74606800]
config: {units: 2, activation: tanh, recurrent_activation: null, use_bias: false}
dtype: float32
execution: eager
input: [[[1, 0.5]]]
weights:
  kernel: [[1, 1, 0, 0, 1, 1, 1, 1], [0, 0, 0, 0, 0, 2, 0, 0]]
  recurrent_kernel: [[0, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0]]
expected:
  h: [[0.6420, 0.7461]]
"""


def test_hand_values_written_to_4_decimals_are_told_apart_from_a_mistake(write_case):
    rounded = run_path(write_case(ROUNDED))  # right to 4 decimals, 2e-5 off: beyond float32's bound of 2e-6
    assert rounded.outcome == "failed"
    assert rounded.message == ("mismatch in h: the hand values look rounded to 4 decimals (within half a unit of the last "
                               "decimal of both Keras and the reference, which agree): write at least 6 decimals, or set "
                               "`expected_tolerance: {atol: 5e-5}`")
    assert run_path(write_case(ROUNDED + "expected_tolerance: {atol: 5e-5}\n", "tolerant.yaml")).outcome == "passed"
    assert run_path(write_case(ROUNDED.replace("0.6420, 0.7461", "0.642015, 0.746068"), "six.yaml")).outcome == "passed"
    mistake = run_path(write_case(ROUNDED.replace("0.7461", "0.7416"), "mistake.yaml"))
    assert mistake.outcome == "failed" and mistake.message.endswith("the hand calculation is likely wrong")


def test_outside_the_project_without_paths_says_there_is_no_cases_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for command in ("run", "validate", "coverage"):
        assert main([command]) == 2
        assert capsys.readouterr().err == (f"harness {command}: no cases/ folder here ({tmp_path}): name case files or "
                                           f"folders, e.g. `harness {command} path/to/cases`, or run it in the project "
                                           "folder\n")


def test_cli_validate_does_not_need_keras(tmp_path, seed_text, capsys):
    (tmp_path / "seed.yaml").write_text(seed_text)
    assert main(["validate", str(tmp_path)]) == 0
    (tmp_path / "bad.yaml").write_text(seed_text.replace("units: 3", "units: three"))
    assert main(["validate", str(tmp_path)]) == 1
    assert "config.units: wrong type" in capsys.readouterr().out


def test_cli_explain_prints_each_step(capsys):
    assert main(["explain", "seed-linear-gates"]) == 0
    out = capsys.readouterr().out
    assert "z  = i [5, 2, 1] | f [1, 1, 0] | c [0, 2, 1] | o [2, 1, 0]" in out
    assert "h  = [0, 4, 0]" in out and "c  = [0, 4, 1]" in out
    assert "backward" not in out and "dL/d" not in out  # a forward-only case has no backward trace


def test_cli_explain_shows_the_backward_trace_of_a_gradient_case(capsys):
    """The seed step differentiated by hand (cases/gradients/hand-seed-one-step.yaml's description): L = sum(h),
    h the returned final state, so dL/dh = [1, 1, 1] all carried; dL/dc = dh * o = [2, 1, 0]; the initial state
    gets dz @ U^T = [6, 4, 6] and dc * f = [2, 1, 0]. The backward trace follows the forward one."""
    assert main(["explain", "gradient-hand-seed-one-step"]) == 0
    out = capsys.readouterr().out
    backward = out[out.index("backward (gradients)"):]
    assert out.index("h  = [0, 4, 0]") < out.index("backward (gradients)")
    assert backward.splitlines() == [
        "backward (gradients): L = sum over h of sum(cotangent * output); cotangents given in the case",
        "  steps in processing order; dL/dstate: the cotangent of the state the step produces, through every path",
        "  carried: back from the next step (at the last step: the returned final state's cotangent)",
        "batch row 0:",
        "  step 0 (input time 0)",
        "    dL/dh = [1, 1, 1]   = carried [1, 1, 1] + output [0, 0, 0]",
        "    dL/dc = [2, 1, 0]   = carried [0, 0, 0] + through h",
        "  initial state: dL/dh = [6, 4, 6]   dL/dc = [2, 1, 0]",
    ]


def test_explain_backward_trace_of_a_masked_step(tmp_path, capsys):
    """SimpleRNN h = x + h_prev, L = h_final: a masked middle step keeps h and passes its cotangent through."""
    (tmp_path / "masked.yaml").write_text(
        "layer: SimpleRNN\nconfig: {units: 1, activation: null, use_bias: false, return_sequences: true}\n"
        "dtype: float64\ninput: [[[1], [2], [3]]]\nmask: [[true, false, true]]\n"
        "weights: {kernel: [[1]], recurrent_kernel: [[1]]}\n"
        "gradients: {cotangents: {sequences: [[[0], [5], [1]]]}}\n")
    assert main(["explain", str(tmp_path / "masked.yaml")]) == 0
    out = capsys.readouterr().out
    assert out[out.index("batch row 0:", out.index("backward (gradients)")):].splitlines() == [
        "batch row 0:",
        "  step 0 (input time 0)",
        "    dL/dh = [6]   = carried [1] + output [5]",
        "  step 1 (input time 1)  MASKED: h kept, its cotangent passed to the previous step",
        "    dL/dh = [1]   carried [1]",
        "    output's cotangent [5]: passed to the previous output",
        "  step 2 (input time 2)",
        "    dL/dh = [1]   = carried [0] + output [1]",
        "  initial state: dL/dh = [6]",
    ]


def test_keras_error_is_an_outcome_with_keras_message(write_case, seed_text):
    result = run_path(write_case(seed_text.replace("use_bias: true", "use_bias: true\n  kernel_initializer: no_such_initializer")))
    assert result.outcome == "keras-error"
    assert "Keras raised ValueError while building the layer" in result.message and "no_such_initializer" in result.message


def test_unsupported_is_an_outcome_never_ignored(write_case, seed_text):
    unknown = run_path(write_case(seed_text.replace("config:", "layer: ConvLSTM1D\nconfig:")))
    assert unknown.outcome == "invalid" and unknown.message.startswith("layer: value not allowed")
    result = run_path(write_case(seed_text.replace("activation: null\n", "activation: sparsemax\n", 1)))
    assert result.outcome == "unsupported" and "sparsemax" in result.message


def test_a_perturbed_keras_is_caught(seed_text, write_case):
    """The harness must be able to fail: scale Keras's h by 1 + 1e-4 and the float32 seed case fails."""
    def perturbed(mode, run):
        for outputs in run.outputs:
            outputs["h"] = outputs["h"] * (1 + 1e-4)
        return run

    result = run_path(write_case(seed_text), system=AlteredSystem(perturbed))
    assert result.outcome == "failed"
    assert result.message == ("mismatch in h in eager, graph: Keras disagrees with both the reference and the hand "
                              "value: Keras is likely wrong")
    assert "Keras disagrees with both the reference and the hand value" in result.details


def test_float16_overflow_is_accepted_and_said(write_case):
    # linear gates, x = 300: c = i * c~ = 300 * 300 = 90000 > 65504, the largest float16
    text = ("config: {units: 1, activation: null, recurrent_activation: null, use_bias: false, return_state: true}\n"
            "dtype: float16\ninput: [[[300]]]\n"
            "weights: {kernel: [[1, 1, 1, 1]], recurrent_kernel: [[0, 0, 0, 0]]}\n")
    result = run_path(write_case(text))
    assert result.outcome == "passed", result.details
    assert "overflowed float16 in Keras and in the rounded reference alike" in result.details
    # the same case in float32 does not overflow, and Keras must match the reference exactly
    result = run_path(write_case(text.replace("float16", "float32"), "f32.yaml"))
    assert result.outcome == "passed" and "overflowed" not in result.details


KNOWN = "known_failure: {reason: h is scaled in this test, upstream: nowhere#1}\n"


def test_known_failure_still_failing_is_xfailed_and_green(write_case, seed_text):
    result = run_path(write_case(wrong_hand(seed_text) + KNOWN))
    assert result.outcome == "xfailed" and result.ok
    assert result.message.startswith("known failure (nowhere#1): h is scaled in this test; still failing: mismatch in h")


def test_known_failure_that_passes_says_remove_the_marker(write_case, seed_text):
    result = run_path(write_case(seed_text + KNOWN))
    assert result.outcome == "xpassed" and result.ok
    assert "remove `known_failure`" in result.message


def test_known_failures_under_pytest(pytester, seed_text):
    pytester.makeconftest('pytest_plugins = ["harness.pytest_collect"]')
    pytester.makeini("[pytest]\nharness_case_dirs = cases\n")
    cases = pytester.mkdir("cases")
    (cases / "fixed.yaml").write_text(seed_text + KNOWN)
    (cases / "still.yaml").write_text(wrong_hand(seed_text) + KNOWN)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rxX")
    result.assert_outcomes(xfailed=1, xpassed=1)


def test_keras_returning_another_dtype_than_the_policy_fails(seed_text, write_case):
    """A Keras that ignores the dtype policy (computes float16 cases in float32) is caught even though its
    values, being more precise, agree with the reference."""
    def float32_instead(mode, run):
        run.dtypes = [{name: "float32" for name in call} for call in run.dtypes]
        return run

    result = run_path(write_case(seed_text.replace("dtype: float32", "dtype: float16")),
                      system=AlteredSystem(float32_instead))
    assert result.outcome == "failed"
    assert "eager: h: dtype mismatch: Keras returned float32, but dtype float16 computes in float16" in result.details


def test_cli_filters_by_keyword_and_tag_but_keeps_invalid_files(tmp_path, seed_text, capsys):
    (tmp_path / "seed.yaml").write_text(seed_text)
    (tmp_path / "other.yaml").write_text(seed_text.replace("name: seed-linear-gates", "name: other").replace(
        "tags: [seed, linear, hand_computed]", "tags: [other]"))
    (tmp_path / "broken.yaml").write_text("config: [")
    report = tmp_path / "r.json"
    assert main(["run", str(tmp_path), "--tag", "other", "--report-json", str(report)]) == 1
    assert sorted(row["case"] for row in json.loads(report.read_text())) == ["broken", "other"]
    assert main(["run", str(tmp_path), "-k", "seed", "--report-json", str(report)]) == 0
    assert [row["case"] for row in json.loads(report.read_text())] == ["seed-linear-gates"]
