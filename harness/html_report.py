"""One self-contained HTML page for `harness run --html FILE` and `harness compare --html FILE`.

Fed from the objects the text and JSON reports use: CaseResults with their OutputDiffs (a failing output
keeps its element arrays, see compare.OutputDiff.arrays) and a recording's Comparison. Pictures are
matplotlib figures drawn with the Agg canvas (no display, no pyplot state) and embedded as base64 PNG, so
the page loads nothing from anywhere. Every string from a case file or a recording (names, paths,
descriptions, messages quoting them) is escaped: case files are hostile input. The page is bounded:
pictures for the first MAX_PICTURED_CASES failing cases, MAX_PICTURED_OUTPUTS outputs each; the rest are
listed, and the page says so.
"""

from __future__ import annotations

import base64
import html
import io
from collections import Counter

import numpy as np

from harness import layers, report
from harness.compare import EXPECTED, REFERENCE, SYSTEM, OutputDiff
from harness.report import MAX_ROWS
from harness.runner import OUTCOMES

MAX_PICTURED_CASES = 20  # failing cases drawn; later ones are listed with their messages
MAX_PICTURED_OUTPUTS = 6  # failing outputs drawn per case (all targets together)
MAX_LISTED_PROBLEMS = 200  # non-failing problems (invalid, keras-error, ...) shown with their details
MAX_DETAILS_CHARS = 6000  # of one case's text report on the page
GREEN = ("passed", "xfailed", "xpassed", "skipped")
_FLOOR = 1e-6  # error ratios below this are drawn at it (log scales)

