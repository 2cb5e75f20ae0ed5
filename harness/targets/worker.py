"""A target in a worker process of its own: Keras reads KERAS_BACKEND once, at import, so each backend
gets one process (the standard library's process pool, spawn start), started on first use and kept for
the run. The parent keeps the adapter's metadata (name, modes, supports) and computes the reference; the
worker builds and runs the layer and sends back plain arrays. A worker that dies fails that case's
modes with the reason, and the next case starts a fresh worker.

`harness selftest` asks for a worker with a fault installed (`InWorker(..., fault=NAME)`): a pool of its
own, never shared with the fault-free workers, whose process installs the fault (harness/faults.py, by
name) right after Keras's import; `close()` uninstalls it there and ends the process.

A long campaign asks for a worker that is replaced as its memory grows (`InWorker(..., recycle_above=R)`,
harness/fuzz.py via targets.recycled): what TensorFlow and XLA keep per traced structure is never returned
to the process (issue 15: about 5 MiB per structure with XLA), so the worker reports its resident memory
after each call and is ended once that is more than R times what it was after its first call; the next
case starts a fresh one. Results do not depend on it: a fresh process builds what the build cache would
have reused, and that is bit-identical (tests/test_build_cache.py). A case stopped by the watchdog ends its
worker too (it would otherwise run on, and the next case would wait behind it)."""

from __future__ import annotations

import atexit
import contextlib
import importlib
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from harness.case import Case
from harness.errors import SystemFailure

_POOLS: dict[str, ProcessPoolExecutor] = {}
_FIRST_RSS: dict[str, float] = {}  # pool key -> its process's resident MiB after its first call
_FAULT = contextlib.ExitStack()  # in a worker started with a fault: what uninstalls it


def _start(backend: str, hook: str | None, fault: str | None = None) -> None:
    """In the worker, before anything imports Keras; with `fault`, Keras is then imported on `backend` and
    the fault installed for the life of the process (or until `_remove_fault`)."""
    os.environ["KERAS_BACKEND"] = backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if os.environ.get("HARNESS_QUIET") == "1":  # the parent is quiet (harness/quiet.py): so is its worker
        from harness.quiet import python_logging  # noqa: PLC0415

        python_logging()
    if hook:
        module, function = hook.rsplit(".", 1)
        getattr(importlib.import_module(module), function)()
    if fault:
        from harness.faults import by_name  # noqa: PLC0415
        from harness.targets.keras_backend import import_keras  # noqa: PLC0415

        import_keras(backend)
        _FAULT.enter_context(by_name(fault).install())


def _remove_fault() -> int:
    """In the worker: uninstall its fault (the patched Keras methods restored); the worker's pid, for tests."""
    _FAULT.close()
    return os.getpid()


def _resident_mib() -> float:
    """This process's resident set size now, in MiB (Linux; 0 where /proc is not there)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _adapter(adapter: str):
    """An instance of the adapter class named "module.Class"."""
    module, name = adapter.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)()


def _run(adapter: str, case: Case, modes: tuple[str, ...]) -> dict:
    """In the worker: every mode's run, or {"prepare": the failure}."""
    from harness import release  # noqa: PLC0415
    from harness.targets.base import run_modes  # noqa: PLC0415

    try:
        return run_modes(_adapter(adapter), case, modes)
    except SystemFailure as failure:  # could not build: the same failure for every mode
        return {"prepare": failure}
    finally:
        release.after_case()  # the runner's release happens in the process that holds TensorFlow: this one


def _gradients(adapter: str, case: Case, mode: str):
    """The adapter's gradients of the case in `mode`, in the worker: per call, name -> float64 array, or the
    SystemFailure (returned, so that it crosses back as the forward run's do)."""
    try:
        return _adapter(adapter).gradients(case, mode)
    except SystemFailure as failure:
        return failure


def _measured(function, *args) -> tuple:
    """In the worker: what `function(*args)` returns, and the process's resident MiB after it."""
    return function(*args), _resident_mib()


def _end(key: str, kill: bool = True) -> None:
    """Drop a pool and end its process: killed (it may be busy with a case the parent gave up on), or let
    finish what it was given (`kill=False`)."""
    pool = _POOLS.pop(key, None)
    _FIRST_RSS.pop(key, None)
    if pool is None:
        return
    if kill:
        for process in list((getattr(pool, "_processes", None) or {}).values()):  # the executor has no public kill
            process.kill()
    pool.shutdown(wait=True, cancel_futures=True)


