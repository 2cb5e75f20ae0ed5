"""The version matrix (scripts/matrix.py), from synthetic run and compare results: the combined report, the
target axis, the CI gate (exit status and summary), and where the reports go. No virtualenv is created:
`run_matrix` takes a fake harness per version and a fake command runner that writes the JSON files the
real `harness run` / `compare` would."""

import importlib.util
import json
import sys
from pathlib import Path

from conftest import REPO

spec = importlib.util.spec_from_file_location("matrix", REPO / "scripts" / "matrix.py")
matrix = importlib.util.module_from_spec(spec)
sys.modules["matrix"] = matrix  # its dataclasses look their module up
spec.loader.exec_module(matrix)


def test_combined_report_lists_what_changed_and_counts_the_rest():
    runs = {"2.15.1": {"a": {"outcome": "passed"}, "b": {"outcome": "passed"}, "c": {"outcome": "skipped"}},
            "2.21.0": {"a": {"outcome": "passed"}, "b": {"outcome": "passed"}, "c": {"outcome": "passed"}}}
    comparison = {"cases": [
        {"case": "a", "change": "bit-identical", "detail": "", "cause": ""},
        {"case": "b", "change": "changed beyond tolerance", "detail": "largest change 0.1",
         "cause": "semantic change in Keras (keras2 -> keras3): hard_sigmoid: ..."},
        {"case": "c", "change": "not comparable", "detail": "Keras ran: before False, after True", "cause": ""}]}
    text = matrix.combined_report("2.15.1", "2.21.0", runs, comparison, "## LSTM numerics: recorded vs installed\n")
    assert text.startswith("# Upgrade check: TensorFlow 2.15.1 -> 2.21.0")
    assert "| `b` | passed | passed | changed beyond tolerance largest change 0.1 | semantic change in Keras" in text
    assert "| `c` | skipped | passed |" in text
    assert "`a`" not in text.split("## The comparison report")[0]
    assert "The other 1 cases have the same outcome" in text


def test_harness_dependencies_leave_tensorflow_to_each_version():
    deps = matrix.harness_dependencies()
    assert not [d for d in deps if d.startswith(("tensorflow", "keras", "numpy", "pytest"))]
    assert any(d.startswith("pyyaml") for d in deps)


def test_target_packages():
    assert matrix.target_packages("tensorflow", "2.21.0") == ([], False)
    assert matrix.target_packages("tf-keras", "2.21.0") == (["tf-keras==2.21.0"], True)  # --no-deps


# --- run_matrix with a fake harness -------------------------------------------------------------------------

OLD, NEW = "2.15.1", "2.21.0"


class FakeHarness:
    """Stands in for each version's `harness`: writes what run/record/compare would, from tables
    outcomes[(version, target)] = {case: outcome} and changes[target] = [(case, change, detail)]."""

    def __init__(self, outcomes, changes, compare_code=None):
        self.outcomes, self.changes, self.compare_code = outcomes, changes, compare_code
        self.commands = []

    def __call__(self, command, log=None, check=True):
        self.commands.append(command)
        version, verb = command[0].removeprefix("harness-"), command[1]
        target = command[command.index("--target") + 1]
        if verb == "run":
            rows = [{"case": name, "outcome": outcome} for name, outcome in self.outcomes[(version, target)].items()]
            Path(command[command.index("--report-json") + 1]).write_text(json.dumps(rows))
            return 0
        if verb == "record":
            Path(command[command.index("--out") + 1]).mkdir(exist_ok=True)
            return 0
        if self.compare_code == 2:  # a recording it cannot trust: no report
            return 2
        rows = [{"case": c, "change": k, "detail": d, "max_ulps": 3,
                 "cause": cause[0] if cause else "REGRESSION" if k == matrix.BEYOND else ""}
                for c, k, d, *cause in self.changes[target]]
        Path(command[command.index("--report-json") + 1]).write_text(json.dumps({"recorded": {"tensorflow": OLD, "platform": "x"},
                                                                                "now": {"tensorflow": NEW}, "cases": rows}))
        Path(command[command.index("--markdown") + 1]).write_text("## LSTM numerics: recorded vs installed\nplatform x\n")
        return 1 if any(k == matrix.BEYOND for _, k, *_ in self.changes[target]) else 0


def _run(tmp_path, fake, targets=("tensorflow",), docs=None):
    out = tmp_path / ".matrix"
    results = matrix.run_matrix([OLD, NEW], list(targets), "cases", out, docs,
                                harness_for=lambda v: f"harness-{v}", run=fake)
    return results, out


CALM = {"tensorflow": [("a", matrix.IDENTICAL, ""), ("b", matrix.WITHIN, "largest change 5 ulps")],
        "tf-keras": [("a", matrix.IDENTICAL, ""), ("b", matrix.IDENTICAL, "")]}
PASSING = {"a": "passed", "b": "passed"}


def test_a_calm_upgrade_passes_the_gate_and_writes_only_under_the_matrix_folder(tmp_path, capsys):
    fake = FakeHarness({(v, "tensorflow"): PASSING for v in (OLD, NEW)}, CALM)
    results, out = _run(tmp_path, fake)
    assert matrix.report(results, out) == 0
    printed = capsys.readouterr().out
    assert "tensorflow: TF 2.15.1 -> 2.21.0: 1 bit-identical, 1 changed within tolerance, 0 changed beyond tolerance" in printed
    assert "matrix: OK: 1 comparisons, none beyond tolerance, no new failure" in printed
    assert (out / "upgrade-tf2.15.1-to-tf2.21.0.md").exists()
    assert not (tmp_path / "docs").exists()  # the tracked report only with --docs


