from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SEED_CASE = REPO / "cases" / "seed" / "seed-linear-gates.yaml"


@pytest.fixture
def write_case(tmp_path):
    """Write a case file's text under tmp_path and return its path."""

    def write(text: str, name: str = "case.yaml") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    return write


@pytest.fixture
def seed_text() -> str:
    return SEED_CASE.read_text()
