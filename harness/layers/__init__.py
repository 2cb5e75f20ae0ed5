"""Layer specs: one file per Keras layer (lstm.py, ...), the generic recurrent driver, and the registry.

`get(name)` returns the spec of a `layer:` name; `SPECS` lists them in the order the schema and the
README show them.
"""

from __future__ import annotations

from harness.layers.base import LayerSpec
from harness.layers.lstm import SPEC as LSTM

DEFAULT_LAYER = "LSTM"
SPECS: dict[str, LayerSpec] = {spec.name: spec for spec in (LSTM,)}


def get(name: str | None) -> LayerSpec:
    """The spec of a layer name (None: the default layer); KeyError for an unknown one."""
    return SPECS[name or DEFAULT_LAYER]
