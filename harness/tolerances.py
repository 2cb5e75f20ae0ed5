"""Tolerances are data: the per-dtype defaults live here and nowhere else.

An element passes when |a - b| <= atol * scale + rtol * |reference|, where scale = max(1, largest
|reference| in that output), so outputs far above 1 (linear activations, big weights) are judged by
their own size rather than by a fixed absolute floor (16-bit measured defaults: max(1/4, ...), MEASURED).

A forward output with a measured noise (noise.py, per element) gets the *measured* default: a few unit
roundoffs per element (MEASURED) and never less than SAFETY times that element's own rounding noise, so
an error is judged against what rounding can do to that element, not to the output's largest one. Where
the noise is not local (a chaotic or exploding case: the output's largest noise exceeds CHAOTIC unit
roundoffs of its scale) the whole output gets the flat floor below. Gradients, and outputs without a
measurement, keep the flat defaults.

Defaults grow with the number of steps, by sqrt(timesteps): rounding errors of a recurrence add up
over the steps roughly like a random walk. Some cases amplify rounding far more (unbounded
activations, large recurrent weights, chaotic dynamics), so the default bound never goes below
NOISE_SAFETY times the rounding noise measured for the case itself: the reference run once more with
every intermediate rounded to the case's compute dtype, minus the exact run.

A tolerance written in the case is used exactly as given, with no noise floor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from harness.precision import compute_dtype, finfo

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


class Measured(NamedTuple):
    """The measured default of one compute dtype (see module docstring and `measured`)."""

    safety: float  # every element's bound is at least this many times its own measured rounding noise
    share: float  # ... and at least this share of the output's largest noise
    rtol_units: float  # rtol, in unit roundoffs per sqrt(step)
    atol_units: float  # atol, in unit roundoffs per sqrt(step), times the scale below
    scale_floor: float  # atol is multiplied by max(scale_floor, the output's largest |reference|)


# Per compute dtype, chosen by pricing candidate values offline (bench/tolerance_pricing.py) on every forward
# output of the corpus and 150 survey cases on tensorflow, jax, torch, tf-keras and the converted targets,
# unperturbed and under h x (1 + eps) (issue 17). What hides a small error is the absolute part of the bound:
# atol (scaled by max(1, |reference|), it is a floor of a few u absolute that hides a relative error of 10u and
# more in every element below ~0.25) and the safety factor. float32 keeps rtol at 4u, since TensorFlow's float32
# tanh and sigmoid are up to ~4u off by themselves (a one-step GRU: 0.55 of the bound, the largest error of all),
# and its atol scale at 1: at 0.1, ONNX Runtime's saturated LSTM gates (gradient-lstm-saturated-gates, tiny
# outputs with an absolute error) fail. float16 scales atol by the output's own size down to a quarter: its small
# outputs (h ~ 0.01 in a quarter of the short survey cases) were judged by an absolute floor 25x their size; its
# safety stays 8 (6 caught more, but at 0.72 of the bound on a second survey: too near the edge).
# bfloat16 stays as first chosen: (6, 0.3, 1u, 0.5u, 1/4) failed 2 of 60 mixed_bfloat16 cases of
# bench/tolerance_survey.py 60 9 (Keras's own bfloat16 error: 3.6u at one step, where 3e-2 is 7.7u).
MEASURED: dict[str, Measured] = {
    "float64": Measured(20.0, 0.3, 4.0, 4.0, 1.0),
    "float32": Measured(10.0, 0.3, 4.0, 1.0, 1.0),
    "float16": Measured(8.0, 0.3, 2.0, 0.5, 0.25),
    "bfloat16": Measured(10.0, 0.3, 4.0, 2.0, 1.0),
}
ENABLED = True  # bench/sensitivity.py turns it off to print the flat defaults' figures beside these in one run
CHAOTIC = 30.0  # largest noise above this many unit roundoffs x sqrt(steps) x scale: not local, flat floor
# ... or above this share of the scale, whatever the dtype: rounding alone then moves the output by a tenth of its
# size (16-bit cases of 50 steps and more, where 30u sqrt(steps) is most of the scale itself; a mixed_bfloat16
# softplus LSTM of 50 steps, noise 77% of its scale, failed against the per-element floor at 3.5x)
CHAOTIC_SHARE = 0.1


@dataclass(frozen=True)
class Tolerance:
    rtol: float
    atol: float
    source: str  # says where it came from, for the report
    # absolute bound never undercut: NOISE_SAFETY x the output's measured rounding noise, or per element (an
    # array shaped like the output: SAFETY x each element's noise)
    noise_floor: float | np.ndarray = field(default=0.0, compare=False)
    hand_values: "Tolerance | None" = field(default=None, compare=False)  # the bound hand values are held to
    scale_floor: float = 1.0  # atol is multiplied by max(scale_floor, the output's largest |reference|)

    @property
    def per_element(self) -> bool:
        return isinstance(self.noise_floor, np.ndarray)

    @property
    def largest_floor(self) -> float:
        floor = np.asarray(self.noise_floor, dtype=float)
        return float(np.max(floor, initial=0.0)) if floor.size else 0.0

    def describe(self) -> str:
        floor = (f", at least {SAFETY_WORDS} (up to {self.largest_floor:.3g})" if self.per_element else
                 f", at least {self.noise_floor:.3g} from measured rounding noise" if self.noise_floor else "")
        return f"rtol={self.rtol:.3g} atol={self.atol:.3g}{floor} ({self.source})"


def step_growth(timesteps: int) -> float:
    """How the default bound grows with the number of steps."""
    return math.sqrt(max(timesteps, 1))


def largest_finite(values: np.ndarray) -> float:
    """The largest |value| among the finite ones; 0.0 when there is none."""
    finite = np.abs(values[np.isfinite(values)])
    return float(finite.max()) if finite.size else 0.0


def chaotic(largest_noise: float, case_dtype: str, timesteps: int, scale: float) -> bool:
    """Whether an output's largest measured rounding noise is not local: above CHAOTIC unit roundoffs of the
    compute dtype x sqrt(steps), or CHAOTIC_SHARE, x `scale` (max(1, the output's largest size))."""
    unit = float(finfo(compute_dtype(case_dtype)).eps) / 2.0  # eps is 2u
    return largest_noise > min(CHAOTIC * unit * step_growth(timesteps), CHAOTIC_SHARE) * scale


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


SAFETY_WORDS = "a multiple of each element's measured rounding noise"


def written_in_case(case_tolerance: dict, output: str) -> bool:
    return bool(case_tolerance.get(output)) or any(k in case_tolerance for k in ("rtol", "atol"))


def _own_noise(element_noise: np.ndarray) -> tuple[np.ndarray, float]:
    """Each element's noise, the output's largest where a run overflowed there (NaN); and that largest."""
    largest = float(np.nanmax(element_noise, initial=0.0)) if element_noise.size else 0.0
    return np.where(np.isnan(element_noise), largest, element_noise), largest


def measured(case_dtype: str, output: str, timesteps: int, element_noise: np.ndarray,
             reference: np.ndarray) -> Tolerance:
    """The measured default of a forward output (module docstring): per-element floor from the noise of
    each element, a few unit roundoffs of its own size; the flat default where the noise is not local."""
    compute = compute_dtype(case_dtype)
    own, largest = _own_noise(element_noise)  # a run that overflowed at an element: the largest there
    flat = resolve({}, case_dtype, output, timesteps, largest)
    unit = float(finfo(compute).eps) / 2.0  # eps is 2u
    growth = step_growth(timesteps)
    if not element_noise.size or np.isnan(element_noise).all():  # nothing measured: the flat default
        return Tolerance(flat.rtol, flat.atol, flat.source, flat.noise_floor, flat)
    if not math.isfinite(largest) or chaotic(largest, case_dtype, timesteps, max(1.0, largest_finite(reference))):
        return Tolerance(flat.rtol, flat.atol, flat.source + ", chaotic: noise not local", flat.noise_floor, flat)
    chosen = MEASURED[compute]
    floor = chosen.safety * np.maximum(own, chosen.share * largest)
    steps = f"{timesteps} step{'s' if timesteps != 1 else ''}"
    return Tolerance(chosen.rtol_units * unit * growth, chosen.atol_units * unit * growth,
                     f"{compute} measured default, {steps}", floor, flat, chosen.scale_floor)



# Against the system's own rounding of the same computation (a twin: harness/twin_tensorflow.py), an
# element passes within TWIN_RTOL unit roundoffs per sqrt(step) of its own size (never less than one ulp of
# it: a kernel 1 ulp off at the last op), plus an absolute part, or TWIN_SAFETY times its measured rounding
# noise where larger. The twin is bit-identical to Keras on TensorFlow in all but rare cases (a kernel 1 ulp off
# at 4 of 63488 float16 values, or a float32 accumulation next to a 16-bit tie, propagated; 2 of 1,012 short
# survey cases, 13 of 478 long ones): the relative part holds
# such flips at the output, the noise what a flip upstream can grow into where values cancel. Priced on 1,490
# short and long 16-bit survey cases (bench/twin_pricing.py): the largest |Keras - twin| used 0.39 of it.
TWIN_RTOL = 1.0
TWIN_SAFETY = 1.0
# the absolute part, in unit roundoffs per sqrt(step) of max(TWIN_SCALE_FLOOR, the output's largest |reference|):
# a floor for outputs that are 0 or nearly so everywhere; the noise term, not the floor, covers cancellation
TWIN_ATOL = 0.5
TWIN_SCALE_FLOOR = 1 / 64


def twin_bound(case_dtype: str, timesteps: int, element_noise: np.ndarray, twin: np.ndarray,
               reference: np.ndarray) -> np.ndarray:
    """Each element's bound on |system - twin| (above)."""
    unit = float(finfo(compute_dtype(case_dtype)).eps) / 2.0
    growth = step_growth(timesteps)
    absolute = TWIN_ATOL * unit * growth * max(TWIN_SCALE_FLOOR, largest_finite(reference))
    own, _ = _own_noise(element_noise)
    size = np.where(np.isfinite(twin), np.abs(twin), 0.0)
    _, exponent = np.frexp(size)  # size = m 2^exponent, m in [1/2, 1): one ulp is 2u 2^(exponent - 1)
    ulp = np.where(size > 0, np.ldexp(2.0 * unit, exponent - 1), 0.0)
    relative = np.maximum(TWIN_RTOL * unit * growth * size, ulp)
    return np.maximum(absolute + relative, TWIN_SAFETY * own)
