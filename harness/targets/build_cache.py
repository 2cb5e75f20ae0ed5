"""Built layers and traced functions kept across cases of one structure (issue 15), for the targets that
build a Keras layer and run it directly: tensorflow and tf-keras (tf.function traces), jax (jax.jit) and
torch (torch.compile), each in the process that runs it (the worker targets keep theirs in the worker).

What costs time in a case is not Keras's arithmetic but the overhead around it: a fresh layer (25-35 ms),
a fresh tf.function trace (150-300 ms), an XLA compile (about 400 ms), while a traced function called again
costs about 1 ms. Cases of one structure (the layer and its config, dtype, every call's shapes, which calls
have a mask or an initial state or reset the states) can share one layer and its traces: the next case's
weights are assigned into the same variables, and the traced function reads them (no retrace).

Safety, because the cache must never change an outcome:
- a hit is used only if the code under test is the code the entry was built with: the entry keeps the
  objects (not their ids, which Python reuses) of every attribute of every Keras class in the built layer's
  tree, through each class's MRO, and of the functions in `keras.ops` and `keras.activations`; any patch
  (a selftest fault, a contributor's monkeypatch) makes it a miss and the entry is rebuilt;
- an entry whose layer raised is dropped, so a layer left half-way through a failed call is never reused;
- weights and states are set again before every mode, as on a fresh layer (tests/test_build_cache.py
  checks the outputs are bit-identical to a fresh layer's, and `harness record` / `compare` on the corpus).
The cache is bounded (MAX_ENTRIES, least recently used dropped first); `bench/throughput.py` measures it.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Iterator

from harness import release
from harness.case import Case
from harness.errors import SystemFailure

MAX_ENTRIES = 48  # structures kept; an entry holds a small layer and its traces (about 1-3 MiB with XLA)
ENABLED = True
_entries: "OrderedDict[tuple, Entry]" = OrderedDict()
_stats = {"hits": 0, "misses": 0, "stale": 0, "dropped": 0}


@dataclass
class Entry:
    layer: object
    code: tuple  # the code it was built with (see _code_of)
    runners: dict = field(default_factory=dict)  # mode -> the layer's call as that mode runs it
    gradient_runners: dict = field(default_factory=dict)  # (run_as, wanted weights) -> the traced tape


def structure_key(case: Case, owner: str = "") -> tuple:
    """Everything that fixes a built layer and its traces; the values (weights, inputs, masks, states) aside."""
    calls = tuple((tuple(call.input.shape), call.mask is not None,
                   None if call.initial_state is None else tuple(sorted(call.initial_state)), call.reset_states)
                  for call in case.calls)
    return (owner, case.layer, json.dumps(case.config, sort_keys=True, default=repr), case.dtype, calls)


def _code_of(layer, keras) -> tuple:
    """The objects that make up the code under test for this layer (held, so that their ids stay theirs)."""
    objects = []
    flatten = getattr(layer, "_flatten_layers", None)
    tree = list(flatten(include_self=True, recursive=True)) if flatten else [layer]
    seen = set()
    for part in tree:
        for klass in type(part).__mro__:
            if klass in seen or not klass.__module__.startswith(("keras", "tf_keras")):
                continue
            seen.add(klass)
            objects.append(klass)
            objects.extend(vars(klass).values())
    for name in ("ops", "activations"):
        module = getattr(keras, name, None)
        if module is not None:
            objects.extend(vars(module).values())
    backend = getattr(getattr(keras, "backend", None), "backend", lambda: "tensorflow")()
    backend_rnn = sys.modules.get(f"keras.src.backend.{backend}.rnn")  # the backend's loop, cuDNN and fused paths
    if backend_rnn is not None:
        objects.extend(vars(backend_rnn).values())
    return tuple(objects)


def _same(a: tuple, b: tuple) -> bool:
    return len(a) == len(b) and all(x is y for x, y in zip(a, b))


def lookup(key: tuple, keras) -> Entry | None:
    """The entry for this structure if it was built with the code now running; None otherwise."""
    if not ENABLED:
        return None
    entry = _entries.get(key)
    if entry is None:
        _stats["misses"] += 1
        return None
    if not _same(entry.code, _code_of(entry.layer, keras)):
        _stats["stale"] += 1
        del _entries[key]
        return None
    _stats["hits"] += 1
    release.reused()
    _entries.move_to_end(key)
    return entry


def store(key: tuple, layer, keras) -> Entry:
    """A new entry for a freshly built layer (kept only while the cache is enabled)."""
    entry = Entry(layer, _code_of(layer, keras) if ENABLED else ())
    if ENABLED:
        _entries[key] = entry
        while len(_entries) > MAX_ENTRIES:
            _entries.popitem(last=False)
            _stats["dropped"] += 1
    return entry


def kept(key: tuple, keras, build) -> Entry:
    """The entry of this structure built with the code now running, else a new one holding `build()`'s layer."""
    entry = lookup(key, keras)
    return entry if entry is not None else store(key, build(), keras)


def forget(key: tuple) -> None:
    """Drop an entry whose layer raised: what a failed call left behind is never reused."""
    _entries.pop(key, None)


@contextlib.contextmanager
def dropped_on_failure(key: tuple) -> Iterator[None]:
    """Within it, a SystemFailure (setting the weights, a mode's run, differentiating) drops the entry."""
    try:
        yield
    except SystemFailure:
        forget(key)
        raise


def clear() -> None:
    _entries.clear()
    for name in _stats:
        _stats[name] = 0


def describe() -> str:
    return (f"{len(_entries)} structures kept (at most {MAX_ENTRIES}); {_stats['hits']} hits, {_stats['misses']} "
            f"misses, {_stats['stale']} rebuilt for changed code, {_stats['dropped']} dropped for room")


@contextlib.contextmanager
def _set(value: bool) -> Iterator[None]:
    global ENABLED
    before = ENABLED
    ENABLED = value
    try:
        yield
    finally:
        ENABLED = before


def disabled() -> contextlib.AbstractContextManager:
    """Within it, every case builds a fresh layer and fresh traces (the behaviour before issue 15)."""
    return _set(False)


def enabled() -> contextlib.AbstractContextManager:
    return _set(True)
