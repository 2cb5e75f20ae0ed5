"""Hostile and careless input (issue 16): every file under tests/hostile/ fails alone, with a pinned message,
in bounded time and memory, through the loader, `harness validate`/`run`, and pytest collection; the limits
are configurable; recordings survive locks, kills and doctored manifests; Ctrl-C keeps finished results.

tests/hostile/ is not a case folder (`harness_case_dirs` is cases/), so the normal test run never collects
these files as cases; large hostile files are generated here, under tmp_path, never committed.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from harness import limits
from harness.cli import main
from harness.discovery import load_corpus, walk_case_files
from harness.errors import InvalidCase
from harness.loader import load_case
from harness.recording import _sha256, compare, open_recording, record, recording_lock
from harness.runner import run_case

from conftest import REPO, SEED_CASE

HOSTILE = REPO / "tests" / "hostile"
HARNESS = [sys.executable, "-m", "harness"]
BOUNDED = "ulimit -v 3000000; exec "  # 3 GB of address space: a bomb fails instead of filling the machine

# file -> a pinned fragment of its error (the file, field and limit are named; see harness/limits.py)
EXPECTED = {
    "alias-complex-key.yaml": "alias-complex-key.yaml:2: a list or mapping used as a mapping key",
    "billion-laughs.yaml": "billion-laughs.yaml: too many values (aliases expanded): beyond the limit nodes=1000000",
    "binary-value.yaml": "binary-value.yaml: config: a YAML bytes value is not case data",
    "complex-key.yaml": "complex-key.yaml:1: a list or mapping used as a mapping key",
    "date-value.yaml": "date-value.yaml: description: a YAML date value is not case data",
    "deep-arrays.json": "nested too deeply: beyond the limit depth=32",
    "deep-block.yaml": "deep-block.yaml: nested too deeply: beyond the limit depth=32",
    "deep-flow.yaml": "deep-flow.yaml: nested too deeply: beyond the limit depth=32",
    "empty.yaml": "empty.yaml: a case file holds one mapping",
    "huge-integer.json": "huge-integer.json: input[0][0][0]: integer too large",
    "huge-seed.yaml": "huge-seed.yaml: YAML error: a value cannot be read: Exceeds the limit (4300 digits)",
    "integer-key.yaml": "integer-key.yaml: config: a mapping key that is not a name",
    "json-nan-literal.json": "json-nan-literal.json:1: tolerance.rtol: a tolerance must be a finite number",
    "many-aliases.yaml": "many-aliases.yaml: too many YAML aliases: beyond the limit aliases=1000",
    "mask-strings.json": "mask-strings.json:1: mask[0][0]:",
    "memory-and-work.yaml": "memory-and-work.yaml:2: input: too much memory for one case: beyond the limit memory_mb=2048",
    "nan-random-scale.yaml": "nan-random-scale.yaml:2: input.random.scale: a parameter of a generated array must be finite",
    "not-utf8.yaml": "not-utf8.yaml: not UTF-8 text",
    "python-tag.yaml": "python-tag.yaml:1: refused a YAML tag that would construct a Python object",
    "random-input-huge.yaml": "random-input-huge.yaml:2: input: array too large: beyond the limit elements=4000000",
    "scalar-document.json": "scalar-document.json: a case file holds one mapping",
    "self-alias.yaml": "self-alias.yaml:2: the alias *r refers to a collection that contains it (a cycle)",
    "set-value.yaml": "set-value.yaml: config: a YAML set value is not case data",
    "shape-float.yaml": "shape-float.yaml:2: input.random.shape[0]: wrong type",
    "timesteps-10000.yaml": "timesteps-10000.yaml:2: input: too many timesteps: beyond the limit timesteps=5000",
    "tolerance-inf.yaml": "tolerance-inf.yaml:31: tolerance.rtol: a tolerance must be a finite number",
    "tolerance-nan.yaml": "tolerance-nan.yaml:31: tolerance.h.atol: a tolerance must be a finite number",
    "two-documents.yaml": "two-documents.yaml:2: YAML syntax error: but found another document",
    "units-float.yaml": "units-float.yaml:10: config.units: wrong type",
    "units-huge-random-weights.yaml": "weights.recurrent_kernel: array too large: beyond the limit elements=4000000",
}
RAISE_HINT = "hint:     raise it with `--limit {0}=N` (harness), `--harness-limit {0}=N` (pytest) or HARNESS_LIMIT_{1}=N"


def test_every_hostile_file_has_a_pinned_message():
    assert sorted(p.name for p in HOSTILE.iterdir()) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_hostile_file_fails_alone_in_the_loader(name):
    started = time.perf_counter()
    [entry] = load_corpus([HOSTILE / name])
    assert entry.case is None and entry.error is not None
    assert EXPECTED[name] in entry.error.render()
    assert time.perf_counter() - started < 10


def test_a_limit_names_its_field_and_how_to_raise_it():
    text = load_corpus([HOSTILE / "random-input-huge.yaml"])[0].error.render()
    assert text.splitlines()[1:] == [
        f"{HOSTILE / 'random-input-huge.yaml'}:2: input: array too large: beyond the limit elements=4000000 "
        "(elements of one array, given or generated)",
        "  found:    shape (100000, 100000, 1): 10000000000 elements",
        "  " + RAISE_HINT.format("elements", "ELEMENTS"),
    ]


def test_hostile_folder_in_one_bounded_process(tmp_path):
    """`harness validate` over every hostile file and a good case, under a 3 GB address-space limit."""
    folder = tmp_path / "mixed"
    shutil.copytree(HOSTILE, folder)
    shutil.copy(SEED_CASE, folder / "seed.yaml")
    started = time.perf_counter()
    done = subprocess.run(["bash", "-c", BOUNDED + " ".join(HARNESS) + f" validate {folder}"],
                          capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert done.stdout.strip().endswith(f"1 valid, {len(EXPECTED)} invalid")
    for fragment in EXPECTED.values():
        assert fragment in done.stdout
    assert time.perf_counter() - started < 90


def test_large_generated_files_are_refused_before_they_are_parsed(tmp_path):
    """A 50 MB file of numbers is refused by its size (it used to reach 9.6 GB)."""
    big = tmp_path / "fifty-mb.yaml"
    with big.open("w") as handle:
        handle.write("config: {units: 1}\ninput: [[")
        row = "[" + ", ".join(["0.123456789"] * 100) + "], "
        while handle.tell() < 50 * 2 ** 20:
            handle.write(row * 100)
        handle.write("[1]]]\n")
    done = subprocess.run(["bash", "-c", BOUNDED + " ".join(HARNESS) + f" validate {big}"],
                          capture_output=True, text=True, timeout=60, cwd=REPO)
    assert f"{big}: file too large: beyond the limit file_bytes=4194304 (bytes in one case file)" in done.stdout


def test_a_file_just_under_the_size_limit_loads_within_bounds(tmp_path):
    """About 700,000 numbers in 3.8 MB of JSON: checked without jsonschema's per-number cost."""
    rng = np.random.default_rng(1)
    rows = np.round(rng.random((170_000, 3)), 3).tolist()
    path = tmp_path / "big.json"
    path.write_text(json.dumps({"config": {"units": 1}, "input": [rows],
                                "weights": {"kernel": [[1, 1, 1]], "recurrent_kernel": [[1, 1, 1, 1]], "bias": [0, 0, 0, 0]}}))
    started = time.perf_counter()
    with pytest.raises(InvalidCase) as error:
        load_case(path)
    assert time.perf_counter() - started < 20
    assert "weights.kernel: wrong shape" in error.value.render()


