"""`harness coverage`: which configurations the corpus exercises, and which it does not.

Reads case files only (no Keras). Each dimension has the values a corpus should cover; a value no case
covers is named. Classification is from the loaded case (generated arrays included), not from tags.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from itertools import product

import numpy as np

from harness.activations import get_activation, supported_names
from harness.case import Case
from harness.modes import MODES, modes_for
from harness.precision import POLICIES, compute_dtype, finfo, input_as_computed

MASK_PATTERNS = ("none", "right-padded", "left-padded", "middle-gap", "row-fully-masked", "first-step-masked")
NUMERIC_EDGES = ("saturating-input", "zero-input", "zero-weights", "nan-input", "inf-input", "subnormal-values",
                 "tiny-weights", "huge-weights")


def _activations(flavor: str) -> tuple[str, ...]:
    return tuple(sorted({get_activation(name, flavor).name for name in supported_names(flavor)}))


def _bucket(n: int, edges: tuple[tuple[int, str], ...]) -> str:
    for low, label in reversed(edges):
        if n >= low:
            return label
    return edges[0][1]


def mask_patterns(case: Case) -> set[str]:
    """Patterns of the masks of all calls, row by row."""
    found = set()
    for call in case.calls:
        if call.mask is None or call.mask.all():
            found.add("none")
            continue
        for row in call.mask:
            if not row.any():
                found.add("row-fully-masked")
                continue
            if not row[0]:
                found.add("first-step-masked")
            on = np.flatnonzero(row)
            inside = row[on[0]:on[-1] + 1]
            if not inside.all():
                found.add("middle-gap")
            if on[-1] < len(row) - 1:
                found.add("right-padded")
            if on[0] > 0:
                found.add("left-padded")
    return found


def numeric_edges(case: Case) -> set[str]:
    found = set()
    weights = [w for w in case.weights.values()]
    all_w = np.concatenate([w.ravel() for w in weights])
    tiny = finfo(compute_dtype(case.dtype)).tiny
    for call in case.calls:
        x = call.input
        finite = x[np.isfinite(x)]
        if finite.size and np.abs(finite).max() >= 40:
            found.add("saturating-input")
        if np.all(x == 0):
            found.add("zero-input")
        if np.isnan(x).any():
            found.add("nan-input")
        if np.isinf(x).any():
            found.add("inf-input")
        rounded = np.abs(input_as_computed(x, case.dtype))
        if np.any((rounded > 0) & (rounded < tiny)):
            found.add("subnormal-values")
    if np.all(all_w == 0):
        found.add("zero-weights")
    finite_w = np.abs(all_w[np.isfinite(all_w)])
    if finite_w.size and 0 < finite_w.max() <= 1e-6:
        found.add("tiny-weights")
    if finite_w.size and finite_w.max() >= 1e3:
        found.add("huge-weights")
    if np.any((finite_w > 0) & (finite_w < tiny)):
        found.add("subnormal-values")
    return found


def _state(case: Case) -> set[str]:
    found = set()
    for call in case.calls:
        if call.initial_state is None:
            found.add("none")
        elif all(np.all(s == 0) for s in call.initial_state.values()):
            found.add("zero")
        else:
            found.add("non-zero")
    return found


def _calls(case: Case) -> set[str]:
    if not case.stateful:
        return {"single call"}
    found = {"stateful, one call" if len(case.calls) == 1 else "stateful, several calls"}
    if any(call.reset_states for call in case.calls[1:]):
        found.add("stateful, reset between calls")
    return found


def dimension_values(flavor: str) -> dict[str, tuple[str, ...]]:
    """Every dimension and the values the corpus should cover."""
    acts = _activations(flavor)
    return {
        "activation": acts,
        "recurrent_activation": acts,
        "gate activations": ("fused tanh/sigmoid", "other"),
        "mask pattern": MASK_PATTERNS,
        "go_backwards": ("false", "true"),
        "return_sequences": ("false", "true"),
        "return_state": ("false", "true"),
        "initial state": ("none", "zero", "non-zero"),
        "calls": ("single call", "stateful, one call", "stateful, several calls", "stateful, reset between calls"),
        "batch": ("1", "2-31", "32+"),
        "units": ("1", "2+"),
        "timesteps": ("1", "2-199", "200+"),
        "features": ("1", "2-63", "64+"),
        "dtype": tuple(POLICIES),
        "execution mode": MODES,
        "unroll": ("false", "true"),
        "use_bias": ("false", "true"),
        "implementation": ("1", "2"),
        "numeric edge": NUMERIC_EDGES,
        "expected values": ("hand-computed",),
        "known upstream defect": ("regression case",),
    }


def classify(case: Case, flavor: str) -> dict[str, set[str]]:
    """The values of every dimension this case covers."""
    config = case.config
    activation = _canonical(config.get("activation", "tanh"), flavor)
    recurrent = _canonical(config.get("recurrent_activation", "sigmoid"), flavor)
    shapes = [call.input.shape for call in case.calls]
    flag = lambda key, default=False: {str(bool(config.get(key, default))).lower()}  # noqa: E731
    values = {
        "activation": {activation} - {None},
        "recurrent_activation": {recurrent} - {None},
        "gate activations": {"fused tanh/sigmoid" if (activation, recurrent) == ("tanh", "sigmoid") else "other"},
        "mask pattern": mask_patterns(case),
        "go_backwards": flag("go_backwards"),
        "return_sequences": flag("return_sequences"),
        "return_state": flag("return_state"),
        "initial state": _state(case),
        "calls": _calls(case),
        "batch": {_bucket(s[0], ((1, "1"), (2, "2-31"), (32, "32+"))) for s in shapes},
        "units": {_bucket(case.units, ((1, "1"), (2, "2+")))},
        "timesteps": {_bucket(s[1], ((1, "1"), (2, "2-199"), (200, "200+"))) for s in shapes},
        "features": {_bucket(s[2], ((1, "1"), (2, "2-63"), (64, "64+"))) for s in shapes},
        "dtype": {case.dtype},
        "execution mode": set(modes_for(case.execution, None)),  # cases without `execution:`: the default modes
        "unroll": flag("unroll"),
        "use_bias": flag("use_bias", True),
        "implementation": {str(config.get("implementation", 2))},
        "numeric edge": numeric_edges(case),
        "expected values": {"hand-computed"} if any(call.expected for call in case.calls) else set(),
        "known upstream defect": {"regression case"} if "regression" in case.tags else set(),
    }
    return values


def _canonical(name: str | None, flavor: str) -> str | None:
    """The reference's name for an activation (aliases resolved); None when it is unsupported."""
    if name is not None and name not in supported_names(flavor):
        return None
    return get_activation(name, flavor).name


