"""The runner releases TensorFlow's kernel cache every `release.EVERY` cases, whatever each case's outcome,
so that a long run in one process stays within bounded memory (figures: bench/memory.py); releasing never
imports TensorFlow."""

import subprocess
import sys

from harness import release
from harness.loader import load_case
from harness.runner import run_case

from conftest import REPO, SEED_CASE


class CannotRun:
    """A system under test that runs nothing: each case is skipped, or with `crash` a harness-error."""

    name = label = "fake"
    modes = ("eager",)

    def __init__(self, crash: bool = False):
        self.crash = crash

    def semantics(self) -> str:
        return "keras3"

    def supports(self, case):
        if self.crash:
            raise RuntimeError("a bug")
        return "it runs nothing"


def test_the_runner_releases_every_n_cases_whatever_their_outcome(monkeypatch):
    released = []
    monkeypatch.setattr(release, "release", lambda: released.append(True))
    monkeypatch.setattr(release, "EVERY", 3)
    monkeypatch.setattr(release, "_ran", 0)
    case = load_case(SEED_CASE)
    outcomes = [run_case(case, system=CannotRun(crash=n % 2 == 1)).outcome for n in range(7)]
    assert outcomes == ["skipped", "harness-error"] * 3 + ["skipped"]
    assert len(released) == 2  # after the 3rd and the 6th case
    monkeypatch.setattr(release, "EVERY", 0)
    run_case(case, system=CannotRun())
    run_case(case, system=CannotRun())
    assert len(released) == 2  # 0: never


def test_a_case_that_reused_a_kept_layer_is_not_counted(monkeypatch):
    """Releasing re-instantiates every kept trace (build_cache): a case that reused one adds nothing to the
    kernel cache, and counting it made repeated structures 2x slower."""
    released = []
    monkeypatch.setattr(release, "release", lambda: released.append(True))
    monkeypatch.setattr(release, "EVERY", 2)
    monkeypatch.setattr(release, "_ran", 0)
    for reused in (False, True, True, True, False):
        if reused:
            release.reused()
        release.after_case()
    assert len(released) == 1  # after the 5th: the 1st and 5th counted


def test_releasing_never_imports_tensorflow():
    done = subprocess.run([sys.executable, "-c", "import sys; from harness import release; release.release(); "
                           "print('tensorflow' in sys.modules)"], cwd=REPO, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
