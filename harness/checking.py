"""`check_layer`: the harness from Python, on a Keras layer you built (a notebook, your own tests).

    from harness import check_layer
    result = check_layer(layer, x, mask=m)
    assert result.passed, result.report
    result.save("cases/mine/my-layer.yaml")       # the same check, as a case file: `harness run` runs it

What runs: the layer's config (`get_config()`) and weights become a case document with literal arrays
(harness/layer_document.py), the normal loader validates it, and the normal runner runs it: the reference,
and a layer *rebuilt from the document* on the target of the layer's own Keras (tensorflow, jax or torch for
Keras 3 by its backend; tf-keras for a tf_keras layer), in the default execution modes (eager and graph on
TensorFlow). The document's weights are the truth, exactly as for a case file.

Your layer object itself is run too, as a second source (the target `layer-object`, eagerly, in this
process): it is called on the same input, mask and initial state, and compared with the same reference and
tolerances. So a layer that does not do what its config and weights say (a subclass with its own `call`, a
patched cell, weights the spec maps wrongly) fails, and the report says which source is the odd one out:
"layer-object is the odd one out among targets (tensorflow agrees with the reference)". A stateful layer
object is not called (calling it would change the states it carries); the case's rebuilt layer starts from
zero states, or from `initial_state`.

A layer or argument the harness cannot express is the result's outcome "invalid" with the loader's
message (file `<check_layer NAME>`, the field, what was expected and found), never an exception: the same
rule as a bad case file. Only a call that gives nothing to check raises: a layer that is not built (it has
no weights yet), or an `initial_state` list of the wrong length (ValueError).

The jax, torch and tf-keras targets run in a worker process: in a script (not a notebook) that uses them,
call check_layer under `if __name__ == "__main__":`, as Python's multiprocessing requires.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from harness import precision, versions
from harness.case import Case
from harness.errors import InvalidCase, SystemFailure
from harness.layer_document import layer_document, layer_type, to_numpy, write_document
from harness.targets.base import SystemRun

LAYER_OBJECT = "layer-object"


@dataclass
class CheckResult:
    """What check_layer found. `passed` is True only for the outcome "passed" (every compared output of
    every source agrees with the reference); `report` is the text report `harness run` prints."""

    outcome: str
    message: str
    report: str
    document: dict
    result: object | None = None  # the runner's CaseResult (None when the document was invalid)
    sources: dict[str, str] = field(default_factory=dict)  # source (target) -> its outcome

    @property
    def passed(self) -> bool:
        return self.outcome == "passed"

    def to_case(self) -> dict:
        """The case document (plain data, as a case file holds it): save it with `save`, or yaml.safe_dump."""
        return self.document

    def save(self, path) -> Path:
        """Write the case file (`.json` for JSON, else YAML) atomically; returns its path."""
        path = Path(path)
        write_document(self.document, path)
        return path

    def __repr__(self) -> str:
        return f"CheckResult(outcome={self.outcome!r}, message={self.message!r})"


def _flavor_of(layer) -> str:
    return "keras2" if type(layer).__module__.startswith("tf_keras") else versions.keras_flavor()


def target_of(layer) -> str:
    """The target that rebuilds the layer with the same Keras: tf-keras for a tf_keras layer, else the
    backend Keras runs on (Keras 2 as `keras` is the tensorflow target)."""
    if type(layer).__module__.startswith("tf_keras"):
        return "tf-keras"
    import keras  # noqa: PLC0415 - the layer's own Keras is already imported

    backend = getattr(getattr(keras, "backend", None), "backend", lambda: "tensorflow")()
    return backend if backend in ("tensorflow", "jax", "torch") else "tensorflow"


class LayerObject:
    """The user's layer object as a system under test: called eagerly as it is (its own weights and code),
    never rebuilt."""

    name = LAYER_OBJECT
    label = "your layer"
    modes = ("eager",)
    default_modes = ("eager",)

    def __init__(self, layer):
        self.layer = layer

    def environment(self) -> dict:
        return {"keras_flavor": self.semantics()}

    def semantics(self) -> str:
        return _flavor_of(self.layer)

    def supports(self, case: Case) -> str | None:
        if case.stateful:
            return "a stateful layer object is not called: calling it would change the states it carries"
        return None

    def prepare(self, case: Case):
        return case

    def _tensor_maker(self):
        """Tensors of the layer's own framework (Keras 2 refuses NumPy initial states as "not symbolic")."""
        if not type(self.layer).__module__.startswith("tf_keras"):
            import keras  # noqa: PLC0415 - the layer's Keras, already imported

            if hasattr(keras, "ops"):
                return keras.ops.convert_to_tensor
        import tensorflow as tf  # noqa: PLC0415 - Keras 2 runs on TensorFlow

        return tf.convert_to_tensor

    def run(self, case: Case, mode: str) -> SystemRun:
        compute = precision.compute_dtype(case.dtype)
        tensor = self._tensor_maker()
        outputs = []
        for call in case.calls:
            kwargs = {"training": False}
            if call.mask is not None:
                kwargs["mask"] = tensor(np.asarray(call.mask, dtype=bool))
            if call.initial_state is not None:
                kwargs["initial_state"] = case.spec.keras_initial_state(
                    {name: tensor(precision.round_to(s, compute)) for name, s in call.initial_state.items()})
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)
                    raw = self.layer(tensor(precision.round_to(call.input, compute)), **kwargs)
            except Exception as exc:  # noqa: BLE001 - whatever the layer raises is reported
                raise SystemFailure("running your layer object (eager)", exc, self.label) from exc
            outputs.append(case.spec.keras_outputs(raw, case.config, convert=to_numpy))
        return SystemRun.from_native(outputs)


