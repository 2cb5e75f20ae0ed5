"""The LSTM: keras.layers.LSTM, its reference cell beside the equations.

    z_t = x_t @ W + h_{t-1} @ U + b            W: kernel (F, 4n), U: recurrent_kernel (n, 4n), b: bias (4n,)
    z_i, z_f, z_c, z_o = split(z_t, 4)         gate blocks in Keras order i, f, c, o
    i = r(z_i)   f = r(z_f)   o = r(z_o)        r: recurrent_activation
    c~ = g(z_c)                                 g: activation
    c_t = f * c_{t-1} + i * c~
    h_t = o * g(c_t)

Masks, go_backwards, initial and carried states: the generic driver (layers/driver.py).
"""

from __future__ import annotations

import numpy as np

from harness.layers.driver import product
from harness.layers.recurrent import RecurrentSpec, vec


class LSTMSpec(RecurrentSpec):
    name = "LSTM"
    description = "keras.layers.LSTM: gates i, f, c, o; states h and c"
    gates = ("i", "f", "c", "o")
    state_names = ("h", "c")
    activation_roles = ("activation", "recurrent_activation")
    defaults = {"activation": "tanh", "recurrent_activation": "sigmoid"}
    modelled = RecurrentSpec.modelled | {"recurrent_activation"}
    # implementation and use_cudnn choose a code path; unit_forget_bias only changes the initial bias
    no_forward_effect = RecurrentSpec.no_forward_effect | {"implementation", "use_cudnn", "unit_forget_bias"}
    extra_config = {
        "implementation": {"enum": [1, 2]},
        "use_cudnn": {"enum": ["auto", True, False]},
    }
    coverage_choices = {"implementation": (("1", "2"), "2")}
    after_config = {"unit_forget_bias": {"type": "boolean",
                                         "description": "Only changes the initial bias: no effect once weights are set."}}

    def step_function(self, weights, config, flavor, q):
        acts = self.resolved_activations(config, flavor)
        g, r = acts["activation"], acts["recurrent_activation"]
        U = weights["recurrent_kernel"]
        units = config["units"]
        b = weights["bias"] if "bias" in weights else np.zeros(4 * units)

        def step(xw_t, states):
            h_tm1, c_tm1 = states["h"], states["c"]
            z = q(q(xw_t) + q(product(q, h_tm1, U)) + b)
            blocks = z.reshape(z.shape[0], 4, units)  # gate blocks i, f, c, o along axis 1, units last
            i, f, o = q(r(blocks[:, (0, 1, 3), :])).transpose(1, 0, 2)  # one call for the three gates
            c_candidate = q(g(blocks[:, 2, :]))
            c_t = q(q(f * c_tm1) + q(i * c_candidate))
            h_t = q(o * q(g(c_t)))
            return h_t, {"h": h_t, "c": c_t}, {"z": z, "i": i, "f": f, "c_candidate": c_candidate, "o": o}

        return step

    def step_vjp_function(self, weights, config, flavor):
        acts = self.resolved_activations(config, flavor)
        g, r = acts["activation"], acts["recurrent_activation"]
        U = weights["recurrent_kernel"]
        units = config["units"]
        b = weights["bias"] if "bias" in weights else np.zeros(4 * units)
        use_bias = "bias" in weights

        def step_vjp(xw_t, states, d_output, d_new):
            h_tm1, c_tm1 = states["h"], states["c"]
            z = xw_t + h_tm1 @ U + b
            blocks = z.reshape(z.shape[0], 4, units)
            gate_z = blocks[:, (0, 1, 3), :]
            gates = r(gate_z)
            i, f, o = gates.transpose(1, 0, 2)
            c_candidate = g(blocks[:, 2, :])
            c_t = f * c_tm1 + i * c_candidate
            g_c = g(c_t)
            # h = o * g(c)
            d_h = d_output + d_new["h"]
            d_o = d_h * g_c
            d_c = d_new["c"] + g.vjp(c_t, g_c, d_h * o)
            # c = f * c_prev + i * c~
            d_gates = np.stack([d_c * c_candidate, d_c * c_tm1, d_o], axis=1)  # i, f, o
            d_gate_z = r.vjp(gate_z, gates, d_gates)
            d_z = np.empty_like(blocks)
            d_z[:, (0, 1, 3), :] = d_gate_z
            d_z[:, 2, :] = g.vjp(blocks[:, 2, :], c_candidate, d_c * i)
            d_z = d_z.reshape(z.shape)
            grads = {"recurrent_kernel": h_tm1.T @ d_z}
            if use_bias:
                grads["bias"] = d_z.sum(axis=0)
            return d_z, {"h": d_z @ U.T, "c": d_c * f}, grads, {"h": d_h, "c": d_c}

        return step_vjp

    def explain(self, config, flavor):
        acts = self.resolved_activations(config, flavor)
        g, r = acts["activation"], acts["recurrent_activation"]
        return [
            f"  g = activation = {g.name}: {g.formula}",
            f"  r = recurrent_activation = {r.name}: {r.formula}",
            "  z = x @ kernel + h_prev @ recurrent_kernel + bias; blocks i, f, c, o",
            "  i = r(z_i)  f = r(z_f)  c~ = g(z_c)  o = r(z_o);  c = f * c_prev + i * c~;  h = o * g(c)",
        ]

    def explain_values(self, values, row, units):
        z = values["z"][row]
        return [
            f"    z  = i {vec(z[:units])} | f {vec(z[units:2 * units])} | "
            f"c {vec(z[2 * units:3 * units])} | o {vec(z[3 * units:])}",
            f"    i  = {vec(values['i'][row])}   f = {vec(values['f'][row])}",
            f"    c~ = {vec(values['c_candidate'][row])}   o = {vec(values['o'][row])}",
            f"    c  = {vec(values['c'][row])}",
            f"    h  = {vec(values['h'][row])}   output = {vec(values['output'][row])}",
        ]


SPEC = LSTMSpec()
