"""Seeded arrays for case files, identical on every machine and NumPy version.

NumPy promises a stable bit stream for PCG64 but not for its distributions, so only raw 64-bit words
are taken from it; uniforms use the top 53 bits, normals use Box-Muller with Python's math library.
"""

from __future__ import annotations

import math

import numpy as np

_TWO_PI = 2.0 * math.pi
_INV_2_53 = 1.0 / 9007199254740992.0


def _uniform01(seed: int, count: int) -> np.ndarray:
    words = np.random.PCG64(seed).random_raw(count)
    return (words >> np.uint64(11)).astype(np.float64) * _INV_2_53  # exact: 53-bit integers times 2^-53


def generate(spec: dict, shape: tuple[int, ...]) -> np.ndarray:
    """Float64 (or bool, for bernoulli) array of `shape` from a validated `random:` spec."""
    count = math.prod(shape)
    seed = spec["seed"]
    distribution = spec.get("distribution", "normal")
    if distribution == "uniform":
        low, high = spec.get("low", 0.0), spec.get("high", 1.0)
        values = low + (high - low) * _uniform01(seed, count)
    elif distribution == "bernoulli":
        values = _uniform01(seed, count) < spec.get("p", 0.5)
    else:
        u = _uniform01(seed, 2 * ((count + 1) // 2))
        pairs = []
        for u1, u2 in zip(u[0::2].tolist(), u[1::2].tolist()):
            radius = math.sqrt(-2.0 * math.log(1.0 - u1))  # 1 - u1 is in (0, 1]: log is finite
            pairs.append(radius * math.cos(_TWO_PI * u2))
            pairs.append(radius * math.sin(_TWO_PI * u2))
        values = spec.get("mean", 0.0) + spec.get("scale", 1.0) * np.array(pairs[:count], dtype=np.float64)
    return np.asarray(values).reshape(shape)
