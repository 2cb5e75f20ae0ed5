"""Read a case file as plain data, safely: YAML or JSON, never constructing Python objects.

Besides safe loading this refuses duplicate keys (PyYAML and json silently keep the last one, hiding
typos), reads `1e-5` as a number (YAML 1.1 would read a string), and can point at the line of a field.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from harness.errors import InvalidCase, Problem

CASE_SUFFIXES = (".yaml", ".yml", ".json")


# libyaml's parser when PyYAML was built with it (about 5x faster: case files are read by every pytest
# worker), with the same safe constructor and resolver; the pure-Python SafeLoader otherwise.
_SafeBase = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _CaseYamlLoader(_SafeBase):
    """SafeLoader, plus: duplicate keys are errors, and YAML 1.2 floats (1e-5, 2E3) are numbers."""

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first at line {seen[key].line + 1})", key_node.start_mark
                )
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


_CaseYamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def _json_pairs(pairs):
    result = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def read_document(path: Path) -> Any:
    """Parse one case file; raises InvalidCase naming the file and line on any syntax problem."""
    shown = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidCase(shown, [Problem("", f"cannot read the file: {exc}")]) from None
    if path.suffix == ".json":
        try:
            return json.loads(text, object_pairs_hook=_json_pairs)
        except json.JSONDecodeError as exc:
            raise InvalidCase(shown, [Problem("", f"JSON syntax error: {exc.msg} (column {exc.colno})",
                                              line=exc.lineno)]) from None
        except ValueError as exc:
            raise InvalidCase(shown, [Problem("", f"JSON error: {exc}")]) from None
    try:
        return yaml.load(text, Loader=_CaseYamlLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.constructor.ConstructorError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        problem = str(exc.problem)
        if "could not determine a constructor" in problem:
            return _refuse_tag(shown, problem, line)
        raise InvalidCase(shown, [Problem("", f"YAML error: {problem}", line=line)]) from None
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        what = exc.problem or str(exc)
        if exc.context:
            what = f"{what} ({exc.context})"
        raise InvalidCase(shown, [Problem("", f"YAML syntax error: {what}", line=line)]) from None
    except yaml.YAMLError as exc:
        raise InvalidCase(shown, [Problem("", f"YAML error: {exc}")]) from None


def _refuse_tag(shown: str, problem: str, line: int | None):
    raise InvalidCase(shown, [Problem(
        "", "refused a YAML tag that would construct a Python object: case files are data, nothing in them is executed",
        found=problem.replace("could not determine a constructor for the tag ", "tag "),
        hint="remove the tag; write plain lists and numbers",
        line=line,
    )]) from None


def field_line(path: Path, field: tuple) -> int | None:
    """Best-effort 1-based line of a field path such as ("weights", "kernel", 1); None if not found."""
    try:
        node = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except Exception:  # a file that reached field checks parsed already; this is only decoration
        return None
    for key in field:
        if isinstance(node, yaml.MappingNode):
            match = [v for k, v in node.value if getattr(k, "value", None) == str(key)]
            if not match:
                break
            node = match[0]
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            break
    return node.start_mark.line + 1 if node is not None else None
