"""Run one case end to end: load, reference, Keras, compare. Every path ends in a CaseResult."""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from harness import limits, report
from harness.case import Case
from harness.compare import OutputDiff, diff_output
from harness.errors import InvalidCase, KerasFailure, LoadCrash, NotApplicable, Unsupported
from harness.keras_runner import KerasRun, keras_flavor, run_keras_modes
from harness.loader import load_case
from harness.modes import modes_for
from harness.noise import NoiseEstimate, estimate_noise
from harness.precision import compute_dtype
from harness.reference_runner import reference_outputs, run_reference
from harness.tolerances import resolve
from harness.versions import unmet

OUTCOMES = ("passed", "failed", "invalid", "keras-error", "unsupported", "timeout", "xfailed", "xpassed", "skipped",
            "harness-error")
# A known failure that still fails, or that now passes, keeps a run green; the second says "remove the marker".
# A case whose `requires:` the installed versions do not meet is skipped, and says so.
GREEN = ("passed", "xfailed", "xpassed", "skipped")


@dataclass
class CaseResult:
    """What happened to one case: the outcome, a one-line message, and the full explanation."""

    name: str
    path: str
    outcome: str
    message: str
    details: str = ""
    diffs: list[tuple[int, OutputDiff]] = field(default_factory=list)  # (call number, diff)
    duration_s: float = 0.0
    keras_outputs: list[dict] | None = None  # per call: output name -> float64 array, of the first mode, when it ran
    modes: tuple[str, ...] = ()  # the execution modes Keras ran in; keras_outputs are those of modes[0]
    mode_errors: dict[str, str] = field(default_factory=dict)  # mode -> what Keras raised in that mode only

    @property
    def ok(self) -> bool:
        return self.outcome in GREEN

    def to_json(self) -> dict:
        return {
            "case": self.name, "path": self.path, "outcome": self.outcome, "message": self.message,
            "details": self.details, "duration_s": round(self.duration_s, 4), "modes": list(self.modes),
            "mode_errors": self.mode_errors,
            "outputs": [
                {"call": call, "mode": d.mode, "output": d.output, "passed": d.passed, "mismatched": len(d.mismatches),
                 "total": d.total, "max_abs_diff": d.max_abs, "max_rel_diff": d.max_rel,
                 "error_to_tolerance": d.max_error_ratio, "tolerance": {"rtol": d.tolerance.rtol, "atol": d.tolerance.atol},
                 "verdict": d.verdict}
                for call, d in self.diffs
            ],
        }


def compare_case(case: Case, keras_calls: list[dict], reference_calls: list,
                 noise: NoiseEstimate | None = None, keras_dtypes: list[dict] | None = None) -> list[tuple[int, OutputDiff]]:
    """Diff every compared output of every call; `noise` sets the floor of default tolerances and
    the rows where the dtype's range ran out."""
    diffs = []
    for number, (call, keras_out, ref_result) in enumerate(zip(case.calls, keras_calls, reference_calls), start=1):
        ref_out = reference_outputs(case, ref_result)
        rows = noise.overflow_rows[number - 1] if noise else None
        steps = call.input.shape[1]
        for name in case.compared_outputs():
            expected = call.expected.get(name)
            if expected is None and name == "output" and "h" in call.expected and not case.config.get("zero_output_for_mask"):
                expected = call.expected["h"]  # the last output is the final h unless masked steps output zeros
            measured = noise.per_call[number - 1][name] if noise else 0.0
            tolerance = resolve(case.tolerance, case.dtype, name, steps, measured)
            diff = diff_output(name, keras_out[name], ref_out[name], expected, tolerance, rows)
            returned = keras_dtypes[number - 1][name] if keras_dtypes else None
            if returned and returned != compute_dtype(case.dtype) and diff.structure_problem is None:
                diff.structure_problem = (f"dtype mismatch: Keras returned {returned}, but dtype {case.dtype} "
                                          f"computes in {compute_dtype(case.dtype)}")
                diff.verdict = "Keras ignored the case's dtype policy"
            diffs.append((number, diff))
    return diffs


def run_case(case: Case, flavor: str | None = None, modes: tuple[str, ...] | None = None) -> CaseResult:
    """Run a loaded case on the reference and on Keras and compare them. `modes` is the run's default
    execution modes (a case's own `execution:` wins). A bug of the harness itself is the case's own
    "harness-error" outcome, with the traceback, so the other cases still run."""
    started = time.perf_counter()
    try:
        with limits.watchdog():
            return _run_case(case, flavor, modes_for(case.execution, modes))
    except limits.CaseTimeout as exc:
        return timeout_result(case, exc.args[0], time.perf_counter() - started)
    except Exception:  # noqa: BLE001 - reported in full, never hidden
        trace = traceback.format_exc()
        return CaseResult(case.name, str(case.path), "harness-error", trace.strip().splitlines()[-1],
                          f"HARNESS-ERROR {case.name} ({case.path}): a bug in the harness, please report it\n{trace}")


