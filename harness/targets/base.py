"""What a system under test is: one place a Keras layer runs (Keras 3 on TensorFlow, on JAX, ...).

An adapter names itself, lists its execution modes, says which Keras semantics the reference must
follow for it, says why it cannot run a case (or None), prepares a case once (build or convert; a
failure names the stage) and runs the prepared case in each mode, returning per call every output
as float64 plus the dtype it was returned in. It never sees the reference; the runner compares.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from harness.case import Case
from harness.errors import SystemFailure


@dataclass
class SystemRun:
    """What the system returned: per call, output name -> float64 values (exact for every float dtype),
    and the dtype it returned each output in."""

    outputs: list[dict[str, np.ndarray]]
    dtypes: list[dict[str, str]]

    @classmethod
    def from_native(cls, native: list[dict[str, np.ndarray]]) -> "SystemRun":
        return cls(outputs=[{k: np.asarray(v).astype(np.float64) for k, v in call.items()} for call in native],
                   dtypes=[{k: str(np.asarray(v).dtype) for k, v in call.items()} for call in native])


class SystemUnderTest(Protocol):
    name: str  # "tensorflow", "jax", ...: what --target takes
    label: str  # how reports name it: "Keras", "Keras (JAX)", "TFLite", ...
    modes: tuple[str, ...]  # the execution modes it offers, in run order

    def environment(self) -> dict:
        """Versions and backend: what a recording stores about it."""

    def semantics(self) -> str:
        """"keras3" or "keras2": which Keras definitions the reference must follow."""

    def supports(self, case: Case) -> str | None:
        """Why this system cannot run the case, or None."""

    def prepare(self, case: Case):
        """Build (or convert) once for the case; raises SystemFailure naming the stage."""

    def run(self, prepared, mode: str) -> SystemRun:
        """Every call of the case in one mode, from the case's weights and zero states; raises SystemFailure."""


def run_modes(system: SystemUnderTest, case: Case, modes: tuple[str, ...]) -> dict[str, SystemRun | SystemFailure]:
    """Prepare once and run each mode. A failure to prepare raises SystemFailure; a mode that fails is
    that mode's SystemFailure and the other modes still run. A system in another process does it all there."""
    run_all = getattr(system, "run_all", None)
    if run_all is not None:
        return run_all(case, modes)
    prepared = system.prepare(case)
    results: dict[str, SystemRun | SystemFailure] = {}
    for mode in modes:
        try:
            results[mode] = system.run(prepared, mode)
        except SystemFailure as failure:
            results[mode] = failure
    return results
