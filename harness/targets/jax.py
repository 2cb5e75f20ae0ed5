"""Keras 3 on JAX (the `jax` target): modes eager (the layer called directly; JAX traces each op) and jit
(`jax.jit` of `layer.stateless_call`, the way Keras's own fit/predict run it: variables go in and the
updated non-trainable ones, a stateful layer's states among them, come back and are carried to the next
call). Runs in a worker process of its own, as JAX runs by default; float64 cases run in a second worker
with `jax_enable_x64` set before JAX is imported, so that they compute in float64 instead of being
silently downcast (JAX's default), without changing what the other cases see."""

from __future__ import annotations

from harness.case import Case
from harness.targets.keras_backend import KerasBackend, Prepared


def before_import() -> None:
    """In the worker, before Keras: JAX keeps float64 as float64 only with x64 enabled."""
    import jax  # noqa: PLC0415

    jax.config.update("jax_enable_x64", True)


class KerasOnJax(KerasBackend):
    name = "jax"
    label = "Keras (JAX)"
    backend = "jax"
    modes = ("eager", "jit")
    default_modes = ("eager", "jit")
    packages = ("jax", "jaxlib")

    def call(self, prepared: Prepared, mode: str, x, kwargs):
        if mode == "eager":
            return prepared.layer(x, **kwargs)
        import jax  # noqa: PLC0415

        layer, state = prepared.layer, prepared.state
        kwargs = dict(kwargs)
        training = kwargs.pop("training", False)  # a Python bool, fixed at trace time as Keras does
        if "function" not in state:
            state["function"] = jax.jit(lambda trainable, non_trainable, x, kwargs:
                                        layer.stateless_call(trainable, non_trainable, x, training=training, **kwargs))
            self._read_variables(prepared)
        outputs, state["non_trainable"] = state["function"](state["trainable"], state["non_trainable"], x, kwargs)
        return outputs

    def reset(self, prepared: Prepared, mode: str) -> None:
        prepared.layer.reset_states()
        if mode == "jit" and "function" in prepared.state:
            self._read_variables(prepared)  # the states just reset, as the next stateless call must see them

    @staticmethod
    def _read_variables(prepared: Prepared) -> None:
        layer = prepared.layer
        prepared.state["trainable"] = [v.value for v in layer.trainable_variables]
        prepared.state["non_trainable"] = [v.value for v in layer.non_trainable_variables]

    def variant(self, case: Case) -> str | None:
        """Which worker runs the case: "x64" (float64 enabled before JAX's import) for float64 cases."""
        return "x64" if case.dtype == "float64" else None
