"""The README's full format example is a real case: it validates, and it passes."""

import re

from harness.runner import run_path

from conftest import REPO


def test_readme_format_example_runs_and_passes(tmp_path):
    readme = (REPO / "README.md").read_text()
    section = readme.split("## The case format", 1)[1]
    example = re.search(r"```yaml\n(.*?)```", section, re.S).group(1)
    path = tmp_path / "readme-example.yaml"
    path.write_text(example)
    result = run_path(path)
    assert result.outcome == "passed", result.details
