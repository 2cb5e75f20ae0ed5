"""record -> compare end to end on the installed Keras, with doctored, tampered and foreign recordings."""

import io
import json

import numpy as np
import pytest

from harness.cli import main
from harness.loader import load_case
from harness.recording import (BEYOND, EDITED, IDENTICAL, MISSING, NEW, WITHIN, RecordingError, _cause, _sha256,
                               compare, open_recording, record)

from conftest import REPO

CASES = ["seed/seed-linear-gates.yaml", "dtypes/float16-tanh-sigmoid.yaml", "stateful/stateful-three-calls.yaml"]


@pytest.fixture
def corpus(tmp_path):
    folder = tmp_path / "cases"
    folder.mkdir()
    for name in CASES:
        (folder / name.split("/")[1]).write_text((REPO / "cases" / name).read_text())
    return folder


@pytest.fixture
def recorded(corpus, tmp_path):
    out = tmp_path / "rec"
    record([corpus], out)
    return out


def _doctor(recording, case, change, keep_hash=True):
    """Apply `change` to every array of a recorded case; keep the manifest consistent unless told not to."""
    manifest = json.loads((recording / "manifest.json").read_text())
    item = manifest["cases"][case]
    path = recording / item["file"]
    with np.load(path) as npz:
        arrays = {k: change(k, npz[k]) for k in npz.files}
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    path.write_bytes(buffer.getvalue())
    if keep_hash:
        item["file_sha256"] = _sha256(buffer.getvalue())
        (recording / "manifest.json").write_text(json.dumps(manifest))


def _kinds(comparison):
    return {c.name: c.kind for c in comparison.changes}


def test_manifest_records_versions_and_hashes(recorded, corpus):
    manifest = json.loads((recorded / "manifest.json").read_text())
    assert manifest["format"] == "keras-rnn-harness-recording" and manifest["format_version"] == 1
    assert {"python", "tensorflow", "keras", "numpy", "backend", "platform", "harness"} <= set(manifest["environment"])
    item = manifest["cases"]["seed-linear-gates"]
    assert item["sha256"] == _sha256((corpus / "seed-linear-gates.yaml").read_bytes())
    with np.load(recorded / item["file"]) as npz:
        assert sorted(npz.files) == ["call1/c", "call1/h", "call1/sequences"]
        np.testing.assert_array_equal(npz["call1/h"], [[0, 4, 0]])


def test_same_version_is_bit_identical(recorded, corpus):
    comparison = compare(open_recording(recorded), [corpus])
    assert set(_kinds(comparison).values()) == {IDENTICAL}


def test_a_doctored_recording_is_flagged_and_explained(recorded, corpus):
    _doctor(recorded, "stateful-three-calls", lambda k, a: a * 1.01 if k.endswith("/h") else a)
    [change] = [c for c in compare(open_recording(recorded), [corpus]).changes if c.kind != IDENTICAL]
    assert change.kind == BEYOND and change.name == "stateful-three-calls"
    assert change.cause.startswith("FIXED: the new version agrees with the reference, the old one did not")


def test_one_ulp_is_within_tolerance_and_counted(recorded, corpus):
    _doctor(recorded, "float16-tanh-sigmoid",
            lambda k, a: a.astype(np.float16).view(np.uint16).__add__(np.uint16(1)).view(np.float16).astype(np.float64)
            if k.endswith("/h") else a)
    [change] = [c for c in compare(open_recording(recorded), [corpus]).changes if c.kind != IDENTICAL]
    assert change.kind == WITHIN and 0.9 < change.max_ulps <= 1.0


def test_tampering_without_the_manifest_is_refused(recorded, corpus):
    _doctor(recorded, "seed-linear-gates", lambda k, a: a + 1, keep_hash=False)
    with pytest.raises(RecordingError, match="changed after it was recorded"):
        compare(open_recording(recorded), [corpus])


def test_new_missing_and_edited_cases(recorded, corpus):
    (corpus / "seed-linear-gates.yaml").write_text((corpus / "seed-linear-gates.yaml").read_text() + "\n# edited\n")
    (corpus / "stateful-three-calls.yaml").unlink()
    (corpus / "units-one.yaml").write_text((REPO / "cases/shapes/units-one.yaml").read_text())
    kinds = _kinds(compare(open_recording(recorded), [corpus]))
    assert kinds == {"seed-linear-gates": EDITED, "stateful-three-calls": MISSING, "units-one": NEW,
                     "float16-tanh-sigmoid": IDENTICAL}


