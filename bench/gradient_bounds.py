"""Measure how far the TensorFlow target's gradients are from the float64 backprop reference, and how that
grows with the sequence length: the figures the default gradient bound (harness/gradients.py) is set from.

For each layer (LSTM, GRU with reset_after true and false, SimpleRNN, Bidirectional around an LSTM), dtype and
sequence length, on random weights and inputs (several seeds; every output returned, default seeded
cotangents, gradients with respect to every weight, the input and the initial states), it prints per length:

    err    the largest |system gradient - reference| / max|reference| over the case's gradients (median and max
           over the seeds)
    ratio  the largest error as a fraction of the bound the harness applies now (1.0 = at the bound; the
           harness's own element test: |a - b| <= atol * max(1, max|ref|) + rtol * |ref|)

then per layer and dtype the growth exponent p of err ~ length^p (least squares on log-log, over the lengths
where err > 0) and the largest ratio, and at the end the largest ratio of all.

Usage: .venv/bin/python bench/gradient_bounds.py [--seeds 3] [--lengths 1,4,16,64,200]
       [--dtypes float32,float16,float64] [--layers LSTM,GRU,GRU-reset-before,SimpleRNN,Bidirectional]
       [--mode eager] [--scale 0.5]

--scale sets the weights' spread (kernel and recurrent kernel normal with that deviation, bias half of it):
0.5 keeps the recurrence contracting (the regime a trained layer runs in); 1.5 saturates gates and lets
gradients grow along the sequence, the harsher regime the bound must also hold in.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np

from harness import gradients, targets
from harness.loader import case_from_document
from harness.versions import keras_flavor

UNITS, FEATURES, BATCH = 4, 3, 2


def _random(seed: int, scale: float) -> dict:
    return {"random": {"seed": seed, "distribution": "normal", "scale": scale}}


def _layer_config(layer: str) -> tuple[str, dict]:
    """(layer type, config) of a bench layer name."""
    common = {"units": UNITS, "return_sequences": True, "return_state": True}
    if layer == "GRU-reset-before":
        return "GRU", {**common, "reset_after": False}
    if layer == "Bidirectional":
        return "Bidirectional", {"merge_mode": "concat", "layer": {"type": "LSTM", **common}}
    return layer, common


def _weights(layer: str, seed: int, scale: float) -> dict:
    """Kernel and recurrent kernel normal(0, scale), bias normal(0, scale / 2) (the random shape follows from
    the config: GRU reset_after gets its (2, 3n) bias)."""
    kind, config = _layer_config(layer)

    def one(base):
        return {"kernel": _random(base + 1, scale), "recurrent_kernel": _random(base + 2, scale),
                "bias": _random(base + 3, scale / 2)}

    return {"forward": one(seed), "backward": one(seed + 3)} if kind == "Bidirectional" else one(seed)


def bench_case(layer: str, dtype: str, steps: int, seed: int, scale: float = 0.5):
    kind, config = _layer_config(layer)
    states = (["forward_h", "forward_c", "backward_h", "backward_c"] if kind == "Bidirectional"
              else ["h", "c"] if kind == "LSTM" else ["h"])
    doc = {"name": f"bench-{layer}-{dtype}-{steps}-{seed}", "layer": kind, "config": config, "dtype": dtype,
           "input": {"random": {"seed": seed, "shape": [BATCH, steps, FEATURES]}},
           "weights": _weights(layer, 10 * seed, scale),
           "initial_state": {name: {"random": {"seed": 100 * seed + k, "shape": [BATCH, UNITS], "scale": 0.5}}
                             for k, name in enumerate(states)},
           "gradients": {}}
    return case_from_document(doc, Path(f"<bench {doc['name']}>"))


def measure(case, system, mode: str, flavor: str) -> tuple[float, float]:
    """(largest relative error, largest error / bound) over the case's gradients."""
    got = system.gradients(case, mode)
    reference = gradients.reference_gradients(case, flavor)
    error, ratio = 0.0, 0.0
    noise = gradients.gradient_noise(case, flavor, reference)
    for diff_pair in gradients.compare(case, got, reference, system.label, mode, noise):
        _, diff = diff_pair
        ratio = max(ratio, diff.max_error_ratio)
    for system_call, reference_call in zip(got, reference):
        for name, ref in reference_call.items():
            values = np.asarray(system_call[name], dtype=np.float64).reshape(ref.shape)
            scale = float(np.max(np.abs(ref), initial=0.0)) or 1.0
            error = max(error, float(np.max(np.abs(values - ref), initial=0.0)) / scale)
    return error, ratio


def growth_exponent(lengths: list[int], errors: list[float]) -> float:
    points = [(math.log(n), math.log(e)) for n, e in zip(lengths, errors) if e > 0 and math.isfinite(e)]
    if len(points) < 2:
        return float("nan")
    xs, ys = np.array(points).T
    return float(np.polyfit(xs, ys, 1)[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--lengths", default="1,4,16,64,200")
    parser.add_argument("--dtypes", default="float32,float16,float64")
    parser.add_argument("--layers", default="LSTM,GRU,GRU-reset-before,SimpleRNN,Bidirectional")
    parser.add_argument("--mode", default="eager", help="execution mode of the tensorflow target (eager, graph, xla)")
    parser.add_argument("--scale", type=float, default=0.5, help="the weights' spread (see above)")
    args = parser.parse_args()
    lengths = [int(n) for n in args.lengths.split(",")]
    system, flavor = targets.get("tensorflow"), keras_flavor()
    started = time.perf_counter()
    print(f"gradient error vs the float64 reference ({args.mode} mode, {args.seeds} seeds, batch {BATCH}, "
          f"units {UNITS}, features {FEATURES}, weight scale {args.scale:g}; gradient slack: "
          + ", ".join(f"{dtype} {gradients.gradient_slack(dtype):g}" for dtype in args.dtypes.split(",")) + ")")
    print("err = max |tf - ref| / max|ref| over the gradients (median, max over seeds); ratio = error / bound (max)")
    summary, worst = [], (0.0, "")
    for layer in args.layers.split(","):
        for dtype in args.dtypes.split(","):
            print(f"\n{layer} {dtype}")
            print(f"  {'steps':>6} {'err median':>11} {'err max':>10} {'ratio max':>10}")
            maxima, ratios = [], []
            for steps in lengths:
                found = [measure(bench_case(layer, dtype, steps, seed, args.scale), system, args.mode, flavor)
                         for seed in range(1, args.seeds + 1)]
                errors = [e for e, _ in found]
                ratio = max(r for _, r in found)
                maxima.append(max(errors))
                ratios.append(ratio)
                if ratio > worst[0]:
                    worst = (ratio, f"{layer} {dtype} {steps} steps")
                print(f"  {steps:>6} {np.median(errors):>11.3g} {max(errors):>10.3g} {ratio:>10.3g}")
            exponent = growth_exponent(lengths, maxima)
            summary.append((layer, dtype, exponent, max(ratios)))
            print(f"  growth exponent (err max ~ steps^p): p = {exponent:.2f}; largest ratio {max(ratios):.3g}")
    print("\nsummary: layer dtype  growth exponent  largest error / bound")
    for layer, dtype, exponent, ratio in summary:
        print(f"  {layer:<18}{dtype:<9}{exponent:>6.2f}{ratio:>12.3g}")
    print(f"largest error / bound overall: {worst[0]:.3g} ({worst[1]}); {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
