"""Resident memory of a long run in one process (issue 15): does it grow with the number of cases?

Usage:
  .venv/bin/python bench/memory.py passes [--passes 5] [--trace] [PATH ...]
      run_case over the case files (default: a subset of cases/) PASSES times in this process; after each
      pass: current RSS (/proc/self/status VmRSS), peak RSS (ru_maxrss), Python objects alive, and with
      --trace the tracemalloc lines that grew most since pass 1 (Python allocations only: what TensorFlow's
      C++ keeps shows in RSS, not here).
  .venv/bin/python bench/memory.py fuzz [--checkpoints 100,500,2000] [--seed 0]
      `harness fuzz` in this process, in campaigns of examples up to each checkpoint (seeds seed, seed+1,
      ...); RSS at each checkpoint. The target: at 2000 examples within 1.5x the RSS at 100.

Both take --release-every N: how many cases between two releases of TensorFlow's kernel cache by the runner
(harness/release.py; default: its EVERY); 0 never, the behaviour before issue 15. Figures are printed,
never asserted.
"""

from __future__ import annotations

import argparse
import gc
import resource
import sys
import time
import tracemalloc
from pathlib import Path

DEFAULT_SUBSET = ["cases/seed", "cases/masking", "cases/gru/masking", "cases/simple-rnn/masking",
                  "cases/bidirectional/masking", "cases/stateful", "cases/code-paths"]


def rss_mib() -> tuple[float, float]:
    """(current, peak) resident set size in MiB."""
    current = 0.0
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                current = int(line.split()[1]) / 1024
    return current, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def line(label: str, started: float) -> str:
    current, peak = rss_mib()
    return (f"{label:<22} rss {current:7.0f} MiB  peak {peak:7.0f} MiB  objects {len(gc.get_objects()):>8}  "
            f"{time.perf_counter() - started:7.1f}s")


def passes(paths: list[str], count: int, trace: bool) -> None:
    from harness.discovery import load_corpus
    from harness.runner import run_case

    cases = [e.case for e in load_corpus(paths) if e.case is not None]
    print(f"{len(cases)} cases from {', '.join(paths)}; {count} passes")
    started = time.perf_counter()
    print(line("loaded", started), flush=True)
    first = None
    for number in range(1, count + 1):
        outcomes = [run_case(case).outcome for case in cases]
        gc.collect()
        print(line(f"pass {number} ({outcomes.count('passed')} passed)", started), flush=True)
        if trace and number == 1:
            tracemalloc.start(12)
            first = tracemalloc.take_snapshot()
    if trace and first is not None:
        grown = tracemalloc.take_snapshot().compare_to(first, "traceback")
        print(f"tracemalloc: Python allocations grown over passes 2..{count} (top 8):")
        for stat in grown[:8]:
            print(f"  +{stat.size_diff / 1024:8.0f} KiB {stat.count_diff:+7d} blocks")
            for frame in stat.traceback.format()[-6:]:
                print(f"      {frame}")


def fuzz_campaign(checkpoints: list[int], seed: int) -> None:
    from harness import targets
    from harness.fuzz import fuzz
    from harness.versions import keras_flavor

    started = time.perf_counter()
    print(line("start", started), flush=True)
    done, found = 0, 0
    for number, checkpoint in enumerate(checkpoints):
        report = fuzz(checkpoint - done, seed + number, None, keras_flavor(), system=targets.get())
        done += report.ran
        found += len(report.disagreements)
        gc.collect()
        print(line(f"{done} examples", started) + f"  disagreements so far {found}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("passes")
    p.add_argument("paths", nargs="*", default=DEFAULT_SUBSET)
    p.add_argument("--passes", type=int, default=5)
    p.add_argument("--trace", action="store_true")
    f = sub.add_parser("fuzz")
    f.add_argument("--checkpoints", default="100,500,2000")
    f.add_argument("--seed", type=int, default=0)
    for command in (p, f):
        command.add_argument("--release-every", type=int, default=None)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from harness import release

    if args.release_every is not None:
        release.EVERY = args.release_every
    print(f"release every {release.EVERY} cases (0: never)")
    if args.what == "passes":
        passes(args.paths, args.passes, args.trace)
    else:
        fuzz_campaign([int(n) for n in args.checkpoints.split(",")], args.seed)


if __name__ == "__main__":
    main()
