"""A long campaign's worker (targets.recycled, harness/targets/worker.py): ended once its resident memory grows
past the ratio and replaced by a fresh one, with results bit-identical to the in-process target's; kept
while it stays below; a case the watchdog stops ends its worker, and the next case starts a fresh one."""

from __future__ import annotations

import pytest

from harness import limits, targets
from harness.loader import load_case
from harness.runner import run_case
from harness.targets import worker

CASES = ["cases/seed/seed-linear-gates.yaml", "cases/gradients/lstm-stateful-two-calls.yaml"]


def figures(result) -> tuple:
    """Everything numeric the target produced: its outputs and gradients (first mode), and every mode's diffs."""
    arrays = [a for call in result.system_outputs or [] for a in call.values()]
    arrays += [a for call in result.system_gradients or [] for a in call.values()]
    diffs = [(call, d.output, d.mode, d.largest_abs, d.max_error_ratio) for call, d in result.diffs]
    return result.outcome, result.modes, [a.tobytes() for a in arrays], diffs


def test_a_replaced_worker_gives_the_in_process_results():
    cases = [load_case(p) for p in CASES]
    system = targets.recycled("tensorflow", above=0.5)  # past the ratio after every case: a new process each time
    in_worker = [figures(run_case(case, system=system)) for case in cases + cases[:1]]
    assert system.recycled >= len(in_worker)  # after every call: forward runs and gradients alike
    in_process = [figures(run_case(case)) for case in cases + cases[:1]]
    assert in_worker == in_process and all(f[0] == "passed" for f in in_worker)
    assert all(f[2] for f in in_worker)  # outputs came back (not an empty comparison)


def test_a_worker_below_the_ratio_is_kept():
    system = targets.recycled("tensorflow", above=100.0)
    first = [run_case(load_case(p), system=system).outcome for p in CASES]
    key = "tensorflow+recycled"
    pool = worker._POOLS[key]
    second = [run_case(load_case(p), system=system).outcome for p in CASES]
    assert first == second == ["passed"] * len(CASES) and system.recycled == 0 and worker._POOLS[key] is pool
    assert worker._FIRST_RSS[key] > 100  # MiB: TensorFlow is loaded there


def test_a_case_the_watchdog_stops_ends_its_worker():
    system = targets.recycled("tensorflow", above=100.0)
    case = load_case(CASES[0])
    worker._end(f"{system.name}+recycled")  # none running: the first call starts one (seconds, past the limit)
    with pytest.raises(limits.CaseTimeout), limits.watchdog(0.2):
        system.run_all(case, system.default_modes)
    assert f"{system.name}+recycled" not in worker._POOLS  # ended, not left running the case
    assert run_case(case, system=system).outcome == "passed"  # the next case: a fresh worker
