"""The `harness run --report-json` file's `run` field, and merging the reports of shards (`harness merge`)
into the report one unsharded run writes.

Every entry carries `environment` (what ran: versions, targets; see cli.environment) and `run`: the run's
default modes and selection (-k, --tag), its shard ({index, count}, or null) and how many cases it set out
to run. The file stays a plain list (what scripts and tools read); these fields make each entry say where
it came from, so a merge can refuse reports of different versions or options, a case reported twice, a
shard reported twice or missing, and a shard that stopped early (fewer entries than it set out to run).
"""

from __future__ import annotations

import json
from pathlib import Path

from harness import __version__, limits
from harness.errors import HarnessError
from harness.runner import OUTCOMES
from harness.sharding import Shard


class MergeError(HarnessError):
    """Reports or recordings that cannot be merged; the message names the files."""


def run_info(mode, keyword, tags, shard: Shard | None, cases: int) -> dict:
    """The `run` field of every entry of one run's report."""
    return {"mode": ",".join(mode) if mode else None, "keyword": keyword, "tags": sorted(tags or []),
            "shard": shard.to_json() if shard else None, "cases": cases}


# What differs between the shards of one run, and so is not compared between reports: the shard, its size,
# and where Keras is installed (the checkout folder of each CI machine; its version is compared).
_PER_SHARD = ("shard", "cases", "keras_path", "tf_keras_path")


def read_report(path: Path) -> list[dict]:
    """The entries of one report, checked: a list of objects with a case name, a path, a known outcome and
    the `run` they came from (one run per file)."""
    limit = int(limits.get("recording_bytes"))
    try:
        size = path.stat().st_size
        if size > limit:
            raise MergeError(f"{path}: {size} bytes: beyond the limit recording_bytes={limit}; "
                             + limits.how_to_raise("recording_bytes"))
        rows = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise MergeError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    except (ValueError, RecursionError) as exc:
        raise MergeError(f"{path}: not a JSON report ({type(exc).__name__}: {str(exc)[:200]})") from None
    if not isinstance(rows, list):
        raise MergeError(f"{path}: not a `harness run --report-json` file (expected a list of cases, found "
                         f"{type(rows).__name__})")
    for number, row in enumerate(rows, start=1):
        where = f"{path}: entry {number}"
        if not isinstance(row, dict) or not isinstance(row.get("case"), str) or not isinstance(row.get("path"), str):
            raise MergeError(f"{where}: expected an object with `case` and `path` strings")
        if row.get("outcome") not in OUTCOMES:
            raise MergeError(f"{where} ({row['case']}): outcome {str(row.get('outcome'))[:40]!r} is not one of "
                             f"{', '.join(OUTCOMES)}")
        for field in ("environment", "run"):
            if not isinstance(row.get(field), dict):
                raise MergeError(f"{where} ({row['case']}): no `{field}` field: written by a harness before "
                                 f"{__version__} or not by `harness run`; run it again to merge it")
            if row[field] != rows[0][field]:
                raise MergeError(f"{where} ({row['case']}): its `{field}` differs from the first entry's: entries "
                                 "of several runs in one file")
    return rows


def _differences(a: dict, b: dict) -> str:
    keys = [k for k in sorted(set(a) | set(b)) if k not in _PER_SHARD and a.get(k) != b.get(k)]
    return "; ".join(f"{k}: {a.get(k)!r} vs {b.get(k)!r}" for k in keys)


def _check_shards(reports: dict[Path, list[dict]]) -> None:
    """Sharded reports: all of one N, each shard once, none missing (a shard without any case writes an
    empty report, which counts as one of the N); unsharded ones are merged as they are (disjoint runs)."""
    shards = {path: rows[0]["run"]["shard"] for path, rows in reports.items() if rows}
    sharded = {path: s for path, s in shards.items() if s is not None}
    if not sharded:
        return
    if len(sharded) != len(shards):
        plain = next(path for path, s in shards.items() if s is None)
        other = next(iter(sharded))
        raise MergeError(f"{plain} is not a shard's report but {other} is (shard {_shard_text(sharded[other])}): "
                         "merge the reports of one sharded run")
    counts = {path: s.get("count") for path, s in sharded.items()}
    first = next(iter(sharded))
    for path, count in counts.items():
        if count != counts[first]:
            raise MergeError(f"{first} is shard {_shard_text(sharded[first])} but {path} is shard "
                             f"{_shard_text(sharded[path])}: shards of different splits")
    seen: dict[int, Path] = {}
    for path, s in sharded.items():
        if s.get("index") in seen:
            raise MergeError(f"shard {_shard_text(s)} is reported twice: {seen[s['index']]} and {path}")
        seen[s.get("index")] = path
    count = counts[first]
    missing = [index for index in range(1, count + 1) if index not in seen]
    empty = len(reports) - len(shards)
    if len(missing) > empty:
        raise MergeError(f"shard {', '.join(f'{i}/{count}' for i in missing)} missing: {len(reports)} reports given "
                         f"for {count} shards")
    if len(reports) > count:
        raise MergeError(f"{len(reports)} reports given for {count} shards")


def _shard_text(shard: dict) -> str:
    return f"{shard.get('index')}/{shard.get('count')}"


def merge_reports(paths: list[Path]) -> list[dict]:
    """One report from the reports of shards (or of disjoint runs), in the order one unsharded run writes
    its cases (by path), with `run` as that run's. Raises MergeError naming the files."""
    reports: dict[Path, list[dict]] = {}
    for path in paths:
        if path in reports:
            raise MergeError(f"{path} is given twice")
        reports[path] = read_report(path)
    first_path, first_row = next(((p, rows[0]) for p, rows in reports.items() if rows), (None, {}))
    first_run = first_row.get("run")
    where: dict[str, Path] = {}
    for path, rows in reports.items():
        if not rows:
            continue
        run = rows[0]["run"]
        different = "; ".join(filter(None, (_differences(first_row["environment"], rows[0]["environment"]),
                                            _differences(first_run, run))))
        if different:
            raise MergeError(f"{first_path} and {path} come from runs with different versions or options: {different}")
        if isinstance(run.get("cases"), int) and len(rows) != run["cases"]:
            raise MergeError(f"{path}: holds {len(rows)} of the {run['cases']} cases its run set out to run: "
                             "the run was interrupted or the file cut short")
        for row in rows:
            if row["case"] in where:
                raise MergeError(f"case {row['case']!r} is in both {where[row['case']]} and {path}"
                                 if where[row["case"]] != path else f"case {row['case']!r} is twice in {path}")
            where[row["case"]] = path
    _check_shards(reports)
    merged = sorted((row for rows in reports.values() for row in rows), key=lambda row: (Path(row["path"]), row["case"]))
    run = {**(first_run or {}), "shard": None, "cases": len(merged)}
    return [{**row, "run": run} for row in merged]
