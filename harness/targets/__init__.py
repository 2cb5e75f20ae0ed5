"""Systems under test: one adapter per place a Keras layer runs, and the registry.

    tensorflow  Keras on TensorFlow, in this process (tensorflow.py): eager, graph, xla
    jax         Keras 3 on JAX, in a worker process (jax.py): eager, jit
    torch       Keras 3 on PyTorch, in a worker process (torch.py): eager (compile: opt-in)
    tf-keras    Keras 2 (the tf_keras package) on TensorFlow, in a worker process (tf_keras.py): eager, graph
    saved-model the layer in a model saved and loaded back, in this process (saved_model.py): keras, export
    tflite      the layer's model converted to TFLite, run by LiteRT, in this process (tflite.py): interpreter
    onnx        the layer's model converted by tf2onnx, run by onnxruntime, in this process (onnx.py): onnxruntime

`harness fuzz` runs its target, whichever, in a worker process replaced as its memory grows (recycled()).
"""

from __future__ import annotations

from importlib import metadata

from harness.targets.base import SystemRun, SystemUnderTest, run_modes

DEFAULT_TARGET = "tensorflow"
# the targets that run in a worker process: name -> (adapter, hook run in the worker before Keras's import)
WORKERS = {"jax": ("harness.targets.jax.KerasOnJax", "harness.targets.jax.before_import"),
           "torch": ("harness.targets.torch.KerasOnTorch", None),
           "tf-keras": ("harness.targets.tf_keras.TfKeras", None)}
# the adapters of the targets that run in this process (targets.recycled hosts them in a worker too)
IN_PROCESS = {"tensorflow": "harness.targets.tensorflow.KerasOnTensorFlow",
              "saved-model": "harness.targets.saved_model.SavedModel",
              "tflite": "harness.targets.tflite.TFLite",
              "onnx": "harness.targets.onnx.Onnx"}
# a recycled worker is replaced once its resident memory is this many times what it was after its first case
RECYCLE_ABOVE = 1.4
# name -> (how to make it, the distributions it needs)
_REGISTRY = {
    "tensorflow": (lambda: _local(IN_PROCESS["tensorflow"]), ("keras",)),
    "jax": (lambda: _worker(*WORKERS["jax"]), ("jax",)),
    "torch": (lambda: _worker(*WORKERS["torch"]), ("torch",)),
    "tf-keras": (lambda: _worker(*WORKERS["tf-keras"]), ("tf-keras",)),
    "saved-model": (lambda: _local(IN_PROCESS["saved-model"]), ("keras",)),
    "tflite": (lambda: _local(IN_PROCESS["tflite"]), ("keras", "ai-edge-litert")),
    "onnx": (lambda: _local(IN_PROCESS["onnx"]), ("keras", "tf2onnx", "onnxruntime")),
}
NAMES = tuple(_REGISTRY)
INSTALL_HINT = {"jax": 'pip install ".[jax]"', "torch": 'pip install ".[torch]" (the CPU build; see pyproject.toml)',
                "tf-keras": "pip install --no-deps tf-keras==<your TensorFlow's version> (--no-deps: it requires the "
                            "full `tensorflow` distribution, which would install over tensorflow-cpu)",
                "tflite": 'pip install ".[export]"', "onnx": 'pip install ".[export]"'}


def _local(adapter: str):
    import importlib  # noqa: PLC0415

    module, name = adapter.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)()


def _worker(adapter: str, hook: str | None = None, fault: str | None = None):
    from harness.targets.worker import InWorker  # noqa: PLC0415

    return InWorker(adapter, hook, fault)


def missing_packages(name: str) -> list[str]:
    """The distributions a target needs that are not installed."""
    missing = []
    for package in _REGISTRY[name][1]:
        try:
            metadata.version(package)
        except metadata.PackageNotFoundError:
            missing.append(package)
    return missing


def installed() -> tuple[str, ...]:
    return tuple(name for name in NAMES if not missing_packages(name))


def parse_targets(text: str) -> tuple[str, ...]:
    """"jax", "tensorflow,torch" or "all" (every installed target) -> names in registry order; ValueError
    naming an unknown target or the packages a requested one lacks."""
    words = [w.strip() for w in text.split(",") if w.strip()]
    if not words:
        raise ValueError(f"no target given (choose from {', '.join(NAMES)}, all)")
    if "all" in words:
        return installed()
    unknown = [w for w in words if w not in _REGISTRY]
    if unknown:
        raise ValueError(f"unknown target {unknown[0]!r} (choose from {', '.join(NAMES)}, all)")
    for word in words:
        missing = missing_packages(word)
        if missing:
            raise ValueError(f"target {word!r} needs {', '.join(missing)}, which is not installed: "
                             f"{INSTALL_HINT.get(word, 'pip install ' + ' '.join(missing))}")
    return tuple(n for n in NAMES if n in words)


def with_fault(name: str, fault: str):
    """A worker target whose worker processes run with the fault `fault` (harness/faults.py) installed:
    fresh processes of its own, never shared with `get(name)`'s; its close() uninstalls the fault and ends them."""
    return _worker(*WORKERS[name], fault=fault)


def recycled(name: str, above: float | None = None):
    """The target in a worker process of its own that is replaced whenever its resident memory grows past
    `above` (default RECYCLE_ABOVE) times what it was after its first case (harness/targets/worker.py): what a long fuzz campaign
    runs on, so that it stays within bounded memory whatever the target keeps per structure. The in-process
    targets (tensorflow, the converted ones) run in such a worker too; results are the same as in-process."""
    adapter, hook = WORKERS[name] if name in WORKERS else (IN_PROCESS[name], None)
    from harness.targets.worker import InWorker  # noqa: PLC0415

    return InWorker(adapter, hook, recycle_above=above or RECYCLE_ABOVE)


_MADE: dict[str, SystemUnderTest] = {}


def get(name: str = DEFAULT_TARGET) -> SystemUnderTest:
    """The adapter for a target name (made once per process); KeyError for an unknown one."""
    if name not in _MADE:
        _MADE[name] = _REGISTRY[name][0]()
    return _MADE[name]


__all__ = ["DEFAULT_TARGET", "NAMES", "SystemRun", "SystemUnderTest", "get", "installed", "parse_targets",
           "run_modes"]
