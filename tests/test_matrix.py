"""The version matrix's combined report (scripts/matrix.py), from synthetic run and compare results."""

import importlib.util

from conftest import REPO

spec = importlib.util.spec_from_file_location("matrix", REPO / "scripts" / "matrix.py")
matrix = importlib.util.module_from_spec(spec)
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
