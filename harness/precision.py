"""What a case's dtype means numerically: which dtype holds the weights, which one computes.

Both oracles must see the same numbers. Keras rounds the case's values to its dtypes before it
computes, so the reference rounds them the same way (NumPy, and ml_dtypes for bfloat16) and then
computes in float64: what remains between them is Keras's arithmetic, not the rounding of the inputs.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np

# case dtype -> (variable dtype, compute dtype), as Keras dtype policies define them
POLICIES = {
    "float16": ("float16", "float16"),
    "bfloat16": ("bfloat16", "bfloat16"),
    "float32": ("float32", "float32"),
    "float64": ("float64", "float64"),
    "mixed_float16": ("float32", "float16"),
    "mixed_bfloat16": ("float32", "bfloat16"),
}

_NUMPY = {"float16": np.float16, "bfloat16": ml_dtypes.bfloat16, "float32": np.float32, "float64": np.float64}


def finfo(name: str):
    """Machine limits of a dtype by name (bfloat16 included)."""
    return ml_dtypes.finfo(_NUMPY[name]) if name == "bfloat16" else np.finfo(_NUMPY[name])


def variable_dtype(case_dtype: str) -> str:
    return POLICIES[case_dtype][0]


def compute_dtype(case_dtype: str) -> str:
    return POLICIES[case_dtype][1]


def round_to(array: np.ndarray, dtype_name: str) -> np.ndarray:
    """The array rounded (nearest, ties to even) to `dtype_name`, stored in that dtype."""
    with np.errstate(over="ignore"):  # out-of-range values become inf, as in Keras
        return np.asarray(array, dtype=np.float64).astype(_NUMPY[dtype_name])


def weight_as_computed(array: np.ndarray, case_dtype: str) -> np.ndarray:
    """Float64 copy of a weight as Keras computes with it: stored in the variable dtype, cast to compute."""
    stored = round_to(array, variable_dtype(case_dtype))
    return round_to(stored, compute_dtype(case_dtype)).astype(np.float64)


def input_as_computed(array: np.ndarray, case_dtype: str) -> np.ndarray:
    """Float64 copy of an input or state as Keras computes with it."""
    return round_to(array, compute_dtype(case_dtype)).astype(np.float64)


# Jittered samples perturb every intermediate by up to this many unit roundoffs before rounding: another
# draw of rounding noise. Larger jitter (4u was tried) makes every floor loose enough that float16 cases
# stop catching a 10% error in h; 0.5u kept the surveys free of false alarms (README, Tolerances).
JITTER_UNITS = 0.5


def emulated_rounding(case_dtype: str, sample: int):
    """A function rounding float64 arrays to the case's compute dtype: to nearest for sample 0, and for
    sample k > 0 after a seeded relative jitter of up to JITTER_UNITS unit roundoffs. (For float64 cases
    rounding to nearest changes nothing; the jittered draws are what measure the noise.) A jittered
    sample also has `.product(a, b)`: a matrix product with a draw of its accumulation noise."""
    emulated = compute_dtype(case_dtype)

    def to_nearest(a):
        return round_to(a, emulated).astype(np.float64)

    to_nearest.compute = emulated  # which dtype it rounds to (the twin's softplus needs it)
    if sample == 0:
        return to_nearest
    generator = np.random.Generator(np.random.PCG64(sample))
    unit = float(finfo(emulated).eps) / 2.0  # eps is 2u
    amplitude = JITTER_UNITS * unit
    if emulated == "float64":
        # A jitter below half an ulp cannot move a float64 value: step to a random neighbour instead.
        def jittered(a):
            a = np.asarray(a, dtype=np.float64)
            step = generator.integers(-1, 2, size=a.shape)  # -1, 0 or +1 ulp
            with np.errstate(invalid="ignore"):  # 0 * inf where the step is 0: that element is kept
                return np.where(step == 0, a, np.nextafter(a, step * np.inf))

        jittered.product = _accumulating(generator, unit)
        return jittered

    def jittered(a):
        a = np.asarray(a, dtype=np.float64)
        with np.errstate(invalid="ignore", over="ignore"):
            return to_nearest(a * (1.0 + amplitude * (2.0 * generator.random(a.shape) - 1.0)))

    jittered.product = _accumulating(generator, unit)
    return jittered


# A matrix product in the compute dtype rounds once per addition; the sum's error grows like sqrt(k) unit
# roundoffs of the sum of |terms| (Higham and Mary's probabilistic bound), often far above one rounding of the
# result when terms cancel. Jittered samples add a draw of it (up to this many such units) to every product.
ACCUMULATION_UNITS = 1.0


def _accumulating(generator: np.random.Generator, unit: float):
    def product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """a @ b plus a draw of the accumulation's rounding noise (not yet rounded: the caller rounds)."""
        with np.errstate(all="ignore"):
            exact = a @ b
            terms = np.abs(a) @ np.abs(b)
            spread = ACCUMULATION_UNITS * unit * np.sqrt(a.shape[-1])
            return exact + spread * terms * (2.0 * generator.random(exact.shape) - 1.0)

    return product
