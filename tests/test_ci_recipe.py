"""The CI recipe: the GitHub Actions workflow parses and runs `make test` on pushes and the upgrade matrix on a
schedule, uploading its reports; the pre-commit hook runs `harness validate` on changed case files, which
exits non-zero naming the file and field of a broken case and 0 for good ones (no Keras involved)."""

import re
import subprocess
import sys

import yaml

from conftest import REPO, SEED_CASE

WORKFLOW = REPO / ".github" / "workflows" / "harness.yml"
HOOKS = REPO / ".pre-commit-hooks.yaml"


def _steps(job: dict) -> list[str]:
    return [step.get("run", "") for step in job["steps"]]


def test_the_workflow_runs_make_test_on_pushes_and_the_matrix_on_a_schedule():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads the key `on` as true
    assert {"push", "pull_request", "schedule"} <= set(triggers)
    assert re.fullmatch(r"[\d*/,-]+( [\d*/,-]+){4}", triggers["schedule"][0]["cron"])
    jobs = workflow["jobs"]
    test = next(job for job in jobs.values() if "make test" in _steps(job))
    assert "push" in test["if"] and "pull_request" in test["if"]
    matrix = next(job for job in jobs.values() if any(run.startswith("make matrix") for run in _steps(job)))
    assert "schedule" in matrix["if"]
    assert "harness run cases --html report.html" in "\n".join(_steps(matrix))
    upload = next(step for step in matrix["steps"] if step.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["if"] == "always()"
    paths = upload["with"]["path"].split()
    assert {".matrix/*.md", "report.html"} <= set(paths)


def test_the_sharded_corpus_job_uploads_each_shards_report_and_a_merge_job_merges_them():
    jobs = yaml.safe_load(WORKFLOW.read_text())["jobs"]
    shards = next(job for job in jobs.values() if "matrix" in job.get("strategy", {}))
    values = shards["strategy"]["matrix"]["shard"]
    assert values == list(range(1, len(values) + 1)) and shards["strategy"]["fail-fast"] is False
    (run,) = [line for line in _steps(shards) if "--shard" in line]
    count = len(values)
    assert re.search(rf"harness run cases .*--shard \$\{{\{{ matrix.shard \}}\}}/{count} "
                     r"--report-json (report-shard-\$\{\{ matrix.shard \}\}\.json)$", run), run
    report = run.split("--report-json ")[1]
    upload = next(step for step in shards["steps"] if step.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["if"] == "always()" and upload["with"]["path"] == report
    merge = next(job for name, job in jobs.items() if job.get("needs") in (name_of(jobs, shards), [name_of(jobs, shards)]))
    assert merge["if"].startswith("always()")
    download = next(step for step in merge["steps"] if step.get("uses", "").startswith("actions/download-artifact"))
    assert download["with"]["pattern"] == upload["with"]["name"].replace("${{ matrix.shard }}", "*")
    (merging,) = [line for line in _steps(merge) if "harness merge" in line]
    assert merging == (f".venv/bin/harness merge {download['with']['path']}/{report.replace('${{ matrix.shard }}', '*')} "
                       "--out report.json")


def name_of(jobs: dict, job: dict) -> str:
    return next(name for name, other in jobs.items() if other is job)


def test_the_pre_commit_hook_validates_changed_case_files():
    (hook,) = yaml.safe_load(HOOKS.read_text())
    assert hook["id"] == "harness-validate" and hook["entry"] == "harness validate"
    files = re.compile(hook["files"])
    assert files.search("cases/gru/masking/a.yaml") and files.search("my/cases/b.json")
    assert not files.search("pyproject.toml") and not files.search(".github/workflows/harness.yml")


def _validate(*paths) -> subprocess.CompletedProcess:
    """The hook's command as pre-commit runs it: the entry, then the changed files."""
    return subprocess.run([sys.executable, "-m", "harness", "validate", *map(str, paths)], capture_output=True,
                          text=True, cwd=REPO)


def test_validate_exits_non_zero_naming_the_file_and_field_and_zero_for_good_cases(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(SEED_CASE.read_text())
    bad = tmp_path / "bad.yaml"
    bad.write_text(SEED_CASE.read_text().replace("units: 3", "units: -3"))
    done = _validate(good, bad)
    assert done.returncode == 1
    assert re.search(rf"^{re.escape(str(bad))}:10: config.units: -3 is less than the minimum of 1$", done.stdout,
                     re.M), done.stdout
    assert "1 valid, 1 invalid" in done.stdout
    other = tmp_path / "other.json"
    other.write_text('{"name": "other", "config": {"units": 1}, "input": [[[1]]], '
                     '"weights": {"kernel": [[1, 1, 1, 1]], "recurrent_kernel": [[0, 0, 0, 0]], "bias": [0, 0, 0, 0]}}')
    done = _validate(good, other)
    assert done.returncode == 0 and "2 valid, 0 invalid" in done.stdout
    assert "tensorflow" not in done.stderr.lower()
