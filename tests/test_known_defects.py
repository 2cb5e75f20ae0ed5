"""Known defects are listed once (harness/known_defects.py) and pinned by known-failure cases of the corpus."""

from harness.discovery import load_corpus
from harness.known_defects import DEFECTS, known_defect
from harness.loader import load_case

from conftest import REPO


def test_every_listed_defect_is_pinned_by_a_known_failure_case():
    for defect in DEFECTS:
        case = load_case(REPO / defect.case)
        assert case.known_failure, defect.case


def test_every_known_failure_case_of_the_corpus_is_listed():
    listed = {REPO / d.case for d in DEFECTS}
    for entry in load_corpus([REPO / "cases"]):
        if entry.case and entry.case.known_failure:
            assert entry.path in listed, f"{entry.path}: add it to harness/known_defects.py"


def test_the_unrolled_backwards_defect_reaches_bidirectional_without_zero_output_for_mask():
    wrapped = {"type": "LSTM", "units": 1, "return_sequences": True, "unroll": True}
    doc = {"layer": "Bidirectional", "config": {"layer": wrapped}, "input": [[[1.0]]], "mask": [[True]]}
    assert known_defect(doc) is not None
    assert known_defect({k: v for k, v in doc.items() if k != "mask"}) is None