def _run_case(case: Case, flavor: str | None, modes: tuple[str, ...]) -> CaseResult:
    started = time.perf_counter()
    flavor = flavor or keras_flavor()
    shown = str(case.path)
    missing = unmet(case.requires)
    if missing:
        message = f"requires {', '.join(missing)}"
        return CaseResult(case.name, shown, "skipped", message, f"SKIPPED {case.name} ({shown}): {message}")
    try:
        reference_calls = run_reference(case, flavor)
        noise = estimate_noise(case, flavor, reference_calls)
    except Unsupported as exc:
        return CaseResult(case.name, shown, "unsupported", str(exc), f"UNSUPPORTED {case.name} ({shown}): {exc}",
                          duration_s=time.perf_counter() - started)
    except NotApplicable as exc:
        return CaseResult(case.name, shown, "skipped", str(exc), f"SKIPPED {case.name} ({shown}): {exc}")
    try:
        runs = run_keras_modes(case, modes)
    except KerasFailure as exc:  # the layer could not be built: no mode ran
        return _known_failure(case, CaseResult(case.name, shown, "keras-error", str(exc),
                                               f"KERAS-ERROR {case.name} ({shown}): {exc}",
                                               duration_s=time.perf_counter() - started, modes=modes))
    ran = {mode: run for mode, run in runs.items() if isinstance(run, KerasRun)}
    errors = {mode: run for mode, run in runs.items() if isinstance(run, KerasFailure)}
    diffs = []
    for mode, run in ran.items():
        for number, diff in compare_case(case, run.outputs, reference_calls, noise, run.dtypes):
            diff.mode = mode
            diffs.append((number, diff))
    spread = report.mode_spread({mode: run.outputs for mode, run in ran.items()})
    failed = any(not d.passed for _, d in diffs)
    outcome = "failed" if failed else "keras-error" if errors else "passed"
    message = report.summary_line(case, diffs, modes, errors)
    details = report.case_report(case, diffs, flavor, modes, errors, spread)
    primary = runs[modes[0]]
    result = CaseResult(case.name, shown, outcome, message, details, diffs, time.perf_counter() - started,
                        primary.outputs if isinstance(primary, KerasRun) else None, modes,
                        {mode: str(error) for mode, error in errors.items()})
    return _known_failure(case, result)


def known_failure_applies(case: Case) -> bool:
    """Whether the case's known defect concerns the installed versions (elsewhere the case must pass)."""
    return bool(case.known_failure) and not unmet(case.known_failure.get("when", {}))


def _known_failure(case: Case, result: CaseResult) -> CaseResult:
    """Apply a case's known_failure marker: a failure becomes xfailed, a pass becomes xpassed."""
    if not known_failure_applies(case):
        return result
    reason = case.known_failure["reason"]
    upstream = f" ({case.known_failure['upstream']})" if case.known_failure.get("upstream") else ""
    if result.outcome in ("failed", "keras-error"):
        result.outcome = "xfailed"
        result.message = f"known failure{upstream}: {reason}; still failing: {result.message}"
        result.details = f"KNOWN FAILURE{upstream}: {reason}\n{result.details}"
    elif result.outcome == "passed":
        result.outcome = "xpassed"
        result.message = f"known failure no longer fails{upstream}: remove `known_failure` from the case file"
        result.details = f"XPASSED: {result.message}\n{result.details}"
    return result


def timeout_result(case: Case, seconds: float, elapsed: float) -> CaseResult:
    """A case stopped by the per-case watchdog (harness/limits.py): its own outcome, never a crash of the run."""
    message = (f"stopped after {elapsed:.1f}s: beyond the limit case_seconds={seconds:g} "
               f"(wall-clock seconds one case may run); {limits.how_to_raise('case_seconds')}")
    return CaseResult(case.name, str(case.path), "timeout", message, f"TIMEOUT {case.name} ({case.path}): {message}",
                      duration_s=elapsed)


def invalid_result(error: InvalidCase, name: str) -> CaseResult:
    if isinstance(error, LoadCrash):
        return CaseResult(name, error.path, "harness-error", error.problems[0].message, f"HARNESS-ERROR {error.render()}")
    first = error.problems[0]
    message = f"{first.field + ': ' if first.field else ''}{first.message}"
    if len(error.problems) > 1:
        message += f" (and {len(error.problems) - 1} more)"
    return CaseResult(name, error.path, "invalid", message, f"INVALID {error.render()}")


def run_path(path: str | Path, flavor: str | None = None, modes: tuple[str, ...] | None = None) -> CaseResult:
    """Load and run one case file; a bad file becomes an "invalid" result, never an exception."""
    path = Path(path)
    try:
        case = load_case(path)
    except InvalidCase as error:
        return invalid_result(error, path.stem)
    return run_case(case, flavor, modes)
