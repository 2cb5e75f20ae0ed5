"""Rendering a comparison as Markdown, for a pull-request comment or docs/."""

from __future__ import annotations

from harness.recording.classify import EDITED, KINDS, MISSING, NEW, NOT_COMPARABLE, WITHIN, Comparison


def markdown(comparison: Comparison) -> str:
    """A report for a pull-request comment."""
    old, new = comparison.old, comparison.new
    counts = {kind: sum(1 for c in comparison.changes if c.kind == kind) for kind in KINDS}
    lines = ["## LSTM numerics: recorded vs installed", "",
             "| | recorded | now |", "|---|---|---|"]
    for key in ("tensorflow", "keras", "numpy", "python", "platform", "harness"):
        lines.append(f"| {key} | {old.get(key)} | {new.get(key)} |")
    lines += ["", " | ".join(f"**{counts[k]}** {k}" for k in KINDS if counts[k]), ""]
    beyond = comparison.beyond
    if beyond:
        lines += ["### Changed beyond tolerance", "", "| case | largest change | cause |", "|---|---|---|"]
        lines += [f"| `{c.name}` | {c.detail} | {c.cause} |" for c in beyond]
        lines.append("")
    within = [c for c in comparison.changes if c.kind == WITHIN]
    if within:
        lines += ["### Changed within tolerance", "", "| case | largest change |", "|---|---|"]
        lines += [f"| `{c.name}` | {c.max_ulps:.3g} ulps |" for c in sorted(within, key=lambda c: -c.max_ulps)]
        lines.append("")
    for kind in (EDITED, NEW, MISSING, NOT_COMPARABLE):
        items = [c for c in comparison.changes if c.kind == kind]
        if items:
            lines += [f"### {kind[0].upper() + kind[1:]}", ""] + [f"- `{c.name}`: {c.detail}" for c in items] + [""]
    return "\n".join(lines)
