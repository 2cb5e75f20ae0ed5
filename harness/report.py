"""Explain a comparison in words a person can act on in ten seconds.

Fixed anatomy, pinned by tests: the case and file; per failing output the mismatched count out of the
total, the largest absolute and relative differences, the tolerance and where it came from, the verdict
(which oracle is the odd one out), and a table of the first mismatches as (batch, step, unit) with the
system's (KERAS, ...), REFERENCE and EXPECTED values side by side, cut at MAX_ROWS and saying so. The axes
of each output and the configuration line come from the layer spec.
"""

from __future__ import annotations

import numpy as np

from harness import compare
from harness.case import Case
from harness.compare import EXPECTED, REFERENCE, SYSTEM, TWIN, OutputDiff
from harness.precision import compute_dtype
from harness.tolerances import MEASURED, NOISE_SAFETY, TWIN_ATOL, TWIN_RTOL, TWIN_SAFETY, TWIN_SCALE_FLOOR

MAX_ROWS = 10


def _short(value: float) -> str:
    """2 significant digits, exponent without padding: 3.1e-6, 1.0e-5, 0.25, 40."""
    if value == 0 or 1e-3 <= abs(value) < 1e4:
        return f"{value:.2g}"
    mantissa, exponent = f"{value:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def _allowed(tolerance, scale: float, left: str) -> str:
    """`left <= A + R x |reference| (where the numbers come from)`, A being atol already multiplied by the scale."""
    scaled = (f"; atol {_short(tolerance.atol)} x {_short(scale)}, the largest |reference|" if scale > max(tolerance.scale_floor, 1)
              else f"; atol {_short(tolerance.atol)} x {_short(scale)}, max({tolerance.scale_floor:g}, the largest |reference|)"
              if scale != 1 else "")
    if tolerance.per_element:
        dtype = tolerance.source.split()[0]
        safety = f"{MEASURED[dtype][0]:g} x" if dtype in MEASURED else "a multiple of"
        floors = np.asarray(tolerance.noise_floor, dtype=float)
        low = _short(float(floors.min())) if floors.size else "0"
        floor = (f", or {safety} that element's measured rounding noise where larger ({low} to "
                 f"{_short(tolerance.largest_floor)} here)")
    else:
        floor = (f"; never less than {_short(tolerance.noise_floor)} ({NOISE_SAFETY:g} x the rounding noise measured "
                 "for this case)"
                 if tolerance.noise_floor > tolerance.atol * scale else "")  # said only where it raises the bound
    return (f"{left} <= {_short(tolerance.atol * scale)} + {_short(tolerance.rtol)} x |reference| "
            f"({tolerance.source}{scaled}){floor}")


def tolerance_lines(diff: OutputDiff) -> list[str]:
    """The bound in words and numbers: what may differ, by how much, and where the numbers come from."""
    lines = [f"    allowed: {_allowed(diff.tolerance, diff.scale, f'|{diff.label} - reference|')}"]
    if diff.twin_bound is not None:
        bounds = np.asarray(diff.twin_bound, dtype=float)
        low, high = (_short(float(bounds.min())), _short(float(bounds.max()))) if bounds.size else ("0", "0")
        lines.append(f"    and: |{diff.label} - twin| <= max({TWIN_RTOL:g}u x sqrt(steps) x |twin|, 1 ulp of it) + {TWIN_ATOL:g}u x sqrt(steps) x "
                     f"max(1/{1 / TWIN_SCALE_FLOOR:g}, the largest |reference|), or "
                     f"{TWIN_SAFETY:g} x that element's measured rounding noise ({low} to {high} here); the twin is "
                     "the reference rounded op by op as TensorFlow's 16-bit CPU kernels round "
                     "(harness/twin_tensorflow.py)")
    if diff.has_expected:
        hand = f"|hand - {diff.label}|, |hand - reference|"
        held_to = diff.expected_tolerance or diff.tolerance.hand_values
        lines.append(f"    hand values: {_allowed(held_to, diff.scale, hand)}" if held_to
                     else f"    hand values: {hand} held to the same bound")
    return lines


def _num(value: float, case: Case) -> str:
    if np.isnan(value):
        return "nan"
    return f"{value:.17g}" if compute_dtype(case.dtype) == "float64" else f"{value:.9g}"


def _config_line(case: Case) -> str:
    shown, flags = case.spec.describe(case.config)
    if any(call.mask is not None for call in case.calls):
        flags.append("masked")
    shape = "x".join(str(n) for n in case.calls[0].input.shape)
    parts = shown + [f"dtype={case.dtype}", f"input {shape}"] + flags
    return f"{case.layer}(" + ", ".join(parts) + ")"


