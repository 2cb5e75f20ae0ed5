"""Fake systems under test, for tests of the harness itself (no monkeypatching of module names)."""

from __future__ import annotations

from typing import Callable

from harness import targets
from harness.targets import SystemRun


class AlteredSystem:
    """The real Keras on TensorFlow, with what it returns altered by `alter(mode, run) -> run` (which may
    also raise SystemFailure): a defect injected where the harness cannot see it."""

    def __init__(self, alter: Callable[[str, SystemRun], SystemRun], real=None):
        self.real = real or targets.get()
        self.alter = alter
        self.name, self.label, self.modes = self.real.name, self.real.label, self.real.modes

    def environment(self) -> dict:
        return self.real.environment()

    def semantics(self) -> str:
        return self.real.semantics()

    def supports(self, case):
        return self.real.supports(case)

    def prepare(self, case):
        return self.real.prepare(case)

    def run(self, prepared, mode: str) -> SystemRun:
        return self.alter(mode, self.real.run(prepared, mode))
