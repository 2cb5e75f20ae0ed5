"""Thin pytest glue: every case file under the configured case folders becomes one test item, and so does
every case file named on the command line, wherever it is.

All the work happens in plain modules (runner, report); this file only maps them onto pytest's
collection, markers and failure reports. It is a pytest plugin by entry point (`pytest11` in
pyproject.toml), so it is active in the harness's environment even when pytest's rootdir is not the
project (`pytest /elsewhere/case.yaml` finds no ini file there); a conftest's
`pytest_plugins = ["harness.pytest_collect"]` names the same plugin.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import limits, sharding, targets
from harness.discovery import duplicate_name, load_entry, not_a_case
from harness.documents import CASE_SUFFIXES
from harness.errors import InvalidCase
from harness.modes import HELP, parse_modes
from harness.runner import CaseResult, invalid_result, run_case
from harness.verdict import known_failure_applies


def pytest_addoption(parser):
    parser.addini("harness_case_dirs", type="args", default=[],
                  help="folders (relative to rootdir) whose .yaml/.yml/.json files are harness cases (the "
                       "project sets cases); case files named on the command line are collected wherever they are")
    parser.addoption("--harness-mode", metavar="MODES", default=None, help=HELP)
    parser.addoption("--harness-target", metavar="NAMES", default=None,
                     help=f"systems under test: {', '.join(targets.NAMES)}, or all (every installed one), comma "
                          f"separated; with several, each case is one item per target, `name[target]` "
                          f"(default: {targets.DEFAULT_TARGET})")
    parser.addoption("--harness-shard", metavar="K/N", default=None,
                     help="run only shard K of N (1 <= K <= N) of the collected items, for CI jobs in parallel: a "
                          "case file's items by a stable hash of its path under its case folder (the split of "
                          "`harness run --shard K/N`), other tests by their node id")
    parser.addoption("--harness-limit", metavar="NAME=VALUE", action="append", default=[],
                     help="change a limit of harness/limits.py for this run (repeatable): " + ", ".join(limits.LIMITS))


# Marks that mean something to pytest or a plugin: a case tag of that name would skip, xfail or parametrize
# the item. Such a tag becomes the marker `tag_<name>` instead (select it with -m tag_skip); every mark
# registered before collection (by pytest, a plugin or the ini file) is added to these in pytest_configure.
PYTEST_MARKS = frozenset({"skip", "skipif", "xfail", "parametrize", "usefixtures", "filterwarnings", "tryfirst",
                          "trylast", "timeout", "flaky", "xdist_group", "asyncio", "anyio", "order", "dependency",
                          "django_db", "no_cover", "forked", "repeat", "benchmark"})
_RESERVED = pytest.StashKey[frozenset]()


def tag_marker(tag: str, reserved: frozenset = PYTEST_MARKS) -> str:
    """The marker name a case tag becomes: the tag itself, unless pytest or a plugin gives that mark a meaning."""
    return f"tag_{tag}" if tag in reserved else tag


_RUN_MODES = pytest.StashKey[tuple]()  # the run's default modes, parsed once in pytest_configure
_RUN_TARGETS = pytest.StashKey[tuple]()  # the systems under test, parsed once in pytest_configure
_RUN_SHARD = pytest.StashKey[object]()  # the shard to run (sharding.Shard), or None


def _parse_run_shard(config):
    text = config.getoption("--harness-shard")
    if text is None:
        return None
    try:
        return sharding.parse_shard(text)
    except ValueError as exc:
        raise pytest.UsageError(f"--harness-shard: {exc}") from None


def _parse_run_targets(config) -> tuple[str, ...]:
    text = config.getoption("--harness-target")
    if text is None:
        return (targets.DEFAULT_TARGET,)
    try:
        return targets.parse_targets(text)
    except ValueError as exc:
        raise pytest.UsageError(f"--harness-target: {exc}") from None


def _parse_run_modes(config) -> tuple[str, ...] | None:
    text = config.getoption("--harness-mode")
    if text is None:
        return None
    try:
        return parse_modes(text)
    except ValueError as exc:
        raise pytest.UsageError(f"--harness-mode: {exc}") from None


def _case_dirs(config) -> list[Path]:
    return [(config.rootpath / d).resolve() for d in config.getini("harness_case_dirs")]


_NAMED = pytest.StashKey[tuple]()  # (files, folders) named on the command line, resolved


def _named(config) -> tuple[set[Path], list[Path]]:
    """The case files named on the command line, and the folders named there that are outside the project
    (the ini file's folder): a folder of the project such as tests/ holds test data, not cases, and the
    project's case folders are its `harness_case_dirs`."""
    if _NAMED not in config.stash:
        project = config.inipath.parent.resolve() if config.inipath else None
        files, folders = set(), []
        for arg in config.args:
            path = (config.invocation_params.dir / arg.split("::")[0]).resolve()
            if path.is_file() and path.suffix in CASE_SUFFIXES:
                files.add(path)
            elif path.is_dir() and (project is None or not path.is_relative_to(project)):
                folders.append(path)
        config.stash[_NAMED] = (files, folders)
    return config.stash[_NAMED]


def pytest_collect_file(file_path: Path, parent):
    if file_path.suffix not in CASE_SUFFIXES:
        return None
    resolved = file_path.resolve()
    files, folders = _named(parent.config)
    if resolved in files:  # named: always a case (a report named here is told it is not one)
        return CaseFile.from_parent(parent, path=file_path)
    if any(resolved.is_relative_to(d) for d in [*_case_dirs(parent.config), *folders]) and not not_a_case(file_path):
        return CaseFile.from_parent(parent, path=file_path)
    return None


class CaseFailure(Exception):
    """Raised by a case item that did not pass; carries the harness's own explanation."""

    def __init__(self, result: CaseResult):
        super().__init__(result.message)
        self.result = result


class CaseFile(pytest.File):
    def collect(self):
        try:
            case = load_entry(self.path)  # never raises anything but InvalidCase: one file fails alone
        except InvalidCase as error:
            yield CaseItem.from_parent(self, name=self.path.stem, case=None, error=error)
            return
        names = self.config.stash[_RUN_TARGETS]
        for target in names:
            name = case.name if len(names) == 1 else f"{case.name}[{target}]"
            item = CaseItem.from_parent(self, name=name, case=case, error=None, target=target)
            registered = {line.split(":")[0].strip() for line in self.config.getini("markers")}
            for tag in case.tags:
                marker = tag_marker(tag, self.config.stash[_RESERVED])
                if marker not in registered:  # tags are data, not typos: register them so pytest does not warn
                    self.config.addinivalue_line("markers", f"{marker}: harness case tag")
                item.add_marker(marker)
            if known_failure_applies(case, target):  # XFAIL while it fails, XPASS once fixed
                item.add_marker(pytest.mark.xfail(reason=case.known_failure["reason"], raises=CaseFailure, strict=False))
            yield item


class CaseItem(pytest.Item):
    def __init__(self, *, case, error, target=targets.DEFAULT_TARGET, **kwargs):
        super().__init__(**kwargs)
        self.case = case
        self.error = error
        self.target = target

    def runtest(self):
        if self.error is not None:
            result = invalid_result(self.error, self.name)
        else:
            result = run_case(self.case, None, self.config.stash[_RUN_MODES], targets.get(self.target))
        self.user_properties.append(("harness_outcome", result.outcome))
        if result.outcome == "skipped":
            pytest.skip(result.message)
        if result.outcome == "xfailed":  # a known defect (of the case, or of this target: harness/known_defects.py)
            pytest.xfail(result.message)
        if result.outcome not in ("passed", "xpassed"):  # an xfailed case raises; its xfail marker reports it
            raise CaseFailure(result)

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, CaseFailure):
            return excinfo.value.result.details
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        return self.path, None, f"case {self.name}"


