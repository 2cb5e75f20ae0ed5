"""Sensitivity and false alarms of the default tolerances, in one run (issue 17).

For the corpus's LSTM cases and a random survey of LSTM cases (bench/tolerance_survey.py's generator), per
dtype: the share of cases that catch h * (1 + eps) at every step (the fault injected into Keras's LSTM cell,
harness/faults.py), and on the survey, the false alarms (cases failing against the real Keras) and the
largest error / bound. Printed three times: with the measured per-element defaults (harness/tolerances.py) and
the 16-bit twin (harness/twin_tensorflow.py), without the twin, and with the flat defaults they
replaced, so the three are compared on the same cases and machine.

Usage: .venv/bin/python bench/sensitivity.py [survey cases per dtype, default 25] [seed, default 0]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from tolerance_survey import DTYPES, random_case  # noqa: E402

from harness import quiet, tolerances, twin_tensorflow  # noqa: E402
from harness.discovery import load_corpus  # noqa: E402
from harness.runner import run_case  # noqa: E402
from harness.selftest import baseline, perturbation_shares  # noqa: E402


def survey(count: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    return [random_case(rng, dtype, i) for dtype in DTYPES for i in range(count)]


def figures(label: str, corpus: list, cases: list) -> None:
    started = time.perf_counter()
    print(f"\n== {label}")
    alarms, worst = {}, {}
    for case in cases:
        result = run_case(case)
        ratio = max((d.max_error_ratio for _, d in result.diffs), default=0.0)
        worst[case.dtype] = max(worst.get(case.dtype, 0.0), ratio)
        if not result.ok:
            alarms.setdefault(case.dtype, []).append(f"{case.name}: {result.message}")
    print(f"{'dtype':<16}{'survey cases':>13}{'false alarms':>14}{'largest error/bound':>21}")
    for dtype in DTYPES:
        print(f"{dtype:<16}{sum(c.dtype == dtype for c in cases):>13}{len(alarms.get(dtype, [])):>14}"
              f"{worst.get(dtype, 0.0):>21.3g}")
    for dtype, lines in alarms.items():
        for line in lines[:3]:
            print(f"  false alarm: {line[:160]}")
    passing = [case for case in cases if case.dtype not in alarms or
               all(not line.startswith(case.name + ":") for line in alarms[case.dtype])]
    for name, pool in (("corpus", corpus), ("survey", passing)):
        for share in perturbation_shares(pool):
            steps = " (<= 10 steps)" if share.short_only else ""
            print(f"  {name:<7} {share.dtype:<15} h x (1 + {share.epsilon:g}){steps}: caught by "
                  f"{share.caught:>3} of {share.total:>3}" + (f"  {share.fraction:6.0%}" if share.total else "")
                  + (f"  ({share.all_zero} left out: outputs 0 everywhere)" if share.all_zero else ""))
    print(f"  ({time.perf_counter() - started:.0f}s)")


def main() -> None:
    quiet.enable()
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 25
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    corpus_cases = [e.case for e in load_corpus([Path("cases")]) if e.case]
    cases = survey(count, seed)
    runs = ((True, True, "measured per-element defaults and the 16-bit twin on tensorflow (now)"),
            (True, False, "measured per-element defaults without the twin"),
            (False, False, "flat defaults (before)"))
    for enabled, twin, label in runs:
        tolerances.ENABLED, twin_tensorflow.ENABLED = enabled, twin
        figures(label, baseline(corpus_cases), cases)


if __name__ == "__main__":
    main()