@pytest.mark.parametrize("manifest,message", [
    (None, "no manifest.json: not a harness recording"),
    ("{not json", "not valid JSON"),
    (json.dumps({"format": "something-else"}), "not a harness recording (format is not"),
    (json.dumps({"format": "keras-rnn-harness-recording", "format_version": 99}), "format version 99"),
])
def test_foreign_or_corrupt_recordings_are_refused(tmp_path, manifest, message):
    folder = tmp_path / "rec"
    folder.mkdir()
    if manifest is not None:
        (folder / "manifest.json").write_text(manifest)
    with pytest.raises(RecordingError, match=message.replace("(", r"\(")):
        open_recording(folder)


def test_hard_sigmoid_change_is_named_as_semantic():
    case = load_case(REPO / "cases/activations/recurrent-hard-sigmoid.yaml")
    cause = _cause(case, True, True, "keras2", "keras3")
    assert cause == ("semantic change in Keras (keras2 -> keras3): hard_sigmoid: clip(0.2 * x + 0.5, 0, 1)  "
                     "(Keras 2 definition) -> clip(x / 6 + 0.5, 0, 1)  (Keras 3 definition)")
    assert _cause(case, True, False, "keras3", "keras3").startswith("REGRESSION")


def test_cli_compare_exit_codes_and_reports(recorded, corpus, tmp_path, capsys):
    assert main(["compare", str(recorded), str(corpus)]) == 0
    _doctor(recorded, "seed-linear-gates", lambda k, a: a * 2)
    md, js = tmp_path / "r.md", tmp_path / "r.json"
    assert main(["compare", str(recorded), str(corpus), "--markdown", str(md), "--report-json", str(js)]) == 1
    assert "### Changed beyond tolerance" in md.read_text() and "`seed-linear-gates`" in md.read_text()
    rows = {row["case"]: row for row in json.loads(js.read_text())["cases"]}
    assert rows["seed-linear-gates"]["change"] == BEYOND
    (recorded / "manifest.json").write_text("[]")
    assert main(["compare", str(recorded), str(corpus)]) == 2
    assert "not a harness recording" in capsys.readouterr().err


def test_a_case_that_did_not_run_when_recorded_is_not_comparable(recorded, corpus):
    manifest = json.loads((recorded / "manifest.json").read_text())
    item = manifest["cases"]["seed-linear-gates"]
    del item["file"], item["file_sha256"]
    item["outcome"] = "skipped"
    (recorded / "manifest.json").write_text(json.dumps(manifest))
    [change] = [c for c in compare(open_recording(recorded), [corpus]).changes if c.name == "seed-linear-gates"]
    assert change.kind == "not comparable" and "outcome when recorded: skipped; now: passed" in change.detail


def test_outputs_recorded_in_another_mode_are_not_compared(recorded, corpus):
    manifest = json.loads((recorded / "manifest.json").read_text())
    assert manifest["cases"]["seed-linear-gates"]["mode"] == "eager"  # the first of the default modes
    manifest["cases"]["seed-linear-gates"]["mode"] = "xla"
    (recorded / "manifest.json").write_text(json.dumps(manifest))
    [change] = [c for c in compare(open_recording(recorded), [corpus]).changes if c.name == "seed-linear-gates"]
    assert change.kind == "not comparable"
    assert change.detail == "recorded in xla mode, now run first in eager mode: record again"


