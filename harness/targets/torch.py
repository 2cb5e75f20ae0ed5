"""Keras 3 on PyTorch (the `torch` target): mode eager (the layer called under `torch.no_grad()`), and
opt-in `compile` (`torch.compile` of the layer: it works on CPU, but the first compile of a case costs
tens of seconds, so it is never a default). Runs in its own worker process. Install the CPU build:
`pip install .[torch]` pins one; a plain `torch` requirement pulls a multi-GB CUDA build."""

from __future__ import annotations

from harness.targets.keras_backend import KerasBackend, Prepared


class KerasOnTorch(KerasBackend):
    name = "torch"
    label = "Keras (PyTorch)"
    backend = "torch"
    modes = ("eager", "compile")
    default_modes = ("eager",)
    packages = ("torch",)

    def call(self, prepared: Prepared, mode: str, x, kwargs):
        import torch  # noqa: PLC0415

        layer = prepared.layer
        if mode == "compile":
            if "function" not in prepared.state:
                prepared.state["function"] = torch.compile(layer)
            layer = prepared.state["function"]
        with torch.no_grad():
            return layer(x, **kwargs)
