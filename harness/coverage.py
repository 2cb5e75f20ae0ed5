"""`harness coverage`: which configurations the corpus exercises, and which it does not.

Reads case files only (no Keras). Each dimension has the values a corpus should cover; a value no case
covers is named. Classification is from the loaded case (generated arrays included), not from tags.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from itertools import product

import numpy as np

from harness import layers
from harness.activations import get_activation, supported_names
from harness.case import Case
from harness.layers.base import LayerSpec
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


def dimension_values(spec: LayerSpec, flavor: str) -> dict[str, tuple[str, ...]]:
    """Every dimension of a layer and the values its cases should cover: the layer spec's own (config)
    dimensions, then those every layer shares."""
    return {
        **spec.coverage_dimensions(_activations(flavor)),
        "mask pattern": MASK_PATTERNS,
        "initial state": ("none", "zero", "non-zero"),
        "calls": ("single call", "stateful, one call", "stateful, several calls", "stateful, reset between calls"),
        "batch": ("1", "2-31", "32+"),
        "timesteps": ("1", "2-199", "200+"),
        "features": ("1", "2-63", "64+"),
        "dtype": tuple(POLICIES),
        "execution mode": MODES,
        "numeric edge": NUMERIC_EDGES,
        "expected values": ("hand-computed",),
        "known upstream defect": ("regression case",),
    }


def classify(case: Case, flavor: str) -> dict[str, set[str]]:
    """The values of every dimension this case covers."""
    shapes = [call.input.shape for call in case.calls]
    return {
        **case.spec.coverage_values(case.config, lambda name: _canonical(name, flavor)),
        "mask pattern": mask_patterns(case),
        "initial state": _state(case),
        "calls": _calls(case),
        "batch": {_bucket(s[0], ((1, "1"), (2, "2-31"), (32, "32+"))) for s in shapes},
        "timesteps": {_bucket(s[1], ((1, "1"), (2, "2-199"), (200, "200+"))) for s in shapes},
        "features": {_bucket(s[2], ((1, "1"), (2, "2-63"), (64, "64+"))) for s in shapes},
        "dtype": {case.dtype},
        "execution mode": set(modes_for(case.execution, None)),  # cases without `execution:`: the default modes
        "numeric edge": numeric_edges(case),
        "expected values": {"hand-computed"} if any(call.expected for call in case.calls) else set(),
        "known upstream defect": {"regression case"} if "regression" in case.tags else set(),
    }


def _canonical(name: str | None, flavor: str) -> str | None:
    """The reference's name for an activation (aliases resolved); None when it is unsupported."""
    if name is not None and name not in supported_names(flavor):
        return None
    return get_activation(name, flavor).name


@dataclass
class CoverageMap:
    """The coverage of one layer's cases."""

    layer: str
    dimensions: dict[str, Counter]
    required: dict[str, tuple[str, ...]]
    activation_pairs: Counter = field(default_factory=Counter)
    mask_combos: Counter = field(default_factory=Counter)
    cases: int = 0

    @property
    def has_pairs(self) -> bool:
        return "recurrent_activation" in self.required

    @property
    def has_mask_table(self) -> bool:
        return "go_backwards" in self.required

    def uncovered(self) -> dict[str, list[str]]:
        return {dim: [v for v in values if not self.dimensions[dim][v]]
                for dim, values in self.required.items() if any(not self.dimensions[dim][v] for v in values)}

    def uncovered_activation_pairs(self) -> list[tuple[str, str]]:
        if not self.has_pairs:
            return []
        acts = self.required["activation"]
        return [(a, r) for a, r in product(acts, acts) if not self.activation_pairs[(a, r)]]

    def mask_table(self) -> dict[tuple[str, str, str], int]:
        return {(p, gb, rs): self.mask_combos[(p, gb, rs)]
                for p, gb, rs in product(MASK_PATTERNS, ("false", "true"), ("false", "true"))}

    def to_json(self) -> dict:
        found = {
            "cases": self.cases,
            "dimensions": {dim: {v: self.dimensions[dim][v] for v in values} for dim, values in self.required.items()},
            "uncovered": self.uncovered(),
        }
        if self.has_pairs:
            found["activation_pairs"] = {"covered": sum(1 for n in self.activation_pairs.values() if n),
                                         "total": len(self.required["activation"]) ** 2,
                                         "uncovered": [list(p) for p in self.uncovered_activation_pairs()]}
        if self.has_mask_table:
            found["mask_x_go_backwards_x_return_sequences"] = [
                {"mask": p, "go_backwards": gb, "return_sequences": rs, "cases": n}
                for (p, gb, rs), n in self.mask_table().items()]
        return found


@dataclass
class Coverage:
    """The coverage of a corpus: one map per layer that has cases (every layer, when asked for all)."""

    layers: dict[str, CoverageMap]
    invalid: list[str] = field(default_factory=list)

    @property
    def cases(self) -> int:
        return sum(m.cases for m in self.layers.values())

    def uncovered(self) -> dict[str, dict[str, list[str]]]:
        return {name: m.uncovered() for name, m in self.layers.items() if m.uncovered()}

    def to_json(self) -> dict:
        return {"cases": self.cases, "invalid_files": self.invalid,
                "layers": {name: m.to_json() for name, m in self.layers.items()}}


def build_map(cases: list[Case], flavor: str, invalid: list[str] | None = None, every_layer: bool = False) -> Coverage:
    """Coverage per layer; with every_layer, layers without a case are listed too (all uncovered)."""
    names = list(layers.SPECS) if every_layer else [n for n in layers.SPECS if any(c.layer == n for c in cases)]
    maps = {}
    for name in names:
        spec = layers.get(name)
        required = dimension_values(spec, flavor)
        coverage = CoverageMap(name, {dim: Counter() for dim in required}, required)
        for case in (c for c in cases if c.layer == name):
            coverage.cases += 1
            values = classify(case, flavor)
            for dim, found in values.items():
                coverage.dimensions[dim].update(found)
            if coverage.has_pairs:
                for a, r in product(values["activation"], values["recurrent_activation"]):
                    coverage.activation_pairs[(a, r)] += 1
            if coverage.has_mask_table:
                for p, gb, rs in product(values["mask pattern"], values["go_backwards"], values["return_sequences"]):
                    coverage.mask_combos[(p, gb, rs)] += 1
        maps[name] = coverage
    return Coverage(maps, invalid or [])
