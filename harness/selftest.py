"""`harness selftest`: run the corpus against each injected fault and report which faults it catches.

A fault is caught when at least one case that passes against the real Keras fails against the broken
one. Also measures the smallest relative perturbation of h (h * (1 + eps)) that some case of each dtype
catches.

Targets: the fault is installed where the target runs Keras: in this process for `tensorflow`, in fresh
worker processes of their own for `jax` and `torch` (harness/targets/worker.py), uninstalled after the
fault's run in either case. A fault that cannot be expressed on a target is "not applicable" there, with
the reason, never silently dropped.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from harness import targets
from harness.case import Case
from harness.faults import Fault, FAULTS, h_scaled
from harness.runner import run_case

EPSILONS = tuple(10.0 ** -k for k in range(1, 13))
# Where a fault can be installed: Keras 3 running in this process, or in a worker started for the fault.
TARGETS = ("tensorflow", "jax", "torch")
_BACKEND = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}
_UNREACHABLE = {
    "tf-keras": "it runs Keras 2 (the tf_keras package); the faults patch Keras 3 (keras.src)",
    "saved-model": "it converts the tensorflow target's layer (the same Keras code: use --target tensorflow); "
                   "selftest does not convert",
}
_UNREACHABLE["tflite"] = _UNREACHABLE["onnx"] = _UNREACHABLE["saved-model"]
ERRORS = ("keras-error", "harness-error", "timeout")  # a case that raised under the fault, rather than disagreed


def parse_targets(text: str) -> tuple[str, ...]:
    """"jax,torch", "tensorflow" or "all" (every installed target a fault can reach) -> names; ValueError
    naming a target selftest cannot reach and why, or the packages a requested one lacks."""
    words = [w.strip() for w in text.split(",") if w.strip()]
    if "all" in words:
        return tuple(name for name in TARGETS if name in targets.installed())
    for word in words:
        if word in _UNREACHABLE:
            raise ValueError(f"selftest cannot inject faults into target {word!r}: {_UNREACHABLE[word]} "
                             f"(selftest targets: {', '.join(TARGETS)}, all)")
    return targets.parse_targets(",".join(words))


@dataclass
class FaultResult:
    fault: Fault
    failing: list[str] = field(default_factory=list)  # cases that passed before and fail under the fault
    outcomes: dict[str, str] = field(default_factory=dict)  # failing case -> its outcome under the fault
    messages: dict[str, str] = field(default_factory=dict)  # failing case -> its one-line message
    target: str = targets.DEFAULT_TARGET

    @property
    def caught(self) -> bool:
        return bool(self.failing)

    @property
    def disagreed(self) -> list[str]:
        """The failing cases whose values disagreed (not those that raised)."""
        return [name for name in self.failing if self.outcomes.get(name) not in ERRORS]

    @property
    def raised_only(self) -> bool:
        """Every failing case raised: the fault's own code may not run on this target, so not a catch to trust."""
        return self.caught and not self.disagreed


def involves(case: Case, layer: str) -> bool:
    """Whether running the case runs `layer`'s code (a Bidirectional case runs the layers it wraps)."""
    if case.layer == layer:
        return True
    directions = getattr(case.spec, "directions", None)
    return directions is not None and any(spec.name == layer for spec, _ in directions(case.config).values())


def baseline(cases: list[Case], target: str = targets.DEFAULT_TARGET) -> list[Case]:
    """The cases that pass against the real Keras: only they can witness a fault."""
    system = targets.get(target)
    return [case for case in cases if run_case(case, system=system).outcome == "passed"]


def not_applicable(fault: Fault, target: str) -> str | None:
    """Why `fault` cannot be caught on `target` (said in the report), or None."""
    if fault.backends is not None and _BACKEND[target] not in fault.backends:
        return f"not applicable on {target}: {fault.why_backends}"
    if fault.gradients_only and getattr(targets.get(target), "gradients", None) is None:
        return (f"not applicable on {target}: it changes only gradients, and the {target} target does not compute "
                "them yet")
    return None


@contextlib.contextmanager
def installed(fault: Fault, target: str) -> Iterator:
    """The target's system under test with `fault` installed where it runs Keras; uninstalled on exit."""
    if target in targets.WORKERS:
        system = targets.with_fault(target, fault.name)
        try:
            yield system
        finally:
            system.close()
    else:
        with fault.install():
            yield targets.get(target)