def test_a_bad_number_deep_in_a_large_array_is_found(tmp_path):
    rows = [[0.5] * 3 for _ in range(2000)]
    rows[1500][2] = "oops"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"config": {"units": 1}, "input": [rows],
                                "weights": {"kernel": [[1, 1, 1, 1]], "recurrent_kernel": [[1, 1, 1, 1]], "bias": [0, 0, 0, 0]}}))
    text = pytest.raises(InvalidCase, load_case, path).value.render()
    assert "input[0][1500][2]: not a number" in text and "found:    'oops'" in text


# ---------------------------------------------------------------- limits are configurable

def test_limits_change_by_environment_option_and_context(tmp_path, monkeypatch):
    assert limits.get("elements") == 4_000_000
    monkeypatch.setenv("HARNESS_LIMIT_ELEMENTS", "5")
    assert limits.get("elements") == 5
    text = pytest.raises(InvalidCase, load_case, SEED_CASE).value.render()
    assert "weights.kernel: array too large: beyond the limit elements=5" in text
    with limits.overridden(elements=1e9):
        assert load_case(SEED_CASE).name == "seed-linear-gates"
    monkeypatch.delenv("HARNESS_LIMIT_ELEMENTS")
    with pytest.raises(ValueError, match="unknown limit 'bogus'"):
        limits.parse_assignment("bogus=1")
    with pytest.raises(ValueError, match="must be a positive finite number"):
        limits.parse_assignment("depth=-1")


