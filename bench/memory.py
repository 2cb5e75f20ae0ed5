"""Resident memory of a long run in one process (issue 15): does it grow with the number of cases?

Usage:
  .venv/bin/python bench/memory.py passes [--passes 5] [--trace] [PATH ...]
      run_case over the case files (default: a subset of cases/) PASSES times in this process; after each
      pass: current RSS (/proc/self/status VmRSS), peak RSS (ru_maxrss), Python objects alive, and with
      --trace the tracemalloc lines that grew most since pass 1 (Python allocations only: what TensorFlow's
      C++ keeps shows in RSS, not here).
  .venv/bin/python bench/memory.py fuzz [--checkpoints 100,500,2000] [--seed 0] [--target T] [--in-process]
      `harness fuzz` as the CLI runs it: the target in a worker process replaced when its memory grows past
      targets.RECYCLE_ABOVE x its first case's (targets.recycled); in campaigns of examples up to each checkpoint
      (seeds seed, seed+1, ...). At each checkpoint the RSS of this process and of its workers, summed (the
      figure the target is about: at 2000 examples within 1.5x the sum at 100), and how many workers were
      replaced. --in-process: the target in this process instead, as before issue 15's worker (tensorflow and
      the converted targets only).

Both take --release-every N: how many cases between two releases of TensorFlow's kernel cache by the runner
(harness/release.py; default: its EVERY); 0 never, the behaviour before issue 15. Figures are printed,
never asserted.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import sys
import time
import tracemalloc
from pathlib import Path

DEFAULT_SUBSET = ["cases/seed", "cases/masking", "cases/gru/masking", "cases/simple-rnn/masking",
                  "cases/bidirectional/masking", "cases/stateful", "cases/code-paths"]


def tree_rss_mib() -> float:
    """The resident set size of this process and of its child processes (the workers), summed, in MiB."""
    me, total = os.getpid(), 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                parent = int(stat.read().rsplit(")", 1)[1].split()[1])
            if int(entry) != me and parent != me:
                continue
            with open(f"/proc/{entry}/status") as status:
                total += next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024
        except (OSError, StopIteration, ValueError):
            continue  # ended meanwhile
    return total


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


def fuzz_campaign(checkpoints: list[int], seed: int, target: str, in_process: bool) -> None:
    from harness import targets
    from harness.fuzz import fuzz

    system = targets.get(target) if in_process else targets.recycled(target)
    where = "in this process" if in_process else f"in a worker replaced past {system.recycle_above}x its first RSS"
    print(f"fuzz on {target} {where}")
    started = time.perf_counter()
    print(line("start", started), flush=True)
    done, found = 0, 0
    for number, checkpoint in enumerate(checkpoints):
        report = fuzz(checkpoint - done, seed + number, None, system=system)
        done += report.ran
        found += len(report.disagreements)
        gc.collect()
        replaced = (f"  worker peak {system.largest_rss:5.0f} MiB, replaced {system.recycled}x"
                    if not in_process else "")
        print(line(f"{done} examples", started) + f"  with workers {tree_rss_mib():7.0f} MiB{replaced}"
              f"  disagreements so far {found}", flush=True)


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
    f.add_argument("--target", default="tensorflow")
    f.add_argument("--in-process", action="store_true")
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
        fuzz_campaign([int(n) for n in args.checkpoints.split(",")], args.seed, args.target, args.in_process)


if __name__ == "__main__":
    main()
