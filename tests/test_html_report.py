"""`harness run --html` and `harness compare --html`: one self-contained page, its pictures, its bounds,
and hostile strings from case files shown as text. The page functions are fed hand-made results (no
Keras); the CLI tests run the real thing on the seed case, once with Keras's h perturbed."""

import base64
import io
import json
import re
from html.parser import HTMLParser

import numpy as np
from harness import html_report
from harness.cli import main
from harness.compare import diff_output
from harness.faults import h_scaled
from harness.recording import IDENTICAL, WITHIN, CaseChange, Comparison, _sha256, record
from harness.recording.classify import ULP_LABELS, ulp_histogram
from harness.runner import CaseResult
from harness.tolerances import Tolerance

from conftest import REPO

TOL = Tolerance(rtol=1e-6, atol=1e-6, source="test")
HOSTILE = "<script>alert(1)</script>"


class _Tags(HTMLParser):
    """The page's real tags and attributes, as a browser would see them (not text that looks like a tag)."""

    def __init__(self, page: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text = ""  # what a reader sees, entities decoded
        self.feed(page)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text += data


def pictures(page: str, kind: str) -> int:
    """<img> (or <svg>) tags of one kind; each must be a PNG embedded in the page."""
    found = 0
    for tag, attrs in _Tags(page).tags:
        if tag in ("img", "svg") and attrs.get("class") == kind:
            assert attrs["src"].startswith("data:image/png;base64,")
            assert base64.b64decode(attrs["src"].split(",", 1)[1]).startswith(b"\x89PNG\r\n\x1a\n")
            found += 1
    return found


def assert_self_contained(page: str) -> None:
    """One file: every src/href is a data: URI or a fragment of the page; no script, no link, no frame."""
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    tags = _Tags(page).tags
    for tag, attrs in tags:
        for name in ("src", "href", "srcset", "action", "data"):
            if name in attrs:
                assert attrs[name].startswith(("data:image/png;base64,", "#")), (tag, name, attrs[name])
    assert not {tag for tag, _ in tags} & {"script", "link", "iframe", "object", "embed", "base", "meta-refresh"}
    assert not re.search(r"https?://", page)


def drifting(steps=30, start=12, batch=2, units=4):
    """Sequences whose error grows from `start` on, and the final h (the last step)."""
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(batch, steps, units))
    system = reference.copy()
    system[:, start:, :] += 1e-5 * np.exp(0.3 * np.arange(steps - start))[None, :, None]
    return [(1, diff_output("sequences", system, reference, None, TOL)),
            (1, diff_output("h", system[:, -1], reference[:, -1], None, TOL))]


def result(name="drift", outcome="failed", diffs=None, path="cases/drift.yaml", message="mismatch", **more):
    return CaseResult(name, path, outcome, message, f"{outcome.upper()} {name} ({path})", diffs or [], 0.5,
                      modes=("eager",), **more)


def test_a_failing_output_gets_its_values_a_heat_map_and_a_line_plot():
    page = html_report.run_page([result(diffs=drifting()), result("fine", "passed")], 1.0, {"keras": "3.x"})
    assert_self_contained(page)
    assert pictures(page, "heatmap") == 2 and pictures(page, "lineplot") == 2  # sequences and h
    assert "|Keras - reference| first exceeds the tolerance at step 12" in page  # where divergence starts
    assert "sequences[batch, step, unit]" in page and "h[batch, unit]" in page
    assert "<th>KERAS</th><th>REFERENCE</th>" in page  # the oracles' values
    assert "allowed: |Keras - reference| &lt;= " in page  # the tolerance in the text report's words
    assert page.count('<span class="outcome passed">PASSED</span>') == 2  # the counts row and the case row


def test_where_divergence_starts_is_the_first_step_beyond_the_tolerance():
    assert html_report.first_beyond(np.array([0.1, 0.9, 1.0, 1.5, 0.2])) == 3
    assert html_report.first_beyond(np.array([0.1, np.nan, 2.0])) == 1  # a NaN is beyond
    assert html_report.first_beyond(np.array([0.1, 1.0])) is None


