"""Oracle strength in four figures: faults caught, smallest caught perturbation per dtype, false
alarms in a fuzz campaign, and how close the corpus runs to its tolerances.

Usage: .venv/bin/python bench/oracle_figures.py [FUZZ_EXAMPLES (default 200)] [FUZZ_SEED (default 7)]
Takes several minutes: every fault runs the whole corpus.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from harness.discovery import load_corpus
from harness.faults import FAULTS
from harness.fuzz import fuzz
from harness.runner import run_case
from harness.selftest import baseline, run_fault, smallest_caught_perturbation


def main() -> None:
    examples = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    fuzz_seed = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    cases = [e.case for e in load_corpus(["cases"]) if e.case]
    started = time.perf_counter()
    witnesses = baseline(cases)
    results = [run_fault(fault, witnesses) for fault in FAULTS]
    caught = [r for r in results if r.caught]
    print(f"faults caught: {len(caught)} / {len(results)}")
    for r in results:
        print(f"  {r.fault.name:<40} {'caught by ' + str(len(r.failing)) + ' cases' if r.caught else 'ESCAPED'}")
    print("smallest caught relative perturbation of h, per dtype (decades 1e-1 .. 1e-12):")
    for dtype, eps in smallest_caught_perturbation(witnesses).items():
        print(f"  {dtype:<16} {eps:g}" if eps else f"  {dtype:<16} none")
    report = fuzz(examples, fuzz_seed)
    print(f"fuzz false alarms: {len(report.disagreements)} / {report.ran} examples (seed {fuzz_seed})")
    ratios = np.array([max(d.max_error_ratio for _, d in r.diffs) for r in map(run_case, witnesses) if r.diffs])
    quantiles = ", ".join(f"p{int(q * 100)} {np.quantile(ratios, q):.3g}" for q in (0.5, 0.9, 0.99, 1.0))
    print(f"corpus margins (largest error / bound per case, {len(ratios)} cases): {quantiles}")
    print(f"({time.perf_counter() - started:.0f}s)")


if __name__ == "__main__":
    main()
