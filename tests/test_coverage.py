"""The coverage map: classification of each dimension, and the shipped corpus covering every value."""

import json

import numpy as np

from harness.case import Call, Case
from harness.cli import main
from harness.coverage import build_map, classify, mask_patterns, numeric_edges
from harness.discovery import load_corpus

from conftest import REPO


def _case(mask=None, x=None, weights_scale=0.5, dtype="float32", **config):
    x = np.ones((2, 4, 3)) if x is None else x
    units = config.pop("units", 2)
    weights = {"kernel": np.full((x.shape[2], 4 * units), weights_scale),
               "recurrent_kernel": np.full((units, 4 * units), weights_scale), "bias": np.zeros(4 * units)}
    return Case(name="c", path=REPO, config={"units": units, **config}, dtype=dtype, weights=weights,
                calls=[Call(input=x, mask=None if mask is None else np.array(mask, bool))])


def test_mask_patterns_are_classified_row_by_row():
    assert mask_patterns(_case()) == {"none"}
    assert mask_patterns(_case([[1, 1, 0, 0], [1, 1, 1, 1]])) == {"right-padded"}
    assert mask_patterns(_case([[0, 0, 1, 1], [1, 1, 1, 1]])) == {"left-padded", "first-step-masked"}
    assert mask_patterns(_case([[1, 0, 0, 1], [1, 1, 1, 1]])) == {"middle-gap"}
    assert mask_patterns(_case([[0, 0, 0, 0], [1, 1, 1, 1]])) == {"row-fully-masked"}


def test_numeric_edges():
    assert numeric_edges(_case(x=np.full((1, 2, 3), 50.0))) == {"saturating-input"}
    assert numeric_edges(_case(x=np.array([[[np.nan, 0, np.inf]]]))) == {"nan-input", "inf-input"}
    assert numeric_edges(_case(x=np.zeros((1, 2, 3)), weights_scale=0.0)) == {"zero-input", "zero-weights"}
    assert numeric_edges(_case(weights_scale=1e-8)) == {"tiny-weights"}
    assert numeric_edges(_case(weights_scale=1e4)) == {"huge-weights"}
    assert numeric_edges(_case(x=np.full((1, 1, 3), 1e-40))) == {"subnormal-values"}
    assert numeric_edges(_case(x=np.full((1, 1, 3), 1e-40), dtype="float64")) == set()  # normal in float64


def test_activations_resolve_aliases_and_defaults():
    assert classify(_case(activation="silu"), "keras3")["activation"] == {"swish"}
    values = classify(_case(), "keras3")
    assert values["activation"] == {"tanh"} and values["recurrent_activation"] == {"sigmoid"}
    assert values["gate activations"] == {"fused tanh/sigmoid"}
    assert classify(_case(activation=None), "keras3")["gate activations"] == {"other"}


def test_uncovered_values_are_named():
    coverage = build_map([_case(go_backwards=True)], "keras3").layers["LSTM"]
    uncovered = coverage.uncovered()
    assert uncovered["go_backwards"] == ["false"] and "true" not in uncovered["go_backwards"]
    assert "mixed_bfloat16" in uncovered["dtype"]
    assert ("tanh", "relu") in coverage.uncovered_activation_pairs()
    assert ("tanh", "sigmoid") not in coverage.uncovered_activation_pairs()


def test_the_shipped_corpus_covers_every_value():
    entries = load_corpus([REPO / "cases"])
    assert not [e.path for e in entries if e.error]
    coverage = build_map([e.case for e in entries], "keras3", every_layer=True)
    assert set(coverage.layers) == {"LSTM", "GRU", "SimpleRNN", "Bidirectional"}
    assert all(layer.cases >= 40 for layer in coverage.layers.values()), {n: m.cases for n, m in coverage.layers.items()}
    assert coverage.uncovered() == {}
    for layer in coverage.layers.values():
        if layer.has_mask_table:
            grid = layer.mask_table()
            assert all(n > 0 for (pattern, _, _), n in grid.items() if pattern != "none"), (layer.layer, grid)


def test_every_case_has_a_description():
    for entry in load_corpus([REPO / "cases"]):
        assert entry.case.description.strip(), entry.path


def test_cli_coverage_json(capsys):
    assert main(["coverage", str(REPO / "cases" / "seed"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["cases"] == 1 and list(report["layers"]) == ["LSTM"]
    lstm = report["layers"]["LSTM"]
    assert lstm["dimensions"]["dtype"]["float32"] == 1
    assert "float16" in lstm["uncovered"]["dtype"]
    assert {"mask": "none", "go_backwards": "false", "return_sequences": "true", "cases": 1} in \
        lstm["mask_x_go_backwards_x_return_sequences"]