def test_the_pictures_show_the_hand_value_when_it_is_the_odd_one_out():
    reference = np.array([[0.0, 4.0, 0.0]])
    diff = diff_output("h", reference.copy(), reference, np.array([[0.0, 4.0, 1.0]]), TOL)
    page = html_report.run_page([result(diffs=[(1, diff)])], 1.0)
    assert pictures(page, "heatmap") == 1 and pictures(page, "lineplot") == 1
    assert "stays within the tolerance of the reference everywhere: the hand value is what differs" in page
    assert "<th>EXPECTED</th><th>odd one out</th>" in page and '<td class="num">expected</td>' in page


def test_a_passing_run_has_the_summary_and_no_pictures():
    page = html_report.run_page([result("a", "passed"), result("b", "xfailed")], 2.0)
    assert_self_contained(page)
    assert "harness run: 2 cases in 2.0s" in page and "every case is green" in page
    assert "<img" not in page and "Failing cases" not in page


def test_strings_from_case_files_are_escaped():
    bad = result(HOSTILE, diffs=drifting(), path=f"cases/{HOSTILE}/x.yaml", message=f"name: {HOSTILE!r}")
    invalid = result(f"{HOSTILE}2", "invalid", path='cases/"><img src=x onerror=alert(1)>.yaml')
    page = html_report.run_page([bad, invalid], 1.0, descriptions={HOSTILE: f"{HOSTILE} $x^2$ &amp;"})
    assert_self_contained(page)
    assert HOSTILE not in page and "<img src=x" not in page
    shown = _Tags(page).text  # shown as text, exactly as written in the file
    assert f"{HOSTILE} $x^2$ &amp;" in shown and f"cases/{HOSTILE}/x.yaml" in shown
    assert 'cases/"><img src=x onerror=alert(1)>.yaml' in shown
    assert pictures(page, "heatmap") == 2


def test_modes_that_fail_alike_are_drawn_once():
    eager, graph = drifting()[0][1], drifting()[0][1]
    eager.mode, graph.mode = "eager", "graph"
    one = result(diffs=[(1, eager), (1, graph)])
    one.modes = ("eager", "graph")
    page = html_report.run_page([one], 1.0)
    assert pictures(page, "heatmap") == 1
    assert "graph: sequences: the same 144 mismatched elements, with the same values, as in eager" in page


def test_the_page_is_bounded_and_says_so(monkeypatch):
    monkeypatch.setattr(html_report, "MAX_PICTURED_CASES", 3)
    monkeypatch.setattr(html_report, "MAX_PICTURED_OUTPUTS", 3)
    many = [result(f"case-{i}", diffs=drifting()) for i in range(5)]
    page = html_report.run_page(many, 1.0)
    assert pictures(page, "heatmap") == 2 * 3
    assert "Pictures for the first 3 of 5 failing cases (at most 3 outputs each)" in page
    assert page.count(" case-4</") == 1 and page.count(">case-4</a>") == 1  # not drawn: listed, with its report
    wide = result(diffs=drifting() + [(2, diff) for _, diff in drifting()])  # 2 calls: 4 failing outputs
    page = html_report.run_page([wide], 1.0)
    assert pictures(page, "heatmap") == 3
    assert "1 more failing outputs of this case are not drawn (at most 3 per case)" in page


def test_several_targets_show_each_outcome_and_draw_the_failing_one():
    tensorflow, jax = result(outcome="passed"), result(diffs=drifting())
    combined = result(diffs=tensorflow.diffs, targets={"tensorflow": tensorflow, "jax": jax},
                      message="jax is the odd one out among targets")
    page = html_report.run_page([combined], 1.0)
    assert "<td>tensorflow</td><td><span class=\"outcome passed\">PASSED</span>" in page
    assert "<td>jax</td><td><span class=\"outcome failed\">FAILED</span>" in page
    assert "target jax:" in page and "target tensorflow:" not in page
    assert pictures(page, "heatmap") == 2


