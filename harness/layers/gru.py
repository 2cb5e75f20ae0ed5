"""The GRU: keras.layers.GRU, both reset_after variants, its reference cell beside the equations.

    W: kernel (F, 3n), U: recurrent_kernel (n, 3n); column blocks z, r, h (Keras's order)
    bias: (3n,) with reset_after=False; (2, 3n) with reset_after=True: row 0 input bias b, row 1 recurrent bias b'
    x_z, x_r, x_h = split(x_t @ W + b, 3)
    reset_after=True (Keras 3's default; cuDNN's form):
        u = h_{t-1} @ U + b'                   u_z, u_r, u_h = split(u, 3)
        z = r(x_z + u_z)   r_t = r(x_r + u_r)   hh = g(x_h + r_t * u_h)
    reset_after=False (the original paper's form):
        z = r(x_z + h_{t-1} @ U_z)   r_t = r(x_r + h_{t-1} @ U_r)   hh = g(x_h + (r_t * h_{t-1}) @ U_h)
    h_t = z * h_{t-1} + (1 - z) * hh           (the update gate keeps the old state: PyTorch writes (1-z) n + z h)

r: recurrent_activation, g: activation. Masks, go_backwards and states: the generic driver.
"""

from __future__ import annotations

import numpy as np

from harness.layers.driver import product
from harness.layers.recurrent import RecurrentSpec, vec


