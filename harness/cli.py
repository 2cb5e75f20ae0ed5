"""Command line: `harness run`, `harness validate`, `harness explain`, ... (`harness capture`: capture.py)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness import __version__, capture, limits, sharding
from harness.discovery import DEFAULT_CASE_DIR, Entry, load_corpus
from harness.errors import InvalidCase
from harness import modes
from harness import targets
from harness.across_targets import run_on_targets
from harness.runner import GREEN, OUTCOMES, CaseResult, invalid_result
from harness.versions import describe_origin, installed_versions, keras_flavor, module_origin

_STYLE = {"passed": "green", "failed": "red", "invalid": "magenta", "keras-error": "red", "unsupported": "yellow",
          "timeout": "red", "xfailed": "cyan", "xpassed": "yellow", "skipped": "dim",
          "harness-error": "red"}


def _select(entries: list[Entry], keyword: str | None, tags: list[str]) -> list[Entry]:
    """Cases matching the keyword and any of the tags; an invalid file has no tags to match, so a tag
    filter keeps it (it is never filtered away silently)."""
    return [entry for entry in entries
            if (not keyword or keyword in entry.name)
            and (not tags or entry.case is None or set(tags) & set(entry.case.tags))]


def _outcome_table(console: Console, outcomes: list[str], title: str) -> None:
    """The count of cases per outcome, in OUTCOMES order (run's summary and merge's)."""
    counts = Counter(outcomes)
    table = Table(title=title)
    table.add_column("outcome")
    table.add_column("cases", justify="right")
    for outcome in OUTCOMES:
        if counts[outcome]:
            table.add_row(f"[{_STYLE[outcome]}]{outcome}[/]", str(counts[outcome]))
    console.print(table)


def _summary(console: Console, results: list[CaseResult], seconds: float) -> None:
    _outcome_table(console, [r.outcome for r in results], f"{len(results)} cases in {seconds:.1f}s")


def no_default_folder(command: str, paths: list[str]) -> bool:
    """Without paths a command reads cases/ of the current folder: where there is none, say so (and how to
    name case files) instead of reporting `cases` as a missing case file. True when it said so."""
    if paths or DEFAULT_CASE_DIR.is_dir():
        return False
    print(f"harness {command}: no {DEFAULT_CASE_DIR}/ folder here ({Path.cwd()}): name case files or folders, "
          f"e.g. `harness {command} path/to/cases`, or run it in the project folder", file=sys.stderr)
    return True


def environment(target_names: tuple[str, ...]) -> dict:
    """What a report says about what ran: versions, and which Keras (a modified one on PYTHONPATH or an
    editable install shows its own version and path)."""
    keras = module_origin("keras")
    found = {"harness": __version__, "python": sys.version.split()[0], "tensorflow": installed_versions().get("tensorflow"),
             "keras": keras["version"], "keras_path": keras["path"], "targets": list(target_names)}
    if keras["installed"]:
        found["keras_installed"] = keras["installed"]
    if "tf-keras" in target_names:
        tf_keras = module_origin("tf_keras")
        found.update(tf_keras=tf_keras["version"], tf_keras_path=tf_keras["path"])
    return found


def _header(target_names: tuple[str, ...]) -> str:
    """The first line of a run: which Keras is under test, from where."""
    parts = [describe_origin("keras")]
    if "tf-keras" in target_names:
        parts.append(describe_origin("tf_keras", "tf_keras"))
    tensorflow = installed_versions().get("tensorflow")
    return "; ".join(parts + [f"TensorFlow {tensorflow or 'not installed'}", f"target{'s' if len(target_names) > 1 else ''} "
                                                                             f"{', '.join(target_names)}"])


def _not_passed(console: Console, results: list[CaseResult]) -> None:
    """The run's last lines: every case that did not pass, so no failure is lost among the passes."""
    bad = [r for r in results if not r.ok]
    if not bad:
        if results:
            console.print(f"every case passed ({len(results)}; known failures and skips count as passed)")
        return
    console.print(f"{len(bad)} case{'s' if len(bad) != 1 else ''} did not pass:")
    for result in bad:
        console.print(f"  [{_STYLE[result.outcome]}]{result.outcome.upper():<12}[/] {escape(result.name)}  "
                      f"[dim]{escape(str(result.path))}[/]  {escape(_first_line(result.message))}", markup=True)


