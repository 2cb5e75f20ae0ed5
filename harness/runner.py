"""Run one case end to end: load, reference, the system under test, compare. Every path ends in a CaseResult."""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from harness import gradients, limits, release, report, targets, twin_tensorflow
from harness.case import Case
from harness.compare import OutputDiff
from harness.errors import InvalidCase, LoadCrash, NotApplicable, SystemFailure, Unsupported
from harness.loader import load_case
from harness.modes import modes_for
from harness.noise import estimate_noise
from harness.reference_runner import run_reference
from harness.targets import SystemRun, SystemUnderTest, build_cache, run_modes
from harness.verdict import apply_known_failure, compare_case
from harness.versions import installed_versions, unmet

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
    system_outputs: list[dict] | None = None  # per call: output name -> float64 array, of the first mode, when it ran
    modes: tuple[str, ...] = ()  # the execution modes the system ran in; system_outputs are those of modes[0]
    mode_errors: dict[str, str] = field(default_factory=dict)  # mode -> what the system raised in that mode only
    targets: dict[str, "CaseResult"] = field(default_factory=dict)  # per target, when run on several
    # per call: gradient name -> float64 array, of modes[0], for a gradient case the system differentiated there
    system_gradients: list[dict] | None = None

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
                 "total": d.total, "max_abs_diff": d.largest_abs, "max_rel_diff": d.largest_rel,
                 "mismatch_max_abs_diff": d.max_abs if d.mismatches else None,
                 "mismatch_max_rel_diff": d.max_rel if d.mismatches else None,
                 "error_to_tolerance": d.max_error_ratio, "tolerance": {"rtol": d.tolerance.rtol, "atol": d.tolerance.atol},
                 **({"expected_tolerance": {"rtol": d.expected_tolerance.rtol, "atol": d.expected_tolerance.atol}}
                    if d.expected_tolerance else {}),
                 **({"twin": True} if d.twin_bound is not None else {}),  # also held to the 16-bit twin
                 "verdict": d.verdict}
                for call, d in self.diffs
            ],
            **({"targets": {name: {"outcome": r.outcome, "message": r.message} for name, r in self.targets.items()}}
               if len(self.targets) > 1 else {}),
        }


def run_case(case: Case, flavor: str | None = None, modes: tuple[str, ...] | None = None,
             system: SystemUnderTest | None = None) -> CaseResult:
    """Run a loaded case on the reference and on the system under test (default: Keras on TensorFlow) and
    compare them. `modes` is the run's default execution modes (a case's own `execution:` wins); `flavor`
    overrides the Keras semantics the system promises. A bug of the harness itself is the case's own
    "harness-error" outcome, with the traceback, so the other cases still run."""
    started = time.perf_counter()
    try:
        system = system or targets.get()
        own = getattr(system, "default_modes", None)  # a case's `execution:` and --mode name TensorFlow's modes
        run_modes_ = own if own is not None and system.name != targets.DEFAULT_TARGET else modes_for(case.execution, modes)
        with limits.watchdog():
            return _run_case(case, flavor or system.semantics(), run_modes_, system)
    except limits.CaseTimeout as exc:
        build_cache.clear()  # a layer or trace stopped half-way is never reused
        return timeout_result(case, exc.args[0], time.perf_counter() - started)
    except Exception:  # noqa: BLE001 - reported in full, never hidden
        build_cache.clear()
        trace = traceback.format_exc()
        return CaseResult(case.name, str(case.path), "harness-error", trace.strip().splitlines()[-1],
                          f"HARNESS-ERROR {case.name} ({case.path}): a bug in the harness, please report it\n{trace}")
    finally:
        release.after_case()  # a long run in one process stays within bounded memory (harness/release.py)


