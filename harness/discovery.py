"""Find case files and load a corpus: sorted paths, one entry per file, duplicate names refused.

Nothing a file or a folder holds stops the corpus: an unreadable folder, a symbolic link loop, a missing
path, a file the loader chokes on are each an entry with its own error, and the other files still load.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import traceback
from dataclasses import dataclass
from pathlib import Path

from harness.case import Case
from harness import limits, schema
from harness.documents import CASE_SUFFIXES
from harness.errors import InvalidCase, LoadCrash, Problem
from harness.loader import load_case

DEFAULT_CASE_DIR = Path("cases")


def _path_problem(path: Path, exc: OSError) -> str:
    if exc.errno == errno.ENOENT and path.is_symlink():
        return "a symbolic link to a missing file"
    if exc.errno == errno.ENOENT:
        return "no such file" if path.suffix in CASE_SUFFIXES else "no such file or folder"
    if exc.errno == errno.ELOOP:
        return "a symbolic link loop"
    return f"cannot read: {exc.strerror or exc}"


def walk_case_files(paths: list[str | Path]) -> tuple[list[Path], dict[Path, InvalidCase]]:
    """Case files named directly or found (recursively, following links to folders once) under folders,
    sorted and without repeats; and, per path that cannot be searched or read (a missing path, an
    unreadable folder, a link loop, a dangling link), the error it is reported with."""
    found: set[Path] = set()
    errors: dict[Path, InvalidCase] = {}
    for raw in paths:
        path = Path(raw)
        try:
            info = path.stat()
        except OSError as exc:
            errors[path] = InvalidCase(str(path), [Problem("", _path_problem(path, exc))])
            continue
        if not stat.S_ISDIR(info.st_mode):
            found.add(path)  # a file named directly: an odd suffix or type is reported when it is loaded
            continue
        visited: set[tuple[int, int]] = set()

        def unreadable(exc: OSError) -> None:
            where = Path(exc.filename) if exc.filename else path
            errors[where] = InvalidCase(str(where), [Problem("", f"cannot search this folder: {exc.strerror or exc}",
                                                             hint="its case files were not run: fix its permissions")])

        for folder, dirs, files in os.walk(path, onerror=unreadable, followlinks=True):
            try:
                key = (os.stat(folder).st_dev, os.stat(folder).st_ino)
            except OSError:
                continue
            if key in visited:  # a link back to a folder already searched
                dirs.clear()
                continue
            visited.add(key)
            dirs.sort()
            for name in files:
                if Path(name).suffix in CASE_SUFFIXES and not not_a_case(Path(folder) / name):
                    found.add(Path(folder) / name)  # a dangling link or a loop is reported when it is loaded
    return sorted(found), errors


_REPORT_ROW = frozenset({"case", "outcome"})  # what every entry of `harness run --report-json` has


def not_a_case(path: Path) -> str | None:
    """Why a JSON file found beside case files is not a case, or None. `harness run --report-json` (a list
    of {case, outcome, ...}), `harness compare --report-json` and a recording's manifest.json (objects with
    none of a case's fields) are JSON too and are often written into a case folder; they are not collected.
    A file that does not parse, or holds anything else (a scalar, a list of other things, an object with any
    case field), is a case file, and is reported invalid if it is a broken one."""
    if path.suffix != ".json":
        return None
    try:  # the plain JSON parser: 10x faster than the checked read a case gets when it is loaded
        info = path.stat()
        if not stat.S_ISREG(info.st_mode) or info.st_size > limits.get("file_bytes"):
            return None
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):  # a broken file is a broken case, reported as such when loaded
        return None
    if isinstance(doc, list) and doc and all(isinstance(row, dict) and _REPORT_ROW <= set(row) for row in doc):
        return "a harness report (a list of case results), not a case"
    if isinstance(doc, dict) and doc and not set(doc) & set(schema.CASE_FIELDS):
        return f"a JSON document with none of a case's fields (it has {', '.join(sorted(doc)[:5])}), not a case"
    return None


def find_case_files(paths: list[str | Path]) -> list[Path]:
    """Case files named directly or found (recursively) under folders, sorted, without repeats."""
    return walk_case_files(paths)[0]


@dataclass
class Entry:
    """One case file of a corpus: its loaded case, or why it could not be loaded."""

    path: Path
    case: Case | None
    error: InvalidCase | None
    label: str | None = None  # the name of an invalid entry when its file stem is also a case's name

    @property
    def name(self) -> str:
        return self.case.name if self.case else (self.label or self.path.stem)


def duplicate_name(path: Path, name: str, first: Path) -> InvalidCase:
    """The error for a case whose name an earlier file (in path order) already uses."""
    return InvalidCase(str(path), [Problem("name", f"duplicate case name {name!r}", found=f"also used by {first}",
                                           hint="give each case a unique `name:` (it defaults to the file stem)")])


def load_entry(path: Path) -> Case:
    """Load one case file for a corpus; raises InvalidCase, or LoadCrash (an InvalidCase) for anything else
    it raises, so one file never stops the others."""
    try:
        if path.suffix not in CASE_SUFFIXES:
            raise InvalidCase(str(path), [Problem("", "not a case file", expected="a .yaml, .yml or .json file")])
        other = not_a_case(path)  # named directly: said, rather than reported field by field
        if other:
            raise InvalidCase(str(path), [Problem("", other, hint="name case files (or folders of them) instead")])
        return load_case(path)
    except InvalidCase:
        raise
    except Exception:  # noqa: BLE001 - a harness bug: that file's harness-error, with the traceback
        raise LoadCrash(str(path), traceback.format_exc()) from None


def load_corpus(paths: list[str | Path]) -> list[Entry]:
    """Load every case file; a bad file is an entry with an error, so the others still run."""
    files, errors = walk_case_files(paths)
    entries = [Entry(path, None, error) for path, error in errors.items()]
    first_with_name: dict[str, Path] = {}
    for path in files:
        try:
            case = load_entry(path)
        except InvalidCase as error:
            entries.append(Entry(path, None, error))
            continue
        if case.name in first_with_name:
            entries.append(Entry(path, None, duplicate_name(path, case.name, first_with_name[case.name])))
            continue
        first_with_name[case.name] = path
        entries.append(Entry(path, case, None))
    entries.sort(key=lambda e: e.path)
    # An invalid file is named by its stem; where a case (or another invalid file) has that name, the path
    # names it instead, so a recording or report never files one under the other's name.
    taken = {e.name for e in entries if e.case}
    for entry in entries:
        if entry.case is None:
            if entry.name in taken:
                entry.label = str(entry.path)
            taken.add(entry.name)
    return entries
