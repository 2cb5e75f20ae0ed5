"""How a backend rounds in 16 bits, kernel by kernel (issue 17): what a reference that rounds like Keras would
have to emulate.

For each activation of the reference (harness/activations.py), Keras's value on every float16 (or bfloat16) point
of [-12, 12) in steps of 1/64 (1/16) is compared with the correctly rounded value (float64, then rounded once):
how many points differ and by how many units in the last place at most. Then MatMul: Keras's product of 16-bit
matrices against the exact product rounded once, and against a sum rounded after every term. A backend whose
kernels all round once would make the reference's rounded run (harness/noise.py, sample 0) its exact twin.

Usage: KERAS_BACKEND=tensorflow .venv/bin/python bench/kernel_rounding.py [float16|bfloat16]
"""

from __future__ import annotations

import sys
from pathlib import Path

import ml_dtypes
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import quiet  # noqa: E402
from harness.activations import get_activation, supported_names  # noqa: E402


def main() -> None:
    quiet.enable()
    import keras  # noqa: PLC0415

    dtype = sys.argv[1] if len(sys.argv) > 1 else "float16"
    storage, step, ulp = ((np.float16, 1 / 64, 2.0 ** -10) if dtype == "float16"
                          else (ml_dtypes.bfloat16, 1 / 16, 2.0 ** -7))
    smallest_normal = 2.0 ** -14 if dtype == "float16" else 2.0 ** -126

    def rounded(values: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):
            return np.asarray(values, dtype=np.float64).astype(storage).astype(np.float64)

    x = np.arange(-12, 12, step).astype(storage)
    print(f"backend {keras.backend.backend()}, keras {keras.__version__}, {dtype}: {x.size} points in [-12, 12)")
    print(f"{'activation':<16}{'points apart':>14}{'largest (ulp)':>15}")
    for name in sorted(supported_names("keras3")):
        activation = get_activation(name, "keras3")
        try:
            got = np.asarray(keras.ops.convert_to_numpy(
                getattr(keras.activations, name)(keras.ops.convert_to_tensor(x))), dtype=np.float64)
        except Exception as exc:  # noqa: BLE001 -- a figure, not a test: say it and go on
            print(f"{name:<16}{'(' + type(exc).__name__ + ')':>14}")
            continue
        with np.errstate(all="ignore"):
            exact = rounded(activation(x.astype(np.float64)))
            both = np.isfinite(got) & np.isfinite(exact) if got.shape == exact.shape else None
            if both is None:
                print(f"{name:<16}{'(not elementwise)':>14}")
                continue
            apart = int(np.sum(got[both] != exact[both]))
            units = np.abs(got[both] - exact[both]) / (np.maximum(np.abs(exact[both]), smallest_normal) * ulp)
        print(f"{name:<16}{apart:>14}{float(units.max(initial=0.0)):>15.2f}")

    rng = np.random.default_rng(0)
    for terms in (4, 8, 32):
        a = rng.normal(size=(4, terms)).astype(storage)
        b = rng.normal(size=(terms, 32)).astype(storage)
        got = np.asarray(keras.ops.convert_to_numpy(keras.ops.matmul(keras.ops.convert_to_tensor(a),
                                                                       keras.ops.convert_to_tensor(b))), dtype=np.float64)
        a64, b64 = a.astype(np.float64), b.astype(np.float64)
        running = np.zeros((4, 32))
        for k in range(terms):
            running = rounded(running + rounded(a64[:, k:k + 1] * b64[k:k + 1, :]))
        print(f"matmul of {terms:>2} terms: equal to the exact product rounded once at "
              f"{np.mean(got == rounded(a64 @ b64)):.0%} of elements, to a sum rounded after every term at "
              f"{np.mean(got == running):.0%}")


if __name__ == "__main__":
    main()
