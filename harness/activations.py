"""Float64 NumPy definitions of the Keras activations, written from Keras's documented formulas.

No Keras or TensorFlow import: this is half of the reference oracle. Where Keras changed a definition
between major versions, the definition is chosen by ``flavor`` ("keras3" or "keras2"), which the caller
derives from the installed Keras version.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from harness.errors import NotApplicable, Unsupported

# Every activation name Keras 3 resolves from a string (keras.activations.get), aliases included.
# A name outside this set is a typo (invalid case); a name inside it that the reference does not
# implement gives an "unsupported" outcome.
KERAS_ACTIVATION_NAMES = frozenset({
    "linear", "tanh", "sigmoid", "hard_sigmoid", "relu", "relu6", "leaky_relu", "elu", "selu",
    "celu", "softplus", "softsign", "swish", "silu", "gelu", "exponential", "mish", "hard_silu",
    "hard_swish", "hard_tanh", "tanh_shrink", "log_sigmoid", "sparse_plus", "sparse_sigmoid",
    "squareplus", "soft_shrink", "hard_shrink", "softmax", "log_softmax", "glu", "sparsemax",
    "threshold",
})

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946
_erf = np.vectorize(math.erf, otypes=[np.float64])


def _sigmoid(x):
    # Split by sign so exp never overflows: 1/(1+e^-x) for x >= 0, e^x/(1+e^x) otherwise.
    with np.errstate(over="ignore"):
        e = np.exp(-np.abs(x))
    t = 1.0 / (1.0 + e)
    return np.where(x >= 0, t, e * t)


def _softplus(x):
    return np.logaddexp(0.0, x)


def _elu(x, alpha=1.0):
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0)))


def _relu6(x):
    return np.clip(x, 0.0, 6.0)


def _softmax(x):
    shifted = x - np.max(x, axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / np.sum(e, axis=-1, keepdims=True)


def _log_softmax(x):
    shifted = x - np.max(x, axis=-1, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


def _not_elementwise(name):
    def derivative(x):
        raise ValueError(f"{name} acts over the units axis: its Jacobian is not diagonal; use Activation.vjp")
    return derivative


def _softmax_vjp(x, y, cotangent):
    # y = softmax(x): dL/dx = y * (g - sum(g * y)) over the units axis
    return y * (cotangent - np.sum(cotangent * y, axis=-1, keepdims=True))


def _log_softmax_vjp(x, y, cotangent):
    # y = x - logsumexp(x): dL/dx = g - softmax(x) * sum(g) over the units axis (softmax(x) = exp(y))
    return cotangent - np.exp(y) * np.sum(cotangent, axis=-1, keepdims=True)


@dataclass(frozen=True)
class Activation:
    """A reference activation: its Keras name, the formula it implements, the function, and its derivative
    (elementwise, dy/dx at x; for softmax and log_softmax, which act over the units axis, `derivative` raises
    and `vjp` is the way to differentiate)."""

    name: str
    formula: str
    fn: Callable[[np.ndarray], np.ndarray]
    derivative: Callable[[np.ndarray], np.ndarray] | None = None
    # (x, y, cotangent) -> cotangent of x, for activations whose Jacobian is not diagonal
    jacobian_vjp: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] | None = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):
            return self.fn(x)

    @property
    def elementwise(self) -> bool:
        return self.jacobian_vjp is None

    def vjp(self, x: np.ndarray, y: np.ndarray, cotangent: np.ndarray) -> np.ndarray:
        """dL/dx given y = self(x) and dL/dy (float64; the units axis is the last one)."""
        with np.errstate(over="ignore", invalid="ignore"):
            if self.jacobian_vjp is not None:
                return self.jacobian_vjp(x, y, cotangent)
            return cotangent * self.derivative(x)


_COMMON = {
    "linear": ("x", lambda x: x),
    "tanh": ("tanh(x)", np.tanh),
    "sigmoid": ("1 / (1 + exp(-x))", _sigmoid),
    "relu": ("max(x, 0)", lambda x: np.maximum(x, 0.0)),
    "relu6": ("min(max(x, 0), 6)", _relu6),
    "elu": ("x if x > 0 else exp(x) - 1", _elu),
    "selu": (f"{_SELU_SCALE} * (x if x > 0 else {_SELU_ALPHA} * (exp(x) - 1))",
             lambda x: _SELU_SCALE * _elu(x, _SELU_ALPHA)),
    "softplus": ("log(1 + exp(x))", _softplus),
    "softsign": ("x / (1 + |x|)", lambda x: x / (1.0 + np.abs(x))),
    "swish": ("x * sigmoid(x)", lambda x: x * _sigmoid(x)),
    "gelu": ("0.5 * x * (1 + erf(x / sqrt(2)))  (exact, not the tanh approximation)",
             lambda x: 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))),
    "exponential": ("exp(x)", np.exp),
    "softmax": ("exp(x) / sum(exp(x)) over the units axis", _softmax),
}

_KERAS3_ONLY = {
    "hard_sigmoid": ("clip(x / 6 + 0.5, 0, 1)  (Keras 3 definition)", lambda x: np.clip(x / 6.0 + 0.5, 0.0, 1.0)),
    "leaky_relu": ("x if x >= 0 else 0.2 * x", lambda x: np.where(x >= 0, x, 0.2 * x)),
    "celu": ("x if x >= 0 else exp(x) - 1", _elu),
    "mish": ("x * tanh(softplus(x))", lambda x: x * np.tanh(_softplus(x))),
    "hard_silu": ("x * min(max(x + 3, 0), 6) / 6", lambda x: x * _relu6(x + 3.0) / 6.0),
    "hard_tanh": ("clip(x, -1, 1)", lambda x: np.clip(x, -1.0, 1.0)),
    "tanh_shrink": ("x - tanh(x)", lambda x: x - np.tanh(x)),
    "log_sigmoid": ("-log(1 + exp(-x))", lambda x: -_softplus(-x)),
    "sparse_plus": ("0 if x <= -1, (x + 1)^2 / 4 if -1 < x < 1, x if x >= 1",
                    lambda x: np.where(x <= -1, 0.0, np.where(x >= 1, x, 0.25 * (x + 1.0) ** 2))),
    "sparse_sigmoid": ("clip(0.5 * (x + 1), 0, 1)", lambda x: np.clip(0.5 * (x + 1.0), 0.0, 1.0)),
    "squareplus": ("(x + sqrt(x^2 + 4)) / 2", lambda x: 0.5 * (x + np.sqrt(x * x + 4.0))),
    # The shrinks are defined by comparisons, which are false for NaN: NaN takes the "else 0" branch, as in
    # Keras (harness fuzz found the difference when a case overflowed to NaN).
    "soft_shrink": ("x - 0.5 if x > 0.5, x + 0.5 if x < -0.5, else 0 (NaN -> 0)",
                    lambda x: np.where(x > 0.5, x - 0.5, np.where(x < -0.5, x + 0.5, 0.0))),
    "hard_shrink": ("x if |x| > 0.5 else 0 (NaN -> 0)", lambda x: np.where(np.abs(x) > 0.5, x, 0.0)),
    "log_softmax": ("x - log(sum(exp(x))) over the units axis", _log_softmax),
}

# Keras 2 (TF <= 2.15, tf_keras) knew fewer names (checked on Keras 2.15), and defined hard_sigmoid differently.
_KERAS2_ONLY = {
    "hard_sigmoid": ("clip(0.2 * x + 0.5, 0, 1)  (Keras 2 definition)", lambda x: np.clip(0.2 * x + 0.5, 0.0, 1.0)),
    **{name: _KERAS3_ONLY[name] for name in ("leaky_relu", "mish", "log_softmax")},
}

# Derivatives, float64, written by hand (no autodiff library). At a kink the value is the one-sided derivative
# TensorFlow's gradient kernels give to the op Keras 3 builds on (keras/src/backend/tensorflow/nn.py):
#   relu (tf.nn.relu): 0 at x = 0; relu6 (tf.nn.relu6): 0 at 0 and at 6; hard_sigmoid (Keras 3: relu6(x + 3) / 6):
#   0 at -3 and 3; hard_silu: x * hard_sigmoid(x) with that hard_sigmoid; leaky_relu (tf.nn.leaky_relu): 0.2 at 0;
#   selu (tf.nn.selu, from the output's sign): scale at 0; sparse_sigmoid, soft_shrink, hard_shrink (tf.where on
#   strict comparisons): 0 at their kinks; hard_tanh (tf.clip_by_value, which passes the gradient at the bounds): 1
#   at -1 and 1; Keras 2's hard_sigmoid (clip_by_value(0.2 x + 0.5, 0, 1)): 0.2 at -2.5 and 2.5.
# elu, celu and sparse_plus are continuously differentiable (celu: TF's max + min composition gives 2 at exactly 0;
# this gives the true derivative, 1). The finite-difference tests stay away from kinks.
def _sigmoid_derivative(x):
    s = _sigmoid(x)
    return s * (1.0 - s)


def _gelu_derivative(x):
    return 0.5 * (1.0 + _erf(x / math.sqrt(2.0))) + x * np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def _mish_derivative(x):
    t = np.tanh(_softplus(x))
    return t + x * (1.0 - t * t) * _sigmoid(x)


def _step(condition):
    return np.where(condition, 1.0, 0.0)


_DERIVATIVES = {
    "linear": lambda x: np.ones_like(x),
    "tanh": lambda x: 1.0 - np.tanh(x) ** 2,
    "sigmoid": _sigmoid_derivative,
    "relu": lambda x: _step(x > 0),
    "relu6": lambda x: _step((x > 0) & (x < 6)),
    "elu": lambda x: np.where(x > 0, 1.0, np.exp(np.minimum(x, 0.0))),
    "selu": lambda x: _SELU_SCALE * np.where(x >= 0, 1.0, _SELU_ALPHA * np.exp(np.minimum(x, 0.0))),
    "softplus": _sigmoid,
    "softsign": lambda x: 1.0 / (1.0 + np.abs(x)) ** 2,
    "swish": lambda x: _sigmoid(x) + x * _sigmoid_derivative(x),
    "gelu": _gelu_derivative,
    "exponential": np.exp,
    "softmax": _not_elementwise("softmax"),
    "log_softmax": _not_elementwise("log_softmax"),
    "leaky_relu": lambda x: np.where(x > 0, 1.0, 0.2),
    "celu": lambda x: np.where(x > 0, 1.0, np.exp(np.minimum(x, 0.0))),
    "mish": _mish_derivative,
    "hard_silu": lambda x: _relu6(x + 3.0) / 6.0 + x * _step((x > -3) & (x < 3)) / 6.0,
    "hard_tanh": lambda x: _step((x >= -1) & (x <= 1)),
    "tanh_shrink": lambda x: np.tanh(x) ** 2,
    "log_sigmoid": lambda x: _sigmoid(-x),
    "sparse_plus": lambda x: np.where(x <= -1, 0.0, np.where(x >= 1, 1.0, 0.5 * (x + 1.0))),
    "sparse_sigmoid": lambda x: 0.5 * _step((x > -1) & (x < 1)),
    "squareplus": lambda x: 0.5 * (1.0 + x / np.sqrt(x * x + 4.0)),
    "soft_shrink": lambda x: _step((x > 0.5) | (x < -0.5)),
    "hard_shrink": lambda x: _step(np.abs(x) > 0.5),
}
_HARD_SIGMOID_DERIVATIVE = {
    "keras3": lambda x: _step((x > -3) & (x < 3)) / 6.0,
    "keras2": lambda x: 0.2 * _step((x >= -2.5) & (x <= 2.5)),
}
_JACOBIAN_VJPS = {"softmax": _softmax_vjp, "log_softmax": _log_softmax_vjp}

_ALIASES = {"silu": "swish", "hard_swish": "hard_silu", None: "linear"}


def canonical_name(name: str | None) -> str:
    """The name an activation is known by here: an alias's target ("silu" -> "swish", None -> "linear")."""
    return _ALIASES.get(name, name)

