"""The README's format examples (the full one and one per layer) are real cases: they validate, and they pass."""

import re

import pytest

from harness.runner import run_path

from conftest import REPO

SECTION = (REPO / "README.md").read_text().split("## The case format", 1)[1].split("\n## ", 1)[0]
EXAMPLES = re.findall(r"```yaml\n(.*?)```", SECTION, re.S)


def test_every_layer_has_an_example():
    layers = {(re.search(r"^layer: (\w+)", text, re.M) or [None, "LSTM"])[1] for text in EXAMPLES}
    assert layers == {"LSTM", "GRU", "SimpleRNN", "Bidirectional"}


@pytest.mark.parametrize("number", range(len(EXAMPLES)))
def test_readme_format_examples_run_and_pass(tmp_path, number):
    path = tmp_path / f"readme-example-{number}.yaml"
    path.write_text(EXAMPLES[number])
    result = run_path(path)
    assert result.outcome == "passed", result.details


def test_the_digits_table_is_what_the_default_bounds_need():
    from harness.hand_values import decimals_needed
    from harness.tolerances import DEFAULTS

    text = (REPO / "README.md").read_text().split("### Hand values: how many digits", 1)[1]
    rows = re.findall(r"^\| (float64|float32|float16|bfloat16)\b[^|]*\| ([\d.e-]+) \| (\d+) decimal", text, re.M)
    assert [name for name, _, _ in rows] == ["float64", "float32", "float16", "bfloat16"]
    for name, bound, decimals in rows:
        atol = DEFAULTS[name][1]
        assert abs(float(bound) - atol) / atol < 0.03 and int(decimals) == decimals_needed(atol), name