def test_cli_limit_option(capsys):
    assert main(["validate", str(HOSTILE / "timesteps-10000.yaml"), "--limit", "timesteps=20000"]) == 0
    assert limits.get("timesteps") == 5000  # only for that command
    assert main(["validate", str(HOSTILE / "timesteps-10000.yaml")]) == 1


def test_merge_keys_are_plain_data(write_case):
    from harness.documents import read_document
    merged = write_case("base: &b {x: 1, y: 2}\nother: {<<: *b, y: 3}\n", "merge.yaml")
    assert read_document(merged) == {"base": {"x": 1, "y": 2}, "other": {"x": 1, "y": 3}}


# ---------------------------------------------------------------- the per-case time limit

def test_a_case_past_its_time_limit_is_a_timeout(write_case):
    from harness.targets import build_cache
    path = write_case("name: slow\nexecution: eager\nconfig: {units: 8, return_sequences: true}\n"
                      "input: {random: {seed: 1, shape: [4, 2000, 8]}}\n"
                      "weights: {kernel: {random: {seed: 2}}, recurrent_kernel: {random: {seed: 3}}, bias: {random: {seed: 4}}}\n")
    case = load_case(path)
    with limits.overridden(case_seconds=0.5):
        started = time.perf_counter()
        result = run_case(case)
    assert result.outcome == "timeout"
    assert time.perf_counter() - started < 5
    assert result.message.startswith("stopped after ")
    assert result.message.endswith("beyond the limit case_seconds=0.5 (wall-clock seconds one case may run); "
                                   + limits.how_to_raise("case_seconds"))
    assert not result.ok
    assert build_cache.describe().startswith("0 structures kept")  # a layer stopped half-way is not reused


def test_the_watchdog_restores_an_outer_timer():
    fired = []
    previous = signal.signal(signal.SIGALRM, lambda *a: fired.append(1))
    try:
        signal.setitimer(signal.ITIMER_REAL, 5)
        with limits.watchdog(2):
            pass
        remaining, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 4 < remaining <= 5
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# ---------------------------------------------------------------- the corpus and the CLI

def test_missing_paths_loops_and_dangling_links(tmp_path):
    (tmp_path / "loop.yaml").symlink_to(tmp_path / "loop.yaml")
    (tmp_path / "dangling.yaml").symlink_to(tmp_path / "nowhere.yaml")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "up").symlink_to(tmp_path)  # a folder loop: searched once
    shutil.copy(SEED_CASE, tmp_path / "sub" / "seed.yaml")
    entries = {e.path.name: e for e in load_corpus([tmp_path, tmp_path / "no-such-folder"])}
    assert entries["no-such-folder"].error.render().endswith("no-such-folder: no such file or folder")
    assert entries["loop.yaml"].error.render().endswith("loop.yaml: cannot read the file: a symbolic link loop")
    assert entries["dangling.yaml"].error.render().endswith("dangling.yaml: cannot read the file: a symbolic link to a missing file")
    assert entries["seed.yaml"].case is not None
    assert len(entries) == 4


