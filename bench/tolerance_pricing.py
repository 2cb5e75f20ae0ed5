"""Price candidate measured defaults offline (issue 17): how tight could the bound be, and what would it catch?

  .venv/bin/python bench/tolerance_pricing.py collect TARGET OUT.pkl [--survey 25] [--seed 0] [--dtypes D,D]
      run the corpus and a random survey (bench/tolerance_survey.py's generator) on TARGET; keep, for
      every forward output judged by the measured default (harness/tolerances.py), the system's values, the
      reference's and each element's measured noise; on tensorflow, the LSTM cases again under h x (1 + eps)
      (harness/faults.py) for each eps of selftest.SENSITIVITY. Cases that pass or fail as things stand (a
      failure is printed; the sweep counts it against every candidate that does not widen past it).
  .venv/bin/python bench/tolerance_pricing.py sweep A.pkl,B.pkl COMPUTE S,F,R,A[,C] [S,F,R,A[,C] ...]
      for each candidate (safety, share, rtol units, atol units, atol scale floor C, default 1) of the compute dtype: per target, the largest
      error / bound on the unperturbed outputs (false alarms past 1), and per eps the share of LSTM witnesses
      (tensorflow; 16-bit: up to 10 steps) whose perturbed outputs would fail: what MEASURED would give,
      without running Keras again. The bound is recomputed here as tolerances.measured and compare._bound do.
"""

from __future__ import annotations

import argparse
import collections
import pickle
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

UNIT = {"float64": 2.0 ** -53, "float32": 2.0 ** -24, "float16": 2.0 ** -11, "bfloat16": 2.0 ** -8}


def collect(target: str, out: Path, survey_count: int, seed: int = 0, dtypes: list[str] | None = None) -> None:
    from tolerance_survey import DTYPES, random_case  # noqa: PLC0415

    from harness import quiet, runner, targets, verdict  # noqa: PLC0415
    from harness.discovery import load_corpus  # noqa: PLC0415
    from harness.faults import h_scaled  # noqa: PLC0415
    from harness.precision import compute_dtype  # noqa: PLC0415
    from harness.selftest import SENSITIVITY, involves  # noqa: PLC0415

    quiet.enable()
    rows, context, made = [], {}, {}
    original_measured, original_diff = verdict.measured, verdict.diff_output

    def measured(case_dtype, output, timesteps, element_noise, reference):
        tolerance = original_measured(case_dtype, output, timesteps, element_noise, reference)
        made[id(tolerance)] = (tolerance, np.array(element_noise), timesteps, compute_dtype(case_dtype))
        return tolerance

    def diff_output(name, system, reference, expected, tolerance, *args, **kwargs):
        kept = made.get(id(tolerance))
        if kept is not None and kept[0] is tolerance and tolerance.per_element:  # the measured default
            rows.append({**context, "output": name, "system": np.array(system), "reference": np.array(reference),
                         "noise": kept[1], "steps": kept[2], "compute": kept[3]})
        return original_diff(name, system, reference, expected, tolerance, *args, **kwargs)

    verdict.measured, verdict.diff_output = measured, diff_output
    rng = np.random.default_rng(seed)
    survey = [random_case(rng, dtype, i) for dtype in (dtypes or DTYPES) for i in range(survey_count)]
    corpus = [e.case for e in load_corpus([Path("cases")]) if e.case and (not dtypes or e.case.dtype in dtypes)]
    system = targets.get(target)
    modes = ("eager", "graph", "xla") if target == targets.DEFAULT_TARGET else None
    for origin, cases in (("corpus", corpus), ("survey", survey)):
        for case in cases:
            before = len(rows)
            context = {"target": target, "origin": origin, "case": case.name, "dtype": case.dtype, "eps": 0.0}
            outcome = runner.run_case(case, None, modes, system=system)
            if outcome.outcome == "failed":  # kept: the sweep counts it as a false alarm of the candidate
                print(f"failed as things stand: {case.name}: {outcome.message}", flush=True)
            elif outcome.outcome != "passed":  # a known failure, skipped, unsupported: prices nothing
                del rows[before:]
                continue
            if target == targets.DEFAULT_TARGET and involves(case, "LSTM"):
                for eps in SENSITIVITY[compute_dtype(case.dtype)]:
                    context = {**context, "eps": eps}
                    with h_scaled(eps).install():
                        runner.run_case(case, None, ("eager",), system=system)
            made.clear()
        print(f"{origin}: {len(rows)} outputs so far", flush=True)
    with open(out, "wb") as file:
        pickle.dump(rows, file)


