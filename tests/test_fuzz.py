"""The fuzzer: a small derandomized sample agrees, and an injected fault is found, shrunk and saved."""

from pathlib import Path

from hypothesis import given, settings

from harness.faults import FAULTS
from harness.fuzz import case_documents, fuzz
from harness.loader import case_from_document, load_case
from harness.runner import run_case

OUTPUT_GATE_DROPPED = next(f for f in FAULTS if f.name == "output-gate-dropped")


@settings(max_examples=50, database=None, derandomize=True)
@given(case_documents())
def test_generated_documents_are_valid_cases(doc):
    case = case_from_document(doc, Path("<fuzz>"))
    assert case.calls and set(case.weights) == set(case.spec.weights(case.config, case.calls[0].input.shape[2]))


@settings(max_examples=60, database=None, derandomize=True)
@given(case_documents())
def test_documents_of_every_layer_are_drawn(doc):
    assert doc.get("layer", "LSTM") in ("LSTM", "GRU", "SimpleRNN", "Bidirectional")


def test_every_layer_is_drawn():
    from hypothesis import find
    for layer in ("LSTM", "GRU", "SimpleRNN", "Bidirectional"):
        find(case_documents(), lambda doc, layer=layer: doc.get("layer", "LSTM") == layer,
             settings=settings(database=None, derandomize=True, max_examples=500))


def test_small_campaign_has_no_false_alarm():
    report = fuzz(examples=12, seed=0)
    assert report.ran == 12 and report.disagreements == []
    assert sum(report.dimensions["dtype"].values()) == 12


def test_injected_fault_is_found_shrunk_and_saved(tmp_path):
    with OUTPUT_GATE_DROPPED.install():
        report = fuzz(examples=30, seed=0, save=tmp_path)
        assert report.disagreements, "the fuzzer missed a dropped output gate"
        found = report.disagreements[0]
        case = load_case(found.saved)
        assert run_case(case).outcome == "failed"
    assert case.layer == "LSTM" and case.units <= 2 and case.calls[0].input.shape[:2] <= (1, 2)  # shrunk
    assert run_case(case).outcome == "passed"  # the saved case passes against the real Keras
