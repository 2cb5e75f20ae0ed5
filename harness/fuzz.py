"""`harness fuzz`: random valid cases across the configuration space of every layer (each layer spec
draws its own config), each run on a target and the reference; a disagreement is shrunk by hypothesis to
a minimal case and written as a case file.

Cases are generated as case-file documents and go through the real loader, so what is saved is
exactly what ran. Arrays are `random:` specs (seeds), so saved files stay small; `literal=True` saves
them as the numbers they expand to, for an upstream report.

Only a case the target really ran counts toward the campaign's examples: a draw with a documented defect,
or one the target cannot express (its `supports`, e.g. float64 on TFLite), is counted apart with its
reason. The strategy takes the target's constraints (dtypes, several calls, its Keras flavor) so that it
rarely draws those at all; on the default target nothing is constrained, so a seed draws the same cases.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from harness import layers, targets
from harness.activations import supported_names
from harness.coverage import classify
from harness.errors import InvalidCase
from harness.known_defects import known_defect
from harness.loader import case_from_document
from harness.runner import CaseResult, run_case

DTYPE_ORDER = ("float32", "float64", "float16", "bfloat16", "mixed_float16", "mixed_bfloat16")  # shrinks to float32
BOUNDED = ("tanh", "sigmoid", "softsign", "hard_tanh", "hard_sigmoid", "sparse_sigmoid")
# Numeric edges drawn (coverage.py's names), one case in four nominally (about one in six drawn); None first, so shrinking
# drops the edge. NaN, inf and huge weights are left to corpus cases: each meets documented target defects.
NUMERIC_EDGES = (None,) * 12 + ("zero-input", "zero-weights", "tiny-weights", "saturating-input")
GRADIENT_ODDS = (False, False, True)  # one case in three nominally, one in five to seven drawn (hypothesis favours
# the first choice at times); shrinks to none
# coverage.py's dimensions that a fuzzer cannot draw (hand values, a corpus file's tags): not in the table
UNDRAWN_DIMENSIONS = ("expected values", "known upstream defect")
MAX_ATTEMPTS = 20  # hypothesis runs (a new seed each) to reach the examples; each ends at a disagreement
PER_STRUCTURE = 10  # examples per drawn structure (bench/throughput.py: the rate against the variety of structures)
VALUE_SEED_STEP = 1_000_003  # a variant's seeds: the drawn ones moved by this times the variant's number


@dataclass(frozen=True)
class Constraints:
    """What a target can express, as the strategy needs it: drawing only these keeps a campaign on the
    cases the target runs. The defaults (the default target's) constrain nothing."""

    flavor: str = "keras3"  # whose activations exist (Keras 2 lacks several)
    dtypes: tuple[str, ...] = DTYPE_ORDER
    several_calls: bool = True  # stateful cases of several calls (converted models cannot reset states)
    later_initial_state: bool = True  # an initial_state on a later call that does not reset (Keras 2 ignores it)
    execution: bool = True  # `execution:` names TensorFlow's modes; other targets run their own


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


def _count(lowest: int, highest: int):
    """A whole number drawn uniformly (st.integers draws its lower bound about 40% of the time), shrinking
    toward the lowest."""
    return st.sampled_from(range(lowest, highest + 1))


@st.composite
def case_documents(draw, constraints: Constraints | None = None, layer_names: tuple[str, ...] | None = None) -> dict:
    """A valid case document anywhere in the configuration space of every layer (LSTM first: shrinks to it)."""
    constraints = constraints or Constraints()
    activations = sorted(supported_names(constraints.flavor) - {"linear"})
    layer = draw(st.sampled_from(layer_names or tuple(layers.SPECS)))
    spec = layers.get(layer)
    units = draw(_count(1, 6))
    features = draw(_count(1, 5))
    batch = draw(_count(1, 4))
    steps = draw(st.sampled_from([1, 2, 3, 4, 6, 8, 30, 100]))  # sampled_from shrinks toward 1
    stateful = draw(st.booleans())
    config = spec.fuzz_config(draw, st, activations, units=units, steps=steps, stateful=stateful)
    bounded = all(name in BOUNDED for name in spec.activations(config).values())
    # An unbounded activation (linear, elu, silu... as a gate too, now that every activation is as likely)
    # with larger weights makes states grow without bound within a few steps: an ill-conditioned case whose
    # float64 reference and Keras part ways (or overflow) for no defect. Small weights keep it well posed.
    scale = draw(st.sampled_from([0.1, 0.5, 1.0] if bounded else [0.1]))
    seeds = iter(range(draw(_count(0, 10_000)) * 16, 10**9))
    edge = draw(st.sampled_from(NUMERIC_EDGES))
    if edge == "saturating-input" and not bounded:
        edge = None  # |x| ~ 50 through an unbounded activation overflows: only bounded ones saturate
    weight_scale = {"zero-weights": 0.0, "tiny-weights": 1e-7}.get(edge, scale)
    doc = {"name": "fuzz", **({"layer": layer} if layer != layers.DEFAULT_LAYER else {}), "config": config,
           "dtype": draw(st.sampled_from(constraints.dtypes)),
           "weights": _nested({name: _random(next(seeds), scale=weight_scale)
                               for name in spec.weights(config, features)})}
    if constraints.execution:
        execution = draw(st.sampled_from([None, "all"]))  # None: the run's default modes; shrinks toward it
        if execution:
            doc["execution"] = execution

    def call_entry(first: bool) -> dict:
        input_scale = draw(st.sampled_from([0.5, 1.0, 3.0]))
        input_scale = {"zero-input": 0.0, "saturating-input": 60.0}.get(edge, input_scale)
        entry = {"input": _random(next(seeds), shape=[batch, steps, features], scale=input_scale)}
        if draw(st.booleans()):
            entry["mask"] = _random(next(seeds), distribution="bernoulli", p=draw(st.sampled_from([0.5, 0.8])))
        if draw(st.booleans()) and (first or (stateful and constraints.later_initial_state)):
            entry["initial_state"] = {name: _random(next(seeds), shape=list(state.shape))
                                      for name, state in spec.states(config, batch).items()}
        return entry

    if stateful and constraints.several_calls and draw(st.booleans()):
        entries = [call_entry(k == 0) for k in range(draw(_count(2, 3)))]
        for entry in entries[1:]:
            if draw(st.booleans()):
                entry["reset_states"] = True
        doc["calls"] = entries
    else:
        doc.update(call_entry(True))
    if draw(st.sampled_from(GRADIENT_ODDS)):
        doc["gradients"] = _gradients(draw, spec, config, features, doc.get("calls", [doc]), seeds)
    return doc


def _gradients(draw, spec, config: dict, features: int, calls: list[dict], seeds) -> dict:
    """A `gradients:` field (harness/gradients.py): cotangents and `wrt` optional, each drawn or left out."""
    request: dict = {}
    if draw(st.booleans()):
        request["cotangents"] = {name: _random(next(seeds), scale=draw(st.sampled_from([1.0, 0.1])))
                                 for name in spec.outputs(config)}
    if draw(st.booleans()):
        possible = [*spec.weights(config, features), "input"]
        if all("initial_state" in call for call in calls):
            possible.append("initial_state")
        wanted = [name for name in possible if draw(st.booleans())]
        request["wrt"] = wanted or [possible[0]]
    return request


def constraints_for(system, layer_names: tuple[str, ...] | None = None) -> Constraints:
    """The target's constraints, found by asking its own `supports` about small probe cases (one per layer
    and dtype, a stateful case of two calls, a later call's initial state): the adapter stays the one
    place that says what it cannot express, and whatever a probe misses is refused (and counted) later."""
    names = [name for name in (layer_names or tuple(layers.SPECS)) if not hasattr(layers.get(name), "directions")]
    names = names or [layers.DEFAULT_LAYER]  # a wrapper alone: probe the default layer

    def expressible(dtype: str = "float32", calls: int = 1, later_state: bool = False) -> bool:
        return any(system.supports(probe) is None for probe in _probes(names, dtype, calls, later_state))

    return Constraints(flavor=system.semantics(),
                       dtypes=tuple(dtype for dtype in DTYPE_ORDER if expressible(dtype)) or DTYPE_ORDER,
                       several_calls=expressible(calls=2),
                       later_initial_state=expressible(calls=2, later_state=True),
                       execution=system.name == targets.DEFAULT_TARGET)


def _probes(names: list[str], dtype: str, calls: int, later_state: bool):
    for name in names:
        spec = layers.get(name)
        config = {"units": 1, **({"stateful": True} if calls > 1 else {})}
        entries = [{"input": [[[0.5]]]} for _ in range(calls)]
        if later_state:
            entries[-1]["initial_state"] = {state: [[0.0]] for state in spec.states(config, 1)}
        doc = {"name": "probe", "layer": name, "config": config, "dtype": dtype,
               "weights": _nested({weight: _random(1, shape=list(shape.shape))
                                   for weight, shape in spec.weights(config, 1).items()}),
               **({"calls": entries} if calls > 1 else entries[0])}
        try:
            yield case_from_document(doc, Path("<probe>"))
        except InvalidCase:
            continue


@dataclass
class Disagreement:
    document: dict
    result: CaseResult
    saved: Path | None = None


@dataclass
class FuzzReport:
    wanted: int = 0
    target: str = targets.DEFAULT_TARGET
    ran: int = 0  # cases the target ran and compared: what `examples` asks for
    drawn: int = 0  # every case drawn (not counting hypothesis's shrinking replays)
    attempts: int = 0
    per_structure: int = 1  # examples run per drawn structure (new values each)
    dimensions: dict[str, Counter] = field(default_factory=dict)
    disagreements: list[Disagreement] = field(default_factory=list)
    skipped_known: Counter = field(default_factory=Counter)  # reason (case) -> draws
    not_expressible: Counter = field(default_factory=Counter)  # why the target cannot run it -> draws

    @property
    def short(self) -> bool:
        """The campaign ended (MAX_ATTEMPTS) before `wanted` examples ran."""
        return self.ran < self.wanted


class _Found(Exception):
    pass


def fuzz(examples: int, seed: int = 0, save: Path | None = None, flavor: str | None = None,
         layer_names: tuple[str, ...] | None = None, system=None, literal: bool = False,
         per_structure: int = PER_STRUCTURE) -> FuzzReport:
    """Run cases until `examples` of them really ran on the target (default: Keras on TensorFlow); draws
    with a documented defect or that the target cannot express are counted apart, not run. Each drawn
    structure runs `per_structure` times with new values (`revalued`), which the build cache runs through
    one built layer and its traces. After a disagreement (shrunk, saved), continue with a new seed; at most
    MAX_ATTEMPTS hypothesis runs."""
    system = system or targets.get()
    constraints = constraints_for(system, layer_names)
    if flavor is not None:
        constraints = Constraints(flavor, constraints.dtypes, constraints.several_calls,
                                  constraints.later_initial_state, constraints.execution)
    report = FuzzReport(wanted=examples, target=system.name, per_structure=per_structure)
    while report.ran < examples and report.attempts < MAX_ATTEMPTS:
        found: list[Disagreement] = []  # this attempt's disagreement; once set, calls are shrinking replays

        @hypothesis_seed(seed * 1000 + report.attempts)
        @settings(max_examples=-(-(examples - report.ran) // per_structure), database=None, deadline=None, derandomize=False,
                  print_blob=False, suppress_health_check=list(HealthCheck), phases=[Phase.generate, Phase.shrink])
        @given(case_documents(constraints, layer_names))
        def check(drawn_doc):
            for variant in range(per_structure):  # one structure, new values: through the same built layer
                if report.ran >= examples and not found:  # hypothesis may call more often than max_examples
                    return
                if not one_example(revalued(drawn_doc, variant)):
                    return  # refused: its other values would be too (counted once)

        def one_example(doc) -> bool:
            """Run one document; False if it was not run (a known defect, or the target cannot express it)."""
            shrinking = bool(found)
            if not shrinking:
                report.drawn += 1
            defect = known_defect(doc, system.name)
            if defect is not None:
                if not shrinking:
                    report.skipped_known[f"{defect.reason} ({defect.case})"] += 1
                return False
            case = case_from_document(doc, Path("<fuzz>"))
            why_not = system.supports(case)  # what the runner would skip: counted apart, never as ran
            if why_not:
                if not shrinking:
                    report.not_expressible[why_not] += 1
                return False
            result = run_case(case, constraints.flavor, system=system)
            if not _compared(result):  # the reference or the target refused it after all (reason kept)
                if not shrinking:
                    report.not_expressible[f"{result.outcome}: {result.message}"] += 1
                return False
            if not shrinking:
                report.ran += 1
                for dim, values in _dimensions(doc, case, result, constraints.flavor).items():
                    report.dimensions.setdefault(dim, Counter()).update(values)
            if not result.ok:
                found[:] = [Disagreement(doc, result)]
                raise _Found(result.message)
            return True

        try:
            check()  # budget exhausted without a disagreement; top up what was drawn but not run
        except _Found:
            disagreement = found[0]  # hypothesis replays the minimal example last
            if save is not None:
                disagreement.saved = write_case(disagreement.document, save, len(report.disagreements) + 1, literal)
            report.disagreements.append(disagreement)
        report.attempts += 1
    return report


def revalued(doc: dict, variant: int) -> dict:
    """The document with new values and the same structure: every `random:` array's seed moved by
    `variant` steps (variant 0: the document itself). Shapes, scales, distributions, which calls have a
    mask or an initial state, the config and dtype are kept, so the target's built layer and traces serve."""
    if variant == 0:
        return doc

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("random"), dict) and "seed" in node["random"]:
                return {**node, "random": {**node["random"], "seed": node["random"]["seed"] + variant * VALUE_SEED_STEP}}
            return {key: walk(value) for key, value in node.items()}
        if isinstance(node, list):
            return [walk(value) for value in node]
        return node

    return walk(doc)


def _compared(result: CaseResult) -> bool:
    """The target ran the case and something was compared: not a case skipped or refused before running."""
    return bool(result.diffs) or result.outcome not in ("skipped", "unsupported")


def _dimensions(doc: dict, case, result: CaseResult, flavor: str) -> dict[str, set[str]]:
    """The values this example covers: coverage.py's dimensions (those a fuzzer draws), the modes the target
    really ran, and whether gradients were checked."""
    values = {"layer": {case.layer}, **classify(case, flavor)}
    for name in UNDRAWN_DIMENSIONS:
        values.pop(name, None)
    values["execution mode"] = set(result.modes)
    if "gradients" not in doc:
        values["gradients"] = {"forward only"}
    elif any(diff.output.startswith("grad.") for _, diff in result.diffs):
        values["gradients"] = {"checked"}
    else:
        values["gradients"] = {"drawn, not checked by the target"}
    return values


def literal_document(doc: dict) -> dict:
    """The document with every `random:` array replaced by the numbers it expands to (the loader's own
    expansion, so the values are exactly those that ran): what an upstream report can paste as is.
    Cotangents stay `random:` in a case of several calls (literal cotangents need a single call)."""
    case = case_from_document(doc, Path("<fuzz>"))
    calls = []
    for entry, call in zip(doc.get("calls", [doc]), case.calls, strict=True):
        literal = {"input": call.input.tolist()}
        if call.mask is not None:
            literal["mask"] = call.mask.tolist()
        if call.initial_state is not None:
            literal["initial_state"] = {name: values.tolist() for name, values in call.initial_state.items()}
        calls.append({**literal, **{k: v for k, v in entry.items() if k == "reset_states"}})
    out = {}
    for key, value in doc.items():
        if key == "weights":
            value = _nested({name: values.tolist() for name, values in case.weights.items()})
        elif key == "calls":
            value = calls
        elif key in calls[0]:
            value = calls[0][key]
        elif key == "gradients" and "cotangents" in value and len(case.calls) == 1:
            value = {**value, "cotangents": {name: values.tolist()
                                             for name, values in case.gradients.cotangents[0].items()}}
        out[key] = value
    return out


def write_case(doc: dict, folder: Path, number: int, literal: bool = False) -> Path:
    """A ready-to-commit case file for a (shrunk) disagreement; `literal`: arrays as numbers."""
    folder.mkdir(parents=True, exist_ok=True)
    name = f"fuzz-disagreement-{number}"
    path = folder / f"{name}.yaml"
    body = literal_document(doc) if literal else doc
    body = {"name": name, "description": "Found by harness fuzz and shrunk by hypothesis; describe the defect here.",
            "tags": ["fuzz"], **{k: v for k, v in body.items() if k != "name"}}
    path.write_text(yaml.safe_dump(body, sort_keys=False, default_flow_style=None, width=110))
    return path


def summary(report: FuzzReport, seconds: float, seed: int) -> list[str]:
    """The campaign's first lines: what ran, whether it fell short, and every draw not run, grouped by reason."""
    on = f" on {report.target}" if report.target != targets.DEFAULT_TARGET else ""
    per = f", {report.per_structure} per structure" if report.per_structure > 1 else ""
    lines = [f"{report.ran} examples ran{on} in {seconds:.0f}s (seed {seed}{per}), {len(report.disagreements)} disagreements"]
    if report.short:
        lines.append(f"  only {report.ran} of the {report.wanted} examples asked for ran: {report.drawn} cases drawn in "
                     f"{report.attempts} hypothesis runs (at most {MAX_ATTEMPTS}); the others were not run (below)")
    for reason, count in report.skipped_known.most_common():
        lines.append(f"  drawn, not run: known defect ({count}x): {reason}")
    for reason, count in report.not_expressible.most_common():
        lines.append(f"  drawn, not run: {report.target} cannot express it ({count}x): {reason}")
    return lines