def _two_way_hint(diff: OutputDiff, case: Case) -> str:
    """Which side is likely wrong when there is no hand value to break the tie."""
    label = diff.label
    system_bad = [m for m in diff.mismatches
                  if not np.isfinite(m.values[SYSTEM]) and np.isfinite(m.values[REFERENCE])]
    ref_bad = [m for m in diff.mismatches if np.isfinite(m.values[SYSTEM]) and not np.isfinite(m.values[REFERENCE])]
    settle = (f"add hand-computed `expected` values to settle it, or run `harness explain {case.path}` "
              "to check the reference step by step")
    if system_bad:
        return (f"{label} returned NaN/Inf where the float64 reference is finite ({len(system_bad)} elements): "
                f"overflow in {compute_dtype(case.dtype)} or a {label} defect; {settle}")
    if ref_bad:
        return (f"the reference returned NaN/Inf where {label} is finite ({len(ref_bad)} elements): "
                f"the reference or the case's non-finite inputs are handled differently; {settle}")
    if diff.max_error_ratio <= 100:
        return (f"the difference is small (at most {diff.max_error_ratio:.3g}x the tolerance): rounding in "
                f"{compute_dtype(case.dtype)} beyond the tolerance, or a subtle defect (a slightly scaled gate or "
                f"bias); {settle}")
    return (f"the difference is far beyond rounding: {label} and the reference compute different things. The "
            f"reference is float64 and shares no code with {label}, so {label} is the likely culprit unless the "
            f"reference models this config differently; {settle}")