FLAVORS = ("keras3", "keras2")


def _table(flavor: str) -> dict[str, tuple[str, Callable]]:
    if flavor == "keras3":
        return {**_COMMON, **_KERAS3_ONLY}
    if flavor == "keras2":
        return {**_COMMON, **_KERAS2_ONLY}
    raise ValueError(f"unknown Keras flavor {flavor!r}; expected one of {FLAVORS}")


def supported_names(flavor: str = "keras3") -> frozenset[str]:
    """Names (aliases included) the reference implements for this Keras flavor."""
    table = _table(flavor)
    return frozenset(table) | {alias for alias, target in _ALIASES.items() if alias and target in table}


# Built-in names of each Keras flavor that the reference does not implement.
_NOT_IMPLEMENTED = {"keras3": {"glu", "sparsemax", "threshold"}, "keras2": set()}


def get_activation(name: str | None, flavor: str = "keras3") -> Activation:
    """The reference activation for a Keras name (None means linear). Raises NotApplicable for a name
    the flavor's Keras does not have, Unsupported for one the reference does not implement."""
    canonical = _ALIASES.get(name, name)
    table = _table(flavor)
    if canonical not in table and name not in _NOT_IMPLEMENTED[flavor] and name in KERAS_ACTIVATION_NAMES:
        raise NotApplicable(f"activation {name!r} is not a built-in activation of {flavor}")
    if canonical not in table:
        raise Unsupported(
            f"activation {name!r} is not implemented by the reference for {flavor} "
            f"(implemented: {', '.join(sorted(supported_names(flavor)))})"
        )
    formula, fn = table[canonical]
    derivative = _HARD_SIGMOID_DERIVATIVE[flavor] if canonical == "hard_sigmoid" else _DERIVATIVES[canonical]
    return Activation(name=canonical, formula=formula, fn=fn, derivative=derivative,
                      jacobian_vjp=_JACOBIAN_VJPS.get(canonical))


def definition_changes(name: str | None, old_flavor: str, new_flavor: str) -> str | None:
    """How the definition of an activation differs between two Keras flavors, or None if it does not."""
    if old_flavor == new_flavor:
        return None
    canonical = _ALIASES.get(name, name)
    old, new = _table(old_flavor).get(canonical), _table(new_flavor).get(canonical)
    if old is None or new is None:
        missing = old_flavor if old is None else new_flavor
        return f"{canonical}: not a built-in activation in {missing}"
    if old[0] == new[0]:
        return None
    return f"{canonical}: {old[0]} -> {new[0]}"