def _run_case(case: Case, flavor: str, modes: tuple[str, ...], system: SystemUnderTest) -> CaseResult:
    started = time.perf_counter()
    shown = str(case.path)
    own_versions = getattr(system, "package_versions", None)  # e.g. tf-keras: `keras` means tf_keras's version
    missing = unmet(case.requires, {**installed_versions(), **own_versions()} if own_versions else None)
    if missing:
        message = f"requires {', '.join(missing)}"
        return CaseResult(case.name, shown, "skipped", message, f"SKIPPED {case.name} ({shown}): {message}")
    why_not = _not_for(case, system)
    if why_not:
        return CaseResult(case.name, shown, "skipped", why_not, f"SKIPPED {case.name} ({shown}): {why_not}")
    try:
        reference_calls = run_reference(case, flavor)
        noise = estimate_noise(case, flavor, reference_calls)
    except Unsupported as exc:
        return CaseResult(case.name, shown, "unsupported", str(exc), f"UNSUPPORTED {case.name} ({shown}): {exc}",
                          duration_s=time.perf_counter() - started)
    except NotApplicable as exc:
        return CaseResult(case.name, shown, "skipped", str(exc), f"SKIPPED {case.name} ({shown}): {exc}")
    try:
        runs = run_modes(system, case, modes)
    except SystemFailure as exc:  # the layer could not be built: no mode ran
        return apply_known_failure(case, CaseResult(case.name, shown, "keras-error", str(exc),
                                                    f"KERAS-ERROR {case.name} ({shown}): {exc}",
                                                    duration_s=time.perf_counter() - started, modes=modes),
                                   system.name)
    ran = {mode: run for mode, run in runs.items() if isinstance(run, SystemRun)}
    errors = {mode: run for mode, run in runs.items() if isinstance(run, SystemFailure)}
    diffs = []
    for mode, run in ran.items():
        twin = _twin(case, system, mode)
        for number, diff in compare_case(case, run.outputs, reference_calls, noise, run.dtypes, system.label, twin):
            diff.mode = mode
            diffs.append((number, diff))
    gradient_note, first_gradients = None, {}
    if case.gradients is not None:
        gradient_note = _gradient_diffs(case, flavor, system, tuple(ran), diffs, errors, first_gradients,
                                        reference_calls, noise)
    spread = report.mode_spread({mode: run.outputs for mode, run in ran.items()})
    failed = any(not d.passed for _, d in diffs)
    outcome = "failed" if failed else "keras-error" if errors else "passed"
    message = report.summary_line(case, diffs, modes, errors)
    details = report.case_report(case, diffs, flavor, modes, errors, spread, system.label)
    if gradient_note:
        message, details = f"{message}; {gradient_note}", f"{details}\n  {gradient_note}"
    primary = runs[modes[0]]
    result = CaseResult(case.name, shown, outcome, message, details, diffs, time.perf_counter() - started,
                        primary.outputs if isinstance(primary, SystemRun) else None, modes,
                        {mode: str(error) for mode, error in errors.items()},
                        system_gradients=first_gradients.get(modes[0]))
    return apply_known_failure(case, result, system.name)


def _twin(case: Case, system: SystemUnderTest, mode: str) -> list[dict] | None:
    """The system's own 16-bit rounding of the case (harness/twin_tensorflow.py), where there is one."""
    if not twin_tensorflow.ENABLED or twin_tensorflow.why_not(case, system.name, mode):
        return None
    return twin_tensorflow.twin_calls(case, mode)


def _gradient_diffs(case: Case, flavor: str, system: SystemUnderTest, modes: tuple[str, ...], diffs: list,
                    errors: dict, found_by_mode: dict, forward_calls: list, forward_noise) -> str | None:
    """Add the gradient comparisons of every mode to `diffs` (a mode whose differentiation raises goes to
    `errors`) and the system's gradients to `found_by_mode` (mode -> per call: name -> array, for record);
    returns a note naming the modes this system cannot differentiate and why (said, never silently
    skipped). A system says why in `no_gradients` (mode -> reason); one without `gradients` cannot
    differentiate at all. `forward_calls` and `forward_noise` (noise.NoiseEstimate, or None) are the forward
    reference's: its overflowed rows and a chaotic forward's noise bear on the gradients' bounds."""
    differentiate = getattr(system, "gradients", None)
    reasons = dict(getattr(system, "no_gradients", {}))
    if differentiate is None:
        reasons = {mode: reasons.get(mode, "it does not compute them") for mode in modes}
    unsupported = [mode for mode in modes if mode in reasons]
    reference = gradients.reference_gradients(case, flavor) if len(unsupported) < len(modes) else None
    noise = None  # measured once, for the first mode that differentiates
    for mode in modes:
        if mode in reasons:
            continue
        try:
            found = differentiate(case, mode)
        except SystemFailure as failure:
            errors[mode] = failure
            continue
        found_by_mode[mode] = [{name: np.asarray(value, dtype=np.float64) for name, value in call.items()}
                               for call in found]
        if noise is None:
            noise = gradients.gradient_noise(case, flavor, reference,
                                             gradients.chaotic_share(case, forward_calls, forward_noise))
        diffs.extend(gradients.compare(case, found, reference, system.label, mode, noise,
                                       forward_noise.overflow_rows if forward_noise else None))
    return gradient_note(system.name, modes, {mode: reasons[mode] for mode in unsupported})


def gradient_note(target: str, modes: tuple[str, ...], unsupported: dict[str, str]) -> str | None:
    """"gradients unsupported on the tflite target: <why>", or "... in compile mode: <why>" when only some
    of the modes run cannot be differentiated; None when every mode was."""
    if not unsupported:
        return None
    if len(unsupported) == len(modes) and len(set(unsupported.values())) == 1:
        return f"gradients unsupported on the {target} target: {next(iter(unsupported.values()))}"
    return "; ".join(f"gradients unsupported on the {target} target in {mode} mode: {why}"
                     for mode, why in unsupported.items())


def _not_for(case: Case, system: SystemUnderTest) -> str | None:
    """Why this system does not run the case: the case names other targets, or the target cannot express it."""
    if case.targets is not None and system.name not in case.targets:
        return f"target {system.name}: the case runs only on {', '.join(case.targets)} (its `targets:`)"
    reason = system.supports(case)
    return f"target {system.name} cannot express it: {reason}" if reason else None


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


def run_path(path: str | Path, flavor: str | None = None, modes: tuple[str, ...] | None = None,
             system: SystemUnderTest | None = None) -> CaseResult:
    """Load and run one case file; a bad file becomes an "invalid" result, never an exception."""
    path = Path(path)
    try:
        case = load_case(path)
    except InvalidCase as error:
        return invalid_result(error, path.stem)
    return run_case(case, flavor, modes, system)