def run_fault(fault: Fault, cases: list[Case], stop_at: int | None = None,
              target: str = targets.DEFAULT_TARGET) -> FaultResult:
    """Run `cases` with `fault` installed on `target`. With `stop_at`, stop after that many cases whose values
    disagreed (a case that raised does not count towards it: the fault's code itself may be what raised)."""
    result = FaultResult(fault, target=target)
    with installed(fault, target) as system:
        for case in cases:
            outcome = run_case(case, system=system)
            if outcome.outcome != "passed":
                result.failing.append(case.name)
                result.outcomes[case.name], result.messages[case.name] = outcome.outcome, outcome.message
                if stop_at and len(result.disagreed) >= stop_at:
                    break
    return result


def smallest_caught_perturbation(cases: list[Case], target: str = targets.DEFAULT_TARGET) -> dict[str, float | None]:
    """Per dtype: the smallest eps in EPSILONS for which h * (1 + eps) fails some case of that dtype."""
    found: dict[str, float | None] = {}
    for dtype in sorted({case.dtype for case in cases}):
        of_dtype = [case for case in cases if case.dtype == dtype]
        found[dtype] = None
        for eps in EPSILONS:
            if not run_fault(h_scaled(eps), of_dtype, stop_at=1, target=target).caught:
                break
            found[dtype] = eps
    return found


# The perturbations of h whose catch rate is tracked (README, Sensitivity), per compute dtype; the 16-bit ones
# are judged on cases of up to SHORT steps, as rounding noise grows with the steps.
SENSITIVITY = {"float64": (1e-11, 1e-12), "float32": (1e-5, 1e-6), "float16": (1e-2, 3e-3), "bfloat16": (3e-2, 1e-2)}
SHORT = 10


@dataclass
class Share:
    dtype: str
    epsilon: float
    caught: int  # cases whose values disagreed under h * (1 + epsilon)
    total: int  # LSTM cases of the dtype that pass against the real Keras (16-bit: of up to SHORT steps), but
    # those whose outputs are 0 everywhere (no scaling of h can change them)
    short_only: bool
    all_zero: int = 0  # cases left out of total: their outputs are 0 everywhere

    @property
    def fraction(self) -> float:
        return self.caught / self.total if self.total else float("nan")


def _h_always_zero(case: Case, flavor: str) -> bool:
    """Whether every output the reference computes for the case is exactly 0: then h x (1 + eps) is h itself
    (e.g. relu of a cell state that never goes above 0), and the case can witness no scaling of h."""
    from harness.reference_runner import reference_outputs, run_reference  # noqa: PLC0415
    from harness.errors import NotApplicable, Unsupported  # noqa: PLC0415

    try:
        calls = run_reference(case, flavor)
    except (Unsupported, NotApplicable):
        return False
    return all(not np.any(values) for call in calls for values in reference_outputs(case, call).values())


def perturbation_shares(cases: list[Case], target: str = targets.DEFAULT_TARGET) -> list[Share]:
    """Per case dtype and SENSITIVITY epsilon: how many of the LSTM cases (witnesses) catch h * (1 + eps)."""
    from harness.precision import compute_dtype  # noqa: PLC0415

    shares, flavor = [], targets.get(target).semantics()
    for dtype in sorted({case.dtype for case in cases}):
        compute = compute_dtype(dtype)
        short_only = compute in ("float16", "bfloat16")
        candidates = [case for case in cases if case.dtype == dtype and involves(case, "LSTM")
                      and (not short_only or max(call.input.shape[1] for call in case.calls) <= SHORT)]
        of_dtype = [case for case in candidates if not _h_always_zero(case, flavor)]
        for epsilon in SENSITIVITY[compute]:
            result = run_fault(h_scaled(epsilon), of_dtype, target=target) if of_dtype else None
            shares.append(Share(dtype, epsilon, len(result.disagreed) if result else 0, len(of_dtype), short_only,
                                len(candidates) - len(of_dtype)))
    return shares


def selftest(cases: list[Case], faults: tuple[Fault, ...] = FAULTS, stop_at: int | None = None,
             target: str = targets.DEFAULT_TARGET) -> list[FaultResult]:
    witnesses = baseline(cases, target)
    return [run_fault(fault, witnesses, stop_at, target) for fault in faults]