def check_layer(layer, inputs, *, mask=None, initial_state=None, expected=None, tolerance=None,
                name: str | None = None, modes: tuple[str, ...] | None = None) -> CheckResult:
    """Check a built Keras LSTM, GRU, SimpleRNN or Bidirectional layer on one call against the float64
    reference, with the layer's own config and weights (see the module docstring for what runs).

    inputs: (batch, timesteps, features); mask: (batch, timesteps) booleans; initial_state: a list in the
    order the layer's call takes it, or a dict by the harness's state names (h, c, forward_h, ...);
    expected: hand values by output name (sequences, h, c, output, ...): a third oracle; tolerance: as a
    case's `tolerance:` ({rtol, atol}, or per output); name: the case's name; modes: execution modes of the
    rebuilt layer (default: the target's default). Arrays may be NumPy arrays or tensors."""
    from harness import targets  # noqa: PLC0415 - the targets import Keras only when they run
    from harness.across_targets import run_on_targets  # noqa: PLC0415
    from harness.loader import case_from_document  # noqa: PLC0415
    from harness.runner import invalid_result  # noqa: PLC0415

    label = f"<check_layer {name or getattr(layer, 'name', '?')}>"

    def invalid(error: InvalidCase, document: dict) -> CheckResult:
        bad = invalid_result(error, name or label)
        return CheckResult(bad.outcome, bad.message, bad.details, document, bad, {})

    try:
        document = layer_document(layer, inputs, mask=mask, initial_state=initial_state, expected=expected,
                                  tolerance=tolerance, name=name)
    except InvalidCase as error:
        return invalid(InvalidCase(label, error.problems), {"layer": layer_type(layer)})
    try:
        case = case_from_document(document, Path(label))
    except InvalidCase as error:  # the document is kept: fix it and save it, or see what was read
        return invalid(error, document)
    systems = [targets.get(target_of(layer)), LayerObject(layer)]
    result = run_on_targets(case, systems, modes)
    sources = {name_: r.outcome for name_, r in result.targets.items()}
    return CheckResult(result.outcome, result.message, result.details, document, result, sources)