def test_record_and_compare_in_graph_mode(corpus, tmp_path, capsys):
    out = tmp_path / "graph-rec"
    assert main(["record", str(corpus), "--out", str(out), "--mode", "graph"]) == 0
    assert {item["mode"] for item in json.loads((out / "manifest.json").read_text())["cases"].values()} == {"graph"}
    assert main(["compare", str(out), str(corpus), "--mode", "graph"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "3 bit-identical"
    assert main(["compare", str(out), str(corpus)]) == 1  # default modes: eager first; nothing compared is a failure
    assert capsys.readouterr().out.splitlines()[-2:] == [
        "3 not comparable", "nothing was compared: no case has outputs both in the recording and now"]


# ---------------------------------------------------------------- gradients beside the outputs

GRADIENT_CASES = ["gradients/hand-seed-one-step.yaml", "gradients/bidirectional-lstm-ave-initial-states.yaml"]


@pytest.fixture
def gradient_corpus(tmp_path):
    folder = tmp_path / "gradient-cases"
    folder.mkdir()
    for name in GRADIENT_CASES:
        (folder / name.split("/")[1]).write_text((REPO / "cases" / name).read_text())
    return folder


@pytest.fixture
def gradient_recorded(gradient_corpus, tmp_path):
    out = tmp_path / "gradient-rec"
    record([gradient_corpus], out)
    return out


def test_gradients_are_recorded_beside_the_outputs_and_compare_bit_identical(gradient_recorded, gradient_corpus):
    manifest = json.loads((gradient_recorded / "manifest.json").read_text())
    with np.load(gradient_recorded / manifest["cases"]["gradient-hand-seed-one-step"]["file"]) as npz:
        assert sorted(npz.files) == ["call1/c", "call1/grad.bias", "call1/grad.initial_state.c",
                                     "call1/grad.initial_state.h", "call1/grad.input", "call1/grad.kernel",
                                     "call1/grad.recurrent_kernel", "call1/h", "call1/sequences"]
        np.testing.assert_array_equal(npz["call1/grad.input"], [[[8, 4]]])  # the case's hand value
    with np.load(gradient_recorded / manifest["cases"]["gradient-bidirectional-lstm-ave-initial-states"]["file"]) as npz:
        assert {"call1/grad.forward.kernel", "call1/grad.backward.bias", "call1/grad.initial_state.forward_h",
                "call1/grad.initial_state.backward_c"} <= set(npz.files)
    comparison = compare(open_recording(gradient_recorded), [gradient_corpus])
    assert set(_kinds(comparison).values()) == {IDENTICAL}


def test_a_changed_gradient_is_a_change_naming_it(gradient_recorded, gradient_corpus, monkeypatch):
    """The target's gradient function scales one value of dL/dkernel by 1.01: the outputs keep their bits, the
    gradient changes beyond its tolerance, and the change names grad.kernel (the old version agreed)."""
    import harness.targets.tensorflow as tensorflow_target

    original = tensorflow_target.gradients

    def perturbed(system, case, mode):
        calls = original(system, case, mode)
        if case.name == "gradient-hand-seed-one-step":
            calls[0]["kernel"] = calls[0]["kernel"].copy()
            calls[0]["kernel"][0, 6] *= 1.01  # dL/dkernel[0, 6] = 10 by hand
        return calls

    monkeypatch.setattr(tensorflow_target, "gradients", perturbed)
    changes = {c.name: c for c in compare(open_recording(gradient_recorded), [gradient_corpus]).changes}
    assert changes["gradient-bidirectional-lstm-ave-initial-states"].kind == IDENTICAL
    change = changes["gradient-hand-seed-one-step"]
    assert change.kind == BEYOND and change.changed == ["grad.kernel"]
    assert change.detail == "largest change 0.1 (1.05e+05 ulps); beyond tolerance: grad.kernel; changed: grad.kernel"
    assert change.cause == "REGRESSION: the old version agrees with the reference, the new one does not"


def test_a_recording_without_gradients_still_compares(gradient_recorded, gradient_corpus):
    """A recording made before gradients were recorded: the outputs are compared, and the change says the
    gradients were not."""
    _doctor(gradient_recorded, "gradient-hand-seed-one-step", lambda k, a: a)
    manifest = json.loads((gradient_recorded / "manifest.json").read_text())
    item = manifest["cases"]["gradient-hand-seed-one-step"]
    path = gradient_recorded / item["file"]
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files if "/grad." not in k}
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    path.write_bytes(buffer.getvalue())
    item["file_sha256"] = _sha256(buffer.getvalue())
    (gradient_recorded / "manifest.json").write_text(json.dumps(manifest))
    changes = {c.name: c for c in compare(open_recording(gradient_recorded), [gradient_corpus]).changes}
    change = changes["gradient-hand-seed-one-step"]
    assert change.kind == IDENTICAL
    assert change.detail == "gradients not compared: the recording has none (recorded without them)"


@pytest.mark.parametrize("key,accepted", [
    ("call1/h", True), ("call1/forward_sequences", True), ("call1/grad.kernel", True), ("call1/grad.input", True),
    ("call1/grad.initial_state.h", True), ("call1/grad.forward.recurrent_kernel", True),
    ("call1/grad.initial_state.backward_c", True),
    ("call1/grad.", False), ("call1/grad..h", False), ("call1/grad.a.b.c", False), ("call1/grad.Kernel", False),
    ("call1/grad/kernel", False), ("call1/h.kernel", False), ("call1/grad.kernel.", False), ("call1/h\n", False),
    ("call0/grad.kernel", False), ("call1/grad. kernel", False),
])
def test_outputs_file_keys_are_checked(key, accepted, tmp_path):
    from harness.recording.store import read_outputs_file

    buffer = io.BytesIO()
    np.savez(buffer, **{key: np.zeros((1, 2))})
    if accepted:
        name = key.split("/", 1)[1]
        assert list(read_outputs_file(tmp_path / "x.npz", buffer.getvalue())[0]) == [name]
    else:
        with pytest.raises(RecordingError, match="unexpected array"):
            read_outputs_file(tmp_path / "x.npz", buffer.getvalue())
