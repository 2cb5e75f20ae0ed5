"""How much rounding noise a case amplifies, measured on the reference itself.

The reference is rerun with every intermediate rounded to the case's compute dtype, several times
(to nearest, and with seeded jitter: other draws of the same noise). The largest distance of any run
from the exact one is the case's noise; chaotic or exploding cases show it as large, since different
roundings then diverge. tolerances.py turns it into a floor under the default bound.

For float64 cases rounding to nearest changes nothing; the jittered draws (perturbations of half a
unit in the last place at every step) are what measure how much the case amplifies float64 rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.case import Case
from harness.precision import compute_dtype, finfo
from harness.layers.base import ReferenceResult
from harness.reference_runner import reference_outputs, run_reference
from harness.tolerances import NOISE_SAFETY

SAMPLES = (0, 1, 2)  # rounding to nearest, then two jittered draws


@dataclass
class NoiseEstimate:
    per_call: list[dict[str, float]]  # per call: output name -> largest noise (in the case's own precision)
    overflow_rows: list[np.ndarray | None]  # per call: batch rows that left the dtype's range, or None
    # per call: output name -> each element's noise (largest over the samples; NaN where a run was not finite)
    per_element: list[dict[str, np.ndarray]] | None = None


def _largest_difference(exact: np.ndarray, rounded: np.ndarray) -> float:
    both = np.isfinite(exact) & np.isfinite(rounded)
    return float(np.max(np.abs(exact[both] - rounded[both]), initial=0.0))


def _element_difference(exact: np.ndarray, samples: list[np.ndarray]) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        spread = np.stack([np.abs(exact - sample) for sample in samples])
    return np.where(np.isfinite(spread).all(axis=0), spread.max(axis=0, initial=0.0, where=np.isfinite(spread)),
                    np.nan)


def _overflow_rows(exact: ReferenceResult, samples: list[ReferenceResult], case: Case) -> np.ndarray:
    """Batch rows where some run overflows or comes within NOISE_SAFETY of the dtype's largest value,
    in any output or state."""
    limit = float(finfo(compute_dtype(case.dtype)).max) / NOISE_SAFETY
    batch = case.calls[0].input.shape[0]
    rows = np.zeros(batch, dtype=bool)
    with np.errstate(invalid="ignore"):
        for result in [exact, *samples]:
            for values in (*result.outputs.values(), *result.states.values()):
                if values.size:
                    flat = values.reshape(batch, -1)
                    rows |= (~np.isfinite(flat) | (np.abs(flat) > limit)).any(axis=1)
    return rows


def estimate_noise(case: Case, flavor: str, exact_calls: list[ReferenceResult]) -> NoiseEstimate:
    runs = [run_reference(case, flavor, rounding_sample=k) for k in SAMPLES]
    per_call, rows, per_element = [], [], []
    for number, exact in enumerate(exact_calls):
        samples = [run[number] for run in runs]
        exact_out = reference_outputs(case, exact)
        sample_outs = [reference_outputs(case, s) for s in samples]
        per_call.append({name: max(_largest_difference(values, out[name]) for out in sample_outs)
                         for name, values in exact_out.items()})
        per_element.append({name: _element_difference(values, [out[name] for out in sample_outs])
                            for name, values in exact_out.items()})
        rows.append(_overflow_rows(exact, samples, case))
    return NoiseEstimate(per_call, rows, per_element)
