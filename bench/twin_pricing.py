"""Price the 16-bit twin's bound (harness/tolerances.py, TWIN_*) on random LSTM cases the twin covers.

For each candidate setting of the bound, on the survey cases of every length that have a twin on TensorFlow
(bench/tolerance_survey.py's generator, float16, mixed_float16, bfloat16, mixed_bfloat16): the false alarms
(cases failing against the real Keras), the largest |Keras - twin| / twin bound, and per
dtype the share of short cases (up to 10 steps) that catch h * (1 + eps), eps as the issue asks (1e-2 for
float16, 3e-2 for bfloat16). A candidate is only worth having if it has no false alarm, and its largest
error / bound says how much room is left.

Usage: .venv/bin/python bench/twin_pricing.py [cases per dtype, default 40] [seed, default 20] [more seeds ...]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from tolerance_survey import random_case  # noqa: E402

from harness import quiet, targets, tolerances, twin_tensorflow  # noqa: E402
from harness.faults import h_scaled  # noqa: E402
from harness.precision import compute_dtype  # noqa: E402
from harness.runner import run_case  # noqa: E402
from harness.selftest import SHORT, installed  # noqa: E402

DTYPES = ("float16", "mixed_float16", "bfloat16", "mixed_bfloat16")
EPSILON = {"float16": 1e-2, "bfloat16": 3e-2}
CANDIDATES = (
    ("now", {}),
    ("session 14 (2u, floor 1/4)", {"TWIN_RTOL": 2.0, "TWIN_SCALE_FLOOR": 0.25}),
    ("half of now", {"TWIN_RTOL": 0.5, "TWIN_ATOL": 0.25, "TWIN_SAFETY": 0.5}),
    ("no floor, no noise term", {"TWIN_SCALE_FLOOR": 0.0, "TWIN_SAFETY": 0.0}),
)


def covered(count: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    cases = [random_case(rng, dtype, i) for dtype in DTYPES for i in range(count)]
    return [case for case in cases
            if any(twin_tensorflow.why_not(case, "tensorflow", mode) is None for mode in twin_tensorflow.MODES)]


def price(label: str, cases: list) -> None:
    started = time.perf_counter()
    system = targets.get("tensorflow")
    alarms, worst, passing = [], 0.0, []
    for case in cases:
        result = run_case(case, system=system)
        twinned = [d.twin_error_ratio for _, d in result.diffs if d.twin_bound is not None]
        worst = max([worst, *twinned])
        (passing if result.outcome == "passed" else alarms).append(case)
    short = [case for case in passing if max(call.input.shape[1] for call in case.calls) <= SHORT]
    shares = []
    for dtype in DTYPES:
        of_dtype = [case for case in short if case.dtype == dtype]
        with installed(h_scaled(EPSILON[compute_dtype(dtype)]), "tensorflow") as faulty:
            caught = sum(run_case(case, system=faulty).outcome == "failed" for case in of_dtype)
        shares.append(f"{dtype} {caught}/{len(of_dtype)}")
    print(f"{label:<30}{len(alarms):>7}{worst:>13.3g}   " + "  ".join(shares)
          + f"  ({time.perf_counter() - started:.0f}s)")
    for case in alarms[:3]:
        print(f"  false alarm: {case.name} ({case.dtype}, {case.calls[0].input.shape[1]} steps)")


def main() -> None:
    quiet.enable()
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    seeds = [int(s) for s in sys.argv[2:]] or [20]
    cases = [case for seed in seeds for case in covered(count, seed)]
    print(f"{len(cases)} survey cases with a twin (seeds {', '.join(map(str, seeds))}); "
          f"h x (1 + eps) caught, eps {EPSILON['float16']:g} (float16) and {EPSILON['bfloat16']:g} (bfloat16), "
          f"cases of up to {SHORT} steps")
    print(f"{'bound':<30}{'alarms':>7}{'twin ratio':>13}   caught")
    saved = {name: getattr(tolerances, name) for _, changes in CANDIDATES for name in changes}
    for label, changes in CANDIDATES:
        try:
            for name, value in changes.items():
                setattr(tolerances, name, value)
            price(label, cases)
        finally:
            for name, value in saved.items():
                setattr(tolerances, name, value)


if __name__ == "__main__":
    main()
