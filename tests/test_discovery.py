"""Finding and loading a corpus: sorted, one entry per file, duplicates and bad files isolated."""

from harness.discovery import find_case_files, load_corpus


def test_duplicate_names_and_bad_files_do_not_stop_the_rest(tmp_path, seed_text):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "first.yaml").write_text(seed_text)
    (tmp_path / "b.yaml").write_text(seed_text)  # same `name:` as a/first.yaml
    (tmp_path / "c.json").write_text("[")
    (tmp_path / "notes.txt").write_text("not a case")
    entries = load_corpus([tmp_path])
    assert [e.path.name for e in entries] == ["first.yaml", "b.yaml", "c.json"]
    assert entries[0].case is not None
    assert "duplicate case name 'seed-linear-gates'" in entries[1].error.render()
    assert f"also used by {tmp_path / 'a' / 'first.yaml'}" in entries[1].error.render()
    assert "JSON syntax error" in entries[2].error.render()


def test_a_missing_file_is_an_invalid_entry(tmp_path):
    [entry] = load_corpus([tmp_path / "nope.yaml"])
    assert entry.error.render().endswith("nope.yaml: no such file")


def test_files_are_found_sorted_and_once(tmp_path):
    for name in ("z.yml", "a.yaml", "m.json"):
        (tmp_path / name).write_text("{}")
    assert [p.name for p in find_case_files([tmp_path, tmp_path / "a.yaml"])] == ["a.yaml", "m.json", "z.yml"]


def test_reports_and_manifests_beside_cases_are_not_cases(tmp_path, seed_text):
    (tmp_path / "seed.yaml").write_text(seed_text)
    (tmp_path / "run-report.json").write_text('[{"case": "seed-linear-gates", "outcome": "passed", "outputs": []}]')
    (tmp_path / "compare-report.json").write_text('{"recorded": {}, "now": {}, "cases": []}')
    (tmp_path / "manifest.json").write_text('{"format": "keras-rnn-harness-recording", "environment": {}, "cases": {}}')
    (tmp_path / "half-a-case.json").write_text('{"name": "half"}')  # case-like: an invalid case, not skipped
    (tmp_path / "numbers.json").write_text("[1, 2]")
    assert [p.name for p in find_case_files([tmp_path])] == ["half-a-case.json", "numbers.json", "seed.yaml"]
    [named] = load_corpus([tmp_path / "run-report.json"])  # named directly: told what it is
    assert named.error.problems[0].message == "a harness report (a list of case results), not a case"