def _registered_marks(config) -> frozenset:
    """Marks registered before collection: by pytest, its plugins, or the ini file's `markers`."""
    return frozenset(line.split(":")[0].split("(")[0].strip() for line in config.getini("markers"))


def pytest_configure(config):
    config.stash[_RUN_MODES] = _parse_run_modes(config)  # a bad value stops the run before collection, naming the word
    config.stash[_RUN_TARGETS] = _parse_run_targets(config)
    config.stash[_RUN_SHARD] = _parse_run_shard(config)
    config.stash[_RESERVED] = PYTEST_MARKS | _registered_marks(config)
    try:
        limits.configure(dict(limits.parse_assignment(text) for text in config.getoption("--harness-limit")))
    except ValueError as exc:
        raise pytest.UsageError(f"--harness-limit: {exc}") from None
    config.addinivalue_line("markers", "harness case tags: each tag of a case file is a marker of its item")


def _case_key(path: Path, roots: list[Path]) -> str:
    inside = any(path != root and path.is_relative_to(root) for root in roots)
    return sharding.shard_key(path if inside else path.resolve(), roots)


def pytest_collection_modifyitems(session, config, items):
    """Refuse duplicate case names across the run (the later file, in path order, fails); then, with
    --harness-shard, keep this shard's items only (after the duplicates: as in an unsharded run)."""
    first: dict[str, Path] = {}
    for item in sorted((i for i in items if isinstance(i, CaseItem) and i.case is not None), key=lambda i: str(i.path)):
        if item.name in first:
            item.error = duplicate_name(item.path, item.name, first[item.name])
        else:
            first[item.name] = item.path
    shard = config.stash[_RUN_SHARD]
    if shard is not None:
        roots = [config.rootpath / d for d in config.getini("harness_case_dirs")] + _case_dirs(config)
        kept, dropped = [], []
        for item in items:
            # a case file by its path under its case folder (as `harness run`, which follows links as found);
            # any other test by its node id, which is relative to the rootdir: the same on every machine
            key = _case_key(Path(item.path), roots) if isinstance(item, CaseItem) else item.nodeid
            (kept if shard.holds(key) else dropped).append(item)
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = kept
