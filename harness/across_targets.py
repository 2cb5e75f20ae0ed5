"""One case on several systems under test: each target is judged against the reference on its own, the
case's outcome is the worst of theirs, and a target that fails where the others agree with the reference
is named as the odd one out among them."""

from __future__ import annotations

from harness.case import Case
from harness.runner import CaseResult, run_case
from harness.targets import SystemUnderTest

# worst first: what decides a case run on several targets
SEVERITY = ("harness-error", "failed", "keras-error", "timeout", "unsupported", "invalid", "xpassed", "xfailed",
            "passed", "skipped")


def run_on_targets(case: Case, systems: list[SystemUnderTest], modes: tuple[str, ...] | None = None) -> CaseResult:
    """Run the case on every system; one target: exactly its result."""
    results = {system.name: run_case(case, modes=modes, system=system) for system in systems}
    if len(results) == 1:
        return next(iter(results.values()))
    worst = min(results.values(), key=lambda r: SEVERITY.index(r.outcome))
    ran = next((r for r in results.values() if r.system_outputs is not None), worst)
    bad = [name for name, r in results.items() if r.outcome in ("failed", "keras-error", "timeout")]
    good = [name for name, r in results.items() if r.outcome in ("passed", "xfailed", "xpassed")]
    message = "; ".join(f"{name}: {r.outcome}" + (f" ({r.message})" if r.outcome != "passed" else "")
                        for name, r in results.items())
    if bad and good:
        message = (f"{', '.join(bad)} {'is' if len(bad) == 1 else 'are'} the odd one out among targets "
                   f"({', '.join(good)} agree{'s' if len(good) == 1 else ''} with the reference): {message}")
    details = "\n".join(f"[target {name}] {r.details}" for name, r in results.items())
    combined = CaseResult(case.name, str(case.path), worst.outcome, message, details, ran.diffs,
                          sum(r.duration_s for r in results.values()), ran.system_outputs, ran.modes, ran.mode_errors,
                          system_gradients=ran.system_gradients)
    combined.targets = results
    return combined
