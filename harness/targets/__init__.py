"""Systems under test: one adapter per place a Keras layer runs (tensorflow.py, ...), and the registry."""

from __future__ import annotations

from harness.targets.base import SystemRun, SystemUnderTest, run_modes
from harness.targets.tensorflow import KerasOnTensorFlow

DEFAULT_TARGET = "tensorflow"


def get(name: str = DEFAULT_TARGET) -> SystemUnderTest:
    """The adapter for a target name; KeyError for an unknown one."""
    return {"tensorflow": KerasOnTensorFlow}[name]()


__all__ = ["DEFAULT_TARGET", "SystemRun", "SystemUnderTest", "get", "run_modes"]
