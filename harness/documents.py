"""Read a case file as plain data, safely: YAML or JSON, never constructing Python objects.

Besides safe loading this refuses duplicate keys (PyYAML and json silently keep the last one, hiding
typos), reads `1e-5` as a number (YAML 1.1 would read a string), and can point at the line of a field.
"""

from __future__ import annotations

import errno
import json
import re
import stat
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from harness import limits
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
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base`: its keys may be overridden here
                continue
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, (str, int, float, bool, type(None))):  # _scan_yaml refuses these first
                raise yaml.constructor.ConstructorError(None, None, "a mapping key must be a plain name",
                                                        key_node.start_mark)
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
    """Parse one case file; raises InvalidCase naming the file and line on any syntax problem, and on a
    file beyond the limits of harness/limits.py (size, nesting depth, values after alias expansion,
    aliases), which are checked before the file is turned into Python objects."""
    shown = str(path)
    text = _read_text(path, shown)
    if path.suffix == ".json":
        try:
            doc = json.loads(text, object_pairs_hook=_json_pairs)
        except json.JSONDecodeError as exc:
            raise InvalidCase(shown, [Problem("", f"JSON syntax error: {exc.msg} (column {exc.colno})",
                                              line=exc.lineno)]) from None
        except RecursionError:  # the C scanner recurses per nesting level
            raise InvalidCase(shown, [limits.exceeded("depth", "", "nested too deeply", "more than the parser can nest")]) from None
        except ValueError as exc:  # duplicate keys, integers of more than 4300 digits
            raise InvalidCase(shown, [Problem("", f"JSON error: {exc}")]) from None
        _check_plain_data(doc, shown)
        return doc
    try:
        _scan_yaml(text, shown)
        doc = yaml.load(text, Loader=_CaseYamlLoader)  # noqa: S506 - a SafeLoader subclass
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
    except (ValueError, OverflowError) as exc:  # a scalar its resolver accepts but cannot convert (a date out of range)
        raise InvalidCase(shown, [Problem("", f"YAML error: a value cannot be read: {str(exc).split(';')[0]}")]) from None
    _check_plain_data(doc, shown)
    return doc


def _read_text(path: Path, shown: str) -> str:
    """The file's text, read only if it is a regular file within the size limit (a FIFO or /dev/zero
    named like a case file is never read)."""
    limit = int(limits.get("file_bytes"))
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise InvalidCase(shown, [Problem("", "not a regular file", expected="a .yaml, .yml or .json file",
                                              found="a folder" if stat.S_ISDIR(info.st_mode) else "a device, pipe or socket")])
        if info.st_size > limit:
            raise InvalidCase(shown, [limits.exceeded("file_bytes", "", "file too large", f"{info.st_size} bytes")])
        with path.open("rb") as handle:
            data = handle.read(limit + 1)  # the file may grow between stat and read
    except OSError as exc:
        raise InvalidCase(shown, [Problem("", f"cannot read the file: {_os_error(exc)}")]) from None
    if len(data) > limit:
        raise InvalidCase(shown, [limits.exceeded("file_bytes", "", "file too large", f"more than {limit} bytes")])
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidCase(shown, [Problem("", "not UTF-8 text", found=f"byte 0x{data[exc.start]:02x} at offset {exc.start}",
                                          hint="case files are UTF-8 YAML or JSON")]) from None


def _os_error(exc: OSError) -> str:
    """An OSError in words, without the path (the message already names the file)."""
    if exc.errno == errno.ELOOP:
        return "a symbolic link loop"
    if exc.errno == errno.ENOENT and exc.filename and Path(exc.filename).is_symlink():
        return "a symbolic link to a missing file"
    return exc.strerror or str(exc)


_COLLECTION_START = (yaml.SequenceStartEvent, yaml.MappingStartEvent)
_COLLECTION_END = (yaml.SequenceEndEvent, yaml.MappingEndEvent)


def _scan_yaml(text: str, shown: str) -> None:
    """Walk the YAML event stream (no Python objects are built yet) and refuse, before loading: nesting
    beyond `depth`, more than `aliases` aliases, more than `nodes` values once aliases are expanded (a
    "billion laughs" file of a few hundred bytes), an alias inside its own anchor (a cycle), and a list or
    mapping used as a mapping key."""
    max_depth, max_nodes, max_aliases = limits.get("depth"), limits.get("nodes"), limits.get("aliases")
    stack: list[list] = []  # per open collection: [is_mapping, children so far, expanded size, anchor]
    sizes: dict[str, tuple[int, bool]] = {}  # anchor -> (expanded size, is a collection)
    open_anchors: set[str] = set()
    expanded = aliases = 0

    def line(event) -> int | None:
        return event.start_mark.line + 1 if event.start_mark else None

    def in_key_position() -> bool:
        return bool(stack) and stack[-1][0] and stack[-1][1] % 2 == 0

    def complex_key(event):
        return InvalidCase(shown, [Problem("", "a list or mapping used as a mapping key",
                                           expected="plain names as keys (config, units, ...)",
                                           hint="remove the `? ` complex key", line=line(event))])

    for event in yaml.parse(text, Loader=_SafeBase):
        if isinstance(event, yaml.ScalarEvent):
            size = 1
            if event.anchor:
                sizes[event.anchor] = (1, False)
        elif isinstance(event, yaml.AliasEvent):
            aliases += 1
            if aliases > max_aliases:
                raise InvalidCase(shown, [limits.exceeded("aliases", "", "too many YAML aliases",
                                                          f"more than {int(max_aliases)}")])
            if event.anchor in open_anchors:
                raise InvalidCase(shown, [Problem("", f"the alias *{event.anchor} refers to a collection that contains it "
                                                  "(a cycle)", hint="case files hold finite data: repeat the values instead",
                                                  line=line(event))])
            size, is_collection = sizes.get(event.anchor, (1, False))  # an unknown anchor is the loader's error
            if is_collection and in_key_position():
                raise complex_key(event)
        elif isinstance(event, _COLLECTION_START):
            if in_key_position():
                raise complex_key(event)
            if stack:
                stack[-1][1] += 1
            stack.append([isinstance(event, yaml.MappingStartEvent), 0, 1, event.anchor])
            if event.anchor:
                open_anchors.add(event.anchor)
            if len(stack) > max_depth:
                raise InvalidCase(shown, [limits.exceeded("depth", "", "nested too deeply",
                                                          f"more than {int(max_depth)} levels at line {line(event)}")])
            expanded += 1
            continue
        elif isinstance(event, _COLLECTION_END):
            _, _, size, anchor = stack.pop()
            if anchor:
                open_anchors.discard(anchor)
                sizes[anchor] = (size, True)
            if stack:
                stack[-1][2] += size
            continue
        else:
            continue
        if stack:
            stack[-1][1] += 1
            stack[-1][2] += size
        expanded += size
        if expanded > max_nodes:
            raise InvalidCase(shown, [limits.exceeded("nodes", "", "too many values (aliases expanded)",
                                                      f"more than {int(max_nodes)} by line {line(event)}")])


_PLAIN = (str, int, float, bool, type(None))
_FLOAT_MAX = sys.float_info.max


def _check_plain_data(doc: Any, shown: str) -> None:
    """Without recursion: only mappings with string keys, lists, strings, numbers, booleans and null
    (YAML's timestamps, binary and sets are not case data), integers that fit a float, and the
    depth and value limits (JSON files reach here unchecked)."""
    max_depth, max_nodes = limits.get("depth"), limits.get("nodes")
    stack: list[tuple[Any, int, str]] = [(doc, 1, "")]
    count = 0
    while stack:
        value, depth, where = stack.pop()
        count += 1
        if count > max_nodes:
            raise InvalidCase(shown, [limits.exceeded("nodes", "", "too many values", f"more than {int(max_nodes)}")])
        if isinstance(value, (dict, list)) and depth > max_depth:
            shown_where = where if len(where) <= 60 else where[:57] + "..."
            raise InvalidCase(shown, [limits.exceeded("depth", shown_where, "nested too deeply",
                                                      f"more than {int(max_depth)} levels")])
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise InvalidCase(shown, [Problem(where, "a mapping key that is not a name",
                                                      expected="a string key", found=repr(key)[:80])])
                stack.append((item, depth + 1, f"{where}.{key}" if where else key))
        elif isinstance(value, list):
            stack.extend((item, depth + 1, f"{where}[{n}]") for n, item in enumerate(value))
        elif not isinstance(value, _PLAIN):
            raise InvalidCase(shown, [Problem(where, f"a YAML {type(value).__name__} value is not case data",
                                              expected="numbers, strings, booleans, null, lists and mappings",
                                              found=repr(value)[:80], hint="write it as a plain number or string")])
        elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > _FLOAT_MAX:
            raise InvalidCase(shown, [Problem(where, "integer too large", expected="a number within float64's range",
                                              found=f"an integer of {len(str(abs(value)))} digits")])


def _refuse_tag(shown: str, problem: str, line: int | None):
    raise InvalidCase(shown, [Problem(
        "", "refused a YAML tag that would construct a Python object: case files are data, nothing in them is executed",
        found=problem.replace("could not determine a constructor for the tag ", "tag "),
        hint="remove the tag; write plain lists and numbers",
        line=line,
    )]) from None


_LINES_UP_TO_BYTES = 256 * 1024


def field_line(path: Path, field: tuple) -> int | None:
    """Best-effort 1-based line of a field path such as ("weights", "kernel", 1); None if not found."""
    try:
        info = path.stat()
    except OSError:
        return None
    if info.st_size > _LINES_UP_TO_BYTES:
        return None  # composing a large file for a line number would cost seconds
    node = _composed(str(path), info.st_mtime_ns, info.st_size)
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


@lru_cache(maxsize=4)
def _composed(path: str, mtime_ns: int, size: int):
    """The file's node tree, composed once for all of its problems (the file parsed already, within the
    limits); keyed by modification time and size too, so an edited file is composed again."""
    try:
        text = Path(path).read_bytes()[: int(limits.get("file_bytes")) + 1].decode("utf-8")
        return yaml.compose(text, Loader=_SafeBase)
    except Exception:  # noqa: BLE001 - only decoration: no line number
        return None
