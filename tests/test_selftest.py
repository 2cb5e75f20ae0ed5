"""Fault injection, fast subset for CI: every fault is caught by a handful of cases, and the
defect-free re-statement of the cell (the control) changes nothing."""

import pytest

from harness.faults import CONTROL, CONTROLS, FAMILY_FAULTS, FAULTS, GRADIENT_FAULTS, MORE_FAULTS, h_scaled
from harness.loader import load_case
from harness.selftest import involves, run_fault

from conftest import REPO

SUBSET = ["seed/seed-linear-gates.yaml", "hand-computed/hand-go-backwards.yaml", "hand-computed/hand-initial-state.yaml",
          "hand-computed/hand-stateful-two-calls.yaml", "hand-computed/hand-two-steps-masked.yaml",
          "dtypes/float64-tanh-sigmoid.yaml", "stateful/stateful-three-calls.yaml", "masking/mask-right-padded-seq.yaml"]


@pytest.fixture(scope="module")
def cases():
    return [load_case(REPO / "cases" / name) for name in SUBSET]


def test_control_changes_nothing(cases):
    assert run_fault(CONTROL, cases).failing == []


@pytest.mark.parametrize("fault", FAULTS + MORE_FAULTS, ids=lambda f: f.name)
def test_every_fault_is_caught_by_the_subset(fault, cases):
    assert run_fault(fault, cases, stop_at=1).caught, f"{fault.name} escaped"


def test_faults_are_uninstalled_afterwards(cases):
    with FAULTS[0].install():
        pass
    assert run_fault(CONTROL, cases[:1]).failing == []
    from harness.runner import run_case
    assert run_case(cases[0]).outcome == "passed"


def test_tiny_perturbation_escapes_float32_but_not_float64(cases):
    float64 = [c for c in cases if c.dtype == "float64" and c.name == "float64-tanh-sigmoid"]
    assert run_fault(h_scaled(1e-9), float64).caught
    assert not run_fault(h_scaled(1e-9), [c for c in cases if c.name == "seed-linear-gates"]).caught


# GRU, SimpleRNN and Bidirectional: hand-computed cases and a few seeded ones of each layer
FAMILY_SUBSET = ["gru/hand-computed/hand-reset-after-true.yaml", "gru/hand-computed/hand-reset-after-false.yaml",
                 "gru/hand-computed/hand-recurrent-bias-two-steps.yaml",
                 "simple-rnn/hand-computed/hand-two-steps-swap.yaml", "simple-rnn/code-paths/path-loop-bias.yaml",
                 "bidirectional/hand-computed/hand-concat-simple-rnn-two-steps.yaml",
                 "bidirectional/hand-computed/hand-sum-return-state-initial-states.yaml",
                 "bidirectional/merge-modes/lstm-concat.yaml", "bidirectional/outputs/lstm-return-state-seq.yaml"]


@pytest.fixture(scope="module")
def family_cases():
    return [load_case(REPO / "cases" / name) for name in FAMILY_SUBSET]


@pytest.mark.parametrize("layer", list(CONTROLS))
def test_family_controls_change_nothing(layer, family_cases):
    assert run_fault(CONTROLS[layer], [c for c in family_cases if involves(c, layer)]).failing == []


@pytest.mark.parametrize("fault", FAMILY_FAULTS, ids=lambda f: f.name)
def test_every_family_fault_is_caught_by_the_subset(fault, family_cases):
    witnesses = [c for c in family_cases if involves(c, fault.layer)]
    assert witnesses and run_fault(fault, witnesses, stop_at=1).caught, f"{fault.name} escaped"


# Gradient-only faults: forward values bit-identical, so only gradient cases can catch them.
GRADIENT_SUBSET = ["gradients/hand-seed-one-step.yaml", "gradients/lstm-masked-gap.yaml",
                   "gradients/lstm-stateful-two-calls.yaml"]


@pytest.mark.parametrize("fault", GRADIENT_FAULTS, ids=lambda f: f.name)
def test_gradient_faults_are_caught_and_leave_forward_values_alone(fault, cases):
    witnesses = [load_case(REPO / "cases" / name) for name in GRADIENT_SUBSET]
    assert run_fault(fault, witnesses, stop_at=1).caught, f"{fault.name} escaped"
    assert run_fault(fault, cases).failing == []  # forward-only cases cannot see it
