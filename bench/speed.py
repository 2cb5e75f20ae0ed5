"""Where the time goes (issue 6): figures printed as ratios from one run, never asserted.

Usage: .venv/bin/python bench/speed.py [--skip-pytest]
1. per-case split over the corpus, per execution-mode setting: Keras calls vs the harness's own work
   (load, reference, noise, compare), and the whole run vs the naive baseline (a fresh eager layer per case);
2. `harness run` on one case vs a bare `import tensorflow` (both as fresh processes);
3. the reference vs Keras float32 (each mode) on batch 64, 200 steps, 256 units, 128 features;
4. pytest -n 2 vs -n 0 on the corpus (slow; --skip-pytest to leave it out).
"""

from __future__ import annotations

import subprocess
from dataclasses import replace
import sys
import time
from pathlib import Path

import numpy as np

from harness import runner, targets
from harness.case import Call, Case
from harness.discovery import load_corpus
from harness.modes import DEFAULT_MODES, MODES
from harness.reference_runner import run_reference
from harness.versions import keras_flavor


def run_keras(case: Case, mode: str):
    """One mode on a fresh layer (a naive loop would do this)."""
    return targets.run_modes(targets.get(), case, (mode,))[mode]


class TimedSystem:
    """The real system under test, with the time spent in it added up."""

    def __init__(self):
        self.real = targets.get()
        self.spent = 0.0
        self.name, self.label, self.modes = self.real.name, self.real.label, self.real.modes

    def semantics(self):
        return self.real.semantics()

    def prepare(self, case):
        return self._timed(self.real.prepare, case)

    def run(self, prepared, mode):
        return self._timed(self.real.run, prepared, mode)

    def _timed(self, function, *args):
        started = time.perf_counter()
        try:
            return function(*args)
        finally:
            self.spent += time.perf_counter() - started


def _wall(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - started


def _structure(case: Case) -> tuple:
    """What fixes a built layer and its trace, shapes of batch and time aside: cases that share it could share one."""
    calls = case.calls
    return (case.layer, repr(sorted(case.config.items())), case.dtype, calls[0].input.shape[2],
            tuple(c.mask is not None for c in calls), tuple(c.initial_state is not None for c in calls),
            calls[0].input.shape[0] if case.stateful else None)


def corpus_split() -> None:
    # every case in the mode being measured, including those whose file pins `execution:`
    cases = [replace(e.case, execution=None) for e in load_corpus(["cases"]) if e.case]
    runner.run_case(cases[0])  # TensorFlow's import and first-call costs out of the figures
    started = time.perf_counter()
    for case in cases:
        try:
            run_keras(case, "eager")
        except Exception:  # noqa: BLE001 - a Keras error costs what it costs
            pass
    naive = time.perf_counter() - started
    distinct = len(set(map(_structure, cases)))
    print(f"naive baseline: a fresh eager layer per case, {len(cases)} cases: {naive:.2f}s of Keras calls; "
          f"{distinct} distinct layer structures (reusing layers across cases could save at most "
          f"{len(cases) - distinct} builds and traces)")
    for label, modes in (("default (" + ",".join(DEFAULT_MODES) + ")", None), ("eager", ("eager",)),
                         ("graph", ("graph",)), ("xla", ("xla",))):
        system = TimedSystem()
        started = time.perf_counter()
        for case in cases:
            runner.run_case(case, modes=modes, system=system)
        total = time.perf_counter() - started
        keras_time = system.spent
        print(f"harness, modes {label}: {total:.2f}s = {naive / total:.2f}x the naive baseline's throughput; "
              f"Keras {keras_time:.2f}s, harness's own work {total - keras_time:.2f}s = "
              f"{(total - keras_time) / keras_time:.0%} of the Keras time")


def single_case() -> None:
    harness = str(Path(sys.executable).with_name("harness"))
    tf_import = min(_wall([sys.executable, "-c", "import tensorflow"]) for _ in range(3))
    one = min(_wall([harness, "run", "cases/seed/seed-linear-gates.yaml"]) for _ in range(3))
    print(f"single case: harness run {one:.2f}s vs import tensorflow {tf_import:.2f}s (difference {one - tf_import:.2f}s)")


def big_reference() -> None:
    rng = np.random.default_rng(0)
    batch, steps, units, features = 64, 200, 256, 128
    case = Case(name="big", path=Path("<bench>"), config={"units": units, "return_sequences": True}, dtype="float32",
                weights={"kernel": rng.normal(0, 0.05, (features, 4 * units)),
                         "recurrent_kernel": rng.normal(0, 0.05, (units, 4 * units)),
                         "bias": rng.normal(0, 0.05, 4 * units)},
                calls=[Call(input=rng.normal(size=(batch, steps, features)))])
    run_reference(case, keras_flavor())  # warm up, as Keras is below
    started = time.perf_counter()
    run_reference(case, keras_flavor())
    reference_s = time.perf_counter() - started
    for mode in MODES:
        run_keras(case, mode)  # warms TensorFlow up; the timed call builds, traces and compiles anew, as the harness does
        started = time.perf_counter()
        run_keras(case, mode)
        keras_s = time.perf_counter() - started
        print(f"big case (64x200x128 -> 256 units): reference float64 {reference_s:.2f}s vs Keras float32 {mode} "
              f"{keras_s:.2f}s, first call included (ratio {reference_s / keras_s:.2f})")


def pytest_workers() -> None:
    pytest = [sys.executable, "-m", "pytest", "cases", "-q", "-p", "no:cacheprovider"]
    serial = _wall(pytest + ["-n", "0"])
    parallel = _wall(pytest + ["-n", "2"])
    print(f"pytest corpus: -n 0 {serial:.1f}s, -n 2 {parallel:.1f}s (speed-up {serial / parallel:.2f}x)")


if __name__ == "__main__":
    corpus_split()
    single_case()
    big_reference()
    if "--skip-pytest" not in sys.argv:
        pytest_workers()
