"""Hand values (`expected:`) are written by people, to a few decimals: how many, and whether a failure of
them is only that rounding.

A hand value of 0.7616 for tanh(1) = 0.76159416 is right to the four decimals it was written with, yet
2e-5 away from both Keras and the reference, beyond float32's default bound of about 2e-6. Judged like a
real mistake it would read "the hand calculation is likely wrong"; said as it is, the fix is obvious
(more digits, or `expected_tolerance`).

The number of decimals is read back from the parsed floats: the loader keeps every number exactly as the
float64 it was parsed to, and repr() of a float is the shortest text that gives that float back, so
repr(0.7616) == '0.7616' (4 decimals) and repr(4.0) == '4.0' (0 decimals).
"""

from __future__ import annotations

import math

import numpy as np

# Relative slack on half a unit of the last decimal: 0.7616 is not exactly 7616e-4 in binary.
_FLOAT_SLACK = 1e-9


def decimals(value: float) -> int:
    """How many decimals the shortest round-tripping text of `value` has: 0.7616 -> 4, 1.5e-07 -> 8, 4.0 -> 0."""
    mantissa, _, exponent = repr(float(value)).partition("e")
    fraction = mantissa.partition(".")[2].rstrip("0")
    return max(0, len(fraction) - int(exponent or 0))


def written_decimals(values: np.ndarray) -> int:
    """The most decimals any finite value of an output's hand values was written with."""
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    return max((decimals(v) for v in np.unique(finite)), default=0)


def decimals_needed(bound: float) -> int:
    """The fewest decimals whose rounding (at most half a unit of the last one) stays within `bound`."""
    if not bound > 0 or not math.isfinite(bound):
        return 17
    return max(0, math.ceil(math.log10(0.5 / bound) - 1e-12))


def rounded_to(expected: np.ndarray, system: np.ndarray, reference: np.ndarray, bound: np.ndarray) -> int | None:
    """k when the hand values look rounded to k decimals: k >= 1 (whole numbers are exact hand values,
    not rounded ones), the same non-finite values as the reference, and every finite one within half a
    unit of its k-th decimal (plus the system-vs-reference bound) of both the system and the reference.
    None when rounding does not explain the difference."""
    k = written_decimals(expected)
    if k == 0:
        return None
    finite = np.isfinite(expected)
    same = (expected == reference) | (np.isnan(expected) & np.isnan(reference))
    if not np.all(finite | same):
        return None
    allowed = 0.5 * 10.0 ** -k * (1 + _FLOAT_SLACK) + bound
    with np.errstate(invalid="ignore"):
        near = (np.abs(expected - reference) <= allowed) & (np.abs(expected - system) <= allowed)
    return k if bool(np.all(near | ~finite)) else None