def test_an_unreadable_folder_is_reported(tmp_path, monkeypatch):
    def walk(top, onerror=None, followlinks=False):
        error = PermissionError(13, "Permission denied")
        error.filename = str(Path(top) / "locked")
        onerror(error)
        yield str(top), [], []
    monkeypatch.setattr(os, "walk", walk)
    files, errors = walk_case_files([tmp_path])
    assert files == []
    assert errors[tmp_path / "locked"].render().endswith(
        "locked: cannot search this folder: Permission denied\n  hint:     its case files were not run: fix its permissions")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a chmod-000 folder anyway")
def test_a_chmod_000_folder_is_reported(tmp_path):
    (tmp_path / "locked").mkdir()
    shutil.copy(SEED_CASE, tmp_path / "locked" / "seed.yaml")
    (tmp_path / "locked").chmod(0)
    try:
        [entry] = load_corpus([tmp_path])
        assert "cannot search this folder: Permission denied" in entry.error.render()
    finally:
        (tmp_path / "locked").chmod(0o755)


def test_a_fifo_named_like_a_case_is_never_read(tmp_path):
    os.mkfifo(tmp_path / "pipe.yaml")
    [entry] = load_corpus([tmp_path])
    assert "pipe.yaml: not a regular file" in entry.error.render()


def test_an_invalid_file_named_like_a_case_keeps_its_own_name(tmp_path):
    shutil.copy(SEED_CASE, tmp_path / "a.yaml")
    (tmp_path / "seed-linear-gates.json").write_text("[")
    entries = load_corpus([tmp_path])
    assert [e.name for e in entries] == ["seed-linear-gates", str(tmp_path / "seed-linear-gates.json")]


def test_a_loader_crash_fails_its_file_alone(tmp_path, monkeypatch):
    import harness.discovery
    shutil.copy(SEED_CASE, tmp_path / "a.yaml")
    (tmp_path / "b.yaml").write_text("x: 1\n")
    real = harness.discovery.load_case
    monkeypatch.setattr(harness.discovery, "load_case",
                        lambda path: (_ for _ in ()).throw(TypeError("boom")) if path.name == "b.yaml" else real(path))
    a, b = load_corpus([tmp_path])
    assert a.case is not None
    assert "the harness failed while loading this file (a bug in the harness, please report it): TypeError: boom" in b.error.render()
    from harness.runner import invalid_result
    assert invalid_result(b.error, b.name).outcome == "harness-error"


def test_cli_small_refusals(tmp_path, capsys):
    assert main(["run", str(SEED_CASE), "--report-json", str(tmp_path / "missing" / "r.json")]) == 2
    assert capsys.readouterr().err.strip() == (f"harness run: --report-json {tmp_path / 'missing' / 'r.json'}: "
                                               f"the folder {tmp_path / 'missing'} does not exist")
    assert main(["run", str(SEED_CASE), "-k", "nothing", "--tag", "none"]) == 1
    assert capsys.readouterr().out.strip() == f"no case matches -k 'nothing' and --tag 'none' (1 case files found in {SEED_CASE})"
    assert main(["selftest", str(SEED_CASE), "--fault", "nosuch"]) == 2
    assert capsys.readouterr().err.startswith("harness selftest: unknown fault 'nosuch'; faults: ")
    with pytest.raises(SystemExit) as exit_info:
        main(["fuzz", "--examples", "-1"])
    assert exit_info.value.code == 2
    assert "argument --examples: must be at least 1, not -1" in capsys.readouterr().err


