"""`harness selftest`: run the corpus against each injected fault and report which faults it catches.

A fault is caught when at least one case that passes against the real Keras fails against the broken
one. Also measures the smallest relative perturbation of h (h * (1 + eps)) that some case of each dtype
catches.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.case import Case
from harness.faults import FAULTS, Fault, h_scaled
from harness.runner import run_case

EPSILONS = tuple(10.0 ** -k for k in range(1, 13))


@dataclass
class FaultResult:
    fault: Fault
    failing: list[str] = field(default_factory=list)  # cases that passed before and fail under the fault

    @property
    def caught(self) -> bool:
        return bool(self.failing)


def involves(case: Case, layer: str) -> bool:
    """Whether running the case runs `layer`'s code (a Bidirectional case runs the layers it wraps)."""
    if case.layer == layer:
        return True
    directions = getattr(case.spec, "directions", None)
    return directions is not None and any(spec.name == layer for spec, _ in directions(case.config).values())


def baseline(cases: list[Case]) -> list[Case]:
    """The cases that pass against the real Keras: only they can witness a fault."""
    return [case for case in cases if run_case(case).outcome == "passed"]


def run_fault(fault: Fault, cases: list[Case], stop_at: int | None = None) -> FaultResult:
    result = FaultResult(fault)
    with fault.install():
        for case in cases:
            if run_case(case).outcome != "passed":
                result.failing.append(case.name)
                if stop_at and len(result.failing) >= stop_at:
                    break
    return result


def smallest_caught_perturbation(cases: list[Case]) -> dict[str, float | None]:
    """Per dtype: the smallest eps in EPSILONS for which h * (1 + eps) fails some case of that dtype."""
    found: dict[str, float | None] = {}
    for dtype in sorted({case.dtype for case in cases}):
        of_dtype = [case for case in cases if case.dtype == dtype]
        found[dtype] = None
        for eps in EPSILONS:
            if not run_fault(h_scaled(eps), of_dtype, stop_at=1).caught:
                break
            found[dtype] = eps
    return found


def selftest(cases: list[Case], faults: tuple[Fault, ...] = FAULTS, stop_at: int | None = None) -> list[FaultResult]:
    witnesses = baseline(cases)
    return [run_fault(fault, witnesses, stop_at) for fault in faults]
