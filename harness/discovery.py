"""Find case files and load a corpus: sorted paths, one entry per file, duplicate names refused."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.case import Case
from harness.documents import CASE_SUFFIXES
from harness.errors import InvalidCase, Problem
from harness.loader import load_case

DEFAULT_CASE_DIR = Path("cases")


def find_case_files(paths: list[str | Path]) -> list[Path]:
    """Case files named directly or found (recursively) under folders, sorted, without repeats."""
    found: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.update(p for p in path.rglob("*") if p.is_file() and p.suffix in CASE_SUFFIXES)
        else:
            found.add(path)  # a missing or oddly named file is reported when loaded
    return sorted(found)


@dataclass
class Entry:
    """One case file of a corpus: its loaded case, or why it could not be loaded."""

    path: Path
    case: Case | None
    error: InvalidCase | None

    @property
    def name(self) -> str:
        return self.case.name if self.case else self.path.stem


def duplicate_name(path: Path, name: str, first: Path) -> InvalidCase:
    """The error for a case whose name an earlier file (in path order) already uses."""
    return InvalidCase(str(path), [Problem("name", f"duplicate case name {name!r}", found=f"also used by {first}",
                                           hint="give each case a unique `name:` (it defaults to the file stem)")])


def load_corpus(paths: list[str | Path]) -> list[Entry]:
    """Load every case file; a bad file is an entry with an error, so the others still run."""
    entries = []
    first_with_name: dict[str, Path] = {}
    for path in find_case_files(paths):
        try:
            if path.suffix not in CASE_SUFFIXES:
                raise InvalidCase(str(path), [Problem("", "not a case file", expected="a .yaml, .yml or .json file")])
            if not path.is_file():
                raise InvalidCase(str(path), [Problem("", "no such file")])
            case = load_case(path)
        except InvalidCase as error:
            entries.append(Entry(path, None, error))
            continue
        if case.name in first_with_name:
            entries.append(Entry(path, None, duplicate_name(path, case.name, first_with_name[case.name])))
            continue
        first_with_name[case.name] = path
        entries.append(Entry(path, case, None))
    return entries
