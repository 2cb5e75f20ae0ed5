"""The published JSON Schema: valid draft-07, every corpus file validates, and it agrees with the loader."""

import jsonschema
import pytest

from harness.activations import KERAS_ACTIVATION_NAMES
from harness.discovery import find_case_files
from harness.documents import read_document
from harness.errors import InvalidCase
from harness import layers, schema
from harness.loader import case_schema, load_case

from conftest import REPO

CORPUS = find_case_files([REPO / "cases"])


def test_schema_is_valid_draft7():
    jsonschema.Draft7Validator.check_schema(case_schema())
    assert case_schema()["$schema"] == "http://json-schema.org/draft-07/schema#"


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_corpus_file_validates_and_loads(path):
    jsonschema.Draft7Validator(case_schema()).validate(read_document(path))
    load_case(path)


def test_schema_activation_names_are_the_loaders():
    assert set(case_schema()["definitions"]["activation"]["anyOf"][1]["enum"]) == KERAS_ACTIVATION_NAMES


@pytest.mark.parametrize("name", list(layers.SPECS))
def test_schema_config_keys_are_those_the_reference_accounts_for(name):
    spec = layers.get(name)
    assert set(case_schema()["definitions"][f"{name}.config"]["properties"]) == spec.modelled | spec.no_forward_effect


def test_committed_schema_is_the_one_assembled_from_the_layer_specs():
    """Editors validate against the committed file; the loader against the specs. They must not drift:
    regenerate with `python -m harness.schema > harness/case.schema.json`."""
    committed = (REPO / "harness" / "case.schema.json").read_text()
    assert committed == schema.render()


SCHEMA_REJECTS = [
    "config: {units: 0}\ninput: [[[1]]]\nweights: {kernel: [[1,1,1,1]], recurrent_kernel: [[1,1,1,1]], bias: [0,0,0,0]}",
    "config: {units: 1}\ninput: [[[1]]]\nweights: {kernel: [[1,1,1,1]], recurrent_kernel: [[1,1,1,1]], bias: [0,0,0,0]}\ndtype: float8",
    "config: {units: 1, implementation: 3}\ninput: [[[1]]]\nweights: {kernel: [[1,1,1,1]], recurrent_kernel: [[1,1,1,1]], bias: [0,0,0,0]}",
    "config: {units: 1}\ninput: [[[true]]]\nweights: {kernel: [[1,1,1,1]], recurrent_kernel: [[1,1,1,1]], bias: [0,0,0,0]}",
    "config: {units: 1}\ninput: [[[1]]]\nweights: {kernel: [[1,1,1,1]], recurrent_kernel: [[1,1,1,1]], bias: [0,0,0,0]}\ntolerance: {rtol: -1}",
    "config: {units: 1}\ninput: [[[1]]]\nweights: {kernel: [[1,1,1,1]], recurrent_kernel: {random: {seed: 1, distribution: cauchy}}, bias: [0,0,0,0]}",
    "config: {units: 1}\ninput: [[[1]]]\nweights: {kernel: [[1,1,1,1]], recurrent_kernel: [[1,1,1,1]], bias: [0,0,0,0]}\nmask: [[2]]",
    "config: {units: 1}\ninput: [[[1]]]\nweights: {kernel: [[1,1,1,1]]}",
    "config: {units: 1}\nlayer: LTSM\ninput: [[[1]]]\nweights: {kernel: [[1,1,1,1]], recurrent_kernel: [[1,1,1,1]], bias: [0,0,0,0]}",
]


@pytest.mark.parametrize("text", SCHEMA_REJECTS)
def test_what_the_schema_rejects_the_loader_rejects(write_case, text):
    path = write_case(text)
    assert list(jsonschema.Draft7Validator(case_schema()).iter_errors(read_document(path)))
    with pytest.raises(InvalidCase):
        load_case(path)
