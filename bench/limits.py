"""Time and peak memory of growing cases, per element, and the largest case within the default limits.

    .venv/bin/python bench/limits.py [STEPS ...]

Each case (batch 16, 32 features, 128 units, return_sequences, random weights, the default modes eager and
graph) runs in a fresh process (`harness run`), so its peak resident memory (ru_maxrss) is its own;
"elements" counts inputs, weights and outputs as harness/limits.py estimates them. Prints one row per case
and the per-element figures of the largest, which the README's "Limits" section quotes. Not a timed test.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BATCH, FEATURES, UNITS = 16, 32, 128
BASELINE_STEPS = 1  # the same harness run on a 1-step case: TensorFlow's import and the fixed costs


def case_text(steps: int) -> str:
    return (f"name: bench-{steps}\nconfig: {{units: {UNITS}, return_sequences: true, return_state: true}}\n"
            f"input: {{random: {{seed: 1, shape: [{BATCH}, {steps}, {FEATURES}], scale: 0.5}}}}\n"
            "weights: {kernel: {random: {seed: 2, scale: 0.1}}, recurrent_kernel: {random: {seed: 3, scale: 0.1}},"
            " bias: {random: {seed: 4, scale: 0.1}}}\n")


def elements(steps: int) -> int:
    weights = FEATURES * 4 * UNITS + UNITS * 4 * UNITS + 4 * UNITS
    return weights + BATCH * steps * FEATURES + BATCH * steps * UNITS + 4 * BATCH * UNITS


def measure(steps: int, folder: Path) -> tuple[float, float, str]:
    path = folder / f"bench-{steps}.yaml"
    path.write_text(case_text(steps))
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "harness", "run", str(path), "--limit", "case_seconds=3600"],
                          capture_output=True, text=True)
    seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    outcome = done.stdout.split()[0] if done.stdout else f"exit {done.returncode}"
    return seconds, max(peak_kib, before) / 1024, outcome


def main(argv: list[str]) -> None:
    steps_list = [int(a) for a in argv] or [250, 1000, 2500, 5000]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        base_s, base_mb, _ = measure(BASELINE_STEPS, folder)
        print(f"baseline (1 step): {base_s:.1f} s, peak {base_mb:.0f} MiB (TensorFlow import and fixed costs)")
        print(f"{'steps':>6} {'elements':>10} {'outcome':>8} {'seconds':>8} {'peak MiB':>9} {'us/element':>11} {'bytes/element':>14}")
        for steps in steps_list:
            seconds, peak_mb, outcome = measure(steps, folder)
            n = elements(steps)
            print(f"{steps:>6} {n:>10} {outcome:>8} {seconds:>8.1f} {peak_mb:>9.0f} "
                  f"{(seconds - base_s) / n * 1e6:>11.2f} {(peak_mb - base_mb) * 2 ** 20 / n:>14.0f}", flush=True)
    print(f"(batch {BATCH}, {FEATURES} features, {UNITS} units; elements = inputs + weights + outputs; "
          "per-element figures are above the 1-step baseline)")


if __name__ == "__main__":
    main(sys.argv[1:])
