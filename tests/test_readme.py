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