class InWorker:
    """The adapter `adapter` ("module.Class"), run in a worker process for its backend."""

    def __init__(self, adapter: str, hook: str | None = None, fault: str | None = None,
                 recycle_above: float | None = None):
        self.local = _adapter(adapter)  # metadata only: imports no backend
        self.adapter, self.hook, self.fault, self.recycle_above = adapter, hook, fault, recycle_above
        self.recycled = 0  # workers this adapter ended for their memory
        self.largest_rss = 0.0  # MiB: the most any of its workers reported after a call (bench/memory.py)
        self.removed = False  # the fault was uninstalled (uninstall()): no new process gets it
        self.name, self.label, self.modes = self.local.name, self.local.label, self.local.modes
        self.default_modes = self.local.default_modes

    def environment(self) -> dict:
        return self.local.environment()

    def semantics(self) -> str:
        return self.local.semantics()

    def __getattr__(self, name: str):
        # What the adapter has only where it applies: `requires:` reads package_versions where it differs;
        # the runner differentiates through `gradients` (run in the worker) and reads `no_gradients`.
        if name in ("package_versions", "no_gradients") and hasattr(self.local, name):
            return getattr(self.local, name)
        if name == "gradients" and hasattr(self.local, name):
            return self._gradients
        raise AttributeError(name)

    def supports(self, case: Case) -> str | None:
        return self.local.supports(case)

    def _pool(self, case: Case) -> tuple[str, ProcessPoolExecutor]:
        """The worker for this case: the adapter may ask for a variant (JAX: float64 cases in a worker
        with x64 enabled, the others in one as users run JAX by default)."""
        variant = self.local.variant(case) if hasattr(self.local, "variant") else None
        key = f"{self.name}:{variant}" if variant else self.name
        if self.fault:
            key = f"{key}+fault:{self.fault}"  # its own pool: a fault never reaches a fault-free worker
        if self.recycle_above:
            key = f"{key}+recycled"  # its own pool: a run's workers are never ended under it
        if key not in _POOLS:
            hook = self.hook if variant else None
            fault = None if self.removed else self.fault
            _POOLS[key] = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"), initializer=_start,
                                              initargs=(self.local.backend, hook, fault))
        return key, _POOLS[key]

    def uninstall(self) -> list[int]:
        """Uninstall this worker's fault in each of its processes (they stay up); the pids that did. A process
        started after this (one died) starts without the fault."""
        self.removed = True
        done = []
        for key in self._fault_keys():
            try:
                done.append(_POOLS[key].submit(_remove_fault).result())
            except BrokenProcessPool:
                _end(key)  # the process died: nothing of the fault is left
        return done

    def close(self) -> None:
        """Uninstall the fault and end this fault's processes (a later run starts fresh ones). Fault-free
        workers are kept for the run: a no-op for them."""
        if not self.fault:
            return
        self.uninstall()
        for key in self._fault_keys():
            _end(key, kill=False)

    def _fault_keys(self) -> list[str]:
        return [k for k in _POOLS if k.endswith(f"+fault:{self.fault}") and k.split("+")[0].split(":")[0] == self.name]

    def run_all(self, case: Case, modes: tuple[str, ...]) -> dict:
        """Prepare and run every mode in the worker; raises SystemFailure when the layer cannot be built."""
        results = self._call(case, "running in its worker process (the process died)", _run, modes)
        if "prepare" in results:
            raise results["prepare"]
        return results

    def _gradients(self, case: Case, mode: str) -> list[dict]:
        """The case's gradients in `mode`, computed in the same worker as its forward run (the same variant:
        float64 cases on JAX in the x64 one); raises SystemFailure."""
        found = self._call(case, f"differentiating in its worker process ({mode} mode; the process died)",
                           _gradients, mode)
        if isinstance(found, SystemFailure):
            raise found
        return found

    def _call(self, case: Case, died: str, function, *args):
        """`function(adapter, case, *args)` in the case's worker; the worker ended if the parent stops
        waiting (the watchdog's timeout, ^C) or, with recycle_above, once its memory grew past that."""
        key, pool = self._pool(case)
        try:
            value, resident = pool.submit(_measured, function, self.adapter, case, *args).result()
        except BrokenProcessPool as exc:
            _end(key)
            raise SystemFailure(died, exc, self.label) from exc
        except BaseException:
            _end(key)
            raise
        first = _FIRST_RSS.setdefault(key, resident)
        self.largest_rss = max(self.largest_rss, resident)
        if self.recycle_above and resident > first * self.recycle_above:
            _end(key)
            self.recycled += 1
        return value


@atexit.register
def _stop() -> None:
    for pool in _POOLS.values():
        pool.shutdown(wait=False, cancel_futures=True)
