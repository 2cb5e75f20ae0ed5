"""Load a case file: parse safely, validate against the published JSON Schema, then check shapes.

Every problem is reported with the file, the field path, what was expected (shapes derived from the
config), what was found, and a hint. Structure is checked by the schema (assembled from the layer
specs, published as harness/case.schema.json), so the schema and the loader cannot drift; shapes, which
a schema cannot express, come from the layer spec and are checked here.
"""

from __future__ import annotations

import difflib
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np

from harness import gradients, layers, limits, modes, random_arrays, schema
from harness.case import Call, Case
from harness.documents import field_line, read_document
from harness.errors import InvalidCase, Problem
from harness.versions import check_specifier

_NONFINITE = {"nan": np.nan, "inf": np.inf, "+inf": np.inf, "-inf": -np.inf}


@lru_cache(maxsize=1)
def case_schema() -> dict:
    """The draft-07 JSON Schema of the case format, assembled from the layer specs (harness/schema.py);
    the published harness/case.schema.json is the same schema written out."""
    return schema.assemble()


def field_name(path) -> str:
    """("weights", "kernel", 1) -> "weights.kernel[1]"."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _shape_text(shape) -> str:
    return "scalar" if shape == () else str(tuple(shape))


def _suggest(word: str, choices) -> str | None:
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=3, cutoff=0.6)
    return f"did you mean {' or '.join(repr(c) for c in close)}?" if close else None


# ---------------------------------------------------------------- schema stage

# "integer" means an integer as written: JSON Schema's own rule also accepts 1.0, which would reach Keras as
# `units=1.0` and fail there.
_StrictValidator = jsonschema.validators.extend(jsonschema.Draft7Validator, type_checker=(
    jsonschema.Draft7Validator.TYPE_CHECKER.redefine(
        "integer", lambda checker, value: isinstance(value, int) and not isinstance(value, bool))))


# Arrays with more entries than this are checked by _large_arrays, not by jsonschema (about 100 us per number).
_FAST_CHECK_ENTRIES = 1000
_STAND_IN = {"numbers": [0.0], "mask": [[True]]}


def _large_arrays(doc: dict) -> tuple[dict, list[Problem]]:
    """Literal arrays of more than _FAST_CHECK_ENTRIES numbers are checked here, in one pass, and replaced by a
    small stand-in for the schema; the same problem ("not a number") is reported for a bad entry."""
    problems: list[Problem] = []

    def check(value, path, kind):
        if not isinstance(value, list):
            return value
        leaves, stack, bad = 0, [(value, path)], None
        while stack and leaves <= _FAST_CHECK_ENTRIES:
            item, where = stack.pop()
            if isinstance(item, list):
                stack.extend((v, where + [n]) for n, v in enumerate(item))
            else:
                leaves += 1
        if leaves <= _FAST_CHECK_ENTRIES:
            return value  # small: the schema checks it, with its usual messages
        stack = [(value, path)]
        while stack:
            item, where = stack.pop()
            if isinstance(item, list):
                stack.extend((v, where + [n]) for n, v in reversed(list(enumerate(item))))
            elif not _fast_leaf_ok(item, kind):
                bad = (item, where)
                break
        if bad:
            expected = ("true, false, 0 or 1" if kind == "mask" else "a number, or one of 'nan', 'inf', '-inf'")
            problems.append(Problem(field_name(bad[1]), "not a boolean" if kind == "mask" else "not a number",
                                    expected=expected, found=repr(bad[0])[:80]))
        return _STAND_IN[kind]

    out = dict(doc)
    for key in ("input", "mask", "initial_state", "weights", "expected"):
        out[key] = _replace(doc.get(key), [key], check) if key in doc else None
    out = {k: v for k, v in out.items() if k in doc}
    if isinstance(doc.get("calls"), list):
        out["calls"] = [{k: _replace(v, ["calls", n, k], check) for k, v in call.items()} if isinstance(call, dict) else call
                        for n, call in enumerate(doc["calls"])]
    return out, problems


def _replace(value, path, check):
    """Apply `check` to the literal arrays at `path` (an array field, or a mapping of them)."""
    kind = "mask" if path[-1] == "mask" else "numbers"
    if isinstance(value, list):
        return check(value, path, kind)
    if isinstance(value, dict) and "random" not in value:
        return {k: (check(v, path + [k], "numbers") if isinstance(v, list) else v) for k, v in value.items()}
    return value


def _fast_leaf_ok(value, kind) -> bool:
    if kind == "mask":
        return isinstance(value, bool) or (type(value) is int and value in (0, 1))
    if isinstance(value, str):
        return value in _NONFINITE
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _schema_problems(doc: Any) -> list[Problem]:
    schema = case_schema()
    validator = _StrictValidator(schema)
    doc, problems = _large_arrays(doc)
    for count, error in enumerate(validator.iter_errors(doc)):
        if count == limits.MAX_PROBLEMS:  # a file of a million bad numbers is reported by its first few
            problems.append(Problem("", f"more problems not listed (the first {limits.MAX_PROBLEMS} are shown)"))
            break
        problems.extend(p for p in _translate(jsonschema.exceptions.best_match([error]), schema) if p not in problems)
    return sorted(problems, key=lambda p: p.field)  # deterministic, in document-path order


def _translate(error: jsonschema.ValidationError, schema: dict) -> list[Problem]:
    path = list(error.absolute_path)
    where = field_name(path)
    defs = schema["definitions"]
    value = error.instance
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(k for k in value if k not in error.schema.get("properties", {}))
        return [Problem(field_name(path + [k]), "unknown field",
                        expected=f"one of: {', '.join(allowed)}", found=repr(k),
                        hint=_suggest(k, allowed) or "remove it; see harness/case.schema.json for the format")
                for k in extra]
    if error.validator == "required":
        missing = [k for k in error.validator_value if k not in value]
        return [Problem(field_name(path + [k]), "missing required field",
                        hint=f"add `{k}:` under `{where or 'the top level'}`") for k in missing]
    if error.schema is defs["activation"] or (error.validator == "enum" and path[-1:] in (["activation"], ["recurrent_activation"])):
        names = sorted(defs["activation"]["anyOf"][1]["enum"])
        return [Problem(where, "unknown activation", expected="null (linear) or a Keras activation name",
                        found=repr(value), hint=_suggest(value, names) or f"known: {', '.join(names)}")]
    if error.schema is defs["number"]:
        return [Problem(where, "not a number", expected="a number, or one of 'nan', 'inf', '-inf'",
                        found=repr(value))]
    if error.validator == "enum":
        choices = error.validator_value
        return [Problem(where, "value not allowed", expected=f"one of {', '.join(map(repr, choices))}",
                        found=repr(value), hint=_suggest(value, choices))]
    if error.validator == "type":
        return [Problem(where, "wrong type", expected=str(error.validator_value), found=repr(value))]
    return [Problem(where, error.message)]


# ---------------------------------------------------------------- array stage

class _Arrays:
    """Turns literal or generated arrays into numpy, recording problems instead of raising."""

    def __init__(self):
        self.problems: list[Problem] = []

    def numbers(self, raw, path, expected_shape=None, why="") -> np.ndarray | None:
        if isinstance(raw, dict):  # {random: ...}
            spec = raw["random"]
            shape = tuple(spec["shape"]) if "shape" in spec else expected_shape
            if shape is None:
                self.problems.append(Problem(field_name(path + ["random"]), "a generated array needs a shape here",
                                             expected="shape: [batch, timesteps, features]",
                                             hint="add `shape: [1, 5, 2]` (for example) under `random:`"))
                return None
            if spec.get("distribution") == "bernoulli":
                self.problems.append(Problem(field_name(path + ["random", "distribution"]),
                                             "bernoulli draws booleans; it is only for masks",
                                             expected="normal or uniform", found="'bernoulli'"))
                return None
            if not self.within_limits(path, shape):
                return None
            array = random_arrays.generate(spec, shape)
        else:
            array = self._literal(raw, path)
            if array is None or not self.within_limits(path, array.shape):
                return None
        return self.check_shape(array, path, expected_shape, why)

    def within_limits(self, path, shape) -> bool:
        """Checked before an array is generated: its element count (harness/limits.py)."""
        problem = limits.array_problem(field_name(path), shape)
        if problem:
            self.problems.append(problem)
        return problem is None

    def mask(self, raw, path, expected_shape, why) -> np.ndarray | None:
        if isinstance(raw, dict):
            spec = raw["random"]
            if spec.get("distribution", "normal") != "bernoulli":
                self.problems.append(Problem(field_name(path + ["random", "distribution"]),
                                             "a generated mask must be drawn from a bernoulli distribution",
                                             expected="bernoulli (with p = probability of true)",
                                             found=repr(spec.get("distribution", "normal"))))
                return None
            shape = tuple(spec.get("shape", expected_shape))
            if not self.within_limits(path, shape):
                return None
            array = random_arrays.generate(spec, shape)
        else:
            try:
                array = np.array(raw, dtype=bool)
            except ValueError:
                self.problems.append(Problem(field_name(path), "rows have different lengths",
                                             expected=f"shape {_shape_text(expected_shape)} {why}"))
                return None
        return self.check_shape(array, path, expected_shape, why)

    def _literal(self, raw, path) -> np.ndarray | None:
        def convert(value):
            if isinstance(value, list):
                return [convert(v) for v in value]
            return _NONFINITE.get(value, value) if isinstance(value, str) else value
        try:
            return np.array(convert(raw), dtype=np.float64)
        except (ValueError, TypeError, OverflowError):
            self.problems.append(Problem(field_name(path), "rows have different lengths (a ragged nested list)",
                                         hint="every row of a level must have the same number of entries"))
            return None

    def check_shape(self, array, path, expected_shape, why) -> np.ndarray | None:
        if expected_shape is not None and array.shape != tuple(expected_shape):
            self.problems.append(Problem(field_name(path), "wrong shape",
                                         expected=f"shape {_shape_text(tuple(expected_shape))} {why}".rstrip(),
                                         found=f"shape {_shape_text(array.shape)}"))
            return None
        return array


# ---------------------------------------------------------------- semantic stage

def _problem(where, found) -> Problem:
    """A spec's config-dependent reason placed at a field."""
    return Problem(field_name(where), found.message, expected=found.expected, hint=found.hint)