def test_a_change_beyond_tolerance_fails_the_gate_and_is_named(tmp_path, capsys):
    changes = {"tensorflow": [("a", matrix.IDENTICAL, ""), ("b", matrix.BEYOND, "largest change 0.1 (9e+05 ulps)")]}
    fake = FakeHarness({(v, "tensorflow"): PASSING for v in (OLD, NEW)}, changes)
    results, out = _run(tmp_path, fake)
    assert matrix.report(results, out) == 1
    printed = capsys.readouterr().out
    assert "1 bit-identical, 0 changed within tolerance, 1 changed beyond tolerance" in printed
    assert "  beyond tolerance: b: largest change 0.1 (9e+05 ulps); REGRESSION" in printed
    assert "matrix: FAILED: 1 of 1 comparisons" in printed


def test_a_change_explained_by_a_keras_definition_change_is_said_but_passes_the_gate(tmp_path, capsys):
    cause = "semantic change in Keras (keras2 -> keras3): hard_sigmoid: clip(0.2x + 0.5) -> relu6(x + 3) / 6"
    changes = {"tensorflow": [("a", matrix.IDENTICAL, ""), ("b", matrix.BEYOND, "largest change 0.1", cause)]}
    results, out = _run(tmp_path, FakeHarness({(v, "tensorflow"): PASSING for v in (OLD, NEW)}, changes))
    assert matrix.report(results, out) == 0
    printed = capsys.readouterr().out
    assert f"  beyond tolerance, explained (not a failure): b: largest change 0.1; {cause}" in printed


def test_a_new_failure_fails_the_gate_even_when_nothing_could_be_compared(tmp_path, capsys):
    outcomes = {(OLD, "tensorflow"): {"a": "passed", "b": "skipped"}, (NEW, "tensorflow"): {"a": "passed", "b": "keras-error"}}
    changes = {"tensorflow": [("a", matrix.IDENTICAL, ""), ("b", "not comparable", "it did not run on one side")]}
    results, out = _run(tmp_path, FakeHarness(outcomes, changes))
    assert matrix.report(results, out) == 1
    assert "  new failure: b: skipped -> keras-error" in capsys.readouterr().out


def test_a_compare_that_cannot_run_fails_the_gate(tmp_path, capsys):
    fake = FakeHarness({(v, "tensorflow"): PASSING for v in (OLD, NEW)}, CALM, compare_code=2)
    results, out = _run(tmp_path, fake)
    assert matrix.report(results, out) == 1
    assert "COMPARE FAILED: harness compare exited 2" in capsys.readouterr().out


def test_each_target_is_run_recorded_and_compared_on_its_own(tmp_path, capsys):
    outcomes = {(v, t): PASSING for v in (OLD, NEW) for t in ("tensorflow", "tf-keras")}
    fake = FakeHarness(outcomes, CALM)
    results, out = _run(tmp_path, fake, targets=("tensorflow", "tf-keras"))
    assert [(r.target, r.version) for r in results] == [("tensorflow", NEW), ("tf-keras", NEW)]
    verbs = [(c[0], c[1], c[c.index("--target") + 1]) for c in fake.commands]
    assert ("harness-2.15.1", "record", "tf-keras") in verbs and ("harness-2.21.0", "compare", "tf-keras") in verbs
    recordings = [c[c.index("--out") + 1] for c in fake.commands if c[1] == "record"]
    assert len(set(recordings)) == 2  # one recording per target
    assert (out / "upgrade-tf2.15.1-to-tf2.21.0-tf-keras.md").read_text().startswith(
        "# Upgrade check: TensorFlow 2.15.1 -> 2.21.0 on the tf-keras target")
    assert matrix.report(results, out) == 0
    assert "tf-keras: TF 2.15.1 -> 2.21.0: 2 bit-identical" in capsys.readouterr().out


def test_the_docs_copy_has_no_machine_dependent_figures_and_says_so(tmp_path):
    fake = FakeHarness({(v, "tensorflow"): PASSING for v in (OLD, NEW)}, CALM)
    results, out = _run(tmp_path, fake, docs=tmp_path / "docs")
    full = (out / "upgrade-tf2.15.1-to-tf2.21.0.md").read_text()
    tracked = (tmp_path / "docs" / "upgrade-tf2.15.1-to-tf2.21.0.md").read_text()
    assert "5 ulps" in full and "platform" in full
    assert "ulps |" not in tracked and "5 ulps" not in tracked and "platform x" not in tracked
    assert "Machine-dependent figures are left out" in tracked
    assert "| `b` | passed | passed | changed within tolerance  |  |" in tracked
    again = tmp_path / "again"
    again.mkdir()
    _run(again, FakeHarness({(v, "tensorflow"): PASSING for v in (OLD, NEW)}, CALM), docs=again / "docs")
    assert (again / "docs" / "upgrade-tf2.15.1-to-tf2.21.0.md").read_text() == tracked  # rerun: the tree stays clean


def test_main_refuses_a_single_version(capsys):
    import pytest
    with pytest.raises(SystemExit) as exc:
        matrix.main(["2.21.0"])
    assert exc.value.code == 2
