"""Keras 3 on PyTorch (the `torch` target): mode eager (the layer called under `torch.no_grad()`), and
opt-in `compile` (`torch.compile` of the layer: it works on CPU, but the first compile of a case costs
tens of seconds, so it is never a default). Gradients: PyTorch autograd, eager mode only (a compiled
backward costs as much again). Runs in its own worker process. Install the CPU build:
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
    no_gradients = {"compile": "torch.compile of a backward pass costs tens of seconds a case, so gradients are "
                               "differentiated in eager mode only"}

    def call(self, prepared: Prepared, mode: str, x, kwargs):
        import torch  # noqa: PLC0415

        layer = prepared.layer
        if mode == "compile":
            if "function" not in prepared.compiled:
                prepared.compiled["function"] = torch.compile(layer)
            layer = prepared.compiled["function"]
        with torch.no_grad():
            return layer(x, **kwargs)

    def vjp(self, prepared: Prepared, mode: str, wanted: list, x, kwargs, cotangents: dict) -> list:
        """torch.autograd.grad of the layer's own call (the Keras code path) with respect to the variables'
        torch parameters, the input and the initial states (fresh leaf tensors that require grad)."""
        import torch  # noqa: PLC0415

        case = prepared.case
        x = x.detach().requires_grad_(True)
        kwargs = dict(kwargs)
        states = [s.detach().requires_grad_(True) for s in kwargs.get("initial_state") or []]
        if states:
            kwargs["initial_state"] = states
        with torch.enable_grad():
            outputs = case.spec.keras_outputs(prepared.layer(x, **kwargs), case.config, convert=lambda p: p)
        names = list(cotangents)
        grads = torch.autograd.grad([outputs[name] for name in names], [v.value for v in wanted] + [x] + states,
                                    grad_outputs=[torch.as_tensor(cotangents[name]).to(outputs[name].dtype)
                                                  for name in names], allow_unused=True)
        return [None if g is None else g.detach().to(torch.float64).cpu().numpy() for g in grads]
