"""Tolerances are data: the per-dtype defaults live here and nowhere else.

An element passes when |a - b| <= atol * scale + rtol * |reference|, where scale = max(1, largest
|reference| in that output), so outputs far above 1 (linear activations, big weights) are judged by
their own size rather than by a fixed absolute floor.

Defaults grow with the number of steps, by sqrt(timesteps): rounding errors of a recurrence add up
over the steps roughly like a random walk. Some cases amplify rounding far more (unbounded
activations, large recurrent weights, chaotic dynamics), so the default bound never goes below
NOISE_SAFETY times the rounding noise measured for the case itself: the reference run once more with
every intermediate rounded to the case's compute dtype, minus the exact run.

A tolerance written in the case is used exactly as given, with no noise floor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from harness.precision import compute_dtype

# per compute dtype: (rtol, atol) for one step, in unit roundoffs u of the dtype. Random cases of
# bench/tolerance_survey.py stay below 4u per step in well-conditioned cases (under 1/5 of these bounds);
# cases that amplify rounding more are covered by the measured noise floor, not by these numbers.
DEFAULTS: dict[str, tuple[float, float]] = {
    "float64": (32 * 2.0 ** -53, 32 * 2.0 ** -53),  # 32 unit roundoffs: 3.6e-15
    "float32": (32 * 2.0 ** -24, 32 * 2.0 ** -24),  # 1.9e-6
    "float16": (16 * 2.0 ** -11, 16 * 2.0 ** -11),  # 7.8e-3
    "bfloat16": (16 * 2.0 ** -8, 16 * 2.0 ** -8),  # 6.25e-2
}


# Keras's own rounding is another draw of the same noise as the emulated runs (noise.py); 30 leaves
# room for the spread between draws seen in chaotic cases of bench/tolerance_survey.py.
NOISE_SAFETY = 30.0


@dataclass(frozen=True)
class Tolerance:
    rtol: float
    atol: float
    source: str  # says where it came from, for the report
    noise_floor: float = 0.0  # absolute bound never undercut: NOISE_SAFETY x measured rounding noise

    def describe(self) -> str:
        floor = f", at least {self.noise_floor:.3g} from measured rounding noise" if self.noise_floor else ""
        return f"rtol={self.rtol:.3g} atol={self.atol:.3g}{floor} ({self.source})"


def step_growth(timesteps: int) -> float:
    """How the default bound grows with the number of steps."""
    return math.sqrt(max(timesteps, 1))


def resolve(case_tolerance: dict, case_dtype: str, output: str, timesteps: int, noise: float = 0.0) -> Tolerance:
    """The tolerance for one output: per-output override, else case-wide, else the dtype default.

    `noise` is the largest rounding noise measured for this output (see module docstring).
    """
    specific = case_tolerance.get(output, {})
    general = {k: case_tolerance[k] for k in ("rtol", "atol") if k in case_tolerance}
    rtol0, atol0 = DEFAULTS[compute_dtype(case_dtype)]
    growth = step_growth(timesteps)
    default = {"rtol": rtol0 * growth, "atol": atol0 * growth}
    chosen = {k: specific.get(k, general.get(k, default[k])) for k in ("rtol", "atol")}
    if specific:
        return Tolerance(chosen["rtol"], chosen["atol"], f"case tolerance.{output}")
    if general:
        return Tolerance(chosen["rtol"], chosen["atol"], "case tolerance")
    floor = NOISE_SAFETY * noise if math.isfinite(noise) else 0.0
    steps = f"{timesteps} step{'s' if timesteps != 1 else ''}"
    return Tolerance(chosen["rtol"], chosen["atol"], f"{compute_dtype(case_dtype)} default, {steps}", floor)