def ratio(row: dict, candidate: tuple[float, ...]) -> float:
    """The row's largest |system - reference| / bound under the candidate (tolerances.measured's formula)."""
    safety, share, rtol_units, atol_units, scale_floor = (*candidate, 1.0)[:5]  # a 4-tuple: atol scale floor 1
    system, reference, noise = row["system"], row["reference"], row["noise"]
    unit, growth = UNIT[row["compute"]], np.sqrt(max(row["steps"], 1))
    largest = float(np.nanmax(noise, initial=0.0)) if noise.size else 0.0
    own = np.where(np.isnan(noise), largest, noise)
    finite = np.isfinite(reference)
    scale = max(scale_floor, float(np.abs(reference[finite]).max()) if finite.any() else 0.0)
    bound = np.maximum(atol_units * unit * growth * scale + rtol_units * unit * growth * np.where(finite, np.abs(reference), 0),
                       safety * np.maximum(own, share * largest))
    with np.errstate(invalid="ignore", divide="ignore"):
        error = np.abs(system - reference)
        return float(np.where((system == reference) | ~np.isfinite(error), 0.0, error / bound).max(initial=0.0))


def sweep(rows: list[dict], compute: str, candidate: tuple[float, ...]) -> None:
    worst, worst_where, per_case = collections.defaultdict(float), {}, collections.defaultdict(float)
    steps = {}
    for row in rows:
        if row["compute"] != compute:
            continue
        q = ratio(row, candidate)
        key = (row["target"], row["origin"], row["case"], row["eps"])
        per_case[key] = max(per_case[key], q)
        steps[(row["origin"], row["case"])] = row["steps"]
        if row["eps"] == 0.0 and q > worst[row["target"]]:
            worst[row["target"]], worst_where[row["target"]] = q, f"{row['case']} {row['output']}"
    shares = collections.defaultdict(lambda: [0, 0])
    nonzero = {(row["origin"], row["case"]) for row in rows if row["eps"] == 0.0 and np.nanmax(np.abs(row["reference"]), initial=0.0) > 0}
    all_zero = {(row["origin"], row["case"]) for row in rows} - nonzero
    for (target, origin, case, eps), q in per_case.items():
        if eps == 0.0 or target != "tensorflow" or per_case.get((target, origin, case, 0.0), 2.0) > 1.0:
            continue
        if (origin, case) in all_zero:  # as selftest.perturbation_shares: no scaling of h can change them
            continue
        if compute in ("float16", "bfloat16") and steps[(origin, case)] > 10:
            continue
        shares[(origin, eps)][0] += q > 1.0
        shares[(origin, eps)][1] += 1
    alarms = sum(1 for key, q in per_case.items() if key[3] == 0.0 and q > 1.0)
    print(f"{compute} (safety, share, rtol u, atol u[, atol scale floor]) = {candidate}: false alarms {alarms}")
    for target, q in sorted(worst.items()):
        print(f"  {target:12} largest error/bound {q:.3f} ({worst_where[target]})")
    for (origin, eps), (caught, total) in sorted(shares.items()):
        print(f"  {origin} h x (1 + {eps:g}): caught by {caught} of {total} ({caught / max(total, 1):.0%})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    c = sub.add_parser("collect")
    c.add_argument("target")
    c.add_argument("out", type=Path)
    c.add_argument("--survey", type=int, default=25)
    c.add_argument("--seed", type=int, default=0, help="the survey generator's seed")
    c.add_argument("--dtypes", help="comma-separated case dtypes: the survey's, and the corpus cases kept")
    s = sub.add_parser("sweep")
    s.add_argument("files")
    s.add_argument("compute", choices=tuple(UNIT))
    s.add_argument("candidates", nargs="+")
    args = parser.parse_args()
    if args.what == "collect":
        collect(args.target, args.out, args.survey, args.seed, args.dtypes.split(",") if args.dtypes else None)
        return
    rows = []
    for name in args.files.split(","):
        with open(name, "rb") as file:
            rows += pickle.load(file)
    for text in args.candidates:
        sweep(rows, args.compute, tuple(float(x) for x in text.split(",")))


if __name__ == "__main__":
    main()
