"""Releasing what TensorFlow keeps from case to case, so that a long run in one process (a fuzz campaign, a
corpus run, pytest) stays within bounded memory.

A case builds its own layer and `tf.function`s unless one of its structure is kept (targets/build_cache.py),
and Python frees what it drops; but TensorFlow's eager context keeps, in its kernel cache,
a kernel for every function it ran and every op signature, until the cache is cleared: about 0.12 MiB a
case, never returned (`bench/memory.py`; Python's own objects do not grow). Clearing it after every case
would rebuild the eager kernels each time (about 20% more CPU), so it is cleared every EVERY cases, which
bounds what it holds to that many cases. A case that reused a kept layer and its traces (build_cache) adds
nothing and is not counted: clearing re-instantiates every kept trace on its next call (about 30 ms each,
more than the call), so counting those cases made a corpus of repeated structures 2x slower
(bench/throughput.py). Nothing else is reset: Keras's global state (layer name counters, settings) is left
alone, and TensorFlow is never imported here.
"""

from __future__ import annotations

import sys

EVERY = 25  # cases between two releases; 0: never (bench/memory.py --release-every 0 measures that)
_ran = 0  # cases counted since the last release
_reused = False  # the running case reused a kept layer (build_cache said so)


def reused() -> None:
    """The running case reuses a kept layer and its traces: it is not counted toward the next release."""
    global _reused
    _reused = True


def after_case() -> None:
    """Called by the runner once a case has finished, whatever its outcome."""
    global _ran, _reused
    _ran += 0 if _reused else 1
    _reused = False
    if EVERY and _ran >= EVERY:
        _ran = 0
        release()


def release() -> None:
    """Clear TensorFlow's eager kernel cache, if TensorFlow is loaded in this process."""
    if "tensorflow" not in sys.modules:
        return
    from tensorflow.python.eager import context  # noqa: PLC0415 - already imported

    if context.executing_eagerly():  # outside any tf.function being traced (always, between cases)
        context.context().clear_kernel_cache()
