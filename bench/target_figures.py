"""The corpus on each target, in figures: cases run, passed, known failures (xfailed), skipped and
unsupported with their reasons grouped, failures, and the largest error / tolerance of the passing
outputs. The README's per-target table comes from this.

Usage: .venv/bin/python bench/target_figures.py [TARGET ...] [--cases DIR ...]
(default: every installed target, the whole corpus). One `harness run --report-json` a target, each in a
process of its own, so that one target's imports never change another's figures. Takes several minutes.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def reason(message: str) -> str:
    """A skip/unsupported message without what varies per case (numbers, names in backquotes), to group them."""
    text = message.split(": ", 1)[-1] if message.startswith("target ") else message
    text = re.sub(r"`[^`]*`", "`...`", text)
    return re.sub(r"\d+(\.\d+)?", "N", text)[:110]


def figures(target: str, cases: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.json"
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "harness.cli", "run", *cases, "--target", target, "--report-json",
                        str(out)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        seconds = time.perf_counter() - started
        entries = json.loads(out.read_text())
    outcomes = Counter(e["outcome"] for e in entries)
    reasons = Counter(f"{e['outcome']}: {reason(e['message'])}" for e in entries
                      if e["outcome"] in ("skipped", "unsupported"))
    ratios = [o["error_to_tolerance"] for e in entries if e["outcome"] == "passed"
              for o in e.get("outputs", []) if o.get("error_to_tolerance") is not None]
    return {"target": target, "cases": len(entries), "outcomes": dict(outcomes), "reasons": reasons,
            "largest_ratio": max(ratios, default=0.0), "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("targets", nargs="*")
    parser.add_argument("--cases", nargs="+", default=["cases"])
    args = parser.parse_args()
    from harness import targets  # noqa: PLC0415 - metadata only: imports no backend

    names = args.targets or list(targets.installed())
    print("| target | cases | passed | xfailed | skipped | unsupported | failed / errors | largest error / tolerance | s |")
    print("|---|---|---|---|---|---|---|---|---|")
    found = [figures(name, args.cases) for name in names]
    for f in found:
        o = f["outcomes"]
        bad = sum(n for k, n in o.items() if k not in ("passed", "xfailed", "skipped", "unsupported"))
        print(f"| `{f['target']}` | {f['cases']} | {o.get('passed', 0)} | {o.get('xfailed', 0)} | {o.get('skipped', 0)} "
              f"| {o.get('unsupported', 0)} | {bad} | {f['largest_ratio']:.3g} | {f['seconds']:.0f} |")
    for f in found:
        if f["reasons"]:
            print(f"\n{f['target']}: why not run")
            for text, count in f["reasons"].most_common():
                print(f"  {count:4d}  {text}")


if __name__ == "__main__":
    main()
