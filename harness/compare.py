"""Diff the oracles' outputs element by element: Keras, the reference, and the hand value when given.

Checks shape first, then values; NaN matches only NaN and an infinity only the same infinity.
Returns plain data; `report` turns it into text.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from harness.tolerances import Tolerance

# Verdicts: which oracle is the odd one out.
AGREE = "agree"
ODD_EXPECTED = "the hand value disagrees with both Keras and the reference: the hand calculation is likely wrong"
ODD_KERAS = "Keras disagrees with both the reference and the hand value: Keras is likely wrong"
ODD_REFERENCE = ("the reference disagrees with both Keras and the hand value: "
                 "the reference (a harness bug, or semantics it models differently) is likely wrong")
NONE_AGREE = "Keras, the reference and the hand value all disagree"
BORDERLINE = "the oracles agree only pairwise (values near the tolerance edge)"
TWO_WAY = "Keras and the reference disagree"


@dataclass
class Mismatch:
    index: tuple[int, ...]
    values: dict[str, float]  # oracle -> value
    odd_one: str | None  # see _odd_one; None when there is no hand value


@dataclass
class OutputDiff:
    """Comparison of one output (sequences, output, h or c) of one call."""

    output: str
    tolerance: Tolerance
    total: int
    structure_problem: str | None = None
    mismatches: list[Mismatch] = field(default_factory=list)
    max_abs: float = 0.0
    max_rel: float = 0.0
    verdict: str = AGREE
    max_error_ratio: float = 0.0  # largest |keras - reference| / bound: how close to the edge it ran
    overflowed: int = 0  # elements where Keras and the rounded reference both overflowed the dtype
    mode: str = "eager"  # the execution mode Keras ran in

    @property
    def passed(self) -> bool:
        return self.structure_problem is None and not self.mismatches


def _close(a: np.ndarray, b: np.ndarray, bound: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return (a == b) | (np.isnan(a) & np.isnan(b)) | (np.abs(a - b) <= bound)


def _bound(reference: np.ndarray, tolerance: Tolerance) -> np.ndarray:
    finite = np.abs(reference[np.isfinite(reference)])
    scale = max(1.0, float(finite.max())) if finite.size else 1.0
    with np.errstate(invalid="ignore"):
        bound = tolerance.atol * scale + tolerance.rtol * np.where(np.isfinite(reference), np.abs(reference), 0.0)
    return np.maximum(bound, tolerance.noise_floor)


def _odd_one(kr: bool, ke: bool, re: bool) -> str:
    """Which oracle disagrees with the two others: "keras", "reference", "expected", "all" or "edge"."""
    if kr and not ke and not re:
        return "expected"
    if re and not kr and not ke:
        return "keras"
    if ke and not kr and not re:
        return "reference"
    if not (kr or ke or re):
        return "all"
    return "edge"  # two pairs agree, one does not: within tolerance of each other only transitively


_VERDICTS = {"expected": ODD_EXPECTED, "keras": ODD_KERAS, "reference": ODD_REFERENCE, "all": NONE_AGREE,
             "edge": BORDERLINE}


def _verdict(mismatches: list[Mismatch], has_expected: bool) -> str:
    if not mismatches:
        return AGREE
    if not has_expected:
        return TWO_WAY
    kinds = sorted({m.odd_one for m in mismatches})
    if len(kinds) == 1:
        return _VERDICTS[kinds[0]]
    return "mixed: " + "; ".join(_VERDICTS[k] for k in kinds)


def diff_output(name: str, keras: np.ndarray, reference: np.ndarray, expected: np.ndarray | None,
                tolerance: Tolerance, overflow_rows: np.ndarray | None = None) -> OutputDiff:
    """Element-wise three-way comparison of one output.

    `overflow_rows` flags the batch rows where the case runs out of its dtype's range (see
    runner.overflow_rows): there a non-finite Keras value is that overflow, whose exact position depends
    on rounding, not a defect. Rows are independent; within one, inf - inf and 0 * inf spread NaN.
    """
    diff = OutputDiff(output=name, tolerance=tolerance, total=int(reference.size))
    if keras.shape != reference.shape:
        diff.structure_problem = f"shape mismatch: Keras returned shape {keras.shape}, the reference {reference.shape}"
        diff.verdict = TWO_WAY
        return diff
    bound = _bound(reference, tolerance)
    kr = _close(keras, reference, bound)
    if overflow_rows is not None:
        rows = np.asarray(overflow_rows, dtype=bool).reshape((-1,) + (1,) * (reference.ndim - 1))
        overflowed = ~np.isfinite(keras) & rows & ~kr  # NaN for inf, or inf for a huge value: the same overflow
        diff.overflowed = int(np.sum(overflowed))
        kr |= overflowed
    ke = re = np.ones_like(kr)
    if expected is not None:
        ke, re = _close(keras, expected, bound), _close(reference, expected, bound)
    bad = ~(kr & ke & re)

    with np.errstate(invalid="ignore", divide="ignore"):
        exact = (keras == reference) | (np.isnan(keras) & np.isnan(reference))
        ratio = np.where(exact | (kr & ~np.isfinite(keras)), 0.0, np.abs(keras - reference) / bound)
        spread = np.abs(keras - reference)  # NaN where one side is NaN
        if expected is not None:
            spread = np.fmax(spread, np.abs(expected - reference))
    diff.max_error_ratio = float(np.max(np.nan_to_num(ratio, nan=np.inf), initial=0.0))
    if bad.any():
        diff.max_abs = float(np.max(np.where(bad, spread, -np.inf)))
        with np.errstate(invalid="ignore", divide="ignore"):
            relative = spread / np.abs(reference)
        diff.max_rel = float(np.max(np.where(bad, relative, -np.inf)))
    for index in zip(*np.nonzero(bad)):
        values = {"keras": float(keras[index]), "reference": float(reference[index])}
        odd = None
        if expected is not None:
            values["expected"] = float(expected[index])
            odd = _odd_one(bool(kr[index]), bool(ke[index]), bool(re[index]))
        diff.mismatches.append(Mismatch(tuple(int(i) for i in index), values, odd))
    diff.verdict = _verdict(diff.mismatches, expected is not None)
    return diff
