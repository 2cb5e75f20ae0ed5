"""Keras 2 through the `tf_keras` package on the installed TensorFlow (the `tf-keras` target): modes eager
and graph (`tf.function`), built and run exactly as the `tensorflow` target does, with `tf_keras` in
place of `keras`. The reference follows Keras 2's definitions (semantics "keras2": hard_sigmoid is
clip(0.2x + 0.5, 0, 1); an activation Keras 2 lacks makes the case `skipped`).

It runs in a worker process of its own, so that importing tf_keras cannot change anything for the
`tensorflow` target. Install `tf-keras` matching TensorFlow with `pip install --no-deps` (it requires the
full `tensorflow` distribution, which would install over tensorflow-cpu)."""

from __future__ import annotations

import os

from harness import known_defects, versions
from harness.case import Case
from harness.targets.tensorflow import KerasOnTensorFlow


KERAS3_ONLY_OPTIONS = frozenset({"use_cudnn", "seed"})


class TfKeras(KerasOnTensorFlow):
    name = "tf-keras"
    label = "Keras 2 (tf_keras)"
    backend = "tensorflow"  # what the worker's KERAS_BACKEND says; tf_keras itself ignores it
    modes = ("eager", "graph")
    default_modes = ("eager", "graph")

    def environment(self) -> dict:
        installed = versions.installed_versions()
        from importlib import metadata  # noqa: PLC0415

        return {"tensorflow": installed.get("tensorflow"), "tf_keras": metadata.version("tf-keras"),
                "backend": "tensorflow", "keras_flavor": self.semantics()}

    def semantics(self) -> str:
        return "keras2"

    def package_versions(self) -> dict[str, str]:
        """What a case's `requires: {keras: ...}` compares with: tf_keras's version (Keras 2), not keras 3's."""
        from importlib import metadata  # noqa: PLC0415

        return {"keras": metadata.version("tf-keras")}

    def supports(self, case: Case) -> str | None:
        for _, config in known_defects.layer_configs(known_defects.case_document(case)):
            keras3_only = sorted(KERAS3_ONLY_OPTIONS & set(config))
            if keras3_only:
                return f"Keras 2 has no option {keras3_only[0]} (a Keras 3 option)"
        if case.stateful and any(call.initial_state is not None and not call.reset_states for call in case.calls[1:]):
            return ("Keras 2 ignores the initial_state given to a stateful layer whose carried states are not all "
                    "zero (RNN._process_inputs keeps the recorded states), a Keras 2 rule the reference does not model")
        return None

    def keras_module(self):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tf_keras  # noqa: PLC0415

        return tf_keras
