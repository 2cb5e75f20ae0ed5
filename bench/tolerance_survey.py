"""Survey how close random valid cases run to the default tolerances (no false alarms wanted).

Prints, per dtype, the distribution of the largest |keras - reference| / bound over random cases
(1.0 = exactly at the tolerance). Usage: .venv/bin/python bench/tolerance_survey.py [N per dtype] [seed]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from harness.case import Call, Case
from harness.known_defects import known_defect
from harness.runner import run_case

ACTIVATIONS = ["tanh", "sigmoid", "relu", None, "hard_sigmoid", "softsign", "elu", "swish", "gelu", "softplus"]
DTYPES = ["float64", "float32", "float16", "bfloat16", "mixed_float16", "mixed_bfloat16"]


def random_case(rng: np.random.Generator, dtype: str, index: int) -> Case:
    units = int(rng.integers(1, 9))
    features = int(rng.integers(1, 9))
    batch = int(rng.integers(1, 5))
    steps = int(rng.choice([1, 3, 10, 50, 200]))
    scale = float(rng.choice([0.1, 0.5, 1.0]))
    linear = rng.random() < 0.15
    activation = None if linear else str(rng.choice([a for a in ACTIVATIONS if a]))
    if known_defect({"dtype": dtype, "config": {"activation": activation}}):
        activation = "tanh"  # a documented defect (harness/known_defects.py), not noise
    recurrent = None if linear else str(rng.choice(["sigmoid", "hard_sigmoid", "sigmoid", "tanh"]))
    if linear:
        scale, steps = 0.3, min(steps, 3)  # linear gates grow doubly exponentially: longer runs overflow float64
    config = {"units": units, "activation": activation, "recurrent_activation": recurrent,
              "return_sequences": True, "return_state": True, "go_backwards": bool(rng.random() < 0.3)}
    mask = rng.random((batch, steps)) < 0.8 if rng.random() < 0.3 else None
    weights = {"kernel": rng.normal(0, scale, (features, 4 * units)),
               "recurrent_kernel": rng.normal(0, scale, (units, 4 * units)),
               "bias": rng.normal(0, scale, (4 * units,))}
    x = rng.normal(0, 1, (batch, steps, features))
    return Case(name=f"survey-{dtype}-{index}", path=Path("<survey>"), config=config, dtype=dtype,
                weights=weights, calls=[Call(input=x, mask=mask)])


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    rng = np.random.default_rng(int(sys.argv[2]) if len(sys.argv) > 2 else 0)
    print(f"{'dtype':<16}{'cases':>6}{'failed':>8}{'median':>10}{'p90':>10}{'max':>10}   (error / tolerance)")
    for dtype in DTYPES:
        ratios, failures = [], []
        for i in range(count):
            case = random_case(rng, dtype, i)
            result = run_case(case)
            ratio = max(d.max_error_ratio for _, d in result.diffs) if result.diffs else float("nan")
            ratios.append(ratio)
            if not result.ok:
                failures.append(result)
        r = np.array(ratios)
        print(f"{dtype:<16}{count:>6}{len(failures):>8}{np.median(r):>10.3g}{np.quantile(r, 0.9):>10.3g}{r.max():>10.3g}")
        for failure in failures[:3]:
            print(failure.details)


if __name__ == "__main__":
    main()
