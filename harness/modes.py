"""Execution modes: the same Keras layer run eagerly, as a traced graph (`tf.function`) and XLA-compiled.

Keras reaches different TensorFlow code in each (eager op dispatch, a Grappler-optimized graph, XLA's own
kernels), so the mode is a differential axis like the dtype. A case's `execution:` field wins; otherwise the
run's default applies (command line `--mode`, pytest `--harness-mode`), which is DEFAULT_MODES unless set.
"""

from __future__ import annotations

MODES = ("eager", "graph", "xla")  # also the order in which they run and are reported
ALL = "all"
# Both ways users run a layer (eager while debugging, a graph under fit/predict); XLA is opt-in because
# each XLA compile costs about ten eager calls (bench/speed.py) and rarely finds what graph mode does not.
DEFAULT_MODES = ("eager", "graph")
CHOICES = "eager, graph, xla, all"
HELP = (f"execution modes for cases that do not state `execution:`: {CHOICES}, or a comma-separated list "
        f"(default: {','.join(DEFAULT_MODES)})")


def parse_modes(text: str) -> tuple[str, ...]:
    """"eager", "graph,xla" or "all" -> the modes in run order; ValueError naming the bad word."""
    words = [w.strip() for w in text.split(",") if w.strip()]
    if not words:
        raise ValueError(f"no execution mode given (choose from {CHOICES})")
    if ALL in words:
        return MODES
    unknown = [w for w in words if w not in MODES]
    if unknown:
        raise ValueError(f"unknown execution mode {unknown[0]!r} (choose from {CHOICES})")
    return tuple(m for m in MODES if m in words)


def from_document(value) -> tuple[str, ...] | None:
    """The case file's `execution:` (a mode, "all", or a list of modes; validated by the schema)."""
    if value is None:
        return None
    return parse_modes(value if isinstance(value, str) else ",".join(value))


def modes_for(case_modes: tuple[str, ...] | None, run_default: tuple[str, ...] | None) -> tuple[str, ...]:
    """The case's own modes win over the run's default, which falls back to DEFAULT_MODES."""
    return case_modes or run_default or DEFAULT_MODES