def test_run_over_the_hostile_folder_fails_each_file_alone(tmp_path):
    folder = tmp_path / "mixed"
    shutil.copytree(HOSTILE, folder)
    shutil.copy(SEED_CASE, folder / "seed.yaml")
    report = tmp_path / "report.json"
    done = subprocess.run(["bash", "-c", BOUNDED + " ".join(HARNESS) + f" run {folder} --mode eager --report-json {report}"],
                          capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 1 and "Traceback" not in done.stdout + done.stderr
    outcomes = {Path(r["path"]).name: r["outcome"] for r in json.loads(report.read_text())}
    assert outcomes.pop("seed.yaml") == "passed"
    assert outcomes == {name: "invalid" for name in EXPECTED}


def test_ctrl_c_stops_cleanly_and_keeps_finished_results(tmp_path):
    folder = tmp_path / "cases"
    folder.mkdir()
    count = 60  # enough that the signal lands while cases remain, however fast the machine
    for n in range(count):
        (folder / f"c{n:02d}.yaml").write_text(SEED_CASE.read_text().replace("name: seed-linear-gates", f"name: c{n}"))
    report = tmp_path / "report.json"
    # pytest-xdist workers ignore SIGINT, and a child inherits that: give the harness the default a shell gives
    process = subprocess.Popen(HARNESS + ["run", str(folder), "--report-json", str(report)], cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    for line in process.stdout:
        if line.startswith("PASSED"):
            break
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Traceback" not in out + err
    finished = json.loads(report.read_text())
    assert 1 <= len(finished) < count and {r["outcome"] for r in finished} == {"passed"}
    assert f"interrupted: {len(finished)} of {count} cases finished; the rest did not run" in out


# ---------------------------------------------------------------- pytest collection and tags

@pytest.fixture
def pytest_corpus(pytester):
    pytester.makeconftest('pytest_plugins = ["harness.pytest_collect"]')
    pytester.makeini("[pytest]\nharness_case_dirs = cases\n")
    return pytester


def test_pytest_collects_every_hostile_file_as_its_own_failure(pytest_corpus):
    cases = pytest_corpus.mkdir("cases")
    for path in HOSTILE.iterdir():
        shutil.copy(path, cases / path.name)
    shutil.copy(SEED_CASE, cases / "seed.yaml")
    result = pytest_corpus.runpytest_subprocess("-p", "no:cacheprovider", "--harness-mode", "eager")
    result.assert_outcomes(passed=1, failed=len(EXPECTED))
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines(["*billion-laughs.yaml: too many values (aliases expanded)*"])


def test_tags_never_act_as_pytest_marks(pytest_corpus, seed_text):
    cases = pytest_corpus.mkdir("cases")
    wrong = seed_text.replace("  h: [[0, 4, 0]]", "  h: [[0, 4, 1]]").replace("tags: [", "tags: [skip, xfail, parametrize, usefixtures, filterwarnings, skipif, ")
    assert "tags: [skip" in wrong
    (cases / "wrong.yaml").write_text(wrong)
    result = pytest_corpus.runpytest_subprocess("-p", "no:cacheprovider", "--harness-mode", "eager", "-rA")
    result.assert_outcomes(failed=1)
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    selected = pytest_corpus.runpytest_subprocess("-p", "no:cacheprovider", "--harness-mode", "eager", "-m", "tag_xfail",
                                                  "-W", "error::pytest.PytestUnknownMarkWarning")
    selected.assert_outcomes(failed=1)


def test_pytest_harness_limit_option(pytest_corpus):
    cases = pytest_corpus.mkdir("cases")
    shutil.copy(HOSTILE / "timesteps-10000.yaml", cases / "t.yaml")
    result = pytest_corpus.runpytest_subprocess("-p", "no:cacheprovider", "--collect-only", "-q",
                                                "--harness-limit", "bogus=1")
    assert "--harness-limit: unknown limit 'bogus'" in result.stderr.str()


# ---------------------------------------------------------------- recordings

@pytest.fixture
def small_corpus(tmp_path):
    folder = tmp_path / "cases"
    folder.mkdir()
    shutil.copy(SEED_CASE, folder / "seed.yaml")
    shutil.copy(REPO / "cases/shapes/units-one.yaml", folder / "units-one.yaml")
    return folder


def test_record_refuses_a_folder_that_is_not_a_recording(small_corpus, tmp_path, capsys):
    out = tmp_path / "precious"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    assert main(["record", str(small_corpus), "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip() == (f"harness record: {out}: exists and is not a harness recording "
                                               "(no manifest.json; it holds thesis.tex): refusing to overwrite it; "
                                               "choose a new or empty folder")
    assert sorted(p.name for p in out.iterdir()) == ["thesis.tex"]
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert main(["record", str(small_corpus), "--out", str(a_file)]) == 2


def test_a_second_record_into_the_same_folder_is_refused(small_corpus, tmp_path, capsys):
    out = tmp_path / "rec"
    with recording_lock(out):
        assert main(["record", str(small_corpus), "--out", str(out)]) == 2
    assert f"{out}: another `harness record` is writing this recording" in capsys.readouterr().err
    assert not (out / "manifest.json").exists()


def test_re_recording_warns_and_leaves_no_stale_outputs(small_corpus, tmp_path, capsys):
    out = tmp_path / "rec"
    assert main(["record", str(small_corpus), "--out", str(out)]) == 0
    assert main(["record", str(small_corpus / "seed.yaml"), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"harness record: replacing the recording in {out} (2 cases, recorded " in err
    assert "harness record: 1 cases of the previous recording are not in the new one: units-one" in err
    npz = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.npz"))
    manifest = json.loads((out / "manifest.json").read_text())
    assert npz == [manifest["cases"]["seed-linear-gates"]["file"]]
    assert [p.name for p in out.iterdir() if p.name.startswith(".staging")] == []


def test_kill_9_while_re_recording_leaves_the_old_recording(small_corpus, tmp_path):
    out = tmp_path / "rec"
    record([small_corpus], out)
    before = (out / "manifest.json").read_bytes()
    process = subprocess.Popen(HARNESS + ["record", str(small_corpus), "--out", str(out)], cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list(out.glob(".staging-*/*.npz")):
        time.sleep(0.02)
    process.kill()
    process.wait()
    assert (out / "manifest.json").read_bytes() == before
    comparison = compare(open_recording(out), [small_corpus])
    assert {c.kind for c in comparison.changes} == {"bit-identical"}
    record([small_corpus], out)  # the next record clears the leftovers
    assert [p.name for p in out.iterdir() if p.name.startswith(".staging")] == []


def test_record_survives_an_unreadable_case(small_corpus, tmp_path):
    os.mkfifo(small_corpus / "pipe.yaml")
    out = tmp_path / "rec"
    manifest = record([small_corpus], out)
    assert manifest["cases"]["pipe"] == {"path": str(small_corpus / "pipe.yaml"), "sha256": None, "outcome": "invalid"}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    shutil.copy(SEED_CASE, folder / "seed.yaml")
    out = tmp_path_factory.mktemp("rec") / "rec"
    record([folder], out)
    return folder, out


def _doctored(recorded, tmp_path, change):
    corpus, out = recorded
    copy = tmp_path / "rec"
    shutil.copytree(out, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    change(manifest, copy)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    return corpus, copy


def _npz(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _outputs(content: bytes):
    def change(manifest, folder):
        item = manifest["cases"]["seed-linear-gates"]
        (folder / item["file"]).write_bytes(content)
        item["file_sha256"] = _sha256(content)
    return change


def _item(**fields):
    def change(manifest, folder):
        manifest["cases"]["seed-linear-gates"].update(fields)
    return change


def _entry(value):
    def change(manifest, folder):
        manifest["cases"]["seed-linear-gates"] = value
    return change


@pytest.mark.parametrize("change,message", [
    (_item(file="/dev/zero"), "outputs of case 'seed-linear-gates': '/dev/zero' is not a path inside the recording"),
    (_item(file="../../../etc/passwd"), "is not a path inside the recording"),
    (_entry([1, 2]), "manifest.json: case 'seed-linear-gates': entry: expected an object, found 'list'"),
    (_entry(None), "manifest.json: case 'seed-linear-gates': entry: expected an object, found 'NoneType'"),
    (_item(file=5), "manifest.json: case 'seed-linear-gates': file: expected a path inside the recording, found '5'"),
    (_item(outcome="pwned"), "case 'seed-linear-gates': outcome: expected one of passed, failed"),
    (_item(dtype="float128"), "case 'seed-linear-gates': dtype: expected one of float16"),
    (_item(file_sha256=None), "case 'seed-linear-gates': file_sha256: expected the outputs file's SHA-256, found 'None'"),
    (_outputs(_npz(**{"call1/h": np.array([["a", "b", "c"]])})), "call1/h: <U1 array of 2 dimensions; outputs are real floating-point arrays"),
    (_outputs(_npz(**{"call1/h": np.ones((1, 3), complex)})), "call1/h: complex128 array of 2 dimensions"),
    (_outputs(_npz(**{"../evil": np.ones(3)})), "unexpected array '../evil'"),
    (_outputs(b"not a zip"), "not a readable outputs file (BadZipFile"),
])
def test_compare_checks_every_manifest_entry(recorded, tmp_path, change, message, capsys):
    corpus, copy = _doctored(recorded, tmp_path, change)
    started = time.perf_counter()
    assert main(["compare", str(copy), str(corpus)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("harness compare: ") and message in err, err
    assert "Traceback" not in err
    assert time.perf_counter() - started < 30


def test_compare_never_follows_a_link_out_of_the_recording(recorded, tmp_path, capsys):
    outside = tmp_path / "outside.npz"
    outside.write_bytes(_npz(**{"call1/h": np.zeros((1, 3))}))

    def change(manifest, folder):
        item = manifest["cases"]["seed-linear-gates"]
        (folder / item["file"]).unlink()
        (folder / item["file"]).symlink_to(outside)
    corpus, copy = _doctored(recorded, tmp_path, change)
    assert main(["compare", str(copy), str(corpus)]) == 2
    assert "leads outside the recording" in capsys.readouterr().err


def test_compare_reads_within_the_size_limit(recorded, tmp_path, capsys):
    corpus, out = recorded
    with limits.overridden(recording_bytes=100):
        assert main(["compare", str(out), str(corpus)]) == 2
    assert "beyond the limit recording_bytes=100" in capsys.readouterr().err


def test_compare_with_nothing_compared_exits_1(recorded, tmp_path, capsys):
    corpus, out = recorded
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(REPO / "cases/shapes/units-one.yaml", other / "units-one.yaml")
    assert main(["compare", str(out), str(other)]) == 1
    assert capsys.readouterr().out.splitlines()[-1] == "nothing was compared: no case has outputs both in the recording and now"


def test_rich_markup_in_a_case_is_printed_as_written(tmp_path, capsys):
    """The console interprets [style] tags: a field, name or message holding one must print literally, and a
    stray closing tag must not crash validate or run (it raised MarkupError in validate before)."""
    (tmp_path / "a.yaml").write_text('name: "[bold]x[/]"\nconfig: {units: 1, "[/bad]": 2}\ninput: [[[1]]]\n'
                                     'weights: {kernel: [[1, 1, 1, 1]], recurrent_kernel: [[1, 1, 1, 1]]}\n')
    assert main(["validate", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "config.[/bad]: unknown field" in out and "0 valid, 1 invalid" in out
    assert main(["run", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "config.[/bad]: unknown field" in out


def test_a_case_row_is_one_line_and_keeps_bracketed_text(monkeypatch, capsys):
    """A system's multi-line error shows its first line in the case's row (all of it in the details), and
    text in brackets such as a shape '[batch, units]' is not taken for a style tag and dropped."""
    import harness.cli as cli
    from harness.runner import CaseResult

    result = CaseResult(name="c", path=SEED_CASE, outcome="keras-error",
                        message="Keras raised ValueError while running: shape [batch, units] [/x]\nsecond line",
                        details="the details")
    monkeypatch.setattr(cli, "run_on_targets", lambda case, systems, mode: result)
    assert main(["run", str(SEED_CASE)]) == 1
    out = capsys.readouterr().out
    assert "shape [batch, units] [/x] [...]" in out
    assert "  KERAS-ERROR  c  " in out and "second line" not in out.split("did not pass:")[1]