def _no_match(console: Console, found: list[Entry], args) -> int:
    where = ", ".join(map(str, args.paths or [DEFAULT_CASE_DIR]))
    if not found:
        console.print(f"no case files found in {where}", markup=False)
        return 1
    asked = " and ".join(filter(None, [f"-k {args.keyword!r}" if args.keyword else "",
                                       " or ".join(f"--tag {t!r}" for t in args.tag or [])]))
    console.print(f"no case matches {asked} ({len(found)} case files found in {where})", markup=False)
    return 1


def _writable(option: str, target: str | None) -> str | None:
    """Why a report file cannot be written, checked before a run rather than after it."""
    if not target:
        return None
    path = Path(target)
    if path.is_dir():
        return f"{option} {target}: is a folder"
    if not path.parent.is_dir():
        return f"{option} {target}: the folder {path.parent} does not exist"
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        return f"{option} {target}: not writable"
    return None


def write_atomically(path: Path, text: str) -> None:
    """Write beside, then rename: a reader never sees half a report, and an interrupted write leaves the old one."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # as open() would: mkstemp's 0600 would keep a report to share from others
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def cmd_run(args) -> int:
    console = Console(highlight=False, soft_wrap=True)
    problem = _writable("--report-json", args.report_json) or _writable("--html", args.html)
    if problem:
        print(f"harness run: {problem}", file=sys.stderr)
        return 2
    if no_default_folder("run", args.paths):
        return 2
    started = time.perf_counter()
    target_names = args.target or (targets.DEFAULT_TARGET,)
    roots = [Path(p) for p in args.paths or [DEFAULT_CASE_DIR]]
    found = load_corpus(roots)
    entries = _select(found, args.keyword, args.tag or [])
    if not entries:
        return _no_match(console, found, args)
    console.print(_header(target_names), markup=False)
    if args.shard:  # after loading all: a duplicate name is refused in whichever shard holds the later file
        selected, entries = len(entries), sharding.select(entries, roots, args.shard)
        console.print(f"shard {args.shard}: {len(entries)} of the {selected} case files")
    results = []
    interrupted = False
    try:
        for entry in entries:
            result = (invalid_result(entry.error, entry.name) if entry.error else
                      run_on_targets(entry.case, [targets.get(name) for name in target_names], args.mode))
            results.append(result)
            if args.failures_only and result.ok:
                continue
            style = _STYLE[result.outcome]
            console.print(f"[{style}]{result.outcome.upper():<12}[/] {escape(result.name)}  "
                          f"[dim]{escape(str(result.path))}  {result.duration_s:.2f}s[/]  "
                          f"{escape(_first_line(result.message))}", markup=True)
            if result.outcome not in ("passed", "xfailed", "skipped"):
                console.print(result.details, markup=False)
    except KeyboardInterrupt:  # Ctrl-C: stop cleanly, keep what finished
        interrupted = True
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the report in half
        console.print(f"interrupted: {len(results)} of {len(entries)} cases finished; the rest did not run")
    _summary(console, results, time.perf_counter() - started)
    if args.margins:
        _margins(console, results, args.margins)
    _not_passed(console, results)
    if args.report_json:
        from harness.report_json import run_info

        env, info = environment(target_names), run_info(args.mode, args.keyword, args.tag, args.shard, len(entries))
        write_atomically(Path(args.report_json), json.dumps([{**r.to_json(), "environment": env, "run": info}
                                                             for r in results], indent=2) + "\n")
        if interrupted:
            console.print(f"wrote the {len(results)} finished results to {args.report_json}")
    if args.html:
        from harness.html_report import run_page
        from harness.versions import installed_versions

        note = f"interrupted: {len(results)} of {len(entries)} cases finished" if interrupted else ""
        described = {e.name: e.case.description for e in entries if e.case}
        write_atomically(Path(args.html), run_page(results, time.perf_counter() - started, installed_versions(), note,
                                                   described))
    if interrupted:
        return 130
    return 0 if all(r.ok for r in results) else 1


def _first_line(message: str) -> str:
    """A case's row stays one line; a system's multi-line error message is in full in the details below
    (and in --report-json)."""
    lines = message.splitlines() or [""]
    return lines[0] + (" [...]" if len(lines) > 1 else "")


def _margins(console: Console, results: list[CaseResult], count: int) -> None:
    """The cases whose largest error comes closest to its bound (1.0 = at the tolerance)."""
    rated = sorted(((max(d.max_error_ratio for _, d in r.diffs), r) for r in results
                    if r.diffs and r.outcome == "passed"), key=lambda pair: -pair[0])
    table = Table(title=f"the {min(count, len(rated))} cases nearest their tolerance (error / bound)")
    table.add_column("error / bound", justify="right")
    table.add_column("case", no_wrap=True)
    table.add_column("output")
    for ratio, result in rated[:count]:
        call, diff = max(result.diffs, key=lambda pair: pair[1].max_error_ratio)
        where = f"call {call} {diff.output}" if len({n for n, _ in result.diffs}) > 1 else diff.output
        where = f"{diff.mode} {where}" if len(result.modes) > 1 else where
        table.add_row(f"{ratio:.3g}", result.name, f"{where} ({diff.tolerance.source})")
    console.print(table)


def cmd_validate(args) -> int:
    console = Console(highlight=False, soft_wrap=True)
    if no_default_folder("validate", args.paths):
        return 2
    entries = load_corpus(args.paths or [DEFAULT_CASE_DIR])
    if not entries:
        console.print("no case files found")
        return 1
    for entry in entries:
        if entry.error:
            console.print(f"[magenta]INVALID[/] {escape(entry.error.render())}")
        else:
            console.print(f"[green]VALID[/]   {escape(entry.name)}  [dim]{escape(str(entry.path))}[/]")
    bad = sum(1 for e in entries if e.error)
    console.print(f"{len(entries) - bad} valid, {bad} invalid")
    return 1 if bad else 0


def cmd_coverage(args) -> int:
    from harness.coverage import MASK_PATTERNS, build_map

    if no_default_folder("coverage", args.paths):
        return 2
    entries = load_corpus(args.paths or [DEFAULT_CASE_DIR])
    coverage = build_map([e.case for e in entries if e.case], keras_flavor(), [str(e.path) for e in entries if e.error],
                         every_layer=not args.paths)
    if args.json:
        print(json.dumps(coverage.to_json(), indent=2))
        return 0
    console = Console(highlight=False, soft_wrap=True)
    console.print(f"{coverage.cases} cases" + (f", {len(coverage.invalid)} invalid files not counted" if coverage.invalid else ""))
    for name, layer in coverage.layers.items():
        table = Table(title=f"{name} ({layer.cases} cases): configuration dimensions, cases covering each value")
        table.add_column("dimension")
        table.add_column("value: cases")
        table.add_column("uncovered")
        for dim, values in layer.required.items():
            counts = layer.dimensions[dim]
            missing = [v for v in values if not counts[v]]
            table.add_row(dim, ", ".join(f"{v}: {counts[v]}" for v in values if counts[v]),
                          f"[red]{', '.join(missing)}[/]" if missing else "-")
        console.print(table)
        if layer.has_mask_table:
            masks = Table(title=f"{name}: mask pattern x go_backwards x return_sequences: cases")
            masks.add_column("mask pattern")
            for gb in ("false", "true"):
                for rs in ("false", "true"):
                    masks.add_column(f"go_backwards={gb}\nreturn_sequences={rs}", justify="right")
            grid = layer.mask_table()
            for pattern in MASK_PATTERNS:
                masks.add_row(pattern, *[str(grid[(pattern, gb, rs)]) if grid[(pattern, gb, rs)] else "[red]0[/]"
                                         for gb in ("false", "true") for rs in ("false", "true")])
            console.print(masks)
        if layer.has_pairs:
            pairs = layer.uncovered_activation_pairs()
            total = len(layer.required["activation"]) ** 2
            console.print(f"{name}: activation x recurrent_activation: {total - len(pairs)} of {total} pairs covered")
    uncovered = coverage.uncovered()
    console.print("every dimension value of every layer is covered" if not uncovered else "uncovered values: " + "; ".join(
        f"{layer} {d}: {', '.join(v)}" for layer, dims in uncovered.items() for d, v in dims.items()))
    return 0


def cmd_selftest(args) -> int:
    from harness.faults import EVERY

    console = Console(highlight=False, soft_wrap=True)
    known = [f.name for f in EVERY]
    unknown = [name for name in args.fault or [] if name not in known]
    if unknown:
        print(f"harness selftest: unknown fault {', '.join(map(repr, unknown))}; faults: {', '.join(known)}", file=sys.stderr)
        return 2
    if no_default_folder("selftest", args.paths):
        return 2
    entries = load_corpus(args.paths or [DEFAULT_CASE_DIR])
    cases = [e.case for e in entries if e.case]
    faults = [f for f in EVERY if not args.fault or f.name in args.fault]
    chosen = args.target or (targets.DEFAULT_TARGET,)
    worst = 0
    for target in chosen:
        # One target: today's lines; several: each line says which target it is about.
        on = f" on {target}" if chosen != (targets.DEFAULT_TARGET,) else ""
        started = time.perf_counter()
        worst = max(worst, _selftest_target(console, target, on, cases, faults, args))
        if on:
            console.print(f"selftest{on} took {time.perf_counter() - started:.0f}s")
    return worst


def _selftest_target(console, target: str, on: str, cases: list, faults: list, args) -> int:
    """One target's selftest: baseline, controls, then each fault (caught, escaped, or not applicable)."""
    from harness.faults import CONTROL, CONTROLS
    from harness.selftest import baseline, involves, not_applicable, run_fault, smallest_caught_perturbation

    witnesses = baseline(cases, target)
    console.print(f"{len(witnesses)} of {len(cases)} cases pass against the installed Keras{on} and can witness a fault")
    for control in [CONTROL, *CONTROLS.values()]:
        result = run_fault(control, [c for c in witnesses if involves(c, control.layer)], stop_at=1, target=target)
        if result.caught:
            first = result.failing[0]
            console.print(f"[red]the fault-injection mechanism itself changes results{on} ({first} "
                          f"{result.outcomes[first]} under {control.description}: {result.messages[first]}): fault "
                          "results would mean nothing[/]")
            return 2
    escaped = applicable = 0
    for fault in faults:
        why_not = not_applicable(fault, target)
        if why_not:
            console.print(f"[yellow]NOT APPLICABLE[/] {fault.name:<40} {why_not}")
            continue
        applicable += 1
        result = run_fault(fault, [c for c in witnesses if involves(c, fault.layer)],
                           stop_at=None if args.all_witnesses else 1, target=target)
        if result.raised_only:  # the fault's own code may be what raised: not a catch to trust
            escaped += 1
            first = result.failing[0]
            console.print(f"[red]RAISED [/] {fault.name:<40} {fault.description}  (every failing case raised, none "
                          f"disagreed; first: {first}: {result.messages[first]})")
        elif result.caught:
            shown = ", ".join(result.disagreed[:3]) + (" ..." if len(result.disagreed) > 3 else "")
            count = f"{len(result.disagreed)} cases" if args.all_witnesses else "first"
            console.print(f"[green]CAUGHT [/] {fault.name:<40} {fault.description}  ({count}: {shown})")
        else:
            escaped += 1
            console.print(f"[red]ESCAPED[/] {fault.name:<40} {fault.description}")
    skipped = len(faults) - applicable
    console.print(f"faults caught{on}: {applicable - escaped} / {applicable}"
                  + (f" ({skipped} not applicable{on})" if skipped else ""))
    if args.perturbation:
        from harness.selftest import SHORT, perturbation_shares

        for dtype, eps in smallest_caught_perturbation(witnesses, target).items():
            console.print(f"smallest caught h perturbation{on}, {dtype}: "
                          + (f"{eps:g}" if eps else "none of 1e-1 .. 1e-12"))
        for share in perturbation_shares(witnesses, target):
            of = f"{share.dtype} LSTM cases" + (f" of up to {SHORT} steps" if share.short_only else "")
            console.print(f"h x (1 + {share.epsilon:g}){on} caught by {share.caught} of {share.total} {of}"
                          + (f" ({share.fraction:.0%})" if share.total else "")
                          + (f"; {share.all_zero} left out: outputs 0 everywhere" if share.all_zero else ""), markup=False)
    return 1 if escaped else 0


