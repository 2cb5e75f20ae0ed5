"""Layer specs: one file per Keras layer (lstm.py, ...), the generic recurrent driver, and the registry.

`get(name)` returns the spec of a `layer:` name; `SPECS` lists them in the order the schema and the
README show them.
"""

from __future__ import annotations

from harness.layers import bidirectional
from harness.layers.base import LayerSpec
from harness.layers.gru import SPEC as GRU
from harness.layers.lstm import SPEC as LSTM
from harness.layers.simple_rnn import SPEC as SIMPLE_RNN

DEFAULT_LAYER = "LSTM"
RECURRENT = {spec.name: spec for spec in (LSTM, GRU, SIMPLE_RNN)}  # the layers Bidirectional can wrap
BIDIRECTIONAL = bidirectional.make(RECURRENT)
SPECS: dict[str, LayerSpec] = {**RECURRENT, BIDIRECTIONAL.name: BIDIRECTIONAL}


def get(name: str | None) -> LayerSpec:
    """The spec of a layer name (None: the default layer); KeyError for an unknown one."""
    return SPECS[name or DEFAULT_LAYER]