def test_compare_page_has_the_histogram_and_the_changes():
    counts = tuple([90, 7, 2] + [0] * (len(ULP_LABELS) - 4) + [1])
    comparison = Comparison({"keras": "3.10", "platform": HOSTILE}, {"keras": "3.15"}, [
        CaseChange(HOSTILE, WITHIN, "largest change 2 ulps", 2.0, 1e-7, ulp_counts=counts),
        CaseChange("same", IDENTICAL, ulp_counts=tuple([5] + [0] * (len(ULP_LABELS) - 1)))])
    page = html_report.compare_page(comparison)
    assert_self_contained(page)
    assert pictures(page, "histogram") == 1
    assert "10 of 105 finite output elements of 2 compared cases changed" in page
    assert HOSTILE not in page and "&lt;script&gt;" in page and "1 bit-identical cases" in page


# --- the real thing ---------------------------------------------------------------------------------------

def test_cli_run_html_passing_then_perturbed(tmp_path, seed_text, capsys):
    (tmp_path / "seed.yaml").write_text(seed_text)
    out = tmp_path / "report.html"
    assert main(["run", str(tmp_path / "seed.yaml"), "--html", str(out)]) == 0
    page = out.read_text()
    assert_self_contained(page)
    assert "<img" not in page and "every case is green" in page
    with h_scaled(1e-4).install():  # harness/faults.py: h = o * g(c) * (1 + 1e-4), fed back and returned
        assert main(["run", str(tmp_path / "seed.yaml"), "--mode", "eager", "--html", str(out),
                     "--report-json", str(tmp_path / "r.json")]) == 1
    page = out.read_text()
    assert_self_contained(page)
    failing = [o for row in json.loads((tmp_path / "r.json").read_text()) for o in row["outputs"] if not o["passed"]]
    assert {o["output"] for o in failing} == {"sequences", "h"}
    assert pictures(page, "heatmap") == len(failing) and pictures(page, "lineplot") == len(failing)
    assert "Keras disagrees with both the reference and the hand value" in page


def test_cli_html_file_is_checked_before_the_run(tmp_path, seed_text, capsys):
    (tmp_path / "seed.yaml").write_text(seed_text)
    assert main(["run", str(tmp_path / "seed.yaml"), "--html", str(tmp_path / "no" / "r.html")]) == 2
    assert "--html" in capsys.readouterr().err


def _one_ulp_more(path):
    """Every non-zero recorded value one float32 ulp up (at 0 the ulp is not the subnormal step: see classify)."""
    with np.load(path) as npz:
        arrays = {k: np.where(npz[k] != 0, np.nextafter(npz[k].astype(np.float32), np.float32(np.inf)), npz[k])
                  .astype(np.float64) for k in npz.files}
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def test_cli_compare_html_has_its_histogram(tmp_path):
    corpus = tmp_path / "cases"
    corpus.mkdir()
    (corpus / "seed.yaml").write_text((REPO / "cases/seed/seed-linear-gates.yaml").read_text())
    record([corpus], tmp_path / "rec")
    manifest = json.loads((tmp_path / "rec/manifest.json").read_text())
    item = manifest["cases"]["seed-linear-gates"]
    data = _one_ulp_more(tmp_path / "rec" / item["file"])
    (tmp_path / "rec" / item["file"]).write_bytes(data)
    item["file_sha256"] = _sha256(data)
    (tmp_path / "rec/manifest.json").write_text(json.dumps(manifest))
    out = tmp_path / "compare.html"
    assert main(["compare", str(tmp_path / "rec"), str(corpus), "--html", str(out)]) == 0
    page = out.read_text()
    assert_self_contained(page)
    assert pictures(page, "histogram") == 1
    assert "4 of 9 finite output elements of 1 compared cases changed" in page  # [0,4,0], [0,4,0], [0,4,1]
    assert "changed within tolerance" in page and "seed-linear-gates" in page


def test_ulp_histogram_bins():
    old = np.array([1.0, 2.0, 3.0, np.nan, 1.0, 0.0, 0.0])
    new = old + np.array([0.0, 2.0 ** -22, 5 * 2.0 ** -22, 0.0, 1e9, 1e-30, 0.0])
    counts = dict(zip(ULP_LABELS, ulp_histogram([(old, new)], "float32")))
    # NaN left out; 0 -> 1e-30 changed, so not "0" whatever its size in ulps
    assert {k: n for k, n in counts.items() if n} == {"0": 2, "1": 2, "5-8": 1, f">{2 ** 20}": 1}
