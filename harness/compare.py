"""Diff the oracles' outputs element by element: the system under test (Keras, ...), the reference, and
the hand value when given. The sources are named: the verdict says which one disagrees with all the
others (a majority over the sources), in the system's own name ("Keras", "Keras (JAX)", "TFLite", ...).

Checks shape first, then values; NaN matches only NaN and an infinity only the same infinity.
Returns plain data; `report` turns it into text.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from harness import hand_values
from harness.tolerances import Tolerance, largest_finite

# The named sources of one comparison. SYSTEM is the system under test; `label` names it in words.
SYSTEM, REFERENCE, EXPECTED = "system", "reference", "expected"
TWIN = "twin"  # the system's own rounding of the same computation (harness/twin_tensorflow.py)
AGREE = "agree"
BORDERLINE = "the oracles agree only pairwise (values near the tolerance edge)"


def verdicts(label: str = "Keras") -> dict[str, str]:
    """Odd one out -> the verdict in words, for a system named `label`."""
    return {
        EXPECTED: f"the hand value disagrees with both {label} and the reference: the hand calculation is likely wrong",
        SYSTEM: f"{label} disagrees with both the reference and the hand value: {label} is likely wrong",
        REFERENCE: (f"the reference disagrees with both {label} and the hand value: "
                    "the reference (a harness bug, or semantics it models differently) is likely wrong"),
        "all": f"{label}, the reference and the hand value all disagree",
        "edge": BORDERLINE,
    }


def rounded_hand(k: int, label: str, needed: int, half_unit: float) -> str:
    """The verdict when the hand values are right to the decimals they were written with, no more."""
    return (f"the hand values look rounded to {k} decimal{'s' if k != 1 else ''} (within half a unit of the last "
            f"decimal of both {label} and the reference, which agree): write at least {needed} decimals, or set "
            f"`expected_tolerance: {{atol: {half_unit:.0e}}}`").replace("e-0", "e-")


def twin_apart(label: str = "Keras") -> str:
    """The verdict when the system is within the reference's bound but not within its twin's."""
    return (f"{label} differs from its own 16-bit rounding of the same computation (the twin) by more than a "
            "rounding can: a small defect (a slightly scaled gate or state), or a kernel that rounds differently")


def two_way(label: str = "Keras") -> str:
    """The verdict when only the system and the reference are compared."""
    return f"{label} and the reference disagree"


ODD_EXPECTED, ODD_KERAS, ODD_REFERENCE, NONE_AGREE = (verdicts()[k] for k in (EXPECTED, SYSTEM, REFERENCE, "all"))
TWO_WAY = two_way()


@dataclass
class Mismatch:
    index: tuple[int, ...]
    values: dict[str, float]  # source (SYSTEM, REFERENCE, EXPECTED) -> value
    odd_one: str | None  # see odd_one_out; None when there is no hand value


@dataclass
class OutputDiff:
    """Comparison of one output (sequences, output, h or c) of one call."""

    output: str
    tolerance: Tolerance
    total: int
    structure_problem: str | None = None
    mismatches: list[Mismatch] = field(default_factory=list)
    max_abs: float = 0.0  # over the mismatched elements only (the hand values' differences included)
    max_rel: float = 0.0
    largest_abs: float = 0.0  # the largest |system - reference| over every element, passed or not (drift tracking)
    largest_rel: float = 0.0  # the same relative to |reference|, over the elements whose reference is not 0
    scale: float = 1.0  # max(tolerance.scale_floor (1 but for 16-bit), largest |reference|): what atol is multiplied by
    expected_tolerance: Tolerance | None = None  # the case's bound for the hand values only, when it gives one
    has_expected: bool = False  # hand values were compared
    rounded_decimals: int | None = None  # the hand values look rounded to this many decimals (see hand_values)
    verdict: str = AGREE
    max_error_ratio: float = 0.0  # largest |system - reference| / bound: how close to the edge it ran
    overflowed: int = 0  # elements where the system and the rounded reference both overflowed the dtype
    beyond_range: int = 0  # elements of an overflow row whose exact value the dtype cannot hold: not comparable
    twin_bound: np.ndarray | None = field(default=None, repr=False, compare=False)  # per element, when a twin ran
    twin_apart: int = 0  # elements within the reference's bound but not the twin's
    twin_error_ratio: float = 0.0  # the largest |system - twin| / its bound (bench/twin_pricing.py prints it)
    mode: str = "eager"  # the execution mode the system ran in
    label: str = "Keras"  # the system's name in words
    # A failing output keeps its element arrays for the pictures of `harness run --html`: "system",
    # "reference", "expected" (when given), "bound" and "ratio" (|system - reference| / bound, 0 where they
    # are equal or an overflow was accepted). Passing outputs keep nothing: a whole run's results stay small.
    arrays: dict[str, np.ndarray] | None = field(default=None, repr=False, compare=False)

    @property
    def passed(self) -> bool:
        return self.structure_problem is None and not self.mismatches


def _equal(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Equal, or NaN on both sides."""
    return (a == b) | (np.isnan(a) & np.isnan(b))


