"""`harness fuzz`: random valid cases across the configuration space of every layer (each layer spec
draws its own config), each run on Keras and the reference; a disagreement is shrunk by hypothesis to a
minimal case and written as a case file.

Cases are generated as case-file documents and go through the real loader, so what is saved is
exactly what ran. Arrays are `random:` specs (seeds), so saved files stay small.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from harness import layers
from harness.activations import supported_names
from harness.known_defects import known_defect
from harness.coverage import classify
from harness.loader import case_from_document
from harness.runner import CaseResult, run_case

DTYPE_ORDER = ("float32", "float64", "float16", "bfloat16", "mixed_float16", "mixed_bfloat16")  # shrinks to float32
BOUNDED = ("tanh", "sigmoid", "softsign", "hard_tanh", "hard_sigmoid", "sparse_sigmoid")


def _random(seed_value: int, **extra) -> dict:
    return {"random": {"seed": seed_value, **extra}}


def _nested(flat: dict) -> dict:
    """{"forward.kernel": v} -> {"forward": {"kernel": v}}."""
    nested: dict = {}
    for name, value in flat.items():
        *parents, leaf = name.split(".")
        place = nested
        for parent in parents:
            place = place.setdefault(parent, {})
        place[leaf] = value
    return nested


@st.composite
def case_documents(draw, flavor: str = "keras3", layer_names: tuple[str, ...] | None = None) -> dict:
    """A valid case document anywhere in the configuration space of every layer (LSTM first: shrinks to it)."""
    activations = sorted(supported_names(flavor) - {"linear"})
    layer = draw(st.sampled_from(layer_names or tuple(layers.SPECS)))
    spec = layers.get(layer)
    units = draw(st.integers(1, 6))
    features = draw(st.integers(1, 5))
    batch = draw(st.integers(1, 4))
    steps = draw(st.sampled_from([1, 2, 3, 4, 6, 8, 30, 100]))  # sampled_from shrinks toward 1
    stateful = draw(st.booleans())
    config = spec.fuzz_config(draw, st, activations, units=units, steps=steps, stateful=stateful)
    unbounded = any(name not in BOUNDED for name in spec.activations(config).values())
    scale = draw(st.sampled_from([0.1, 0.3] if unbounded and steps > 8 else [0.1, 0.5, 1.0]))
    seeds = iter(range(draw(st.integers(0, 10_000)) * 16, 10**9))
    doc = {"name": "fuzz", **({"layer": layer} if layer != layers.DEFAULT_LAYER else {}), "config": config,
           "dtype": draw(st.sampled_from(DTYPE_ORDER)),
           "weights": _nested({name: _random(next(seeds), scale=scale) for name in spec.weights(config, features)})}
    execution = draw(st.sampled_from([None, "all"]))  # None: the run's default modes; shrinks toward it
    if execution:
        doc["execution"] = execution

    def call_entry(first: bool) -> dict:
        entry = {"input": _random(next(seeds), shape=[batch, steps, features],
                                  scale=draw(st.sampled_from([0.5, 1.0, 3.0])))}
        if draw(st.booleans()):
            entry["mask"] = _random(next(seeds), distribution="bernoulli", p=draw(st.sampled_from([0.5, 0.8])))
        if draw(st.booleans()) and (first or stateful):
            entry["initial_state"] = {name: _random(next(seeds), shape=list(state.shape))
                                      for name, state in spec.states(config, batch).items()}
        return entry

    if stateful and draw(st.booleans()):
        entries = [call_entry(k == 0) for k in range(draw(st.integers(2, 3)))]
        for entry in entries[1:]:
            if draw(st.booleans()):
                entry["reset_states"] = True
        doc["calls"] = entries
    else:
        doc.update(call_entry(True))
    return doc


@dataclass
class Disagreement:
    document: dict
    result: CaseResult
    saved: Path | None = None


@dataclass
class FuzzReport:
    ran: int = 0
    dimensions: dict[str, Counter] = field(default_factory=dict)
    disagreements: list[Disagreement] = field(default_factory=list)
    skipped_known: Counter = field(default_factory=Counter)


class _Found(Exception):
    pass


def fuzz(examples: int, seed: int = 0, save: Path | None = None, flavor: str = "keras3",
         layer_names: tuple[str, ...] | None = None, system=None) -> FuzzReport:
    """Run `examples` cases on Keras (configurations with a documented defect are drawn but not run);
    after a disagreement (shrunk), continue with a new seed."""
    report = FuzzReport()
    last_failure: list[Disagreement] = []
    attempt = 0
    while report.ran < examples and attempt < 20:
        budget = examples - report.ran

        @hypothesis_seed(seed * 1000 + attempt)
        @settings(max_examples=budget, database=None, deadline=None, derandomize=False, print_blob=False,
                  suppress_health_check=list(HealthCheck), phases=[Phase.generate, Phase.shrink])
        @given(case_documents(flavor, layer_names))
        def check(doc):
            shrinking = bool(last_failure)
            if report.ran >= examples and not shrinking:  # hypothesis may call more often than max_examples
                return
            defect = known_defect(doc, system.name if system is not None else "tensorflow")
            if defect is not None:
                report.skipped_known[f"{defect.reason} ({defect.case})"] += 1
                return
            case = case_from_document(doc, Path("<fuzz>"))
            if not shrinking:
                report.ran += 1
            for dim, values in {"layer": {case.layer}, **classify(case, flavor)}.items():
                report.dimensions.setdefault(dim, Counter()).update(values)
            result = run_case(case, flavor if system is None else None, system=system)
            if not result.ok:
                last_failure[:] = [Disagreement(doc, result)]
                raise _Found(result.message)

        try:
            check()  # budget exhausted without a disagreement; top up what known-defect skips left out
        except _Found:
            found = last_failure[0]  # hypothesis replays the minimal example last
            if save is not None:
                found.saved = write_case(found.document, save, len(report.disagreements) + 1)
            report.disagreements.append(found)
        attempt += 1
    return report


def write_case(doc: dict, folder: Path, number: int) -> Path:
    """A ready-to-commit case file for a (shrunk) disagreement."""
    folder.mkdir(parents=True, exist_ok=True)
    name = f"fuzz-disagreement-{number}"
    path = folder / f"{name}.yaml"
    body = {"name": name, "description": "Found by harness fuzz and shrunk by hypothesis; describe the defect here.",
            "tags": ["fuzz"], **{k: v for k, v in doc.items() if k != "name"}}
    path.write_text(yaml.safe_dump(body, sort_keys=False, default_flow_style=None, width=110))
    return path
