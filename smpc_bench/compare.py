"""``python -m smpc_bench.compare OLD.json NEW.json``: how every cell of two overhead tables moved.

Refuses two tables measured on different machines (CPU, cores, numpy, numba, BLAS differ), since their
times are not comparable; ``--any-machine`` compares the ratios to plaintext only, which travel better.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from smpc_bench.overhead import SCHEMA
from smpc_bench.text_table import render_text

STAMP_KEYS = ("cpu", "cores", "numpy", "numba", "blas")


def load(path: Path) -> dict:
    """An overhead document, after checking it is one."""
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SystemExit(f"cannot read {path}: {exc}") from None
    if not isinstance(document, dict) or document.get("schema") != SCHEMA:
        raise SystemExit(f"{path} is not an overhead table (schema {SCHEMA}); smpc_bench writes overhead.json")
    return document


def machine_differences(old: dict, new: dict) -> list[str]:
    """The stamp fields in which the two machines differ, as 'field: old -> new'."""
    return [f"{key}: {old['machine'].get(key)} -> {new['machine'].get(key)}" for key in STAMP_KEYS
            if old["machine"].get(key) != new["machine"].get(key)]


def compare(old: dict, new: dict, ratios_only: bool) -> list[list[str]]:
    """One line per cell present in both: old and new time (or ratio to plaintext) and the change."""
    what = "ratio to plaintext" if ratios_only else "median time (s)"
    lines = [["operation", "column", f"old {what}", f"new {what}", "change"]]
    old_rows = {entry["operation"]: entry for entry in old["rows"]}
    for entry in new["rows"]:
        before = old_rows.get(entry["operation"])
        if before is None:
            continue
        if not ratios_only and before["label"] != entry["label"]:
            lines.append([entry["operation"], "", before["label"], entry["label"], "sizes differ: not compared"])
            continue
        for column, cell in entry["cells"].items():
            if column not in before["cells"]:
                continue
            key = (lambda c: c["ratio"]) if ratios_only else (lambda c: c["seconds"]["median"])
            a, b = key(before["cells"][column]), key(cell)
            change = f"{a / b:.2f}x faster" if b < a else f"{b / a:.2f}x slower"
            lines.append([entry["operation"], column, f"{a:.4g}", f"{b:.4g}", change])
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m smpc_bench.compare", description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("--any-machine", action="store_true",
                        help="compare tables from different machines (ratios to plaintext only)")
    args = parser.parse_args(argv)
    old, new = load(args.old), load(args.new)
    differences = machine_differences(old, new)
    if differences and not args.any_machine:
        raise SystemExit("the two tables come from different machines (" + "; ".join(differences) + "); their "
                         "times are not comparable. Pass --any-machine to compare ratios to plaintext instead.")
    print(render_text(compare(old, new, ratios_only=bool(differences))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
