"""SimpleRNN: keras.layers.SimpleRNN, its reference cell beside the equation.

    h_t = g(x_t @ W + b + h_{t-1} @ U)       W: kernel (F, n), U: recurrent_kernel (n, n), b: bias (n,)

g: activation (default tanh). Masks, go_backwards and states: the generic driver.
"""

from __future__ import annotations

import numpy as np

from harness.layers.driver import product
from harness.layers.recurrent import RecurrentSpec, vec


class SimpleRNNSpec(RecurrentSpec):
    name = "SimpleRNN"
    description = "keras.layers.SimpleRNN: h = activation(x @ kernel + bias + h_prev @ recurrent_kernel)"
    gates = ("h",)
    state_names = ("h",)
    activation_roles = ("activation",)
    defaults = {"activation": "tanh"}

    def step_function(self, weights, config, flavor, q):
        g = self.resolved_activations(config, flavor)["activation"]
        U = weights["recurrent_kernel"]
        b = weights["bias"] if "bias" in weights else np.zeros(config["units"])

        def step(xw_t, states):
            pre = q(q(q(xw_t) + b) + q(product(q, states["h"], U)))
            h_t = q(g(pre))
            return h_t, {"h": h_t}, {"pre": pre}

        return step

    def step_vjp_function(self, weights, config, flavor):
        g = self.resolved_activations(config, flavor)["activation"]
        U = weights["recurrent_kernel"]
        use_bias = "bias" in weights
        b = weights["bias"] if use_bias else np.zeros(config["units"])

        def step_vjp(xw_t, states, d_output, d_new):
            h_tm1 = states["h"]
            pre = xw_t + b + h_tm1 @ U
            d_h = d_output + d_new["h"]
            d_pre = g.vjp(pre, g(pre), d_h)
            grads = {"recurrent_kernel": h_tm1.T @ d_pre}
            if use_bias:
                grads["bias"] = d_pre.sum(axis=0)
            return d_pre, {"h": d_pre @ U.T}, grads, {"h": d_h}

        return step_vjp

    def explain(self, config, flavor):
        g = self.resolved_activations(config, flavor)["activation"]
        return [f"  g = activation = {g.name}: {g.formula}",
                "  pre = x @ kernel + bias + h_prev @ recurrent_kernel;  h = g(pre)"]

    def explain_values(self, values, row, units):
        return [f"    pre = {vec(values['pre'][row])}",
                f"    h  = {vec(values['h'][row])}   output = {vec(values['output'][row])}"]


SPEC = SimpleRNNSpec()