def cmd_fuzz(args) -> int:
    from harness.fuzz import PER_STRUCTURE, fuzz, summary

    if args.literal and not args.save:
        print("harness fuzz: --literal says how --save writes the cases; give --save DIR too", file=sys.stderr)
        return 2
    console = Console(highlight=False, soft_wrap=True)
    started = time.perf_counter()
    target = (args.target or (targets.DEFAULT_TARGET,))[0]
    system = targets.recycled(target)  # a worker replaced as its memory grows: a long campaign stays bounded
    report = fuzz(args.examples, args.seed, Path(args.save) if args.save else None, system=system,
                  literal=args.literal, per_structure=args.per_structure or PER_STRUCTURE)
    for line in summary(report, time.perf_counter() - started, args.seed):
        console.print(line, markup=False)
    if system.recycled:
        console.print(f"  the target's worker process was replaced {system.recycled}x as its memory grew (past "
                      f"{system.recycle_above}x its first case's)", markup=False)
    table = Table(title=f"examples per configuration dimension ({report.ran} examples)")
    table.add_column("dimension")
    table.add_column("value: examples")
    for dim, counts in report.dimensions.items():
        table.add_row(dim, ", ".join(f"{v}: {n}" for v, n in sorted(counts.items())))
    console.print(table)
    for number, found in enumerate(report.disagreements, start=1):
        console.print(f"disagreement {number}" + (f", saved to {found.saved}" if found.saved else "") + ":", markup=False)
        console.print(found.result.details, markup=False)
    return 1 if report.disagreements or report.short else 0


