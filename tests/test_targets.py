"""Systems under test: the target registry and --target, several targets on one case (the worst outcome,
the odd target named), and the Keras 3 backends in their worker processes."""

import pytest

from harness import targets
from harness.across_targets import run_on_targets
from harness.cli import main
from harness.loader import load_case

from conftest import REPO
from fakes import AlteredSystem

SEED = REPO / "cases" / "seed" / "seed-linear-gates.yaml"


def test_parse_targets():
    assert targets.parse_targets("tensorflow") == ("tensorflow",)
    assert targets.parse_targets("all") == targets.installed()
    with pytest.raises(ValueError, match="unknown target 'tflight' \\(choose from tensorflow, "):
        targets.parse_targets("tensorflow,tflight")


class Renamed(AlteredSystem):
    """The real Keras under another target name (a second system without a second backend)."""

    def __init__(self, name, alter=lambda mode, run: run):
        super().__init__(alter)
        self.name, self.label = name, f"Keras as {name}"


def test_the_odd_target_is_named_and_decides_the_outcome():
    def wrong(mode, run):
        run.outputs[0]["h"] = run.outputs[0]["h"] + 1.0
        return run

    result = run_on_targets(load_case(SEED), [targets.get(), Renamed("other", wrong)])
    assert result.outcome == "failed"
    assert result.message.startswith("other is the odd one out among targets (tensorflow agrees with the reference): "
                                     "tensorflow: passed; other: failed (mismatch in h")
    assert set(result.to_json()["targets"]) == {"tensorflow", "other"}
    assert "[target other] FAILED seed-linear-gates" in result.details


def test_one_target_gives_exactly_its_result():
    result = run_on_targets(load_case(SEED), [targets.get()])
    assert result.outcome == "passed" and "targets" not in result.to_json()


def test_a_case_restricted_to_other_targets_is_skipped_saying_why(write_case):
    case = load_case(write_case(SEED.read_text() + "targets: [torch]\n"))
    result = run_on_targets(case, [targets.get()])
    assert result.outcome == "skipped"
    assert result.message == "target tensorflow: the case runs only on torch (its `targets:`)"


@pytest.mark.parametrize("name", [n for n in ("jax", "torch") if n in targets.installed()])
def test_a_backend_runs_in_its_worker_and_agrees(name):
    result = run_on_targets(load_case(SEED), [targets.get(name)])
    assert result.outcome == "passed", result.details
    assert result.modes == targets.get(name).default_modes


def test_cli_target_option(capsys):
    assert main(["run", str(SEED), "--target", "tensorflow"]) == 0
    with pytest.raises(SystemExit):
        main(["run", str(SEED), "--target", "nosuch"])
    assert "unknown target 'nosuch'" in capsys.readouterr().err


def test_a_keras_backend_in_the_users_shell_does_not_break_the_default_run(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "KERAS_BACKEND": "jax"}
    done = subprocess.run([sys.executable, "-m", "harness", "run", str(SEED)], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "PASSED" in done.stdout


@pytest.mark.skipif("torch" not in targets.installed(), reason="the torch target is not installed")
def test_fuzz_runs_on_another_target_skipping_its_documented_defects():
    from harness.fuzz import fuzz

    report = fuzz(examples=6, seed=3, system=targets.get("torch"))
    assert report.ran == 6 and report.disagreements == []