class GRUSpec(RecurrentSpec):
    name = "GRU"
    description = "keras.layers.GRU: gates z, r, h; state h; reset_after (default true) adds a recurrent bias row"
    gates = ("z", "r", "h")
    state_names = ("h",)
    activation_roles = ("activation", "recurrent_activation")
    defaults = {"activation": "tanh", "recurrent_activation": "sigmoid", "reset_after": True}
    coverage_flags = ("reset_after",)
    coverage_choices = {"implementation": (("1", "2"), "2")}
    modelled = RecurrentSpec.modelled | {"recurrent_activation", "reset_after"}
    no_forward_effect = RecurrentSpec.no_forward_effect | {"implementation", "use_cudnn"}
    extra_config = {
        "reset_after": {"type": "boolean", "description": "Default true: the reset gate is applied after the "
                                                          "recurrent product, and the bias has two rows."},
        "implementation": {"enum": [1, 2]},
        "use_cudnn": {"enum": ["auto", True, False]},
    }

    @staticmethod
    def reset_after(config: dict) -> bool:
        return config.get("reset_after", True)

    def bias_shape(self, config):
        units = config["units"]
        if self.reset_after(config):
            return (2, 3 * units), (f"(2 rows: input bias and recurrent bias, with reset_after: true; "
                                    f"3*units={3 * units}; column blocks are gates z, r, h)")
        return (3 * units,), f"(3*units={3 * units} with reset_after: false; column blocks are gates z, r, h)"

    def bias_description(self) -> str:
        return "(3*units,) with reset_after false; (2, 3*units) with reset_after true (the default): row 0 input bias, row 1 recurrent bias"

    def _parts(self, weights: dict, config: dict, flavor: str):
        """What the step and its VJP both use: g, r, U, units, reset_after, and (input bias, recurrent bias):
        the two rows with reset_after, the one row and zeros without, zeros without use_bias."""
        acts = self.resolved_activations(config, flavor)
        n, after, bias = config["units"], self.reset_after(config), weights.get("bias")
        if bias is None:
            b_in, b_rec = np.zeros(3 * n), np.zeros(3 * n)
        else:
            b_in, b_rec = (bias[0], bias[1]) if after else (bias, np.zeros(3 * n))
        return acts["activation"], acts["recurrent_activation"], weights["recurrent_kernel"], n, after, b_in, b_rec

    def step_function(self, weights, config, flavor, q):
        g, ra, U, n, after, b_in, b_rec = self._parts(weights, config, flavor)

        def step(xw_t, states):
            h_tm1 = states["h"]
            x = q(q(xw_t) + b_in)
            x_z, x_r, x_h = x[:, :n], x[:, n:2 * n], x[:, 2 * n:]
            if after:
                u = q(q(product(q, h_tm1, U)) + b_rec)
                z = q(ra(q(x_z + u[:, :n])))
                r = q(ra(q(x_r + u[:, n:2 * n])))
                recurrent_h = q(r * u[:, 2 * n:])
            else:
                u = q(product(q, h_tm1, U[:, :2 * n]))
                z = q(ra(q(x_z + u[:, :n])))
                r = q(ra(q(x_r + u[:, n:])))
                recurrent_h = q(product(q, q(r * h_tm1), U[:, 2 * n:]))
            hh = q(g(q(x_h + recurrent_h)))
            h_t = q(q(z * h_tm1) + q(q(1.0 - z) * hh))
            return h_t, {"h": h_t}, {"x_proj": x, "z": z, "r": r, "recurrent_h": recurrent_h, "hh": hh}

        return step

    def step_vjp_function(self, weights, config, flavor):
        g, ra, U, n, after, b_in, b_rec = self._parts(weights, config, flavor)

        def step_vjp(xw_t, states, d_output, d_new):
            h_tm1 = states["h"]
            x = xw_t + b_in
            x_z, x_r, x_h = x[:, :n], x[:, n:2 * n], x[:, 2 * n:]
            if after:
                u = h_tm1 @ U + b_rec
                a_z, a_r = x_z + u[:, :n], x_r + u[:, n:2 * n]
                z, r = ra(a_z), ra(a_r)
                a_h = x_h + r * u[:, 2 * n:]
            else:
                u = h_tm1 @ U[:, :2 * n]
                a_z, a_r = x_z + u[:, :n], x_r + u[:, n:]
                z, r = ra(a_z), ra(a_r)
                reset_h = r * h_tm1
                a_h = x_h + reset_h @ U[:, 2 * n:]
            hh = g(a_h)
            # h = z * h_prev + (1 - z) * hh
            d_h = d_output + d_new["h"]
            d_h_prev = d_h * z
            d_a_h = g.vjp(a_h, hh, d_h * (1.0 - z))
            d_a_z = ra.vjp(a_z, z, d_h * (h_tm1 - hh))
            if after:
                # hh = g(x_h + r * u_h): u_h = (h_prev @ U + b')_h
                d_a_r = ra.vjp(a_r, r, d_a_h * u[:, 2 * n:])
                d_u = np.concatenate([d_a_z, d_a_r, d_a_h * r], axis=1)
                d_recurrent = h_tm1.T @ d_u
                d_h_prev = d_h_prev + d_u @ U.T
            else:
                # hh = g(x_h + (r * h_prev) @ U_h)
                d_reset_h = d_a_h @ U[:, 2 * n:].T
                d_a_r = ra.vjp(a_r, r, d_reset_h * h_tm1)
                d_u = np.concatenate([d_a_z, d_a_r], axis=1)
                d_recurrent = np.concatenate([h_tm1.T @ d_u, reset_h.T @ d_a_h], axis=1)
                d_h_prev = d_h_prev + d_reset_h * r + d_u @ U[:, :2 * n].T
            d_x = np.concatenate([d_a_z, d_a_r, d_a_h], axis=1)
            grads = {"recurrent_kernel": d_recurrent}
            if "bias" in weights:
                grads["bias"] = np.stack([d_x.sum(axis=0), d_u.sum(axis=0)]) if after else d_x.sum(axis=0)
            return d_x, {"h": d_h_prev}, grads, {"h": d_h}

        return step_vjp

    def explain(self, config, flavor):
        acts = self.resolved_activations(config, flavor)
        g, r = acts["activation"], acts["recurrent_activation"]
        if self.reset_after(config):
            form = ["  reset_after: true: u = h_prev @ recurrent_kernel + recurrent bias (bias row 1); blocks z, r, h",
                    "  z = r(x_z + u_z)  r = r(x_r + u_r)  hh = g(x_h + r * u_h);  h = z * h_prev + (1 - z) * hh"]
        else:
            form = ["  reset_after: false",
                    "  z = r(x_z + h_prev @ U_z)  r = r(x_r + h_prev @ U_r)  hh = g(x_h + (r * h_prev) @ U_h);  "
                    "h = z * h_prev + (1 - z) * hh"]
        return [f"  g = activation = {g.name}: {g.formula}",
                f"  r = recurrent_activation = {r.name}: {r.formula}",
                "  x_proj = x @ kernel + input bias" + (" (bias row 0)" if self.reset_after(config) else "")
                + "; blocks z, r, h", *form]

    def explain_values(self, values, row, units):
        x = values["x_proj"][row]
        return [
            f"    x_proj = z {vec(x[:units])} | r {vec(x[units:2 * units])} | h {vec(x[2 * units:])}",
            f"    z  = {vec(values['z'][row])}   r = {vec(values['r'][row])}",
            f"    recurrent h term = {vec(values['recurrent_h'][row])}   hh = {vec(values['hh'][row])}",
            f"    h  = {vec(values['h'][row])}   output = {vec(values['output'][row])}",
        ]


SPEC = GRUSpec()
