"""The harness's documented, configurable limits, and the checks that apply them before anything is allocated.

A case file is data from anyone; these bounds make sure one file can only fail itself, within a known
time and memory, and never take down a run. Each limit has a default (below), and can be changed:

- for one process: the environment variable HARNESS_LIMIT_<NAME> (e.g. HARNESS_LIMIT_ELEMENTS=10000000);
- on the command line: `harness run --limit elements=10000000` (any subcommand, repeatable);
- under pytest: `pytest --harness-limit elements=10000000`.

A value is a number (`1e7` is read as 10000000). A case beyond a limit is `invalid`, with the field, the
limit's name and value, and how to raise it; a case that runs past `case_seconds` is a `timeout`.

The limits on the work and memory of a case are estimates made from the shapes before anything runs;
`bench/limits.py` measures what they cost on a machine (see the README's "Limits" section).
"""

from __future__ import annotations

import math
import os
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

from harness.errors import Problem


@dataclass(frozen=True)
class Limit:
    name: str
    default: float
    what: str  # what is limited, for the README and errors

    @property
    def env(self) -> str:
        return f"HARNESS_LIMIT_{self.name.upper()}"


LIMITS: dict[str, Limit] = {limit.name: limit for limit in (
    Limit("file_bytes", 4 * 1024 * 1024, "bytes in one case file"),
    Limit("depth", 32, "nesting depth of lists and mappings in a case file"),
    Limit("nodes", 1_000_000, "values (numbers, strings, lists, mappings) in a case file, aliases expanded"),
    Limit("aliases", 1_000, "YAML aliases (*name) in a case file"),
    Limit("elements", 4_000_000, "elements of one array, given or generated"),
    Limit("timesteps", 5_000, "timesteps of a case, summed over its calls"),
    Limit("work", 2e10, "multiply-adds of one pass over a case, summed over its calls"),
    Limit("memory_mb", 2048, "estimated peak memory of a case in MiB"),
    Limit("case_seconds", 600, "wall-clock seconds one case may run, reference and Keras in every mode"),
    Limit("recording_bytes", 1024 * 1024 * 1024, "bytes of one file of a recording that `harness compare` reads"),
)}

# Measured by bench/limits.py on the 2-core machine (the README's "Limits" section): peak resident memory
# of a case grows by about this many bytes per element of its inputs, weights and outputs (the
# reference's float64 copies and noise runs, Keras's tensors in each mode), with margin.
BYTES_PER_ELEMENT = 200
# Problems reported per file before the rest are summarised (a file of a million bad numbers must not
# produce a million problems, each costing a lookup of its line).
MAX_PROBLEMS = 20

_overrides: dict[str, float] = {}


def parse_value(name: str, text: str) -> float:
    """A limit's value from text; raises ValueError naming the limit."""
    if name not in LIMITS:
        raise ValueError(f"unknown limit {name!r}; limits: {', '.join(LIMITS)}")
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"limit {name}: not a number: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"limit {name}: must be a positive finite number, not {text!r}")
    return value


def parse_assignment(text: str) -> tuple[str, float]:
    """`name=value` (as given to --limit) -> (name, value); raises ValueError."""
    name, sep, value = text.partition("=")
    if not sep:
        raise ValueError(f"expected NAME=VALUE, not {text!r}; limits: {', '.join(LIMITS)}")
    name = name.strip().replace("-", "_")
    return name, parse_value(name, value.strip())


def configure(values: dict[str, float]) -> None:
    """Set limits for this process (the CLI's --limit, pytest's --harness-limit); they win over the environment."""
    for name, value in values.items():
        parse_value(name, str(value))
        _overrides[name] = float(value)


@contextmanager
def overridden(**values: float):
    """Limits changed within a block (tests)."""
    saved = dict(_overrides)
    configure(values)
    try:
        yield
    finally:
        _overrides.clear()
        _overrides.update(saved)


def get(name: str) -> float:
    """The limit in force: --limit / --harness-limit, else HARNESS_LIMIT_<NAME>, else the default."""
    if name in _overrides:
        return _overrides[name]
    limit = LIMITS[name]
    text = os.environ.get(limit.env)
    if text:
        try:
            return parse_value(name, text)
        except ValueError:
            pass  # a bad environment value falls back to the default; `harness --limit` checks its own
    return limit.default


def how_to_raise(name: str) -> str:
    return (f"raise it with `--limit {name}=N` (harness), `--harness-limit {name}=N` (pytest) "
            f"or {LIMITS[name].env}=N")