def _close(a: np.ndarray, b: np.ndarray, bound: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return _equal(a, b) | (np.abs(a - b) <= bound)


def _scale(reference: np.ndarray, tolerance: Tolerance) -> float:
    return max(tolerance.scale_floor, largest_finite(reference))


def _bound(reference: np.ndarray, tolerance: Tolerance) -> np.ndarray:
    scale = _scale(reference, tolerance)
    with np.errstate(invalid="ignore"):
        bound = tolerance.atol * scale + tolerance.rtol * np.where(np.isfinite(reference), np.abs(reference), 0.0)
    return np.maximum(bound, tolerance.noise_floor)


def odd_one_out(agree: dict[frozenset, bool]) -> str:
    """The majority over named sources: the source that disagrees with every other while the others
    all agree; "all" when no two agree; "edge" otherwise (agreement only transitively, near the bound).
    `agree` maps each pair of source names to whether they agree."""
    names = sorted({name for pair in agree for name in pair})
    if not any(agree.values()):
        return "all"
    for name in names:
        others = [n for n in names if n != name]
        if not any(agree[frozenset((name, o))] for o in others) and all(
                agree[frozenset((a, b))] for i, a in enumerate(others) for b in others[i + 1:]):
            return name
    return "edge"


def _verdict(mismatches: list[Mismatch], has_expected: bool, label: str) -> str:
    if not mismatches:
        return AGREE
    if not has_expected:
        return two_way(label)
    kinds = sorted({m.odd_one for m in mismatches})
    words = verdicts(label)
    if len(kinds) == 1:
        return words[kinds[0]]
    return "mixed: " + "; ".join(words[k] for k in kinds)


def diff_output(name: str, system: np.ndarray, reference: np.ndarray, expected: np.ndarray | None,
                tolerance: Tolerance, overflow_rows: np.ndarray | None = None, label: str = "Keras",
                expected_tolerance: Tolerance | None = None, range_limit: float | None = None,
                twin: tuple[np.ndarray, np.ndarray] | None = None) -> OutputDiff:
    """Element-wise three-way comparison of one output: the system's values, the reference's, the hand value's.

    The hand values are held to `expected_tolerance` when the case gives one, else to the system's bound.

    `overflow_rows` flags the batch rows where the case runs out of its dtype's range (see
    runner.overflow_rows): there a non-finite Keras value is that overflow, whose exact position depends
    on rounding, not a defect. Rows are independent; within one, inf - inf and 0 * inf spread NaN. In
    those rows an element whose exact value exceeds `range_limit` (the compute dtype's largest) is not
    compared at all: no computation in that dtype can hold it.

    `twin`: (values, bound) of the system's own rounding of the same computation; the system must also be
    within that bound of them (an accepted overflow excepted).
    """
    diff = OutputDiff(output=name, tolerance=tolerance, total=int(reference.size), label=label,
                      expected_tolerance=expected_tolerance, has_expected=expected is not None)
    if system.shape != reference.shape:
        diff.structure_problem = f"shape mismatch: {label} returned shape {system.shape}, the reference {reference.shape}"
        diff.verdict = two_way(label)
        return diff
    bound = _bound(reference, tolerance)
    diff.scale = _scale(reference, tolerance)
    kr = _close(system, reference, bound)
    accepted = np.zeros_like(kr)
    if overflow_rows is not None:
        rows = np.asarray(overflow_rows, dtype=bool).reshape((-1,) + (1,) * (reference.ndim - 1))
        # NaN for inf, or inf for a huge value: the same overflow; and where even the float64 reference ran out
        # of range (NaN from inf - inf), there is nothing to compare the system's value with
        overflowed = (~np.isfinite(system) | ~np.isfinite(reference)) & rows & ~kr
        diff.overflowed = int(np.sum(overflowed))
        # an exact value past the dtype's largest: no run in the dtype can follow it (a chaotic row may instead
        # stay bounded, as PyTorch's mixed_bfloat16 did where the exact run grew to 7e52)
        with np.errstate(invalid="ignore"):
            beyond = (np.abs(reference) > range_limit) & rows & ~overflowed if range_limit else np.zeros_like(kr)
        diff.beyond_range = int(np.sum(beyond))
        accepted = overflowed | beyond
        kr |= accepted
    twin_ratio = np.zeros(reference.shape)
    if twin is not None:
        twin_values, twin_limit = twin
        kt = _close(system, twin_values, twin_limit) | accepted
        diff.twin_bound = twin_limit
        diff.twin_apart = int(np.sum(kr & ~kt))
        kr &= kt
        with np.errstate(invalid="ignore", divide="ignore"):
            same = _equal(system, twin_values) | accepted
            twin_ratio = np.where(same, 0.0, np.abs(system - twin_values) / twin_limit)
        diff.twin_error_ratio = float(np.max(np.nan_to_num(twin_ratio, nan=np.inf), initial=0.0))
    ke = re = np.ones_like(kr)
    if expected is not None:
        held_to = expected_tolerance or tolerance.hand_values  # the case's bound, or the flat default
        hand_bound = bound if held_to is None else _bound(reference, held_to)
        ke, re = _close(system, expected, hand_bound), _close(reference, expected, hand_bound)
    bad = ~(kr & ke & re)

    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        exact = _equal(system, reference)
        # equal, NaN and NaN, or an accepted overflow
        agreeing = exact | accepted | (kr & ~(np.isfinite(system) & np.isfinite(reference)))
        apart = np.where(agreeing, 0.0, np.nan_to_num(np.abs(system - reference), nan=np.inf, posinf=np.inf))
        ratio = np.where(agreeing, 0.0, np.abs(system - reference) / bound)
        spread = np.abs(system - reference)  # NaN where one side is NaN
        if expected is not None:
            spread = np.fmax(spread, np.abs(expected - reference))
        measurable = ~agreeing & np.isfinite(reference) & (reference != 0)  # relative to a reference of 0: not said
        relative_apart = np.where(measurable, apart / np.where(measurable, np.abs(reference), 1.0), 0.0)
    diff.max_error_ratio = float(np.max(np.nan_to_num(np.maximum(ratio, twin_ratio), nan=np.inf), initial=0.0))
    # Over every element, passed or not: how far the system drifts from the reference even while it agrees.
    diff.largest_abs = float(np.max(apart, initial=0.0))
    diff.largest_rel = float(np.max(relative_apart, initial=0.0))
    if bad.any():
        diff.max_abs = float(np.max(np.where(bad, spread, -np.inf)))
        with np.errstate(invalid="ignore", divide="ignore"):
            relative = spread / np.abs(reference)
        diff.max_rel = float(np.max(np.where(bad, relative, -np.inf)))
    if expected is not None and bad.any() and kr.all():  # only the hand values disagree: rounded, or wrong?
        rounded = hand_values.rounded_to(expected, system, reference, bound)
        # written to at least the decimals their own bound needs, their rounding cannot be what fails them
        if rounded is not None and rounded < hand_values.decimals_needed(float(np.min(hand_bound))):
            diff.rounded_decimals = rounded
    for index in zip(*np.nonzero(bad)):
        values = {SYSTEM: float(system[index]), REFERENCE: float(reference[index])}
        if twin is not None:
            values[TWIN] = float(twin[0][index])
        odd = None
        if expected is not None:
            values[EXPECTED] = float(expected[index])
            odd = odd_one_out({frozenset((SYSTEM, REFERENCE)): bool(kr[index]),
                               frozenset((SYSTEM, EXPECTED)): bool(ke[index]),
                               frozenset((REFERENCE, EXPECTED)): bool(re[index])})
        diff.mismatches.append(Mismatch(tuple(int(i) for i in index), values, odd))
    diff.verdict = _verdict(diff.mismatches, expected is not None, label)
    if diff.twin_apart and diff.twin_apart == len(diff.mismatches):  # within the reference's bound, not the twin's
        diff.verdict = twin_apart(label)
    if diff.rounded_decimals is not None:
        needed = hand_values.decimals_needed(float(np.min(hand_bound)))
        diff.verdict = rounded_hand(diff.rounded_decimals, label, needed, 0.5 * 10.0 ** -diff.rounded_decimals)
    if bad.any():
        diff.arrays = {"system": system, "reference": reference, "bound": bound, "ratio": ratio,
                       **({"expected": expected} if expected is not None else {})}
    return diff