_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; max-width: 1400px; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-top: 1px solid #ccc; padding-top: .8em; }
h3 { font-size: 1em; margin-bottom: .3em; }
table { border-collapse: collapse; margin: .5em 0; }
td, th { border: 1px solid #ddd; padding: 2px 8px; text-align: left; vertical-align: top; font-size: .9em; }
td.num { text-align: right; font-family: monospace; }
.outcome { font-weight: bold; font-family: monospace; }
.passed, .xfailed, .skipped { color: #2a7a2a; } .failed, .keras-error, .harness-error, .timeout { color: #c0151b; }
.invalid { color: #9b1fa3; } .unsupported, .xpassed { color: #a86a00; } .skipped { color: #777; }
td.name { white-space: nowrap; }
.path { color: #666; font-family: monospace; font-size: .9em; }
.note { background: #fff8e1; border-left: 4px solid #e0b000; padding: .4em .8em; }
.pictures img { margin: 4px 8px 4px 0; border: 1px solid #eee; vertical-align: top; }
pre { background: #f6f6f6; padding: .6em; overflow-x: auto; font-size: .85em; white-space: pre-wrap; }
"""


def _e(value) -> str:
    """Escaped text: every string that reaches the page goes through here."""
    return html.escape(str(value), quote=True)


def _page(title: str, body: list[str]) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")


# --- pictures --------------------------------------------------------------------------------------------

def _figure(width: float, height: float, right: float = 0.97):
    from matplotlib.figure import Figure  # noqa: PLC0415 - matplotlib only when a page is asked for

    figure = Figure(figsize=(width, height), dpi=80)
    figure.subplots_adjust(left=0.12, right=right, bottom=0.16, top=0.86)  # fixed: a layout engine draws twice
    return figure


def _img(figure, css_class: str, alt: str) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img class="{css_class}" alt="{_e(alt)}" src="data:image/png;base64,{data}">'


def _drawing():
    import matplotlib  # noqa: PLC0415

    return matplotlib.rc_context({"font.size": 9})


def _plain(text: str) -> str:
    """Text for a figure: a `$` is never the start of mathtext (the labels are the harness's own words, but
    a system's label or an output name must not be able to break the drawing)."""
    return text.replace("$", r"\$")


def _plain_log_ticks(axis) -> None:
    """"1e+04", not mathtext: parsing a math label per tick is a third of a picture's drawing time."""
    from matplotlib.ticker import FuncFormatter, NullFormatter  # noqa: PLC0415

    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_formatter(NullFormatter())


def _integer_ticks(axis) -> None:
    from matplotlib.ticker import MaxNLocator  # noqa: PLC0415

    axis.set_major_locator(MaxNLocator(integer=True))


def _axes_names(output: str, ndim: int) -> list[str]:
    names = [n.strip() for n in layers.get(None).axes(output).split(",")]  # the same axes for every layer
    if len(names) != ndim:
        names = [f"axis {i}" for i in range(ndim)]
    return names


def _grid(ratio: np.ndarray, names: list[str]) -> tuple[np.ndarray, str, str, str]:
    """A 2-D picture of the ratios: leading axes folded by their largest value (NaN wins), with time
    along x when the output has steps. Returns (rows x columns, x name, y name, what was folded)."""
    folded = []
    while ratio.ndim > 2:
        folded.append(names.pop(0))
        ratio = np.max(ratio, axis=0)  # NaN propagates: a NaN anywhere stays visible
    if ratio.ndim == 0:
        ratio, names = ratio.reshape(1, 1), ["", "index"]
    elif ratio.ndim == 1:
        ratio, names = ratio.reshape(1, -1), [""] + names
    if names[0] == "step":  # (step, unit) -> steps along x
        ratio, names = ratio.T, names[::-1]
    return ratio, names[1], names[0], ", ".join(folded)


def _line(ratio: np.ndarray, names: list[str]) -> tuple[np.ndarray, str]:
    """The largest ratio along the step axis (or the last axis when the output has no steps)."""
    axis = names.index("step") if "step" in names else ratio.ndim - 1
    if ratio.ndim == 0:
        return ratio.reshape(1), "index"
    moved = np.moveaxis(ratio, axis, -1).reshape(-1, ratio.shape[axis])
    return np.max(moved, axis=0), names[axis]


def _expected_ratio(arrays: dict) -> np.ndarray | None:
    """|expected - reference| / bound, 0 where equal (NaN on both sides included)."""
    if EXPECTED not in arrays:
        return None
    expected, reference = arrays[EXPECTED], arrays[REFERENCE]
    with np.errstate(invalid="ignore", divide="ignore"):
        same = (expected == reference) | (np.isnan(expected) & np.isnan(reference))
        return np.where(same, 0.0, np.abs(expected - reference) / arrays["bound"])


def first_beyond(line: np.ndarray) -> int | None:
    """Where divergence starts: the first index whose error exceeds the tolerance (or is NaN/Inf)."""
    beyond = np.flatnonzero(~(line <= 1.0))
    return int(beyond[0]) if beyond.size else None


def heat_map(diff: OutputDiff) -> str:
    """|system - reference| / tolerance over the output's elements, the tolerance as the colour break."""
    from matplotlib.colors import LinearSegmentedColormap, LogNorm  # noqa: PLC0415

    names = _axes_names(diff.output, diff.arrays["ratio"].ndim)
    grid, x_name, y_name, folded = _grid(np.asarray(diff.arrays["ratio"], dtype=np.float64), list(names))
    finite = grid[np.isfinite(grid)]
    positive = finite[finite > 0]
    vmin = min(0.1, max(_FLOOR, float(positive.min()) if positive.size else 0.1))
    vmax = max(10.0, float(finite.max()) if finite.size else 10.0)
    norm = LogNorm(vmin=vmin, vmax=vmax, clip=False)
    edge = float(norm(1.0))
    colours = LinearSegmentedColormap.from_list(
        "error-to-tolerance", [(0.0, "#f4f8fc"), (edge, "#4f8fc0"), (edge, "#fdb863"), (1.0, "#8b0012")]
    ).with_extremes(under="#ffffff", bad="#000000")
    with _drawing():
        figure = _figure(6.4, 3.4, right=0.99)
        axes = figure.add_subplot()
        shown = np.ma.masked_invalid(np.where(grid == 0, vmin / 2, grid))
        image = axes.imshow(shown, aspect="auto", interpolation="nearest", cmap=colours, norm=norm, origin="lower")
        bar = figure.colorbar(image, ax=axes, extend="min", pad=0.02)
        bar.ax.axhline(1.0, color="black", linewidth=1)
        bar.set_label("error / tolerance (1: the tolerance)")
        _plain_log_ticks(bar.ax.yaxis)
        axes.set_xlabel(_plain(x_name))
        axes.set_ylabel(_plain(y_name))
        _integer_ticks(axes.xaxis)
        _integer_ticks(axes.yaxis)
        if grid.shape[0] == 1:
            axes.set_yticks([])
        if not (finite >= vmin).any() and np.isfinite(grid).all():
            axes.text(0.5, 0.5, f"{diff.label} equals the reference\n(error 0 everywhere)", transform=axes.transAxes,
                      ha="center", va="center", color="#555555")
        title = f"{diff.output}: |{diff.label} - reference| / tolerance"
        title += "\nabove 1 (orange to red) is a mismatch"
        title += "; black: NaN/Inf on one side" if (~np.isfinite(grid)).any() else ""
        axes.set_title(_plain(title + (f"; largest over {folded}" if folded else "")), fontsize=9)
        return _img(figure, "heatmap", f"heat map of {diff.output}: |system - reference| / tolerance")


def error_line(diff: OutputDiff) -> tuple[str, int | None, str]:
    """The largest error / tolerance along the steps (or the last axis), the system's and the hand
    value's; returns (the picture, the first index beyond the tolerance, that axis's name)."""
    ratio = np.asarray(diff.arrays["ratio"], dtype=np.float64)
    names = _axes_names(diff.output, ratio.ndim)
    system_line, x_name = _line(ratio, names)
    expected = _expected_ratio(diff.arrays)
    start = first_beyond(system_line)
    with _drawing():
        figure = _figure(5.6, 3.4)
        axes = figure.add_subplot()
        xs = np.arange(system_line.size)
        marker = "o" if system_line.size <= 60 else None
        style = "-" if x_name == "step" else "none"  # units are not a sequence: points, not a line
        lines = [(system_line, f"{diff.label} vs reference", "#c0151b")]
        if expected is not None:
            lines.append((_line(expected, names)[0], "hand value vs reference", "#3060b0"))
        top = _FLOOR
        for values, label, colour in lines:
            finite = np.isfinite(values)
            top = max(top, float(values[finite].max(initial=0.0)))
            axes.plot(xs, np.where(finite, np.maximum(values, _FLOOR), np.nan), marker=marker or ".",
                      markersize=4, linestyle=style, color=colour, label=_plain(label))
        for values, label, colour in lines:
            bad = ~np.isfinite(values)
            if bad.any():
                axes.plot(xs[bad], np.full(bad.sum(), max(10.0, top) * 3), "x", color=colour,
                          label=_plain(f"{label}: NaN/Inf"))
        axes.axhline(1.0, color="black", linestyle="--", linewidth=1, label="tolerance")
        if start is not None and x_name == "step":
            axes.axvline(start, color="#c0151b", linestyle=":", linewidth=1)
            axes.annotate(f"beyond from step {start}", (start, 1.0), textcoords="offset points", xytext=(4, 6),
                          fontsize=8, color="#c0151b")
        axes.set_yscale("log")
        _plain_log_ticks(axes.yaxis)
        axes.set_ylim(bottom=_FLOOR / 2)
        axes.set_xlabel(_plain(x_name))
        _integer_ticks(axes.xaxis)
        axes.set_ylabel("largest error / tolerance")
        over = "over batch and unit" if x_name == "step" else "over the other axes"
        axes.set_title(_plain(f"{diff.output}: largest error / tolerance per {x_name}, {over}\n"
                              f"(below {_FLOOR:g} drawn at {_FLOOR:g})"), fontsize=9)
        axes.legend(fontsize=7, loc="best")
        return _img(figure, "lineplot", f"line plot of {diff.output}: error / tolerance along {x_name}"), start, x_name


def ulp_histogram(counts: tuple[int, ...], labels: tuple[str, ...]) -> str:
    with _drawing():
        figure = _figure(9.0, 3.4)
        axes = figure.add_subplot()
        last = max((i for i, n in enumerate(counts) if n), default=0)
        shown = max(last + 1, 4)
        bars = axes.bar(range(shown), counts[:shown], color=["#aaaaaa"] + ["#4f8fc0"] * (shown - 1))
        axes.bar_label(bars, [str(n) if n else "" for n in counts[:shown]], fontsize=8)
        axes.set_xticks(range(shown), [_plain(label) for label in labels[:shown]], rotation=45, ha="right")
        axes.set_yscale("log")
        _plain_log_ticks(axes.yaxis)
        axes.set_ylim(0.5, max(max(counts), 1) * 3)  # room for the labels; a count of 1 stays visible
        axes.set_xlabel("change in units in the last place of the case's compute dtype (at the recorded value)")
        axes.set_ylabel("elements")
        axes.set_title("output elements by their change since the recording (grey: unchanged)", fontsize=9)
        return _img(figure, "histogram", "histogram of the changes in ulps")


# --- harness run ----------------------------------------------------------------------------------------

def _num(value: float) -> str:
    return "nan" if np.isnan(value) else f"{value:.9g}"


def _values_table(diff: OutputDiff) -> str:
    """The oracles' values at the first mismatches, as in the text report."""
    has_expected = any(EXPECTED in m.values for m in diff.mismatches)
    head = ["index", diff.label.upper(), "REFERENCE"] + (["EXPECTED", "odd one out"] if has_expected else [])
    rows = ["<tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr>"]
    for m in diff.mismatches[:MAX_ROWS]:
        cells = ["[" + ", ".join(map(str, m.index)) + "]", _num(m.values[SYSTEM]), _num(m.values[REFERENCE])]
        if has_expected:
            odd = diff.label.lower() if m.odd_one == SYSTEM else m.odd_one or ""
            cells += [_num(m.values[EXPECTED]), odd]
        rows.append("<tr>" + "".join(f'<td class="num">{_e(c)}</td>' for c in cells) + "</tr>")
    more = (f"<p>... {len(diff.mismatches) - MAX_ROWS} more mismatched elements not shown (the first {MAX_ROWS} "
            f"of {len(diff.mismatches)})</p>") if len(diff.mismatches) > MAX_ROWS else ""
    return f'<table class="values">{"".join(rows)}</table>{more}'


def _output_section(diff: OutputDiff, call: int, several_calls: bool, several_modes: bool) -> str:
    where = ([diff.mode] if several_modes else []) + ([f"call {call}"] if several_calls else [])
    axes = layers.get(None).axes(diff.output)
    head = f"<h3>{_e(', '.join(where) + ': ' if where else '')}{_e(diff.output)}[{_e(axes)}]</h3>"
    if diff.structure_problem or diff.arrays is None:
        return head + f"<p>{_e(diff.structure_problem or 'no element values kept')}: no pictures</p>"
    count = len(diff.mismatches)
    parts = [head, f"<p>{count} of {diff.total} elements mismatched ({100.0 * count / diff.total:.1f}%); largest "
                   f"absolute difference {diff.max_abs:.3g}, largest error {diff.max_error_ratio:.3g}x tolerance<br>"
                   f"{'<br>'.join(_e(line.strip()) for line in report.tolerance_lines(diff))}<br>verdict: <b>{_e(diff.verdict)}</b></p>"]
    heat = heat_map(diff)
    line, start, axis = error_line(diff)
    if start is not None:
        parts.append(f"<p>|{_e(diff.label)} - reference| first exceeds the tolerance at {_e(axis)} {start}</p>")
    elif EXPECTED in diff.arrays:
        parts.append(f"<p>{_e(diff.label)} stays within the tolerance of the reference everywhere: the hand value "
                     "is what differs (blue line)</p>")
    parts.append(_values_table(diff))
    parts.append(f'<div class="pictures">{heat}{line}</div>')
    return "\n".join(parts)


def _same(a: OutputDiff, b: OutputDiff) -> bool:
    def key(diff):
        return diff.structure_problem, [(m.index, repr(m.values[SYSTEM])) for m in diff.mismatches]

    return key(a) == key(b)


def _pictured_outputs(result, budget: int) -> tuple[list[str], int]:
    """The sections of one target's failing outputs, modes that fail alike told once; (html, drawn)."""
    failing = [(call, d) for call, d in result.diffs if not d.passed]
    several_calls = len({call for call, _ in result.diffs}) > 1
    several_modes = len(result.modes) > 1
    parts, shown, drawn, skipped = [], [], 0, 0
    for call, diff in failing:
        same = next((d for c, d in shown if c == call and d.output == diff.output and _same(d, diff)), None)
        if same is not None:
            count = len(diff.mismatches)
            parts.append(f"<p>{_e(diff.mode)}: {_e(diff.output)}: the same {count} mismatched "
                         f"element{'s' if count != 1 else ''}, with the same values, as in {_e(same.mode)}</p>")
            continue
        if drawn >= budget:
            skipped += 1
            continue
        parts.append(_output_section(diff, call, several_calls, several_modes))
        shown.append((call, diff))
        drawn += 1
    if skipped:
        parts.append(f'<p class="note">{skipped} more failing outputs of this case are not drawn (at most '
                     f"{MAX_PICTURED_OUTPUTS} per case); the text report below has them all</p>")
    return parts, drawn


def _details(text: str) -> str:
    clipped = text if len(text) <= MAX_DETAILS_CHARS else (
        text[:MAX_DETAILS_CHARS] + f"\n... ({len(text) - MAX_DETAILS_CHARS} more characters: see the text report)")
    return f"<details><summary>the text report</summary><pre>{_e(clipped)}</pre></details>"


def _badge(outcome: str) -> str:
    return f'<span class="outcome {_e(outcome)}">{_e(outcome.upper())}</span>'


def _case_section(result, anchor: str, description: str) -> str:
    parts = [f'<section class="case" id="{anchor}">', f"<h2>{_badge(result.outcome)} {_e(result.name)}</h2>",
             f'<p class="path">{_e(result.path)}</p>']
    if description:
        parts.append(f'<p class="description">{_e(description)}</p>')
    parts.append(f"<p>{_e(result.message)}</p>")
    runs = result.targets if len(result.targets) > 1 else {"": result}
    if len(runs) > 1:
        parts.append("<table><tr><th>target</th><th>outcome</th><th>message</th></tr>" + "".join(
            f"<tr><td>{_e(name)}</td><td>{_badge(r.outcome)}</td><td>{_e(r.message)}</td></tr>"
            for name, r in runs.items()) + "</table>")
    budget = MAX_PICTURED_OUTPUTS
    for name, run in runs.items():
        if not any(not d.passed for _, d in run.diffs):
            continue
        if name:
            parts.append(f"<h3>target {_e(name)}: {_badge(run.outcome)}</h3>")
        sections, drawn = _pictured_outputs(run, budget)
        budget -= drawn
        parts.extend(sections)
    parts += [_details(result.details), "</section>"]
    return "\n".join(parts)


def _failing(result) -> bool:
    """A failed case with element values to draw (on some target)."""
    runs = result.targets.values() if len(result.targets) > 1 else [result]
    return result.outcome == "failed" and any(not d.passed for r in runs for _, d in r.diffs)


def run_page(results: list, seconds: float, versions: dict | None = None, interrupted: str = "",
             descriptions: dict[str, str] | None = None) -> str:
    """The page of a `harness run`: the summary, then per failing case its description, the oracles'
    values and the pictures. `descriptions`: case name -> the case file's description."""
    descriptions = descriptions or {}
    counts = Counter(r.outcome for r in results)
    failing = [i for i, r in enumerate(results) if _failing(r)]
    pictured = set(failing[:MAX_PICTURED_CASES])
    problems = [i for i, r in enumerate(results) if not r.ok and i not in pictured]
    anchors = {i: f"case-{i + 1}" for i in pictured | set(problems[:MAX_LISTED_PROBLEMS])}
    body = [f"<h1>harness run: {len(results)} cases in {seconds:.1f}s</h1>"]
    if versions:
        body.append("<p>" + ", ".join(f"{_e(k)} {_e(v)}" for k, v in versions.items()) + "</p>")
    if interrupted:
        body.append(f'<p class="note">{_e(interrupted)}</p>')
    body.append("<table><tr><th>outcome</th><th>cases</th></tr>" + "".join(
        f'<tr><td>{_badge(o)}</td><td class="num">{counts[o]}</td></tr>' for o in OUTCOMES if counts[o]) + "</table>")
    verdict = "every case is green" if all(r.ok for r in results) else f"{sum(not r.ok for r in results)} cases are not green"
    body.append(f"<p><b>{_e(verdict)}</b>" + (f"; {len(failing)} failed with mismatched values" if failing else "")
                + "</p>")
    if len(failing) > MAX_PICTURED_CASES:
        body.append(f'<p class="note">Pictures for the first {MAX_PICTURED_CASES} of {len(failing)} failing cases '
                    f"(at most {MAX_PICTURED_OUTPUTS} outputs each), to keep the page small; the other "
                    f"{len(failing) - MAX_PICTURED_CASES} are listed under Cases and under Other problems, with "
                    "their text reports.</p>")
    body.append("<h2>Cases</h2>")
    rows = []
    for i, r in enumerate(results):
        name = f'<a href="#{anchors[i]}">{_e(r.name)}</a>' if i in anchors else _e(r.name)
        per_target = (" ".join(f"{_e(t)}: {_badge(tr.outcome)}" for t, tr in r.targets.items())
                      if len(r.targets) > 1 else "")
        rows.append(f"<tr><td>{_badge(r.outcome)}</td><td class=\"name\">{name}</td><td class=\"path\">{_e(r.path)}</td>"
                    f'<td class="num">{r.duration_s:.2f}s</td><td>{per_target}{"<br>" if per_target else ""}'
                    f"{_e(r.message)}</td></tr>")
    body.append("<table><tr><th>outcome</th><th>case</th><th>file</th><th>time</th><th>message</th></tr>"
                + "".join(rows) + "</table>")
    if pictured:
        body.append("<h2>Failing cases</h2><p>Heat maps: |system - reference| / tolerance per element (above 1 is a "
                    "mismatch). Line plots: the largest of it per step (or per unit for a final state), with the hand "
                    "value's error when the case has one.</p>")
        body.extend(_case_section(results[i], anchors[i], descriptions.get(results[i].name, ""))
                    for i in sorted(pictured))
    if problems:
        body.append("<h2>Other problems</h2>")
        for i in problems[:MAX_LISTED_PROBLEMS]:
            r = results[i]
            body.append(f'<section class="case" id="{anchors[i]}"><h3>{_badge(r.outcome)} {_e(r.name)}</h3>'
                        f'<p class="path">{_e(r.path)}</p><p>{_e(r.message)}</p>{_details(r.details)}</section>')
        if len(problems) > MAX_LISTED_PROBLEMS:
            body.append(f'<p class="note">{len(problems) - MAX_LISTED_PROBLEMS} more are only in the table above.</p>')
    return _page("harness run", body)


# --- harness compare ------------------------------------------------------------------------------------

def compare_page(comparison) -> str:
    """The page of a `harness compare`: versions, counts, the ulp histogram, and the change of every case."""
    from harness.recording.classify import BEYOND, IDENTICAL, KINDS, ULP_LABELS  # noqa: PLC0415

    old, new = comparison.old, comparison.new
    body = ["<h1>harness compare: recorded vs installed</h1>",
            "<table><tr><th></th><th>recorded</th><th>now</th></tr>" + "".join(
                f"<tr><td>{_e(k)}</td><td>{_e(old.get(k))}</td><td>{_e(new.get(k))}</td></tr>"
                for k in ("tensorflow", "keras", "keras_flavor", "numpy", "python", "platform", "target", "harness"))
            + "</table>"]
    counts = Counter(c.kind for c in comparison.changes)
    body.append("<p>" + ", ".join(f"<b>{counts[k]}</b> {_e(k)}" for k in KINDS if counts[k]) + "</p>")
    histogram = [sum(c.ulp_counts[i] for c in comparison.changes if c.ulp_counts) for i in range(len(ULP_LABELS))]
    compared = [c for c in comparison.changes if c.ulp_counts]
    if compared:
        changed = sum(histogram[1:])
        body.append(f"<h2>Changes in ulps</h2><p>{changed} of {sum(histogram)} finite output elements of "
                    f"{len(compared)} compared cases changed.</p>")
        body.append(f'<div class="pictures">{ulp_histogram(tuple(histogram), ULP_LABELS)}</div>')
    else:
        body.append("<p>No case was compared: no histogram.</p>")
    order = sorted(comparison.changes, key=lambda c: (KINDS.index(c.kind), -c.max_ulps))
    listed = [c for c in order if c.kind != IDENTICAL]
    body.append("<h2>Changes per case</h2>")
    if listed:
        body.append("<table><tr><th>case</th><th>change</th><th>largest change (ulps)</th><th>detail</th>"
                    "<th>cause</th></tr>" + "".join(
                        f'<tr><td>{_e(c.name)}</td><td class="{"failed" if c.kind == BEYOND else ""}">{_e(c.kind)}</td>'
                        f'<td class="num">{c.max_ulps:.3g}</td><td>{_e(c.detail)}</td><td>{_e(c.cause)}</td></tr>'
                        for c in listed) + "</table>")
    identical = [c.name for c in order if c.kind == IDENTICAL]
    if identical:
        body.append(f"<details><summary>{len(identical)} bit-identical cases</summary><p>"
                    + ", ".join(_e(n) for n in identical) + "</p></details>")
    return _page("harness compare", body)
