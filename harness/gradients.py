"""Gradient checks: the case field `gradients:`, the reference's hand-written backprop through time, and the
comparison of a system's gradients with it.

    gradients:
      cotangents: {sequences: ..., h: ...}   # per compared output; default: seeded random of its shape
      wrt: [kernel, recurrent_kernel, bias, input, initial_state]   # default: every one the case has
      expected: {kernel: ..., input: ..., initial_state.h: ...}     # optional hand values
      tolerance: {rtol: ..., atol: ...}     # optional, for the gradients only

The loss of a call is the sum over its outputs of sum(cotangent * output); each gradient is compared like
an output named `grad.<name>`. A stateful case's calls are differentiated one by one (the state carried
into a call is a constant of that call, as in training with a stateful layer).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from harness import precision, random_arrays
from harness.errors import Problem

INPUT, INITIAL_STATE = "input", "initial_state"
COTANGENT_SEED = 7919  # default cotangents: seeded normal draws, one seed per call and output


@dataclass(frozen=True)
class GradientRequest:
    wrt: tuple[str, ...]
    cotangents: list[dict[str, np.ndarray]]  # per call: output name -> array of its shape
    expected: dict[str, np.ndarray] = field(default_factory=dict)  # first call: gradient name -> hand value
    tolerance: dict = field(default_factory=dict)
    given: tuple[str, ...] = ()  # the outputs whose cotangents the case gives (none: seeded random for every output)

    def names(self, case) -> list[str]:
        """The gradient names compared: weights, `input`, `initial_state.<state>`."""
        found = []
        for entry in self.wrt:
            if entry == INITIAL_STATE:
                found += [f"{INITIAL_STATE}.{name}" for name in case.spec.states(case.config, 1)]
            else:
                found.append(entry)
        return found


def load(raw: dict, spec, config: dict, calls: list, weight_names: list[str], arrays, field_name) -> GradientRequest | None:
    """Build the request from the case file's `gradients:`; `arrays` (the loader's) turns arrays into numpy
    and collects problems, `field_name` spells a field path. None when a problem was found."""
    problems = arrays.problems
    problems_before = len(problems)
    numbers = arrays.numbers
    have_state = all(call.initial_state is not None for call in calls)
    possible = list(weight_names) + [INPUT] + ([INITIAL_STATE] if have_state else [])
    wrt = tuple(raw.get("wrt", possible))
    for k, entry in enumerate(wrt):
        if entry not in possible:
            hint = ("give `initial_state:` to differentiate with respect to it" if entry == INITIAL_STATE else None)
            problems.append(Problem(field_name(["gradients", "wrt", k]), "nothing to differentiate with respect to",
                                    expected=f"one of: {', '.join(possible)}", found=repr(entry), hint=hint))
    outputs = spec.outputs(config)
    given = raw.get("cotangents", {})
    for name in given:
        if name not in outputs:
            problems.append(Problem(field_name(["gradients", "cotangents", name]), f"this config does not return `{name}`",
                                    expected=f"cotangents for: {', '.join(outputs)}"))
    if given and len(calls) > 1 and any(not isinstance(v, dict) for v in given.values()):
        problems.append(Problem(field_name(["gradients", "cotangents"]), "literal cotangents need a single call",
                                hint="use `random:` cotangents (drawn per call) with `calls:`"))
    cotangents = []
    for number, call in enumerate(calls):
        batch, steps = call.input.shape[:2]
        per_call = {}
        for k, name in enumerate(outputs):
            shape = spec.output_spec(name, config, batch, steps)
            if name in given:
                value = given[name]
                if isinstance(value, dict):
                    spec_ = dict(value["random"])
                    spec_["seed"] = spec_["seed"] + number
                    value = {"random": spec_}
                per_call[name] = numbers(value, ["gradients", "cotangents", name], shape.shape, shape.why)
            elif not given:
                per_call[name] = random_arrays.generate({"seed": COTANGENT_SEED + 100 * number + k}, shape.shape)
        cotangents.append(per_call)
    expected = {}
    names = GradientRequest(wrt, cotangents).names(_Shapes(spec, config))
    for name, value in raw.get("expected", {}).items():
        if name not in names:
            problems.append(Problem(field_name(["gradients", "expected", name]), "not a gradient this case computes",
                                    expected=f"one of: {', '.join(names)}"))
            continue
        expected[name] = numbers(value, ["gradients", "expected", name])
    if len(problems) > problems_before:
        return None
    return GradientRequest(wrt, cotangents, expected, raw.get("tolerance", {}), tuple(given))


@dataclass
class _Shapes:
    spec: object
    config: dict


def reference_backward(case, flavor: str, perturb=None) -> list:
    """Per call: the layer spec's whole backward pass (layers.base.Gradients, with its per-step trace), from the
    states each call starts from (carried between the calls of a stateful case, as the forward carries them).
    `perturb` (array -> array), when given, is applied to everything the backward pass starts from: the
    weights, inputs, given states and cotangents (see gradient_noise)."""
    spec, request = case.spec, case.gradients
    perturb = perturb or (lambda a: a)
    weights = {name: perturb(precision.weight_as_computed(values, case.dtype)) for name, values in case.weights.items()}
    batch = case.calls[0].input.shape[0]
    zeros = {name: np.zeros(s.shape) for name, s in spec.states(case.config, batch).items()}
    states, results = dict(zeros), []
    for number, call in enumerate(case.calls):
        if call.reset_states or not case.stateful:
            states = dict(zeros)
        if call.initial_state is not None:
            states = {name: perturb(precision.input_as_computed(s, case.dtype)) for name, s in call.initial_state.items()}
        x = perturb(precision.input_as_computed(call.input, case.dtype))
        cotangents = {name: perturb(value) for name, value in request.cotangents[number].items()}
        results.append(spec.backward(weights, case.config, flavor, x, states, call.mask, cotangents))
        states = spec.forward(weights, case.config, flavor, x, states, call.mask).states
    return results


def _named(request, grads) -> dict[str, np.ndarray]:
    found = {name: grads.weights[name] for name in request.wrt if name in grads.weights}
    if INPUT in request.wrt:
        found[INPUT] = grads.input
    if INITIAL_STATE in request.wrt:
        found.update({f"{INITIAL_STATE}.{name}": value for name, value in grads.initial_state.items()})
    return found


def reference_gradients(case, flavor: str) -> list[dict[str, np.ndarray]]:
    """Per call: gradient name -> the reference's float64 gradient, from the layer spec's backward pass."""
    return [_named(case.gradients, grads) for grads in reference_backward(case, flavor)]


# The jittered draws of precision.emulated_rounding (a relative change of a few unit roundoffs of the compute dtype).
NOISE_SAMPLES = (1, 2)


def chaotic_share(case, forward_calls: list, noise) -> list[float]:
    """Per call: where that call's forward is chaotic in the case's dtype (its measured rounding noise is not
    local: above tolerances.CHAOTIC unit roundoffs x sqrt(steps) x its size, the test the forward's own bound
    uses), that noise relative to the size of its outputs (the largest over them); 0.0 elsewhere, which is
    nearly always. Found by the fuzzer (mixed_bfloat16, exponential gates, a linear activation: the forward's
    noise 93x its output, and Keras on TensorFlow and on JAX agreeing bit for bit on gradients 14x the float64
    ones): a backward pass through such a forward cannot be held closer than the forward, and gradient_noise
    says so."""
    from harness.reference_runner import reference_outputs  # noqa: PLC0415
    from harness.tolerances import chaotic, largest_finite  # noqa: PLC0415

    if noise is None:
        return [0.0] * len(case.calls)
    shares = []
    for call, result, measured in zip(case.calls, forward_calls, noise.per_call, strict=True):
        share = 0.0
        for name, values in reference_outputs(case, result).items():
            size, largest = largest_finite(values), measured.get(name, 0.0)
            if size > 0.0 and np.isfinite(largest) and chaotic(largest, case.dtype, call.input.shape[1], max(1.0, size)):
                share = max(share, largest / size)
        shares.append(share)
    return shares


def gradient_noise(case, flavor: str, reference_calls: list[dict],
                   chaotic: list[float] | None = None) -> list[dict[str, float]]:
    """Per call: gradient name -> how far the reference's gradient moves when everything the backward pass
    starts from (weights, inputs, states, cotangents) is moved by a rounding-sized amount of the case's compute
    dtype (two seeded draws). The backward reference does not round per operation, so this stands in for the
    forward's emulated rounding (noise.py): a case that amplifies a change of a few ulps (chaotic recurrences,
    saturated gates over long sequences) shows it as large, and the bound never goes below NOISE_SAFETY times it.
    `chaotic` (chaotic_share, per call) adds that share of each gradient's largest size: moving the starting
    values does not show what rounding every step of a chaotic forward does."""
    noise = [{name: 0.0 for name in call} for call in reference_calls]
    for sample in NOISE_SAMPLES:
        moved = [_named(case.gradients, g)
                 for g in reference_backward(case, flavor, precision.emulated_rounding(case.dtype, sample))]
        for found, exact, other in zip(noise, reference_calls, moved):
            for name, values in exact.items():
                both = np.isfinite(values) & np.isfinite(other[name])
                found[name] = max(found[name], float(np.max(np.abs(values[both] - other[name][both]), initial=0.0)))
    from harness.tolerances import largest_finite  # noqa: PLC0415

    for found, exact, share in zip(noise, reference_calls, chaotic or [0.0] * len(noise)):
        for name, values in exact.items():  # a chaotic forward's share (chaotic_share) of each gradient's size
            if share:
                found[name] = max(found[name], share * largest_finite(values))
    return noise


# The backward pass runs about twice the forward's operations per step and accumulates the weight gradients
# over every step and batch row: its default bound is the forward's (per dtype, x sqrt(steps)) times this.
# Measured with bench/gradient_bounds.py (README, Gradients): random weights of scale 0.5 run at most 0.028 of
# the bound (errors grow like steps^0.1-0.25, slower than sqrt); scale 1.5 (saturating) at most 0.22 in eager and
# graph mode, but float16 in XLA mode reached 0.64 (`--mode xla --scale 1.5 --dtypes float16 --seeds 6`:
# LSTM, 200 steps); float32, float64 and bfloat16 stay below 0.14 there. float16's narrow exponent range is the
# difference (small products of saturated-gate derivatives go subnormal and lose their relative precision;
# bfloat16 has float32's range): float16 gets twice the slack, which puts that case at 0.32.
# Under it, a noise floor (gradient_noise): the backward reference does not round per op, so the floor is
# measured by moving its starting values by a few ulps; without it weights of scale 3 (chaotic) exceeded the
# bound by up to 4.8x (`--scale 3`, GRU float32, 200 steps).
GRADIENT_SLACK = 8.0
GRADIENT_SLACK_BY_DTYPE = {"float16": 16.0}  # by compute dtype; the others: GRADIENT_SLACK


def gradient_slack(dtype: str) -> float:
    """The factor between the forward's default bound and a gradient's, for a case's dtype policy."""
    return GRADIENT_SLACK_BY_DTYPE.get(precision.compute_dtype(dtype), GRADIENT_SLACK)