def _build(doc: dict, path: Path) -> Case:
    arrays = _Arrays()
    problems = arrays.problems
    spec = layers.get(doc.get("layer"))
    config = doc["config"]
    stateful = spec.stateful(config)
    compared = spec.outputs(config)

    if "calls" in doc:
        for key in ("input", "mask", "initial_state", "expected"):
            if key in doc:
                problems.append(Problem(key, "not allowed beside `calls`",
                                        hint=f"move `{key}` into each entry of `calls`"))
        if not stateful:
            problems.append(Problem("calls", "`calls` runs one layer several times and needs a stateful layer",
                                    expected="config.stateful: true", found=f"stateful: {str(stateful).lower()}",
                                    hint="set `stateful: true` under `config`, or use `input:` for a single call"))
        raw_calls = [(["calls", k], entry) for k, entry in enumerate(doc["calls"])]
    elif "input" in doc:
        raw_calls = [([], doc)]
    else:
        raise InvalidCase(str(path), [Problem("input", "missing required field",
                                              hint="give `input:` (one call) or `calls:` (stateful layers)")])

    calls: list[Call] = []
    first_input = None
    for prefix, entry in raw_calls:
        x = arrays.numbers(entry["input"], prefix + ["input"])
        if x is None:
            continue
        if x.ndim != 3 or 0 in x.shape:
            problems.append(Problem(field_name(prefix + ["input"]), "input must be 3-D and non-empty",
                                    expected="shape (batch, timesteps, features), each at least 1",
                                    found=f"shape {_shape_text(x.shape)}",
                                    hint="one sample of one step with two features is [[[1, 0]]]"))
            continue
        batch, steps, features = x.shape
        if first_input is None:
            first_input = x
        elif (batch, features) != (first_input.shape[0], first_input.shape[2]):
            problems.append(Problem(field_name(prefix + ["input"]), "every call of a stateful layer needs the same batch and features",
                                    expected=f"shape ({first_input.shape[0]}, timesteps, {first_input.shape[2]})",
                                    found=f"shape {_shape_text(x.shape)}"))
            continue
        mask = None
        if "mask" in entry:
            mask = arrays.mask(entry["mask"], prefix + ["mask"], (batch, steps), f"(batch={batch}, timesteps={steps} from input)")
        initial_state = None
        if "initial_state" in entry:
            initial_state = _initial_state(arrays, spec, config, batch, entry["initial_state"], prefix)
        expected = {}
        for name, raw in entry.get("expected", {}).items():
            where = prefix + ["expected", name]
            if name not in compared:
                problems.append(_problem(where, spec.not_returned(name, config)))
                continue
            shape = spec.output_spec(name, config, batch, steps)
            expected[name] = arrays.numbers(raw, where, shape.shape, shape.why)
        calls.append(Call(input=x, mask=mask, initial_state=initial_state,
                          reset_states=bool(entry.get("reset_states", False)), expected=expected))

    weights = {}
    given = _flatten_weights(doc["weights"])
    if first_input is not None:
        wanted = spec.weights(config, first_input.shape[2])
        for name, shape in wanted.items():
            if name in given:
                weights[name] = arrays.numbers(given[name], ["weights", *name.split(".")], shape.shape, shape.why)
            else:
                problems.append(_problem(["weights", *name.split(".")], spec.missing_weight(name, config, shape)))
    for name in given:
        absent = spec.absent_weight(name, config)
        if absent is not None:
            problems.append(_problem(["weights", *name.split(".")], absent))

    for where, conditions in (("requires", doc.get("requires", {})),
                              ("known_failure.when", doc.get("known_failure", {}).get("when", {}))):
        for key, spec_text in conditions.items():
            why = check_specifier(spec_text)
            if why:
                problems.append(Problem(f"{where}.{key}", "not a version specifier", found=repr(spec_text),
                                        hint="write e.g. '>=3', '<2.16' or '>=2.12,<2.16'"))

    if not problems:  # every array has its shape: what running the case will cost, before it runs
        width = sum(w.shape[0] for name, w in weights.items() if name.endswith("recurrent_kernel"))
        problems.extend(limits.case_problems([call.input.shape for call in calls], width,
                                             sum(w.size for w in weights.values())))

    request = None
    if "gradients" in doc and calls and weights:
        request = gradients.load(doc["gradients"], spec, config, calls, list(weights), arrays, field_name)

    tolerance = doc.get("tolerance", {})
    if "expected_tolerance" in doc and not any("expected" in entry for _, entry in raw_calls):
        problems.append(Problem("expected_tolerance", "there are no hand values for it to apply to",
                                hint="give `expected:` values, or remove `expected_tolerance`"))
    for name in spec.output_names():
        if name in tolerance and name not in compared:
            problems.append(Problem(f"tolerance.{name}", f"this config does not return `{name}`",
                                    expected=f"per-output tolerances for: {', '.join(compared)}"))

    if problems:
        raise InvalidCase(str(path), problems)
    return Case(
        name=doc.get("name", path.stem), path=path, config=dict(config), dtype=doc.get("dtype", "float32"),
        weights=weights, calls=calls, layer=doc.get("layer", layers.DEFAULT_LAYER),
        description=doc.get("description", ""), tags=tuple(doc.get("tags", ())), tolerance=tolerance,
        expected_tolerance=doc.get("expected_tolerance", {}),
        known_failure=doc.get("known_failure"), requires=doc.get("requires", {}),
        execution=modes.from_document(doc.get("execution")),
        targets=tuple(doc["targets"]) if "targets" in doc else None, gradients=request,
    )


