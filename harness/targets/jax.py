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
        compiled = prepared.compiled
        if ("function", training) not in compiled:
            compiled[("function", training)] = jax.jit(
                lambda trainable, non_trainable, x, kwargs:
                layer.stateless_call(trainable, non_trainable, x, training=training, **kwargs))
        if "trainable" not in state:
            self._read_variables(prepared)
        outputs, state["non_trainable"] = compiled[("function", training)](state["trainable"], state["non_trainable"],
                                                                          x, kwargs)
        return outputs

    def vjp(self, prepared: Prepared, mode: str, wanted: list, x, kwargs, cotangents: dict) -> list:
        """jax.vjp of `layer.stateless_call` (the Keras code path: a Keras patched in the worker is what runs)
        with respect to the trainable variables, the input and the initial states; eager: the pullback run
        as it is, jit: `jax.jit` of it. The states carry as the forward mode's do: eager, by the layer's own
        call (the stateless call's updates are discarded); jit, through the returned non-trainable values."""
        import jax  # noqa: PLC0415
        import jax.numpy as jnp  # noqa: PLC0415

        layer, state, case = prepared.layer, prepared.state, prepared.case
        spec, config = case.spec, case.config  # the structure only: a kept jit must not hold this case's values
        kwargs = dict(kwargs)
        training = kwargs.pop("training", False)  # a Python bool, fixed at trace time as Keras does
        states = kwargs.pop("initial_state", None)
        trainable = layer.trainable_variables
        positions = [next(k for k, v in enumerate(trainable) if v is variable) for variable in wanted]

        def pullback(trainable_values, non_trainable_values, x, states, kwargs, cotangents):
            def forward(trainable_values, x, states):
                given = {} if states is None else {"initial_state": states}
                raw, non_trainable = layer.stateless_call(trainable_values, non_trainable_values, x,
                                                          training=training, **kwargs, **given)
                outputs = spec.keras_outputs(raw, config, convert=lambda p: p)
                return {name: outputs[name] for name in cotangents}, non_trainable

            outputs, backward, non_trainable = jax.vjp(forward, trainable_values, x, states, has_aux=True)
            grads = backward({name: jnp.asarray(cotangents[name], dtype=outputs[name].dtype) for name in outputs})
            return grads, non_trainable

        if mode == "jit":
            compiled = prepared.compiled
            if ("gradient", training) not in compiled:
                compiled[("gradient", training)] = jax.jit(pullback)
            if "trainable" not in state:
                self._read_variables(prepared)
            (d_trainable, dx, dstates), state["non_trainable"] = compiled[("gradient", training)](
                state["trainable"], state["non_trainable"], x, states, kwargs, cotangents)
        else:
            (d_trainable, dx, dstates), _ = pullback([v.value for v in trainable],
                                                     [v.value for v in layer.non_trainable_variables],
                                                     x, states, kwargs, cotangents)
            if case.stateful:
                layer(x, training=training, **kwargs, **({} if states is None else {"initial_state": states}))
        return [d_trainable[k] for k in positions] + [dx] + list(dstates or [])

    def reset(self, prepared: Prepared, mode: str) -> None:
        prepared.layer.reset_states()
        if mode == "jit" and "trainable" in prepared.state:
            self._read_variables(prepared)  # the states just reset, as the next stateless call must see them

    @staticmethod
    def _read_variables(prepared: Prepared) -> None:
        layer = prepared.layer
        prepared.state["trainable"] = [v.value for v in layer.trainable_variables]
        prepared.state["non_trainable"] = [v.value for v in layer.non_trainable_variables]

    def variant(self, case: Case) -> str | None:
        """Which worker runs the case: "x64" (float64 enabled before JAX's import) for float64 cases."""
        return "x64" if case.dtype == "float64" else None
