"""Execution modes: each mode is compared on its own and named in the report; one layer serving every mode
gives the results of a fresh layer per mode, bit for bit; a defect only the compiled path has is caught."""

import numpy as np
import pytest

from harness import targets
from harness.cli import main
from harness.errors import SystemFailure
from harness.faults import MORE_FAULTS
from harness.loader import load_case
from harness.modes import DEFAULT_MODES, MODES, parse_modes
from harness.runner import run_case, run_path
from harness.targets import build_cache

from conftest import REPO
from fakes import AlteredSystem

# Cases whose layer carries something between calls or modes: states, masks, initial states, several calls.
REUSE_CASES = ["stateful/stateful-three-calls.yaml", "stateful/stateful-masked-calls.yaml",
               "stateful/stateful-initial-state-then-carry.yaml", "hand-computed/hand-stateful-two-calls.yaml",
               "masking/mask-middle-gap-seq-backwards.yaml", "state/initial-state-nonzero-masked-backwards.yaml",
               "dtypes/float16-tanh-sigmoid.yaml", "code-paths/path-unrolled-impl1-bias.yaml"]


def test_parse_modes():
    assert parse_modes("graph") == ("graph",)
    assert parse_modes("xla, eager") == ("eager", "xla")  # always run and reported in MODES order
    assert parse_modes("all") == MODES == ("eager", "graph", "xla")
    with pytest.raises(ValueError, match="unknown execution mode 'grpah' \\(choose from eager, graph, xla, all\\)"):
        parse_modes("eager,grpah")


def test_default_runs_a_compiled_mode():
    assert "eager" in DEFAULT_MODES and {"graph", "xla"} & set(DEFAULT_MODES)


@pytest.mark.parametrize("name", REUSE_CASES)
def test_one_layer_for_every_mode_equals_a_fresh_layer_per_mode(name):
    """One built layer runs every mode of a case. Its results must be those of a fresh layer per mode, bit
    for bit, or reuse could hide (or invent) a difference (reuse across cases: tests/test_build_cache.py)."""
    case = load_case(REPO / "cases" / name)
    system = targets.get()
    with build_cache.disabled():
        shared = targets.run_modes(system, case, MODES)
        fresh_runs = {mode: targets.run_modes(system, case, (mode,))[mode] for mode in MODES}
    for mode in MODES:
        fresh = fresh_runs[mode]
        for number, (a, b) in enumerate(zip(shared[mode].outputs, fresh.outputs), start=1):
            for output in a:
                assert a[output].tobytes() == b[output].tobytes(), f"{mode} call {number} {output}"


def test_reuse_would_be_caught_if_states_leaked():
    """The check above can fail: without the reset between modes a stateful case's graph run starts
    from the states eager left behind, and its outputs differ from a fresh layer's."""
    case = load_case(REPO / "cases" / "stateful" / "stateful-three-calls.yaml")
    system = targets.get()
    with build_cache.disabled():
        prepared = system.prepare(case)
        system.run(prepared, "eager")
        leaked = [prepared.layer(x, **kwargs) for _, x, kwargs in prepared.arguments]  # no reset: carries on
        fresh = targets.run_modes(system, case, ("eager",))["eager"]
    assert not np.array_equal(np.asarray(leaked[0][0]), fresh.outputs[0]["output"])


def test_a_defect_in_one_mode_is_named(seed_text, write_case):
    def graph_wrong(mode, run):
        if mode == "graph":
            run.outputs[0]["h"] = run.outputs[0]["h"] + 0.5
        return run

    result = run_path(write_case(seed_text), modes=("eager", "graph", "xla"), system=AlteredSystem(graph_wrong))
    assert result.outcome == "failed"
    assert result.message == ("mismatch in h in graph: Keras disagrees with both the reference and the hand value: "
                              "Keras is likely wrong (eager, xla agree)")
    lines = result.details.splitlines()
    assert lines[1].endswith("modes: eager, graph, xla; reference semantics: keras3")
    assert lines[2:5] == ["  eager: agrees with the reference", "  graph: FAILED (h)", "  xla: agrees with the reference"]
    assert "  modes compared: graph differs from eager in 3 of 9 elements, by at most 0.5" in lines
    assert any(line.startswith("  graph: h: 3 of 3 elements mismatched (100.0%); largest absolute difference 0.5,")
               for line in lines)
    assert any(line.startswith("    graph: h[batch, unit]") for line in lines)


def test_a_mode_keras_cannot_run_is_a_keras_error_naming_it(seed_text, write_case):
    def xla_raises(mode, run):
        if mode == "xla":
            raise SystemFailure("running the layer (xla mode)", RuntimeError("no XLA kernel"))
        return run

    result = run_path(write_case(seed_text), modes=MODES, system=AlteredSystem(xla_raises))
    assert result.outcome == "keras-error"
    assert result.message == ("Keras raised RuntimeError while running the layer (xla mode): no XLA kernel "
                              "(eager, graph agree)")
    assert "  xla: KERAS-ERROR: Keras raised RuntimeError while running the layer (xla mode): no XLA kernel" in result.details
    assert result.to_json()["mode_errors"] == {
        "xla": "Keras raised RuntimeError while running the layer (xla mode): no XLA kernel"}


def test_case_execution_field_wins_over_the_run_default(seed_text, write_case):
    result = run_path(write_case(seed_text + "execution: xla\n"), modes=("eager",))
    assert result.outcome == "passed" and result.modes == ("xla",)
    assert run_path(write_case(seed_text + "execution: [graph, eager]\n"), modes=("xla",)).modes == ("eager", "graph")
    assert run_path(write_case(seed_text)).modes == DEFAULT_MODES


def test_bad_execution_field_is_invalid_naming_the_field(seed_text, write_case):
    result = run_path(write_case(seed_text + "execution: [eager, jit]\n"))
    assert result.outcome == "invalid"
    assert result.message == "execution[1]: value not allowed"
    assert "  expected: one of 'eager', 'graph', 'xla'\n  found:    'jit'" in result.details


def test_a_defect_of_the_compiled_path_only_is_caught_by_default_and_not_by_eager_alone():
    fault = next(f for f in MORE_FAULTS if f.name == "bias-scaled-when-compiled")
    case = load_case(REPO / "cases" / "dtypes" / "float64-tanh-sigmoid.yaml")
    with fault.install():
        eager = run_case(case, modes=("eager",))
        default = run_case(case)
    assert eager.outcome == "passed", eager.details
    assert default.outcome == "failed"
    assert "  eager: agrees with the reference" in default.details
    assert "  graph: FAILED (" in default.details


def test_cli_mode_option(seed_text, tmp_path, capsys):
    (tmp_path / "seed.yaml").write_text(seed_text)
    assert main(["run", str(tmp_path), "--mode", "xla", "--report-json", str(tmp_path / "r.json")]) == 0
    assert '"modes": [\n      "xla"\n    ]' in (tmp_path / "r.json").read_text()
    with pytest.raises(SystemExit) as stopped:
        main(["run", str(tmp_path), "--mode", "fast"])
    assert stopped.value.code == 2
    assert "unknown execution mode 'fast'" in capsys.readouterr().err


def test_pytest_harness_mode_option(pytester, seed_text):
    pytester.makeconftest('pytest_plugins = ["harness.pytest_collect"]')
    pytester.makeini("[pytest]\nharness_case_dirs = cases\n")
    (pytester.mkdir("cases") / "seed.yaml").write_text(seed_text)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--harness-mode", "all")
    result.assert_outcomes(passed=1)
    bad = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--harness-mode", "fast")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*--harness-mode: unknown execution mode 'fast'*"])