def _table(diff: OutputDiff, case: Case, call_label: str) -> list[str]:
    has_expected = any(EXPECTED in m.values for m in diff.mismatches)
    header = [f"{call_label}{diff.output}[{case.spec.axes(diff.output)}]", diff.label.upper(), "REFERENCE"]
    if any(TWIN in m.values for m in diff.mismatches):
        header.append("TWIN")
    if has_expected:
        header += ["EXPECTED", "odd one out"]
    odd_names = {SYSTEM: diff.label.lower()}
    rows = [header]
    for m in diff.mismatches[:MAX_ROWS]:
        row = ["[" + ", ".join(map(str, m.index)) + "]", _num(m.values[SYSTEM], case), _num(m.values[REFERENCE], case)]
        if TWIN in m.values:
            row.append(_num(m.values[TWIN], case))
        if has_expected:
            row += [_num(m.values[EXPECTED], case), odd_names.get(m.odd_one, m.odd_one or "")]
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["    " + "  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
    if len(diff.mismatches) > MAX_ROWS:
        lines.append(f"    ... {len(diff.mismatches) - MAX_ROWS} more mismatched elements not shown "
                     f"(showing the first {MAX_ROWS} of {len(diff.mismatches)})")
    return lines


def output_report(diff: OutputDiff, case: Case, call: int, modes: tuple[str, ...] = ("eager",)) -> list[str]:
    """The explanation of one failing output."""
    parts = ([diff.mode] if len(modes) > 1 else []) + ([f"call {call}"] if len(case.calls) > 1 else [])
    call_label = f"{', '.join(parts)}: " if parts else ""
    if diff.structure_problem:
        return [f"  {call_label}{diff.output}: {diff.structure_problem}"]
    count = len(diff.mismatches)
    lines = [
        f"  {call_label}{diff.output}: {count} of {diff.total} elements mismatched ({100.0 * count / diff.total:.1f}%); "
        f"largest absolute difference {diff.max_abs:.3g}, largest relative difference {diff.max_rel:.3g}",
        *tolerance_lines(diff),
        f"    verdict: {diff.verdict}",
    ]
    if diff.verdict == compare.two_way(diff.label):
        lines.append(f"    likely: {_two_way_hint(diff, case)}")
    if diff.output == "sequences" and case.config.get("go_backwards"):
        lines.append("    note: go_backwards: step is in processing order (step 0 is the last input step)")
    return lines + _table(diff, case, call_label)


def _failing_names(case: Case, modes: tuple[str, ...], failing: list[tuple[int, OutputDiff]]) -> str:
    """"h, c" for one mode; "h, c in eager, graph" when the modes fail alike; "graph: h; xla: c, h" otherwise."""
    by_mode: dict[str, list[str]] = {}
    for number, diff in failing:
        by_mode.setdefault(diff.mode, []).append(f"call {number} {diff.output}" if len(case.calls) > 1 else diff.output)
    if len(modes) == 1:
        return ", ".join(by_mode[modes[0]])
    lists = list(by_mode.values())
    if all(names == lists[0] for names in lists):
        return f"{', '.join(lists[0])} in {', '.join(by_mode)}"
    return "; ".join(f"{mode}: {', '.join(names)}" for mode, names in by_mode.items())


def mode_spread(outputs: dict[str, list[dict]]) -> list[str]:
    """How far each mode's outputs are from the first mode's: said even when all pass, because a mode
    that drifts from the others is the first sign of a mode-specific code path."""
    if len(outputs) < 2:
        return []
    (first, base), *others = outputs.items()
    lines = []
    for mode, calls in others:
        pairs = [(a[name], b[name]) for a, b in zip(base, calls) for name in a if name in b]
        differing = sum(int(np.sum(~((x == y) | (np.isnan(x) & np.isnan(y))))) for x, y in pairs)
        total = sum(x.size for x, _ in pairs)
        if differing == 0:
            lines.append(f"{mode} and {first}: bit-identical")
            continue
        with np.errstate(invalid="ignore"):
            largest = max(float(np.nanmax(np.abs(x - y), initial=0.0)) for x, y in pairs)
        lines.append(f"{mode} differs from {first} in {differing} of {total} elements, by at most {largest:.3g}")
    return lines


def summary_line(case: Case, diffs: list[tuple[int, OutputDiff]], modes: tuple[str, ...] = ("eager",),
                 errors: dict | None = None) -> str:
    errors = errors or {}
    failing = [(n, d) for n, d in diffs if not d.passed]
    margin = max((d.max_error_ratio for _, d in diffs), default=0.0)
    agreeing = [m for m in modes if m not in errors and all(d.passed for _, d in diffs if d.mode == m)]
    others = f" ({', '.join(agreeing)} agree{'s' if len(agreeing) == 1 else ''})" if len(modes) > 1 and agreeing else ""
    if failing:
        return f"mismatch in {_failing_names(case, modes, failing)}: {failing[0][1].verdict}{others}"
    if errors:
        return "; ".join(str(e) for e in errors.values()) + others
    count = len({(n, d.output) for n, d in diffs})
    in_modes = f" in every mode ({', '.join(modes)})" if len(modes) > 1 else ""
    agree = "1 output agrees" if count == 1 else f"{count} outputs agree"
    return f"{agree}{in_modes}; largest error {margin:.2g}x tolerance"


def case_report(case: Case, diffs: list[tuple[int, OutputDiff]], flavor: str, modes: tuple[str, ...] = ("eager",),
                errors: dict | None = None, spread: list[str] | None = None, label: str = "Keras") -> str:
    """Full report for one compared case (pass or fail)."""
    errors = errors or {}
    failing = [(n, d) for n, d in diffs if not d.passed]
    status = "FAILED" if failing else "KERAS-ERROR" if errors else "PASSED"  # outcome names, whatever the system
    lines = [f"{status} {case.name} ({case.path})",
             f"  {_config_line(case)}; modes: {', '.join(modes)}; reference semantics: {flavor}"]
    for mode in modes:
        if len(modes) > 1 and mode not in errors:
            bad = sorted({d.output for _, d in failing if d.mode == mode})
            lines.append(f"  {mode}: " + (f"FAILED ({', '.join(bad)})" if bad else "agrees with the reference"))
        elif mode in errors:
            lines.append(f"  {mode}: KERAS-ERROR: {errors[mode]}")
    lines.extend(f"  modes compared: {line}" for line in spread or [])
    overflowed = sum(d.overflowed for _, d in diffs)
    if overflowed:
        lines.append(f"  note: {overflowed} elements overflowed {compute_dtype(case.dtype)} in {label} and in the "
                     "rounded reference alike; accepted as the dtype's range, not a defect")
    beyond = sum(d.beyond_range for _, d in diffs)
    if beyond:
        lines.append(f"  note: {beyond} elements not compared: their exact value lies beyond {compute_dtype(case.dtype)}'s "
                     "range, in batch rows where the rounded reference runs out of range too")
    if not failing and not errors:
        lines.append(f"  {summary_line(case, diffs, modes)}")
    shown: dict[tuple[int, str], list[OutputDiff]] = {}
    for call, diff in failing:
        same = next((d for d in shown.get((call, diff.output), []) if _same_mismatches(d, diff)), None)
        if same is None:
            lines.extend(output_report(diff, case, call, modes))
            shown.setdefault((call, diff.output), []).append(diff)
        else:  # modes that fail alike are told once
            where = f"{diff.mode}, call {call}" if len(case.calls) > 1 else diff.mode
            count = len(diff.mismatches)
            lines.append(f"  {where}: {diff.output}: the same {count} mismatched element{'s' if count != 1 else ''}, "
                         f"with the same values, as in {same.mode}")
    return "\n".join(lines)


def _same_mismatches(a: OutputDiff, b: OutputDiff) -> bool:
    def key(diff: OutputDiff):
        return diff.structure_problem, [(m.index, repr(m.values[SYSTEM])) for m in diff.mismatches]

    return key(a) == key(b)