def compare(case, system_calls: list[dict], reference_calls: list[dict], label: str, mode: str,
            noise: list[dict[str, float]] | None = None, overflow_rows: list | None = None) -> list:
    """(call, OutputDiff) for every gradient of every call, named `grad.<name>`; `noise` (gradient_noise) puts a
    floor under the default bounds. `overflow_rows` (per call, the forward's batch rows that ran out of the
    dtype's range: noise.NoiseEstimate) accepts a non-finite gradient there: of the input and the initial states
    in those rows, of a weight (summed over every row) anywhere once a row overflowed."""
    from harness.compare import diff_output  # noqa: PLC0415
    from harness.tolerances import Tolerance, resolve  # noqa: PLC0415

    request = case.gradients
    diffs = []
    for number, (system, reference) in enumerate(zip(system_calls, reference_calls, strict=True), start=1):
        steps = case.calls[number - 1].input.shape[1]
        for name, ref in reference.items():
            measured = noise[number - 1].get(name, 0.0) if noise else 0.0
            tolerance = resolve(request.tolerance, case.dtype, f"grad.{name}", steps, measured)
            if not request.tolerance:
                slack = gradient_slack(case.dtype)
                tolerance = Tolerance(tolerance.rtol * slack, tolerance.atol * slack,
                                      f"{tolerance.source} x {slack:g} for a gradient", tolerance.noise_floor)
            expected = request.expected.get(name) if number == 1 else None
            got = system.get(name)
            if got is None:
                from harness.compare import OutputDiff, two_way  # noqa: PLC0415

                diff = OutputDiff(output=f"grad.{name}", tolerance=tolerance, total=int(ref.size), label=label,
                                  structure_problem=f"{label} returned no gradient for `{name}`", verdict=two_way(label))
            else:
                rows = overflow_rows[number - 1] if overflow_rows else None
                if rows is not None and not (name == INPUT or name.startswith(INITIAL_STATE)):
                    rows = np.ones(ref.shape[0], dtype=bool) if np.any(rows) else None
                diff = diff_output(f"grad.{name}", np.asarray(got, dtype=np.float64).reshape(ref.shape)
                                   if np.size(got) == ref.size else np.asarray(got, dtype=np.float64),
                                   ref, expected, tolerance, rows if ref.ndim else None, label)
            diff.mode = mode
            diffs.append((number, diff))
    return diffs
