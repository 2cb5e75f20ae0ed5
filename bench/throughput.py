"""Throughput on repeated structures (issue 15): figures printed as paired ratios from one run, never asserted.

Usage: .venv/bin/python bench/throughput.py [corpus|fuzz|all] [--copies 10] [--structures 22] [--examples 100]
                                           [--default-only]

corpus: a corpus of STRUCTURES distinct layer structures from cases/ (the first of each), COPIES copies each
  with fresh values (weights and inputs redrawn at the same shapes and scale), run in graph mode by
  1. the naive compiled loop: per case a fresh layer, the weights set, a fresh tf.function, called (Keras only);
  2. the harness end to end (`runner.run_case`: reference, noise, Keras, compare) with the build cache off;
  3. the same with the build cache on (harness/targets/build_cache.py);
  and the same in xla mode for 2 and 3. The issue's target: 3 at least 3x faster than 1.
fuzz: `harness fuzz` of EXAMPLES examples (seed 0) as before issue 15 (cache off, a new structure every
  example), then with the cache and 1, the default (fuzz.PER_STRUCTURE) and 10 value draws per structure:
  examples per second of each. The issue's target: at least 5x the first. Last, the default as `harness fuzz`
  runs it: the target in a worker replaced as its memory grows (targets.recycled; its first start not
  counted, as TensorFlow's import is not in the others). --default-only: the last two rows only.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import runner, targets  # noqa: E402
from harness.discovery import load_corpus  # noqa: E402
from harness.targets import build_cache, run_modes  # noqa: E402


def repeated_corpus(structures: int, copies: int) -> list:
    """STRUCTURES distinct structures (cases that pass, no hand values or pinned modes kept), COPIES copies each,
    every copy's weights and inputs redrawn (normal, each array's own scale) so that no value repeats."""
    firsts, seen = [], set()
    for entry in load_corpus(["cases"]):
        case = entry.case
        if case is None or case.known_failure or case.targets is not None or case.gradients is not None:
            continue
        key = build_cache.structure_key(case)
        if key in seen:
            continue
        seen.add(key)
        firsts.append(case)
        if len(firsts) == structures:
            break
    rng = np.random.default_rng(0)

    def redraw(a):
        a = np.asarray(a)
        if a.dtype == bool or not np.all(np.isfinite(a)):
            return a
        return rng.normal(0.0, float(np.std(a)) or 0.5, a.shape)

    out = []
    for copy in range(copies):
        for case in firsts:
            calls = [replace(c, input=redraw(c.input), expected={}) for c in case.calls]
            out.append(replace(case, name=f"{case.name}-{copy}", weights={k: redraw(v) for k, v in case.weights.items()},
                               calls=calls, execution=None, tolerance={}, expected_tolerance={}))
    return out


def timed(function) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def corpus(structures: int, copies: int) -> None:
    cases = repeated_corpus(structures, copies)
    system = targets.get()
    runner.run_case(cases[0], modes=("graph",))  # TensorFlow's import and first calls out of the figures

    def naive():
        with build_cache.disabled():
            for case in cases:
                run_modes(system, case, ("graph",))

    def harness(mode: str, cache: bool):
        def go():
            build_cache.clear()
            with (build_cache.enabled() if cache else build_cache.disabled()):
                outcomes = [runner.run_case(case, modes=(mode,)).outcome for case in cases]
            bad = [o for o in outcomes if o != "passed"]
            if bad:
                print(f"  (not passed: {len(bad)}: {sorted(set(bad))})")
        return go

    n = len(cases)
    naive_s = timed(naive)
    print(f"{n} cases ({structures} structures x {copies} copies), graph mode:")
    print(f"  naive compiled loop (fresh layer + tf.function per case, Keras only): {naive_s:6.2f}s")
    for mode in ("graph", "xla"):
        off = timed(harness(mode, False))
        on = timed(harness(mode, True))
        print(f"  harness {mode:5} end to end, cache off: {off:6.2f}s; cache on: {on:6.2f}s "
              f"({off / on:.1f}x; naive / cache on = {naive_s / on:.1f}x)")
    print(f"  cache after the run: {build_cache.describe()}")
    cache_memory(cases[:structures])


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmRSS:"))


def cache_memory(distinct: list) -> None:
    """What the kept entries hold: resident memory with the cache full (eager and graph, then xla too) and
    after clearing it, each measured after a warm pass so that first-use costs are out of the figure."""
    import gc

    def fill(modes):
        build_cache.clear()
        for case in distinct:
            runner.run_case(case, modes=modes)
        gc.collect()
        return rss_mib()

    fill(("eager", "graph"))  # first use of each op and kernel
    build_cache.clear()
    gc.collect()
    empty = rss_mib()
    full = fill(("eager", "graph"))
    build_cache.clear()
    gc.collect()
    cleared = rss_mib()
    print(f"  memory: {len(distinct)} structures kept (eager, graph) {full - empty:+.1f} MiB "
          f"({(full - empty) / len(distinct):.2f} MiB each); after clearing the cache {cleared - empty:+.1f} MiB")
    full_xla = fill(("eager", "graph", "xla"))
    build_cache.clear()
    gc.collect()
    print(f"  memory: {len(distinct)} structures kept with xla too {full_xla - cleared:+.1f} MiB "
          f"({(full_xla - cleared) / len(distinct):.2f} MiB each); after clearing {rss_mib() - cleared:+.1f} MiB "
          f"(XLA's compiled clusters stay in TensorFlow: bench/memory.py)")


def fuzz_figures(examples: int, default_only: bool) -> None:
    from harness.fuzz import PER_STRUCTURE, fuzz

    here, worker = targets.get(), targets.recycled(targets.DEFAULT_TARGET)
    fuzz(2, seed=99, system=here)  # warm-up
    fuzz(2, seed=99, system=worker)  # its first worker started
    rows = []
    every = (("before issue 15 (cache off, 1)", here, False, 1), ("cache on, 1 per structure", here, True, 1),
             ("cache on, 5 per structure", here, True, 5))
    for label, system, cache, per_structure in (every if not default_only else ()) + (
            (f"cache on, {PER_STRUCTURE} per structure (default)", here, True, PER_STRUCTURE),
            ("the same in a recycled worker (CLI)", worker, True, PER_STRUCTURE)):
        build_cache.clear()
        with (build_cache.enabled() if cache else build_cache.disabled()):
            started = time.perf_counter()
            report = fuzz(examples, seed=0, system=system, per_structure=per_structure)
            seconds = time.perf_counter() - started
        rows.append((label, report.ran, seconds, len(report.disagreements)))
    base = rows[0][1] / rows[0][2]
    for label, ran, seconds, found in rows:
        rate = ran / seconds
        print(f"  fuzz {label:28}: {ran} examples in {seconds:6.1f}s = {rate:5.2f}/s ({rate / base:.1f}x), "
              f"{found} disagreements")
    print(f"  (the recycled worker was replaced {worker.recycled}x as its memory grew)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("part", nargs="?", default="all", choices=("corpus", "fuzz", "all"))
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--structures", type=int, default=22)
    parser.add_argument("--examples", type=int, default=100)
    parser.add_argument("--default-only", action="store_true")
    args = parser.parse_args()
    if args.part in ("corpus", "all"):
        corpus(args.structures, args.copies)
    if args.part in ("fuzz", "all"):
        fuzz_figures(args.examples, args.default_only)
