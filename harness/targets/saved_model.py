"""The layer saved and loaded back (the `saved-model` target): the case's layer in a functional model
(mask and initial states as model inputs), then either mode
  keras   model.save() to a .keras file, keras.models.load_model(), call the loaded model;
  export  model.export() to a SavedModel directory, tf.saved_model.load(), call its `serve` endpoint
          (which takes the list of inputs, even for a one-input model).
Gradients in both modes, with a GradientTape around the reloaded model (keras: the loaded layer's
variables; export: the restored SavedModel's trainable variables, matched to the layer's by path).
In this process, beside the `tensorflow` target. A stateful case of several calls is refused: a
reloaded SavedModel has only `serve`, no reset_states."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from harness.errors import SystemFailure
from harness.targets.converted import ConvertedTarget, Prepared, parts


class SavedModel(ConvertedTarget):
    name = "saved-model"
    label = "Keras (saved and reloaded)"
    modes = ("keras", "export")
    default_modes = ("keras", "export")
    several_calls = ("a reloaded SavedModel has no reset_states (`model.export` keeps only `serve`), so a "
                     "stateful case of several calls cannot be expressed")

    def convert(self, prepared: Prepared, mode: str):
        import tensorflow as tf  # noqa: PLC0415 - already imported by Keras

        from harness.targets.tensorflow import import_keras  # noqa: PLC0415

        keras = import_keras()
        folder = Path(tempfile.mkdtemp(prefix="harness-saved-"))
        try:
            if mode == "keras":
                path = folder / "model.keras"
                stage = "saving the model to a .keras file"
                try:
                    prepared.model.save(path)
                    stage = "loading the .keras file back (keras.models.load_model)"
                    return keras.models.load_model(path)
                except Exception as exc:  # noqa: BLE001
                    raise SystemFailure(stage, exc, self.label) from exc
            stage = "exporting the model as a SavedModel (model.export)"
            try:
                prepared.model.export(str(folder / "export"), verbose=False)
                stage = "loading the SavedModel back (tf.saved_model.load)"
                return tf.saved_model.load(str(folder / "export"))
            except Exception as exc:  # noqa: BLE001
                raise SystemFailure(stage, exc, self.label) from exc
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def call(self, prepared: Prepared, converted, mode: str, feed: list) -> list:
        import tensorflow as tf  # noqa: PLC0415

        tensors = [tf.convert_to_tensor(value) for value in feed]
        if mode == "keras":
            return parts(converted(tensors, training=False))
        return parts(converted.serve(tensors))

    def gradients(self, case, mode: str) -> list[dict]:
        """Per call: gradient name -> float64 values, through the reloaded model (eagerly, as it is run)."""
        import tensorflow as tf  # noqa: PLC0415

        from harness.targets.tensorflow import tape_gradients  # noqa: PLC0415

        prepared = self.prepare(case)
        converted = self.convert(prepared, mode)
        try:
            variables, reset = self._reloaded_variables(prepared, converted, mode)
        except Exception as exc:  # noqa: BLE001
            raise SystemFailure(f"finding the reloaded model's variables ({mode} mode)", exc, self.label) from exc
        arguments = []
        for call, feed in zip(case.calls, prepared.feeds, strict=True):
            tensors = [tf.convert_to_tensor(value) for value in feed]
            kwargs = {"mask": tensors[1]} if call.mask is not None else {}
            if call.initial_state is not None:
                kwargs["initial_state"] = tensors[len(tensors) - len(call.initial_state):]
            arguments.append((call.reset_states, tensors[0], kwargs))

        def run(x, kwargs):
            feed = [x] + ([kwargs["mask"]] if "mask" in kwargs else []) + list(kwargs.get("initial_state") or [])
            return self.call(prepared, converted, mode, feed)

        return tape_gradients(case, variables, run, reset, arguments, mode, self.label, run_as="eager")

    def _reloaded_variables(self, prepared: Prepared, converted, mode: str):
        """The spec's weight name -> the reloaded model's variable, and how to reset its states."""
        spec = prepared.case.spec
        if mode == "keras":
            layer = converted.get_layer(prepared.layer.name)
            return spec.keras_variables(layer), layer.reset_states
        restored = {v.name.split(":")[0]: v for v in converted.trainable_variables}
        found = {}
        for name, variable in spec.keras_variables(prepared.layer).items():
            if variable.path not in restored:
                raise KeyError(f"no variable {variable.path} among the SavedModel's: {', '.join(restored)}")
            found[name] = restored[variable.path]
        return found, lambda: None
