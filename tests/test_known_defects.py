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


def test_the_tf2onnx_gemm_defect_needs_every_condition_found():
    config = {"units": 2, "use_bias": False, "unroll": True, "implementation": 1}
    doc = {"layer": "GRU", "config": config, "dtype": "float32", "input": [[[1.0], [2.0]]]}
    assert known_defect(doc, "onnx") is not None and known_defect(doc, "tflite") is None
    assert known_defect({**doc, "input": {"random": {"seed": 1, "shape": [1, 3, 2]}}}, "onnx") is not None
    for change in ({"input": [[[1.0]], [[2.0]]]}, {"input": {"random": {"seed": 1, "shape": [2, 3, 2]}}},
                   {"dtype": "float16"}, {"initial_state": {"h": [[0.0, 0.0]]}},
                   {"config": {**config, "use_bias": True}}, {"config": {**config, "unroll": False}},
                   {"config": {**config, "implementation": 2}}, {"config": {**config, "reset_after": False}},
                   {"layer": "LSTM"}, {"layer": "SimpleRNN"}):
        assert known_defect({**doc, **change}, "onnx") is None, change
    lstm = {**doc, "layer": "LSTM", "config": {**config, "recurrent_activation": None}}
    assert known_defect(lstm, "onnx") is not None


def test_the_saved_model_silu_defect_is_the_while_loop_differentiated():
    doc = {"layer": "SimpleRNN", "config": {"units": 1, "activation": "silu"}, "gradients": {}}
    assert known_defect({**doc, "gradients": {"cotangents": {}}}, "saved-model") is not None
    assert known_defect({**doc, "gradients": {"cotangents": {}}}, "tensorflow") is None
    assert known_defect({**doc, "config": {"units": 1, "activation": "swish"}, "gradients": True}, "saved-model")
    assert known_defect(doc, "saved-model") is not None  # `gradients: {}` asks for them with the defaults
    assert known_defect({k: v for k, v in doc.items() if k != "gradients"}, "saved-model") is None  # forward only
    assert known_defect({**doc, "config": {"units": 1, "activation": "silu", "unroll": True}, "gradients": True},
                        "saved-model") is None
    bidi = {"layer": "Bidirectional", "gradients": True,
            "config": {"layer": {"type": "LSTM", "units": 1, "recurrent_activation": "silu"}}}
    assert known_defect(bidi, "saved-model") is not None


def test_the_celu_gradient_defect_needs_an_exact_zero():
    doc = {"layer": "SimpleRNN", "config": {"units": 1, "activation": "celu"}, "gradients": {},
           "input": {"random": {"seed": 2, "shape": [1, 1, 1], "scale": 0.0}},
           "weights": {"kernel": {"random": {"seed": 0, "scale": 0.1}}}}
    assert known_defect(doc, "tensorflow") is not None and known_defect(doc, "jax") is None
    assert known_defect({**doc, "input": [[[0.5], [0.0]]]}, "saved-model") is not None
    nonzero = {**doc, "input": {"random": {"seed": 2, "shape": [1, 1, 1], "scale": 0.5}}}
    assert known_defect(nonzero, "tensorflow") is None
    assert known_defect({**nonzero, "weights": {"kernel": {"random": {"seed": 0, "scale": 0.0}}}}, "tensorflow")
    assert known_defect({k: v for k, v in doc.items() if k != "gradients"}, "tensorflow") is None


def test_the_torch_stateful_backward_defect_needs_one_unmasked_call():
    """Found by harness fuzz --target torch (seed 8): masked in one call and not in the other still fails."""
    config = {"units": 1, "stateful": True}
    calls = lambda *masked: [{"input": [[[1.0]]], **({"mask": [[True]]} if m else {})} for m in masked]  # noqa: E731
    doc = {"layer": "LSTM", "config": config, "gradients": {}}
    assert known_defect({**doc, "calls": calls(True, False)}, "torch") is not None
    assert known_defect({**doc, "calls": calls(False, True)}, "torch") is not None
    assert known_defect({**doc, "calls": calls(True, True)}, "torch") is None
    assert known_defect({**doc, "layer": "SimpleRNN", "calls": calls(False, False)}, "torch") is None