def _initial_state(arrays: _Arrays, spec, config: dict, batch: int, given: dict, prefix: list) -> dict | None:
    """Every state of the layer, each of its shape; a missing or foreign one is a problem."""
    wanted = spec.states(config, batch)
    where = prefix + ["initial_state"]
    for name in given:
        if name not in wanted:
            arrays.problems.append(Problem(field_name(where + [name]), "not a state of this layer",
                                           expected=f"the states {', '.join(wanted)}", found=repr(name)))
    for name in wanted:
        if name not in given:
            arrays.problems.append(Problem(field_name(where + [name]), "missing required field",
                                           hint=f"an initial state gives every state: {', '.join(wanted)}"))
    if set(given) != set(wanted):
        return None
    return {name: arrays.numbers(given[name], where + [name], state.shape, state.why) for name, state in wanted.items()}


def _flatten_weights(raw: dict, prefix: str = "") -> dict:
    """{forward: {kernel: ...}} -> {"forward.kernel": ...}; an array or a `random:` spec is a leaf."""
    flat = {}
    for key, value in raw.items():
        if isinstance(value, dict) and "random" not in value:
            flat.update(_flatten_weights(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _with_lines(error: InvalidCase, path: Path) -> InvalidCase:
    """Attach line numbers to field problems (the parse has already succeeded)."""
    located = []
    for problem in error.problems:
        if problem.field and problem.line is None:
            parts = [int(p) if p.isdigit() else p
                     for p in problem.field.replace("]", "").replace("[", ".").split(".") if p]
            problem = Problem(**{**problem.__dict__, "line": field_line(path, tuple(parts))})
        located.append(problem)
    return InvalidCase(error.path, located)


def case_from_document(doc: Any, path: Path) -> Case:
    """Validate and build a case from parsed data (what a case file holds); `path` names it in errors."""
    if not isinstance(doc, dict):
        raise InvalidCase(str(path), [Problem("", "a case file holds one mapping (name, config, weights, input, ...)",
                                              found=f"a {type(doc).__name__}" if doc is not None else "an empty file")])
    problems = _schema_problems(doc)
    if not problems:
        problems = limits.document_problems(doc)
    if problems:
        raise InvalidCase(str(path), problems)
    return _build(doc, path)


def load_case(path: str | Path) -> Case:
    """Read, validate and build one case; raises InvalidCase listing every problem found."""
    path = Path(path)
    doc = read_document(path)
    try:
        return case_from_document(doc, path)
    except InvalidCase as error:
        raise _with_lines(error, path) from None
