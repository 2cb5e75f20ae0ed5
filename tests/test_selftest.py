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


# --- other targets: the fault installed in the worker process of the jax and torch targets ---------------

from harness import targets  # noqa: E402
from harness.faults import EVERY, Fault, by_name  # noqa: E402
from harness.runner import run_case  # noqa: E402
from harness.selftest import not_applicable, parse_targets  # noqa: E402
from harness.targets import worker  # noqa: E402

WORKER_TARGETS = [pytest.param(name, marks=pytest.mark.skipif(name not in targets.installed(),
                                                               reason=f"the {name} target is not installed"))
                  for name in ("jax", "torch")]
# Masked: on torch an unmasked LSTM runs Keras's own torch loop (backend.lstm), not LSTMCell.call.
MASKED = "masking/mask-right-padded-seq.yaml"


def _fault_pools() -> list[str]:
    return [key for key in worker._POOLS if "+fault:" in key]


@pytest.mark.parametrize("target", WORKER_TARGETS)
def test_a_fault_is_caught_through_a_worker_target_and_never_leaks(target):
    case = load_case(REPO / "cases" / MASKED)
    assert run_case(case, system=targets.get(target)).outcome == "passed"
    fault = next(f for f in FAULTS if f.name == "output-gate-dropped")
    result = run_fault(fault, [case], target=target)
    assert result.disagreed == [case.name] and result.outcomes[case.name] == "failed", result.messages
    assert _fault_pools() == []  # its worker ended with its run
    assert run_case(case, system=targets.get(target)).outcome == "passed"  # the fault-free worker never saw it

    system = targets.with_fault(target, fault.name)
    try:  # in the same worker: failing with the fault, passing once it is uninstalled
        assert run_case(case, system=system).outcome == "failed"
        pids = system.uninstall()
        assert len(pids) == 1
        assert run_case(case, system=system).outcome == "passed"
        assert system.uninstall() == pids  # the same process ran the passing case
    finally:
        system.close()
    assert _fault_pools() == []


@pytest.mark.parametrize("target", WORKER_TARGETS)
def test_a_fault_that_cannot_be_installed_is_not_a_catch(target):
    case = load_case(REPO / "cases" / MASKED)
    broken = Fault("no-such-fault", "unknown to the worker: its install raises", FAULTS[0].install)
    result = run_fault(broken, [case], stop_at=1, target=target)
    assert result.failing == [case.name] and result.raised_only and not result.disagreed
    assert _fault_pools() == []


def test_every_fault_is_found_by_its_name():
    for fault in (*EVERY, CONTROL, *CONTROLS.values()):
        assert by_name(fault.name) is fault
    assert by_name("h-scaled-1e-05").name == "h-scaled-1e-05" and by_name("h-scaled-0.001").name == "h-scaled-0.001"
    for name in ("nosuch", "h-scaled-x", "h-scaled-1e-5"):
        with pytest.raises(KeyError):
            by_name(name)


class _Backend:
    def __init__(self, gradients: bool):
        if gradients:
            self.gradients = lambda case, mode: []


def test_what_applies_where(monkeypatch):
    compiled = next(f for f in MORE_FAULTS if f.name == "bias-scaled-when-compiled")
    assert not_applicable(compiled, "tensorflow") is None
    assert not_applicable(compiled, "jax").startswith("not applicable on jax: it tells compiled from eager with "
                                                      "tf.executing_eagerly(), a TensorFlow API")
    assert not_applicable(FAULTS[0], "torch") is None
    # gradient faults: applicable wherever the target computes gradients (jax and torch once they do)
    for has, expected in ((False, "not applicable on jax: it changes only gradients, and the jax target does not "
                                  "compute them yet"), (True, None)):
        monkeypatch.setattr(targets, "get", lambda name=None, has=has: _Backend(has))
        assert not_applicable(GRADIENT_FAULTS[0], "jax") == expected


def test_selftest_targets():
    assert parse_targets("jax,torch") == ("jax", "torch")
    assert set(parse_targets("all")) <= {"tensorflow", "jax", "torch"}
    with pytest.raises(ValueError, match="selftest cannot inject faults into target 'tf-keras': it runs Keras 2"):
        parse_targets("tensorflow,tf-keras")


@pytest.mark.parametrize("target", WORKER_TARGETS[:1])
def test_cli_selftest_on_a_worker_target_says_what_does_not_apply(target, capsys):
    from harness.cli import main

    code = main(["selftest", str(REPO / "cases" / MASKED), "--target", target, "--fault", "bias-scaled-when-compiled"])
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == f"1 of 1 cases pass against the installed Keras on {target} and can witness a fault"
    assert printed[1].startswith(f"NOT APPLICABLE {'bias-scaled-when-compiled':<40} not applicable on {target}: "
                                 "it tells compiled from eager with tf.executing_eagerly()")
    assert printed[2] == f"faults caught on {target}: 0 / 0 (1 not applicable on {target})"
    assert printed[3].startswith(f"selftest on {target} took ")
    assert code == 0


@pytest.mark.parametrize("target", WORKER_TARGETS)
def test_a_gradient_fault_is_caught_through_a_worker_target(target):
    # masked: on torch an unmasked LSTM's backward runs Keras's torch loop, not the patched cell
    case = load_case(REPO / "cases" / "gradients" / "lstm-masked-gap.yaml")
    fault = next(f for f in GRADIENT_FAULTS if f.name == "kernel-gradient-scaled")
    assert not_applicable(fault, target) is None  # the target differentiates, in the faulty worker
    result = run_fault(fault, [case], target=target)
    assert result.disagreed == [case.name], result.messages
    assert "grad.kernel" in result.messages[case.name]
    assert _fault_pools() == []