def cmd_record(args) -> int:
    from harness.recording import RecordingError, record

    if no_default_folder("record", args.paths):
        return 2
    try:
        manifest = record(args.paths or [DEFAULT_CASE_DIR], Path(args.out), args.mode,
                          warn=lambda text: print(f"harness record: {text}", file=sys.stderr),
                          target=(args.target or (targets.DEFAULT_TARGET,))[0], shard=args.shard)
    except RecordingError as exc:
        print(f"harness record: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"harness record: interrupted: nothing was written to {args.out} (an existing recording there is "
              "unchanged)", file=sys.stderr)
        return 130
    counts = Counter(item["outcome"] for item in manifest["cases"].values())
    env = manifest["environment"]
    print(f"recorded {len(manifest['cases'])} cases under TensorFlow {env['tensorflow']}, Keras {env['keras']} "
          f"({env['keras_flavor']}) in {args.out}: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))
    return 0


def cmd_merge(args) -> int:
    """Reports (files) into one report, or recordings (folders) into one recording: never a mix."""
    inputs, out = [Path(p) for p in args.inputs], Path(args.out)
    folders = [p for p in inputs if p.is_dir()]
    if folders and len(folders) != len(inputs):
        print(f"harness merge: give either report files or recording folders, not both ({folders[0]} is a folder, "
              f"{next(p for p in inputs if not p.is_dir())} is not)", file=sys.stderr)
        return 2
    if folders:
        return _merge_recordings(folders, out)
    from harness.report_json import MergeError, merge_reports

    problem = _writable("--out", args.out)
    if problem or out.resolve() in {p.resolve() for p in inputs}:
        print(f"harness merge: {problem or f'--out {out}: is also one of the reports to merge'}", file=sys.stderr)
        return 2
    try:
        rows = merge_reports(inputs)
    except MergeError as exc:
        print(f"harness merge: {exc}", file=sys.stderr)
        return 2
    write_atomically(out, json.dumps(rows, indent=2) + "\n")
    console = Console(highlight=False, soft_wrap=True)
    _outcome_table(console, [row["outcome"] for row in rows],
                   f"{len(rows)} cases from {len(inputs)} reports, {sum(r.get('duration_s', 0) for r in rows):.1f}s "
                   "of case time")
    for row in rows:
        if row["outcome"] not in GREEN:
            console.print(f"[{_STYLE[row['outcome']]}]{row['outcome'].upper():<12}[/] {escape(str(row['case']))}  "
                          f"[dim]{escape(str(row['path']))}[/]  {escape(_first_line(str(row.get('message', ''))))}",
                          markup=True)
    console.print(f"wrote {out}")
    return 0 if all(row["outcome"] in GREEN for row in rows) else 1


def _merge_recordings(folders: list[Path], out: Path) -> int:
    from harness.recording import RecordingError
    from harness.recording.merge import merge_recordings

    try:
        manifest = merge_recordings(folders, out, warn=lambda text: print(f"harness merge: {text}", file=sys.stderr))
    except RecordingError as exc:
        print(f"harness merge: {exc}", file=sys.stderr)
        return 2
    counts = Counter(item["outcome"] for item in manifest["cases"].values())
    print(f"merged {len(folders)} recordings into {out}: {len(manifest['cases'])} cases, "
          + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))
    return 0


def cmd_compare(args) -> int:
    from harness.recording import BEYOND, KINDS, RecordingError, compare, markdown, open_recording

    console = Console(highlight=False, soft_wrap=True)
    for option, target in (("--report-json", args.report_json), ("--markdown", args.markdown), ("--html", args.html)):
        problem = _writable(option, target)
        if problem:
            print(f"harness compare: {problem}", file=sys.stderr)
            return 2
    if no_default_folder("compare", args.paths):
        return 2
    try:
        recording = open_recording(Path(args.recording))
        comparison = compare(recording, args.paths or [DEFAULT_CASE_DIR], args.mode,
                             (args.target or (None,))[0])
    except RecordingError as exc:
        print(f"harness compare: {exc}", file=sys.stderr)
        return 2
    old, new = comparison.old, comparison.new
    shard = recording.manifest.get("shard")
    if isinstance(shard, dict):
        console.print(f"note: the recording holds shard {shard.get('index')}/{shard.get('count')} only: the other "
                      "shards' cases show as new; `harness merge` the shards' recordings to compare them all")
    console.print(f"recorded: TensorFlow {old.get('tensorflow')}, Keras {old.get('keras')} ({old.get('keras_flavor')}), "
                  f"target {old.get('target', 'tensorflow')}; now: TensorFlow {new.get('tensorflow')}, Keras "
                  f"{new.get('keras')} ({new.get('keras_flavor')}), target {new.get('target')}")
    for change in sorted(comparison.changes, key=lambda c: KINDS.index(c.kind)):
        if change.kind == BEYOND:
            console.print(f"[red]{change.kind.upper()}[/] {escape(f'{change.name}: {change.detail}; {change.cause}')}")
        elif change.kind != "bit-identical" or args.verbose:
            console.print(f"{change.kind}: {change.name}" + (f": {change.detail}" if change.detail else ""), markup=False)
    counts = Counter(c.kind for c in comparison.changes)
    console.print(", ".join(f"{counts[k]} {k}" for k in KINDS if counts[k]))
    if args.report_json:
        write_atomically(Path(args.report_json), json.dumps(
            {"recorded": old, "now": new, "cases": [c.to_json() for c in comparison.changes]}, indent=2) + "\n")
    if args.markdown:
        write_atomically(Path(args.markdown), markdown(comparison) + "\n")
    if args.html:
        from harness.html_report import compare_page

        write_atomically(Path(args.html), compare_page(comparison))
    if not comparison.compared:
        console.print("nothing was compared: no case has outputs both in the recording and now")
        return 1
    return 1 if comparison.beyond else 0


def _find_case(spec: str):
    path = Path(spec)
    if path.is_file():
        return path
    for entry in load_corpus([DEFAULT_CASE_DIR]) if DEFAULT_CASE_DIR.is_dir() else []:
        if entry.name == spec:
            return entry.path
    return None


def cmd_explain(args) -> int:
    from harness.errors import Unsupported
    from harness.explain import explain_case
    from harness.loader import load_case

    path = _find_case(args.case)
    if path is None:
        print(f"harness explain: no case file or case named {args.case!r} (names are looked up under {DEFAULT_CASE_DIR}/)",
              file=sys.stderr)
        return 2
    try:
        print(explain_case(load_case(path), args.flavor or keras_flavor()))
    except InvalidCase as error:
        print(error.render(), file=sys.stderr)
        return 1
    except Unsupported as exc:
        print(f"unsupported: {exc}", file=sys.stderr)
        return 1
    return 0


def _modes_argument(text: str) -> tuple[str, ...]:
    try:
        return modes.parse_modes(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _targets_argument(text: str) -> tuple[str, ...]:
    try:
        return targets.parse_targets(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _selftest_targets_argument(text: str) -> tuple[str, ...]:
    from harness.selftest import parse_targets  # noqa: PLC0415

    try:
        return parse_targets(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class _Targets(argparse.Action):
    """--target NAME, repeatable or a comma list; the union, in registry order."""

    def __call__(self, parser, namespace, values, option_string=None):
        chosen = set(getattr(namespace, self.dest) or ()) | set(values)
        setattr(namespace, self.dest, tuple(name for name in targets.NAMES if name in chosen))


def _add_target_option(command: argparse.ArgumentParser, several: bool = True) -> None:
    if several:
        command.add_argument("--target", type=_targets_argument, action=_Targets, default=None, metavar="NAMES",
                             help=f"systems under test: {', '.join(targets.NAMES)}, or all (every installed one); "
                                  f"repeatable or a comma list (default: {targets.DEFAULT_TARGET})")
    else:
        command.add_argument("--target", type=_targets_argument, default=None, metavar="NAME",
                             help=f"the system under test whose outputs are recorded or compared: "
                                  f"{', '.join(targets.NAMES)} (default: {targets.DEFAULT_TARGET}; compare: the "
                                  "recording's own)")


def _add_mode_option(command: argparse.ArgumentParser, recorded: bool = False) -> None:
    which = "; the outputs of the first are recorded and compared" if recorded else ""
    command.add_argument("--mode", type=_modes_argument, metavar="MODES", help=modes.HELP + which)


def _add_verbose_option(command: argparse.ArgumentParser) -> None:
    command.add_argument("-v", "--verbose", action="store_true",
                         help="show TensorFlow's own log messages (oneDNN notices, tf.function retracing warnings)")


def _limit_argument(text: str) -> tuple[str, float]:
    try:
        return limits.parse_assignment(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _shard_argument(text: str) -> sharding.Shard:
    try:
        return sharding.parse_shard(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_shard_option(command: argparse.ArgumentParser) -> None:
    command.add_argument("--shard", type=_shard_argument, metavar="K/N",
                         help="run only shard K of N (1 <= K <= N): a split of the case files by a stable hash of "
                              "their path under the folder named, the same on every machine; for CI jobs in "
                              "parallel, whose --report-json files (or recordings) `harness merge` combines")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="harness", description="Differential tests of Keras recurrent layers "
                                     "against an independent float64 NumPy reference.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run case files or folders (default: cases/)")
    run.add_argument("paths", nargs="*", help="case files or folders")
    run.add_argument("-k", "--keyword", help="only cases whose name contains this text")
    run.add_argument("--tag", action="append", help="only cases with this tag (repeatable: any of them)")
    run.add_argument("--report-json", metavar="FILE", help="write one JSON object per case to FILE")
    run.add_argument("--html", metavar="FILE", help="write one self-contained HTML page: the summary, and per "
                     "failing case the values, a heat map and a line plot of the error / tolerance")
    _add_mode_option(run)
    _add_target_option(run)
    run.add_argument("--margins", nargs="?", const=10, type=int, metavar="N",
                     help="list the N cases (default 10) whose error comes closest to their tolerance")
    run.add_argument("-q", "--failures-only", action="store_true",
                     help="print only the cases that did not pass (known failures and skips count as passed)")
    _add_verbose_option(run)
    _add_shard_option(run)
    run.set_defaults(func=cmd_run)

    validate = sub.add_parser("validate", help="check case files without running Keras")
    validate.add_argument("paths", nargs="*", help="case files or folders (default: cases/)")
    validate.set_defaults(func=cmd_validate)

    coverage = sub.add_parser("coverage", help="which configurations the case files cover (no Keras)")
    coverage.add_argument("paths", nargs="*", help="case files or folders (default: cases/)")
    coverage.add_argument("--json", action="store_true", help="print the map as JSON")
    coverage.set_defaults(func=cmd_coverage)

    selftest = sub.add_parser("selftest", help="run the corpus against deliberately broken Keras LSTMs")
    selftest.add_argument("paths", nargs="*", help="case files or folders (default: cases/)")
    selftest.add_argument("--fault", action="append", help="only this fault (repeatable)")
    selftest.add_argument("--all-witnesses", action="store_true", help="run every case per fault, not only until one fails")
    selftest.add_argument("--perturbation", action="store_true", help="also find the smallest caught h * (1 + eps) per dtype")
    selftest.add_argument("--target", type=_selftest_targets_argument, action=_Targets, default=None, metavar="NAMES",
                          help="where the faults are injected: tensorflow (this process), jax, torch (their worker "
                               "processes), or all (those installed); repeatable or a comma list (default: tensorflow)")
    _add_verbose_option(selftest)
    selftest.set_defaults(func=cmd_selftest)

    fuzz_cmd = sub.add_parser("fuzz", help="random valid cases on Keras and the reference; shrink disagreements")
    fuzz_cmd.add_argument("--examples", type=_positive_int, default=200,
                          help="how many generated cases must run on the target (draws with a documented defect or "
                               "that the target cannot express are counted apart; default 200)")
    fuzz_cmd.add_argument("--seed", type=int, default=0, help="the campaign's seed: the same seed draws the same cases")
    fuzz_cmd.add_argument("--save", metavar="DIR", help="write each shrunk disagreement as a case file in DIR")
    fuzz_cmd.add_argument("--per-structure", type=_positive_int, default=None, metavar="K",
                          help="run each drawn structure (layer, config, dtype, shapes, which calls have a mask or an "
                               "initial state) with K draws of weights, inputs, masks and states, through one built "
                               "layer and its traces (default 10, harness.fuzz.PER_STRUCTURE; 1: a new structure "
                               "every example)")
    fuzz_cmd.add_argument("--literal", action="store_true",
                          help="with --save: write the arrays as literal numbers (for an upstream report) instead of "
                               "`random:` seeds")
    _add_target_option(fuzz_cmd, several=False)
    _add_verbose_option(fuzz_cmd)
    fuzz_cmd.set_defaults(func=cmd_fuzz)

    record_cmd = sub.add_parser("record", help="run the cases and record Keras's outputs with the versions")
    record_cmd.add_argument("paths", nargs="*", help="case files or folders (default: cases/)")
    record_cmd.add_argument("--out", required=True, metavar="DIR", help="folder for the recording")
    _add_mode_option(record_cmd, recorded=True)
    _add_target_option(record_cmd, several=False)
    _add_verbose_option(record_cmd)
    _add_shard_option(record_cmd)
    record_cmd.set_defaults(func=cmd_record)

    merge_cmd = sub.add_parser("merge", help="combine the --report-json files, or the recordings, of shards")
    merge_cmd.add_argument("inputs", nargs="+", metavar="INPUT",
                           help="the shards' `harness run --report-json` files, or their `harness record` folders")
    merge_cmd.add_argument("--out", required=True, metavar="PATH",
                           help="the merged report (a file) or recording (a folder), as one unsharded run writes it")
    merge_cmd.set_defaults(func=cmd_merge)

    compare_cmd = sub.add_parser("compare", help="compare the installed Keras against a recording")
    compare_cmd.add_argument("recording", help="a folder written by `harness record`")
    compare_cmd.add_argument("paths", nargs="*", help="case files or folders (default: cases/)")
    compare_cmd.add_argument("--report-json", metavar="FILE")
    _add_mode_option(compare_cmd, recorded=True)
    _add_target_option(compare_cmd, several=False)
    compare_cmd.add_argument("--markdown", metavar="FILE", help="write a Markdown report (for a pull-request comment)")
    compare_cmd.add_argument("--html", metavar="FILE", help="write one self-contained HTML page with a histogram of ulps")
    compare_cmd.add_argument("-v", "--verbose", action="store_true",
                             help="also list bit-identical cases, and show TensorFlow's own log messages")
    compare_cmd.set_defaults(func=cmd_compare)

    explain = sub.add_parser("explain", help="print the reference's step-by-step trace of one case")
    explain.add_argument("case", help="a case file, or the name of a case under cases/")
    explain.add_argument("--flavor", choices=["keras3", "keras2"], help="Keras semantics (default: the installed Keras)")
    explain.set_defaults(func=cmd_explain)
    capture.add_subcommand(sub)
    _add_verbose_option(sub.choices["capture"])
    for command in sub.choices.values():  # every subcommand reads case files: every one takes the limits
        command.add_argument("--limit", type=_limit_argument, action="append", default=[], metavar="NAME=VALUE",
                             help="change a limit for this run (repeatable): " + ", ".join(limits.LIMITS)
                             + "; see the README's Limits section")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with limits.overridden(**dict(args.limit)):
        return args.func(args)


# The commands that run Keras, hence TensorFlow and its log noise.
_RUN_KERAS = ("run", "record", "compare", "selftest", "fuzz", "capture")


def entry() -> int:
    """The `harness` command: `main`, with TensorFlow's log noise filtered unless -v (harness/quiet.py). The
    filter works on the process's file descriptor 2, so it is set up here, for a command process, and never
    by `main`, which tests call inside pytest's own process."""
    args = build_parser().parse_args()
    if args.command in _RUN_KERAS and not getattr(args, "verbose", False):
        from harness import quiet  # noqa: PLC0415

        quiet.enable()
    with limits.overridden(**dict(args.limit)):
        return args.func(args)


if __name__ == "__main__":
    sys.exit(entry())
