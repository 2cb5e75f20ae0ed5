"""`make matrix TF="2.15.1 2.21.0" [TARGETS="tensorflow tf-keras"] [DOCS=docs]`: one virtualenv per
TensorFlow version, the corpus run in each on each target, recorded under the first version and compared
under each later one; a summary per version pair and target; exit 1 when any comparison found a change
beyond tolerance or a new failure (a CI gate), 2 when a comparison could not run.

Usage: python scripts/matrix.py [--cases DIR] [--out DIR] [--targets "T ..."] [--docs DIR] VERSION [VERSION ...]
Virtualenvs, raw results and the reports go under .matrix/ (ignored by git). Only with --docs is a report
also written to that folder (tracked): without the figures that differ between machines (the ulp counts
of changes within tolerance, the platform), and saying so.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TARGET = "tensorflow"
EXPLAINED = "semantic change in Keras"  # how classify.py starts a cause that is only a definition change
BEYOND, WITHIN, IDENTICAL = "changed beyond tolerance", "changed within tolerance", "bit-identical"
# Outcomes that mean the case is broken under a version (a case that was not already so is a new failure;
# xpassed, a known defect fixed, is not one).
BAD = ("failed", "keras-error", "harness-error", "invalid", "timeout", "unsupported")


def harness_dependencies() -> list[str]:
    """pyproject's dependencies less TensorFlow, Keras and NumPy (each TensorFlow pins its own) and the
    test runners."""
    import tomllib  # noqa: PLC0415 - Python 3.11+

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return [d for d in deps if not re.match(r"(tensorflow|keras|numpy|pytest)\b", d)]


def target_packages(target: str, version: str) -> tuple[list[str], bool]:
    """What a target needs beyond TensorFlow and the harness, and whether to install it with --no-deps."""
    import tomllib  # noqa: PLC0415

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    if target == "tf-keras":  # --no-deps: it requires `tensorflow`, which would install over tensorflow-cpu
        return [f"tf-keras=={version}"], True
    if target == "torch":
        return ["torch==2.13.0"], False  # the CPU build this machine's pip finds (see the Makefile)
    if target == "jax":
        return extras["jax"], False
    if target in ("tflite", "onnx"):
        return extras["export"], False
    return [], False  # tensorflow, saved-model: nothing more


def _run(command: list[str], log: Path | None = None, check: bool = True) -> int:
    print("+", " ".join(command), flush=True)
    with open(log, "w") if log else open("/dev/null", "w") as sink:
        done = subprocess.run(command, cwd=ROOT, stdout=sink if log else None, stderr=subprocess.STDOUT if log else None)
    if check and done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(command)}" + (f"; see {log}" if log else ""))
    return done.returncode


def venv_for(version: str, out: Path, targets: tuple[str, ...] = (DEFAULT_TARGET,)) -> Path:
    """A virtualenv with TensorFlow `version`, the harness (without its own TensorFlow bound) and what each
    target needs."""
    venv = out / f"venv-tf{version}"
    python = venv / "bin" / "python"
    stamp = venv / ".installed"
    if not stamp.exists():
        _run([sys.executable, "-m", "venv", str(venv)])
        wheel = "tensorflow-cpu" if platform.machine() == "x86_64" else "tensorflow"
        _run([str(python), "-m", "pip", "install", "--quiet", f"{wheel}=={version}", *harness_dependencies()])
        _run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", "-e", str(ROOT)])
        stamp.touch()
    for target in targets:
        packages, no_deps = target_packages(target, version)
        target_stamp = venv / f".installed-{target}"
        if packages and not target_stamp.exists():
            _run([str(python), "-m", "pip", "install", "--quiet", *(["--no-deps"] if no_deps else []), *packages])
            target_stamp.touch()
    return venv


@dataclass
class PairResult:
    """One later version compared with the first, on one target."""

    first: str
    version: str
    target: str
    counts: dict[str, int] = field(default_factory=dict)  # change kind -> cases
    beyond: list[str] = field(default_factory=list)  # "case: detail; cause"
    explained: list[str] = field(default_factory=list)  # beyond tolerance, both sides right by their own Keras's definitions
    new_failures: list[str] = field(default_factory=list)  # "case: old -> new outcome"
    error: str = ""  # compare could not run (exit 2, no report): the gate fails

    @property
    def gate_fails(self) -> bool:
        return bool(self.beyond or self.new_failures or self.error)

    def summary(self) -> list[str]:
        head = f"{self.target}: TF {self.first} -> {self.version}: "
        if self.error:
            return [head + f"COMPARE FAILED: {self.error}"]
        shown = [f"{self.counts.get(kind, 0)} {kind}" for kind in (IDENTICAL, WITHIN, BEYOND)]
        others = sum(n for kind, n in self.counts.items() if kind not in (IDENTICAL, WITHIN, BEYOND))
        line = head + ", ".join(shown) + (f", {others} not compared (new, missing, edited or not comparable)" if others else "")
        line += f"; {len(self.new_failures)} new failures" if self.new_failures else ""
        return ([line] + [f"  beyond tolerance: {item}" for item in self.beyond]
                + [f"  beyond tolerance, explained (not a failure): {item}" for item in self.explained]
                + [f"  new failure: {item}" for item in self.new_failures])


def new_failures(old: dict, new: dict) -> list[str]:
    """Cases broken under the new version that were not under the old (or did not exist there)."""
    found = []
    for name in sorted(new):
        before, after = old.get(name, {}).get("outcome", "-"), new[name].get("outcome")
        if after in BAD and before not in BAD:
            found.append(f"{name}: {before} -> {after}")
    return found


def pair_result(first: str, version: str, target: str, runs: dict, comparison: dict | None, error: str = "") -> PairResult:
    result = PairResult(first, version, target, error=error)
    if comparison is not None:
        for row in comparison["cases"]:
            result.counts[row["change"]] = result.counts.get(row["change"], 0) + 1
            if row["change"] == BEYOND:
                item = f"{row['case']}: {row.get('detail', '')}; {row.get('cause', '')}"
                # a documented change of Keras's definitions, each version agreeing with the reference under
                # its own (e.g. hard_sigmoid, Keras 2 -> 3): said, but no reason to fail every scheduled run
                (result.explained if row.get("cause", "").startswith(EXPLAINED) else result.beyond).append(item)
    result.new_failures = new_failures(runs[first], runs[version])
    return result


def _suffix(target: str) -> str:
    return "" if target == DEFAULT_TARGET else f"-{target}"


def run_matrix(versions: list[str], targets: list[str], cases: str, out: Path, docs: Path | None,
               harness_for=None, run=None) -> list[PairResult]:
    """Run, record and compare; write the reports; return one result per later version and target.
    `harness_for(version)` gives the harness executable and `run` runs a command (tests pass fakes)."""
    run = run or _run
    harness_for = harness_for or (lambda v: str(venv_for(v, out, tuple(targets)) / "bin" / "harness"))
    out.mkdir(parents=True, exist_ok=True)
    first, *later = versions
    harness = {v: harness_for(v) for v in versions}
    results = []
    for target in targets:
        tag = _suffix(target)
        runs = {}
        for version in versions:
            report = out / f"run-tf{version}{tag}.json"
            report.unlink(missing_ok=True)
            run([harness[version], "run", cases, "--target", target, "--report-json", str(report)],
                out / f"run-tf{version}{tag}.log", check=False)
            runs[version] = {row["case"]: row for row in json.loads(report.read_text())} if report.exists() else {}
        recording = out / f"recording-tf{first}{tag}"
        run([harness[first], "record", cases, "--target", target, "--out", str(recording)], out / f"record-tf{first}{tag}.log")
        for version in later:
            base = out / f"compare-tf{first}-tf{version}{tag}"
            for stale in (Path(f"{base}.json"), Path(f"{base}.md")):
                stale.unlink(missing_ok=True)
            code = run([harness[version], "compare", str(recording), cases, "--target", target, "--report-json",
                        f"{base}.json", "--markdown", f"{base}.md"], Path(f"{base}.log"), check=False)
            if code not in (0, 1) or not Path(f"{base}.json").exists():
                results.append(pair_result(first, version, target, runs, None,
                                           f"harness compare exited {code}; see {base}.log"))
                continue
            comparison = json.loads(Path(f"{base}.json").read_text())
            results.append(pair_result(first, version, target, runs, comparison))
            name = f"upgrade-tf{first}-to-tf{version}{tag}.md"
            full = out / name
            full.write_text(combined_report(first, version, runs, comparison, Path(f"{base}.md").read_text(), target))
            print(f"wrote {full}")
            if docs is not None:
                docs.mkdir(parents=True, exist_ok=True)
                (docs / name).write_text(combined_report(first, version, runs, comparison, "", target, portable=True))
                print(f"wrote {docs / name}")
    return results


def combined_report(first: str, version: str, runs: dict, comparison: dict, compare_md: str,
                    target: str = DEFAULT_TARGET, portable: bool = False) -> str:
    """Per case: the outcome under each version and what changed. `portable` (the tracked docs/ copy): no
    figure that differs between machines (ulp counts within tolerance, platform), and a note saying so."""
    changes = {row["case"]: row for row in comparison["cases"]}
    names = sorted(set(runs[first]) | set(runs[version]) | set(changes))
    on = "" if target == DEFAULT_TARGET else f" on the {target} target"
    command = f"make matrix TF=\"{first} {version}\"" + ("" if target == DEFAULT_TARGET else f" TARGETS=\"{target}\"")
    lines = [f"# Upgrade check: TensorFlow {first} -> {version}{on}", "",
             f"Generated by `{command}{' DOCS=docs' if portable else ''}` (scripts/matrix.py): the corpus run under "
             "each version, recorded under the first and compared under the second.", ""]
    if portable:
        lines += ["Machine-dependent figures are left out: a change within tolerance is listed without its size in "
                  "ulps (rounding differs between CPUs and math libraries), and the platform is not named. The sizes "
                  "of changes beyond tolerance are from the machine that generated this report (3 significant "
                  "digits). The full report, with every figure, is written under .matrix/.", ""]
    lines += ["## Per case: outcome under each version, and what changed", "",
              f"| case | TF {first} | TF {version} | change | cause |", "|---|---|---|---|---|"]
    interesting = []
    for name in names:
        old, new = runs[first].get(name, {}).get("outcome", "-"), runs[version].get(name, {}).get("outcome", "-")
        change = changes.get(name, {})
        if old != new or change.get("change") not in (IDENTICAL, None):
            interesting.append(name)
            detail = "" if portable and change.get("change") == WITHIN else change.get("detail", "")
            lines.append(f"| `{name}` | {old} | {new} | {change.get('change', '-')} {detail} | {change.get('cause', '')} |")
    same = len(names) - len(interesting)
    lines += ["", f"The other {same} cases have the same outcome under both versions and bit-identical outputs.", ""]
    if portable:
        counts: dict[str, int] = {}
        for row in comparison["cases"]:
            counts[row["change"]] = counts.get(row["change"], 0) + 1
        lines += ["## Versions and counts", "", "| | recorded | now |", "|---|---|---|"]
        for key in ("tensorflow", "keras", "numpy"):
            lines.append(f"| {key} | {comparison.get('recorded', {}).get(key)} | {comparison.get('now', {}).get(key)} |")
        lines += ["", " | ".join(f"**{n}** {kind}" for kind, n in sorted(counts.items()))]
    else:
        lines += ["## The comparison report (harness compare --markdown)", "", compare_md.replace("## ", "### ", 1)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("versions", nargs="+")
    parser.add_argument("--cases", default="cases")
    parser.add_argument("--out", default=".matrix")
    parser.add_argument("--targets", default=DEFAULT_TARGET, help="space- or comma-separated (default: tensorflow)")
    parser.add_argument("--docs", default=None, help="also write each report here, without machine-dependent figures")
    args = parser.parse_args(argv)
    if len(args.versions) < 2:
        parser.error("give at least two TensorFlow versions (the first is recorded, the others compared with it)")
    targets = [t for t in re.split(r"[\s,]+", args.targets) if t] or [DEFAULT_TARGET]
    out = ROOT / args.out
    results = run_matrix(args.versions, targets, args.cases, out, ROOT / args.docs if args.docs else None)
    return report(results, out)


def report(results: list[PairResult], out: Path) -> int:
    """Print the summary; 1 when the gate fails (a change beyond tolerance, a new failure, a failed compare)."""
    print(f"\nmatrix summary (reports and logs under {out}):")
    for result in results:
        for line in result.summary():
            print("  " + line)
    failing = [r for r in results if r.gate_fails]
    if failing:
        print(f"matrix: FAILED: {len(failing)} of {len(results)} comparisons found changes beyond tolerance, new "
              "failures, or could not compare")
        return 1
    print(f"matrix: OK: {len(results)} comparisons, none beyond tolerance, no new failure")
    return 0


if __name__ == "__main__":
    sys.exit(main())
