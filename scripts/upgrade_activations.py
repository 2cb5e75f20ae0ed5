"""Which Keras 2 activations a Keras 2 -> 3 upgrade check actually compares.

    .venv/bin/python scripts/upgrade_activations.py COMPARE.json [PATH ...]     # default PATH: cases/

COMPARE.json is `harness compare --report-json` output (e.g. recorded with `--target tf-keras`, compared with
`--target tensorflow`, or `make matrix` across TensorFlow 2.15 and 2.21). Prints how many cases were not
comparable, and for each activation Keras 2 has (harness/activations.py, keras2 flavor), in each role, the
cases comparable across the upgrade that use it; exits 1 when one of them is in no comparable case in a role. No Keras is imported.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

from harness import layers
from harness.activations import get_activation, supported_names
from harness.discovery import DEFAULT_CASE_DIR, load_corpus
from harness.known_defects import layer_configs

COMPARED = ("bit-identical", "changed within tolerance", "changed beyond tolerance")


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    report = json.loads(Path(argv[0]).read_text())
    kinds = {row["case"]: row["change"] for row in report["cases"]}
    entries = [e for e in load_corpus(argv[1:] or [DEFAULT_CASE_DIR]) if e.case is not None and e.name in kinds]
    counts = Counter(kinds[e.name] for e in entries)
    print(f"{len(entries)} cases: " + ", ".join(f"{n} {kind}" for kind, n in counts.most_common()))
    roles: dict[tuple[str, str], list[str]] = {}
    for entry in entries:
        if kinds[entry.name] not in COMPARED:
            continue
        doc = {"layer": entry.case.layer, "config": entry.case.config}
        for layer, config in layer_configs(doc):
            for role, name in layers.get(layer).activations(config).items():  # defaults applied
                canonical = get_activation(name, "keras2").name  # an alias (silu) counts as its function
                roles.setdefault((role, canonical), []).append(entry.name)
    names = sorted({get_activation(name, "keras2").name for name in supported_names("keras2")})
    for role in ("activation", "recurrent_activation"):
        print(f"\n{role}: Keras 2 activation -> comparable cases using it")
        for name in names:
            found = sorted(set(roles.get((role, name), [])))
            print(f"  {name:<13} {len(found):>3}  {', '.join(found[:4])}{' ...' if len(found) > 4 else ''}"
                  if found else f"  {name:<13}   0  NOT COMPARED in this role")
    missing = [f"{name} as {role}" for role in ("activation", "recurrent_activation") for name in names
               if (role, name) not in roles]
    print(f"\nKeras 2 activations (aliases as their function, {len(names)}) in no comparable case, per role: "
          f"{', '.join(missing) or 'none'}")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