def _shown(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def exceeded(name: str, field: str, message: str, found: str) -> Problem:
    """The problem for a file beyond a limit: the field, what was found, the limit, and how to raise it."""
    return Problem(field, f"{message}: beyond the limit {name}={_shown(get(name))} ({LIMITS[name].what})",
                   found=found, hint=how_to_raise(name))


# ---------------------------------------------------------------- checks called by the loader

def array_problem(field: str, shape: tuple) -> Problem | None:
    """Before an array is generated (or after a literal one is read): its element count within `elements`."""
    count = math.prod(int(n) for n in shape)
    if count > get("elements"):
        return exceeded("elements", field, "array too large", f"shape {tuple(shape)}: {count} elements")
    return None


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def document_problems(doc: dict) -> list[Problem]:
    """Values the schema lets through that cannot mean anything: a non-finite tolerance (an infinite rtol
    passes any value, a NaN one compares false), non-finite parameters of a generated array."""
    problems = []
    tolerance = doc.get("tolerance", {})
    entries = [("tolerance", tolerance)] + [(f"tolerance.{k}", v) for k, v in tolerance.items() if isinstance(v, dict)]
    gradients = doc.get("gradients")
    if isinstance(gradients, dict) and isinstance(gradients.get("tolerance"), dict):
        entries.append(("gradients.tolerance", gradients["tolerance"]))
    if isinstance(doc.get("expected_tolerance"), dict):
        entries.append(("expected_tolerance", doc["expected_tolerance"]))
    for where, table in entries:
        for key in ("rtol", "atol"):
            if key in table and not _finite(table[key]):
                problems.append(Problem(f"{where}.{key}", "a tolerance must be a finite number",
                                        found=repr(table[key]), hint="write the bound you mean, e.g. 1e-5"))
    for where, spec in _random_specs(doc):
        for key in ("mean", "scale", "low", "high", "p"):
            if key in spec and not _finite(spec[key]):
                problems.append(Problem(f"{where}.random.{key}", "a parameter of a generated array must be finite",
                                        found=repr(spec[key])))
    return problems


def _random_specs(doc: dict):
    def arrays(prefix, entry):
        for key in ("input", "mask"):
            yield f"{prefix}{key}", entry.get(key)
        for key, value in (entry.get("initial_state") or {}).items():
            yield f"{prefix}initial_state.{key}", value
    candidates = [(f"weights.{k}", v) for k, v in doc.get("weights", {}).items()]
    candidates += list(arrays("", doc))
    for n, call in enumerate(doc.get("calls", [])):
        candidates += list(arrays(f"calls[{n}].", call))
    for where, value in candidates:
        if isinstance(value, dict) and isinstance(value.get("random"), dict):
            yield where, value["random"]


def case_problems(shapes: list[tuple[int, int, int]], width: int, weight_elements: int) -> list[Problem]:
    """Before a case runs: its timesteps, work and estimated memory. `shapes` is (batch, timesteps,
    features) per call; `width` the units of every recurrent state together; a step of one batch row
    costs about one multiply-add per weight element (x @ kernel + h @ recurrent_kernel, every layer)."""
    problems = []
    steps = sum(s[1] for s in shapes)
    if steps > get("timesteps"):
        problems.append(exceeded("timesteps", "input", "too many timesteps", f"{steps} timesteps"))
    work = sum(b * t * weight_elements for b, t, _ in shapes)
    if work > get("work"):
        problems.append(exceeded("work", "input", "too much work for one case",
                                 f"{work:.3g} multiply-adds (batch x timesteps x weight elements)"))
    elements = weight_elements + sum(b * t * f + b * t * width + 4 * b * width for b, t, f in shapes)
    mib = elements * BYTES_PER_ELEMENT / 2 ** 20
    if mib > get("memory_mb"):
        problems.append(exceeded("memory_mb", "input", "too much memory for one case",
                                 f"about {mib:.0f} MiB estimated ({elements} elements of inputs, weights and "
                                 f"outputs x {BYTES_PER_ELEMENT} bytes)"))
    return problems


# ---------------------------------------------------------------- the per-case watchdog

class CaseTimeout(BaseException):
    """Raised in the main thread when a case runs past `case_seconds`. A BaseException, like
    KeyboardInterrupt, so that no `except Exception` on the way (Keras's error wrapping) turns it into
    another outcome."""


@contextmanager
def watchdog(seconds: float | None = None):
    """Raise CaseTimeout in this block after `seconds` (default: the `case_seconds` limit).

    Uses SIGALRM (a real-time interval timer), so it works only in the main thread of a Unix process; elsewhere
    the block runs unwatched and only the checks made before running (timesteps, work) bound it. Python
    delivers the signal between bytecodes: an eager Keras loop or the reference's time loop stops within a
    step, but one long native call (a whole graph-mode loop) finishes first. An outer timer is restored after.
    """
    seconds = get("case_seconds") if seconds is None else seconds
    usable = (hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread())
    if not usable:
        yield
        return

    def expire(signum, frame):
        raise CaseTimeout(seconds)

    previous = signal.signal(signal.SIGALRM, expire)
    started = time.monotonic()
    outer_delay, _ = signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer_delay:  # someone else's timer was running: give it back what is left of it
            signal.setitimer(signal.ITIMER_REAL, max(outer_delay - (time.monotonic() - started), 0.001))