@dataclass
class CoverageMap:
    dimensions: dict[str, Counter]
    required: dict[str, tuple[str, ...]]
    activation_pairs: Counter = field(default_factory=Counter)
    mask_combos: Counter = field(default_factory=Counter)
    cases: int = 0
    invalid: list[str] = field(default_factory=list)

    def uncovered(self) -> dict[str, list[str]]:
        return {dim: [v for v in values if not self.dimensions[dim][v]]
                for dim, values in self.required.items() if any(not self.dimensions[dim][v] for v in values)}

    def uncovered_activation_pairs(self) -> list[tuple[str, str]]:
        acts = self.required["activation"]
        return [(a, r) for a, r in product(acts, acts) if not self.activation_pairs[(a, r)]]

    def mask_table(self) -> dict[tuple[str, str, str], int]:
        return {(p, gb, rs): self.mask_combos[(p, gb, rs)]
                for p, gb, rs in product(MASK_PATTERNS, ("false", "true"), ("false", "true"))}

    def to_json(self) -> dict:
        return {
            "cases": self.cases,
            "invalid_files": self.invalid,
            "dimensions": {dim: {v: self.dimensions[dim][v] for v in values} for dim, values in self.required.items()},
            "uncovered": self.uncovered(),
            "activation_pairs": {"covered": sum(1 for n in self.activation_pairs.values() if n),
                                 "total": len(self.required["activation"]) ** 2,
                                 "uncovered": [list(p) for p in self.uncovered_activation_pairs()]},
            "mask_x_go_backwards_x_return_sequences": [
                {"mask": p, "go_backwards": gb, "return_sequences": rs, "cases": n}
                for (p, gb, rs), n in self.mask_table().items()],
        }


def build_map(cases: list[Case], flavor: str, invalid: list[str] | None = None) -> CoverageMap:
    required = dimension_values(flavor)
    coverage = CoverageMap({dim: Counter() for dim in required}, required, cases=len(cases), invalid=invalid or [])
    for case in cases:
        values = classify(case, flavor)
        for dim, found in values.items():
            coverage.dimensions[dim].update(found)
        for a, r in product(values["activation"], values["recurrent_activation"]):
            coverage.activation_pairs[(a, r)] += 1
        for p, gb, rs in product(values["mask pattern"], values["go_backwards"], values["return_sequences"]):
            coverage.mask_combos[(p, gb, rs)] += 1
    return coverage
