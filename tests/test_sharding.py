"""Sharding (`harness run --shard K/N`, `pytest --harness-shard K/N`) and `harness merge`: every case file,
invalid ones included, in exactly one shard whatever N, the order, the checkout folder or the hash seed;
the shards' reports and recordings merged equal an unsharded run's; what cannot be merged is refused
naming both files."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import main
from harness.discovery import walk_case_files
from harness.recording import open_recording
from harness.sharding import Shard, parse_shard, select, shard_key, shard_of

from conftest import REPO, SEED_CASE

CORPUS = REPO / "cases"


# ---------------------------------------------------------------- the split


@pytest.mark.parametrize("text, message", [
    ("0/3", "'0/3': the shard K must be between 1 and N=3 (shards are numbered from 1)"),
    ("4/3", "'4/3': the shard K must be between 1 and N=3 (shards are numbered from 1)"),
    ("1/0", "'1/0': the number of shards N must be at least 1"),
    ("3", "expected K/N (this job's shard K of N, e.g. 2/3), found '3'"),
    ("a/b", "expected K/N (this job's shard K of N, e.g. 2/3), found 'a/b'"),
    ("-1/3", "expected K/N (this job's shard K of N, e.g. 2/3), found '-1/3'"),
])
def test_a_bad_shard_is_refused_saying_why(text, message):
    with pytest.raises(ValueError) as error:
        parse_shard(text)
    assert str(error.value) == message


def test_the_cli_refuses_a_bad_shard_before_running(capsys):
    with pytest.raises(SystemExit) as done:
        main(["run", str(SEED_CASE), "--shard", "4/3"])
    assert done.value.code == 2
    assert "argument --shard: '4/3': the shard K must be between 1 and N=3" in capsys.readouterr().err
    assert parse_shard(" 2/3 ") == Shard(2, 3) and str(Shard(2, 3)) == "2/3"


@pytest.mark.parametrize("count", [1, 2, 3, 4, 7, 16])
def test_every_case_file_of_the_corpus_is_in_exactly_one_shard(count):
    files, _ = walk_case_files([CORPUS])
    shards = [select([type("E", (), {"path": f})() for f in files], [CORPUS], Shard(k, count)) for k in range(1, count + 1)]
    held = [entry.path for shard in shards for entry in shard]
    assert sorted(held) == sorted(files) and len(held) == len(set(held))  # the union, and disjoint
    if count <= 4:  # balanced enough for a CI matrix: no shard above 1.2x the mean
        assert max(map(len, shards)) <= 1.2 * len(files) / count


def test_the_split_depends_only_on_the_path_under_the_folder_named(tmp_path):
    files, _ = walk_case_files([CORPUS])
    here = {shard_key(f, [CORPUS]): shard_of(shard_key(f, [CORPUS]), 3) for f in files}
    # elsewhere: another checkout folder, reversed order, relative paths, another hash seed, another process
    copy = tmp_path / "checkout" / "cases"
    shutil.copytree(CORPUS, copy)
    script = ("import json, sys; from pathlib import Path; from harness.discovery import walk_case_files; "
              "from harness.sharding import shard_key, shard_of; root = Path('cases'); "
              "files = walk_case_files([root])[0][::-1]; "
              "print(json.dumps({shard_key(f, [root]): shard_of(shard_key(f, [root]), 3) for f in files}))")
    done = subprocess.run([sys.executable, "-c", script], cwd=copy.parent, capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(REPO)})
    assert json.loads(done.stdout) == here
    assert here["seed/seed-linear-gates.yaml"] == 1  # pinned: a change of the hash would move every case
    assert shard_key(SEED_CASE, [CORPUS]) == "seed/seed-linear-gates.yaml"
    assert shard_key(SEED_CASE, [SEED_CASE]) == "seed-linear-gates.yaml"  # a file named directly: its name


def test_adding_a_case_moves_no_other_case(tmp_path):
    files, _ = walk_case_files([CORPUS])
    before = {f: shard_of(shard_key(f, [CORPUS]), 3) for f in files}
    added = CORPUS / "seed" / "aaa-new-case.yaml"
    after = {f: shard_of(shard_key(f, [CORPUS]), 3) for f in [*files, added]}
    assert all(after[f] == before[f] for f in files)


INVALID = {"broken-syntax.yaml": "config: {units: 3}\ninput: [[[1, 0]]\n", "no-input.yaml": "config: {units: 3}\n",
           "units-negative.yaml": "config: {units: -3}\ninput: [[[1]]]\n", "not-json.json": "{",
           "sub/deeper/broken.yml": "[", "sub/duplicate.yaml": None, "odd.yaml": "- a list\n"}


def _invalid_corpus(root: Path) -> Path:
    for name, text in INVALID.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text if text is not None else "name: broken-syntax\nconfig: {units: 1}\n")
    return root


def test_invalid_files_land_in_exactly_one_shard_and_merge_back(tmp_path, capsys):
    corpus = _invalid_corpus(tmp_path / "cases")
    assert main(["run", str(corpus), "--report-json", str(tmp_path / "all.json")]) == 1
    whole = json.loads((tmp_path / "all.json").read_text())
    assert len(whole) == len(INVALID) and {row["outcome"] for row in whole} == {"invalid"}
    reports = []
    for k in (1, 2, 3):
        reports.append(tmp_path / f"shard-{k}.json")
        code = main(["run", str(corpus), "--shard", f"{k}/3", "--report-json", str(reports[-1])])
        rows = json.loads(reports[-1].read_text())
        assert code == (1 if rows else 0)
        assert all(row["run"]["shard"] == {"index": k, "count": 3} and row["run"]["cases"] == len(rows) for row in rows)
    names = [row["case"] for path in reports for row in json.loads(path.read_text())]
    assert sorted(names) == sorted(row["case"] for row in whole) and len(names) == len(set(names))
    assert "shard 1/3: " in capsys.readouterr().out
    assert main(["merge", *map(str, reports), "--out", str(tmp_path / "merged.json")]) == 1
    merged = json.loads((tmp_path / "merged.json").read_text())
    assert _without_time(merged) == _without_time(whole)


def _without_time(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "duration_s"} for row in rows]


# ---------------------------------------------------------------- pytest --harness-shard


@pytest.fixture
def sharded_project(pytester, seed_text):
    pytester.makeconftest('pytest_plugins = ["harness.pytest_collect"]')
    pytester.makeini("[pytest]\nharness_case_dirs = cases\n")
    for number in range(6):
        path = pytester.path / "cases" / f"group{number % 2}" / f"case-{number}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(seed_text.replace("name: seed-linear-gates", f"name: case-{number}"))
    _invalid_corpus(pytester.path / "cases" / "bad")
    pytester.makepyfile(test_plain="\n".join(f"def test_{n}(): pass" for n in range(5)))
    return pytester


def _collected(project, *args) -> list[str]:
    result = project.runpytest_subprocess("-p", "no:cacheprovider", "--collect-only", "-q", *args)
    return [line for line in result.stdout.lines if "::" in line]


def test_pytest_shards_partition_the_items_as_the_cli_splits_the_files(sharded_project):
    every = _collected(sharded_project)
    assert len(every) == 6 + len(INVALID) + 5
    shards = [_collected(sharded_project, "--harness-shard", f"{k}/3") for k in (1, 2, 3)]
    assert sorted(sum(shards, [])) == sorted(every) and all(shards)
    root = sharded_project.path / "cases"
    for k, items in enumerate(shards, start=1):
        files = {item.split("::")[0] for item in items if item.startswith("cases/")}
        assert files == {str(f.relative_to(sharded_project.path)) for f in walk_case_files([root])[0]
                         if shard_of(shard_key(f, [root]), 3) == k}
    result = sharded_project.runpytest_subprocess("-p", "no:cacheprovider", "--harness-shard", "0/2")
    assert result.ret == 4  # a usage error, before collection
    result.stderr.fnmatch_lines(["*--harness-shard: '0/2': the shard K must be between 1 and N=2*"])


# ---------------------------------------------------------------- run, record and merge, end to end (Keras)


def _small_corpus(root: Path) -> Path:
    """The seed, the masking cases that return sequences, the JSON one, a broken file and a duplicate name."""
    (root / "masking").mkdir(parents=True)
    shutil.copy(SEED_CASE, root / "seed.yaml")
    for path in sorted((CORPUS / "masking").glob("*-seq*.yaml"))[:6] + [CORPUS / "masking" / "zero-output-for-mask.json"]:
        shutil.copy(path, root / "masking" / path.name)
    (root / "masking" / "broken.yaml").write_text("config: {units: 3}\ninput: [[[1, 0]]\n")
    (root / "zz-duplicate.yaml").write_text(SEED_CASE.read_text())
    return root


@pytest.fixture(scope="module")
def sharded_runs(tmp_path_factory):
    """An unsharded run and record of a small corpus, and the same in 3 shards (eager mode: quicker)."""
    tmp = tmp_path_factory.mktemp("shards")
    corpus = _small_corpus(tmp / "cases")
    assert main(["run", str(corpus), "--mode", "eager", "--report-json", str(tmp / "all.json")]) == 1
    assert main(["record", str(corpus), "--mode", "eager", "--out", str(tmp / "rec-all")]) == 0
    for k in (1, 2, 3):
        main(["run", str(corpus), "--mode", "eager", "--shard", f"{k}/3", "--report-json", str(tmp / f"r{k}.json")])
        assert main(["record", str(corpus), "--mode", "eager", "--shard", f"{k}/3", "--out", str(tmp / f"rec{k}")]) == 0
    return tmp, corpus


def test_merged_shard_reports_equal_an_unsharded_run(sharded_runs, capsys):
    tmp, _ = sharded_runs
    shards = [json.loads((tmp / f"r{k}.json").read_text()) for k in (1, 2, 3)]
    assert all(shards) and sum(map(len, shards)) == 10
    assert main(["merge", *(str(tmp / f"r{k}.json") for k in (3, 1, 2)), "--out", str(tmp / "merged.json")]) == 1
    out = capsys.readouterr().out
    assert re.search(r"10 cases from 3 reports", out) and "INVALID" in out
    merged = json.loads((tmp / "merged.json").read_text())
    whole = json.loads((tmp / "all.json").read_text())
    assert _without_time(merged) == _without_time(whole)  # order, outcomes, messages, details, `run`
    assert [row["outcome"] for row in merged].count("passed") == 8


def test_merged_shard_recordings_compare_bit_identical_with_an_unsharded_one(sharded_runs, capsys):
    tmp, corpus = sharded_runs
    assert main(["merge", *(str(tmp / f"rec{k}") for k in (1, 2, 3)), "--out", str(tmp / "rec-merged")]) == 0
    assert "merged 3 recordings into" in capsys.readouterr().out
    merged, whole = open_recording(tmp / "rec-merged"), open_recording(tmp / "rec-all")
    assert merged.environment == whole.environment and "shard" not in merged.manifest
    assert list(merged.manifest["cases"]) == list(whole.manifest["cases"])
    for name, item in whole.manifest["cases"].items():
        other = merged.manifest["cases"][name]
        assert {k: v for k, v in other.items() if k not in ("file", "file_sha256")} == \
               {k: v for k, v in item.items() if k not in ("file", "file_sha256")}
        if "file" in item:
            for a, b in zip(merged.outputs(name), whole.outputs(name), strict=True):
                assert a.keys() == b.keys() and all(a[k].tobytes() == b[k].tobytes() for k in a)
    assert main(["compare", str(tmp / "rec-merged"), str(corpus), "--mode", "eager"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^8 bit-identical, 2 not comparable$", out, re.M), out  # the two invalid files
    assert main(["compare", str(tmp / "rec1"), str(corpus), "--mode", "eager"]) == 0
    assert "note: the recording holds shard 1/3 only" in capsys.readouterr().out


def test_a_merge_is_generic_over_the_arrays_of_an_outputs_file(sharded_runs, tmp_path):
    """Arrays the merge does not know (gradients, later kinds) are carried byte for byte."""
    tmp, _ = sharded_runs
    shards = [tmp_path / f"rec{k}" for k in (1, 2, 3)]
    for k, folder in enumerate(shards, start=1):
        shutil.copytree(tmp / f"rec{k}", folder)
    manifest_path = shards[0] / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    name, item = next((n, i) for n, i in manifest["cases"].items() if "file" in i)
    import hashlib
    import io
    import numpy as np

    buffer = io.BytesIO()
    np.savez(buffer, **{"call1/h": np.ones((1, 3)), "call1/grad.kernel": np.arange(6.0).reshape(2, 3)})
    (shards[0] / item["file"]).write_bytes(buffer.getvalue())
    item["file_sha256"] = hashlib.sha256(buffer.getvalue()).hexdigest()
    manifest_path.write_text(json.dumps(manifest))
    assert main(["merge", *map(str, shards), "--out", str(tmp_path / "merged")]) == 0
    copied = open_recording(tmp_path / "merged").manifest["cases"][name]
    assert (tmp_path / "merged" / copied["file"]).read_bytes() == buffer.getvalue()


# ---------------------------------------------------------------- what cannot be merged


def _edited_copy(source: Path, target: Path, edit) -> Path:
    rows = json.loads(source.read_text())
    for row in rows:
        edit(row)
    target.write_text(json.dumps(rows))
    return target


def test_merging_reports_refuses_what_an_unsharded_run_cannot_have_written(sharded_runs, tmp_path, capsys):
    tmp, _ = sharded_runs
    r1, r2, r3 = (tmp / f"r{k}.json" for k in (1, 2, 3))
    out = str(tmp_path / "m.json")

    def refused(*inputs) -> str:
        assert main(["merge", *map(str, inputs), "--out", out]) == 2
        assert not Path(out).exists()
        return capsys.readouterr().err.strip()

    case = json.loads(r1.read_text())[0]["case"]
    assert refused(tmp / "all.json", r1, r2, r3) == f"harness merge: case {case!r} is in both {tmp / 'all.json'} and {r1}"
    other = _edited_copy(r2, tmp_path / "other-keras.json", lambda row: row["environment"].update(keras="3.0.0"))
    keras = json.loads(r1.read_text())[0]["environment"]["keras"]
    assert refused(r1, other, r3) == (f"harness merge: {r1} and {other} come from runs with different versions or "
                                      f"options: keras: {keras!r} vs '3.0.0'")
    assert refused(r1, r3) == "harness merge: shard 2/3 missing: 2 reports given for 3 shards"
    twice = _edited_copy(r2, tmp_path / "twice.json", lambda row: (row["run"]["shard"].update(index=1),
                                                                  row.update(case=row["case"] + "-x")))
    assert refused(r1, twice, r3) == f"harness merge: shard 1/3 is reported twice: {r1} and {twice}"
    cut = tmp_path / "cut.json"
    largest = max((r1, r2, r3), key=lambda path: len(json.loads(path.read_text())))
    cut.write_text(json.dumps(json.loads(largest.read_text())[1:]))
    assert re.fullmatch(rf"harness merge: {re.escape(str(cut))}: holds \d+ of the \d+ cases its run set out to run: "
                        "the run was interrupted or the file cut short",
                        refused(*(cut if path == largest else path for path in (r1, r2, r3))))
    old = _edited_copy(r2, tmp_path / "old.json", lambda row: row.pop("run"))
    moved = _edited_copy(r2, tmp_path / "moved.json", lambda row: row["environment"].update(keras_path="/elsewhere"))
    assert main(["merge", str(r1), str(moved), str(r3), "--out", out]) == 1  # another checkout folder: merged
    Path(out).unlink()
    capsys.readouterr()
    assert re.fullmatch(rf"harness merge: {re.escape(str(old))}: entry 1 \(.+\): no `run` field: written by a harness "
                        r"before \S+ or not by `harness run`; run it again to merge it", refused(r1, old, r3))
    assert refused(r1, r1) == f"harness merge: {r1} is given twice"
    assert refused(r1, tmp / "rec1") == (f"harness merge: give either report files or recording folders, not both "
                                         f"({tmp / 'rec1'} is a folder, {r1} is not)")


def test_merging_recordings_refuses_other_environments_duplicates_and_missing_shards(sharded_runs, tmp_path, capsys):
    tmp, _ = sharded_runs
    shards = [tmp / f"rec{k}" for k in (1, 2, 3)]
    out = tmp_path / "merged"

    def refused(*inputs) -> str:
        assert main(["merge", *map(str, inputs), "--out", str(out)]) == 2
        assert not (out / "manifest.json").exists()
        return capsys.readouterr().err.strip()

    other = tmp_path / "other"
    shutil.copytree(shards[1], other)
    manifest = json.loads((other / "manifest.json").read_text())
    keras = manifest["environment"]["keras"]
    manifest["environment"].update(keras="3.0.0", platform="another kernel")  # the platform alone may differ
    (other / "manifest.json").write_text(json.dumps(manifest))
    assert refused(shards[0], other, shards[2]) == (f"harness merge: {shards[0]} and {other} were recorded in different "
                                                    f"environments: keras: {keras!r} vs '3.0.0'")
    assert refused(shards[0], shards[2]) == "harness merge: shard 2/3 missing: 2 recordings given for 3 shards"
    name = next(iter(json.loads((shards[0] / "manifest.json").read_text())["cases"]))
    assert refused(*shards, tmp / "rec-all") == (f"harness merge: {tmp / 'rec-all'} is not a shard's recording "
                                                 f"(manifest `shard`: None) but {shards[0]} is: merge the recordings "
                                                 "of one sharded record")
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["environment"]["keras"] = keras
    manifest["cases"][name] = json.loads((shards[0] / "manifest.json").read_text())["cases"][name]
    manifest["cases"][name].pop("file", None)
    manifest["cases"][name].pop("file_sha256", None)
    (other / "manifest.json").write_text(json.dumps(manifest))
    assert refused(shards[0], other, shards[2]) == f"harness merge: case {name!r} is in both {shards[0]} and {other}"
    assert main(["merge", str(shards[0]), str(shards[0]), "--out", str(out)]) == 2
    assert "is given twice" in capsys.readouterr().err
