"""Version conditions in case files: `requires:` skips a case elsewhere, `known_failure.when:` limits
a known defect to some versions, and a malformed specifier is a field error."""

import pytest

from harness.errors import InvalidCase
from harness.loader import load_case
from harness.runner import run_path
from harness.versions import unmet

from test_end_to_end import wrong_hand


def test_unmet_conditions_are_explained():
    versions = {"keras": "3.15.1", "tensorflow": "2.21.0"}
    assert unmet({"keras": ">=3", "tensorflow": ">=2.16,<2.22"}, versions) == []
    assert unmet({"keras": "<3"}, versions) == ["keras<3 (installed: 3.15.1)"]
    assert unmet({"numpy": ">=1"}, versions) == ["numpy>=1 (installed: none)"]


def test_requires_skips_where_versions_do_not_match(write_case, seed_text):
    result = run_path(write_case(seed_text + 'requires: {keras: "<3"}\n'))
    assert result.outcome == "skipped" and result.ok
    assert result.message.startswith("requires keras<3 (installed: ")


def test_known_failure_outside_its_versions_must_pass(write_case, seed_text):
    text = wrong_hand(seed_text) + 'known_failure: {reason: only in Keras 2, when: {keras: "<3"}}\n'
    assert run_path(write_case(text)).outcome == "failed"
    text = wrong_hand(seed_text) + 'known_failure: {reason: in Keras 3, when: {keras: ">=3"}}\n'
    assert run_path(write_case(text, "b.yaml")).outcome == "xfailed"


def test_malformed_specifier_is_a_field_error(write_case, seed_text):
    with pytest.raises(InvalidCase) as info:
        load_case(write_case(seed_text + 'requires: {keras: "three"}\n'))
    [problem] = info.value.problems
    assert problem.field == "requires.keras" and problem.message == "not a version specifier"
