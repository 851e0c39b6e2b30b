"""``python -m smpc_bench [--quick | --full] [--repeat N] [--out DIR] [size overrides]``: measure, print, save.

Prints every case's row and then the overhead table (plaintext vs DP vs MPC, next to PySyft's quoted
figures), with a progress bar while it runs, and writes ``bench.json``, ``bench.md``,
``overhead.json``, ``overhead.md``, ``overhead.png`` and ``fedavg.png`` into ``--out`` (default
``results/``). Every JSON carries the machine stamp.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from smpc_bench import (cases, fl_rows, flower_rows, fss_rows, import_rows, network_rows, nn_rows, nonlinear, overhead,
                        paillier_rows, transformer_rows, transport_rows)
from smpc_bench.machine import machine_stamp
from smpc_bench.memory import check_fits
from smpc_bench.progress import Progress
from smpc_bench.text_table import render_markdown_table, render_text
from smpc.mpc import registry

SIZES = {"quick": {"ring": 300, "mpc": 200, "elements": 10_000, "paillier": 50, "triples": 100, "triple_side": 4,
                   "image": 32, "clients": 10, "parameters": 10_000, "fl_rounds": 3, "conversions": 1,
                   "bert": {"layers": 1, "tokens": 8, "hidden": 64, "heads": 2, "intermediate": 128,
                            "vocabulary": 1000},
                   "gpt2": {"layers": 1, "tokens": 8, "hidden": 64, "heads": 2, "intermediate": 128,
                            "vocabulary": 1000, "positions": 64},
                   "vit": {"layers": 1, "hidden": 64, "heads": 2, "intermediate": 128, "image": 32, "patch": 16}},
         "full": {"ring": 1000, "mpc": 1000, "elements": 1_000_000, "paillier": 2000, "triples": 1000,
                  "triple_side": 16, "image": 224, "clients": 10, "parameters": 1_000_000, "fl_rounds": 10,
                  "conversions": 3, "bert": {"layers": 12, "tokens": 128}, "gpt2": {"layers": 12, "tokens": 128},
                  "vit": {"layers": 12}}}  # the transformers: BERT-base, GPT-2 small, ViT-Base/16 at 224x224
MPC_SETUPS = registry.bench_setups(every_count=True)  # e.g. additive with 2 and 3 parties, aby3 with 3
NN_SETUPS = registry.bench_setups()
# the overhead table's matmul and ResNet-18 rows also run the protocols that join its group only (spdz2k)
_JOINING = [setup for setup in registry.bench_setups(group="overhead") if setup not in NN_SETUPS]
# size flags: (flag, the SIZES keys it sets, smallest allowed, what it is)
SIZE_FLAGS = [("--matmul", ("ring", "mpc"), 1, "matrix side of the matmul rows"),
              ("--image", ("image",), 32, "ResNet-18 input side (pixels)"),
              ("--clients", ("clients",), 8, "clients in the aggregation rows (3 of them drop out in two rows)"),
              ("--parameters", ("parameters",), 1, "parameters per client update"),
              ("--elements", ("elements",), 1, "elements of the comparison and non-linear rows")]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m smpc_bench", description="smpc's benchmark table")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="small sizes (CI)")
    size.add_argument("--full", action="store_true", help="the sizes quoted in the README (default)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the median is reported")
    parser.add_argument("--out", default="results", help="folder for bench.json and bench.md")
    parser.add_argument("--progress", choices=["auto", "always", "never"], default="auto")
    parser.add_argument("--only-overhead", action="store_true",
                        help="measure only the cases the overhead table needs (matmul, ResNet-18, aggregation)")
    for flag, _, smallest, what in SIZE_FLAGS:
        parser.add_argument(flag, type=int, metavar="N", help=f"{what} (at least {smallest}; default: the mode's)")
    return parser


def chosen_sizes(args: argparse.Namespace, mode: str) -> dict:
    """The mode's sizes with the size flags applied; a flag below its minimum is refused."""
    sizes = dict(SIZES[mode])
    for flag, keys, smallest, _ in SIZE_FLAGS:
        value = getattr(args, flag[2:])
        if value is None:
            continue
        if value < smallest:
            raise SystemExit(f"{flag} must be at least {smallest}, got {value}")
        sizes.update(dict.fromkeys(keys, value))
    return sizes


def check_output_folder(folder: Path) -> None:
    """Create ``folder`` if needed and fail clearly if it cannot be written."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SystemExit(f"cannot create output folder {folder}: {exc.strerror}") from None
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise SystemExit(f"output folder {folder} is not writable")


# (progress label, the rows, whether the overhead table needs them), in table order
CASES = [
    ("exact ring matmul", lambda sizes, repeat, folder: cases.ring_matmul_rows(sizes["ring"], repeat), False),
    ("fixed-point matmul",
     lambda sizes, repeat, folder: cases.mpc_matmul_rows(sizes["mpc"], MPC_SETUPS + _JOINING, repeat), True),
    ("transports", lambda sizes, repeat, folder: transport_rows.transport_rows(sizes["mpc"], repeat), False),
    ("networks", lambda sizes, repeat, folder: network_rows.network_rows(min(sizes["elements"], 100_000),
                                                                         min(sizes["mpc"], 500), repeat), False),
    ("function secret sharing", lambda sizes, repeat, folder: fss_rows.fss_rows(min(sizes["elements"], 100_000),
                                                                                repeat), False),
    ("comparisons and non-linear functions",
     lambda sizes, repeat, folder: nonlinear.nonlinear_rows(sizes["elements"], MPC_SETUPS, repeat), False),
    ("Paillier", lambda sizes, repeat, folder: paillier_rows.throughput_rows(sizes["paillier"], repeat)
     + paillier_rows.triple_rows(sizes["triples"], sizes["triple_side"], repeat), False),
    ("ResNet-18 inference", lambda sizes, repeat, folder: nn_rows.resnet_rows(sizes["image"], NN_SETUPS + _JOINING,
                                                                                repeat),
     True),
    ("imported models", lambda sizes, repeat, folder: import_rows.import_rows(sizes["image"], repeat,
                                                                              sizes["conversions"]), False),
    ("imported transformers", lambda sizes, repeat, folder: transformer_rows.transformer_rows(
        sizes, min(repeat, 1), NN_SETUPS), False),
    ("private training", lambda sizes, repeat, folder: nn_rows.training_rows(NN_SETUPS, repeat), False),
    ("gradient aggregation",
     lambda sizes, repeat, folder: fl_rows.aggregation_rows(sizes["clients"], sizes["parameters"], repeat), True),
    ("private FedAvg", lambda sizes, repeat, folder: fl_rows.fedavg_rows(sizes["fl_rounds"], folder), False),
    ("secure aggregation on Flower", lambda sizes, repeat, folder: flower_rows.flower_rows(
        sizes["clients"], sizes["parameters"], dropouts=3, rounds=max(repeat, 2) + 1), False),
]


def selected_cases(only_overhead: bool) -> list[tuple]:
    """Every case, or only those the overhead table is assembled from."""
    return [case for case in CASES if case[2] or not only_overhead]


def run_all(sizes: dict, repeat: int, progress: Progress, folder: Path, only_overhead: bool = False) -> list[dict]:
    """The selected cases' rows, in table order."""
    rows = []
    for label, measure, _ in selected_cases(only_overhead):
        progress.show(label)
        rows += measure(sizes, repeat, folder)
        progress.step(label)
    return rows


def _fmt_seconds(spread: dict) -> str:
    return f"{spread['median']:.4f} s [{spread['min']:.4f}, {spread['max']:.4f}]"


def _fmt_bytes(count: float) -> str:
    return f"{count / 2**20:.2f} MiB"


def _fmt_bound(bound) -> str:
    return f"{bound:.3g}" if isinstance(bound, float) else str(bound)


def table(rows: list[dict]) -> list[list[str]]:
    """Rows of text cells, the header first."""
    header = ["case", "time (median [min, max])", "ratio", "offline (dealer) / online", "bytes, busiest party (theory)",
              "rounds (theory)", "max error"]
    lines = [header]
    for row in rows:
        if "skipped" in row:
            lines.append([row["name"], "skipped", "", "", "", "", ""])
            continue
        ratio = f"{row['ratio']:.2f}x {row['ratio_to']}"
        if "speedup" in row:
            ratio += f" ({row['speedup']:.0f}x faster)"
        if "floor_seconds" in row:
            ratio += f" ({row['seconds']['median'] / row['floor_seconds']:.1f}x floor)"
        if row.get("latency_floor_seconds"):
            ratio += (f" ({row['network_seconds']:.3f} s in flight; rounds alone "
                      f"{row['latency_floor_seconds']:.3f} s)")
        split = bytes_cell = rounds = error = ""
        if "offline_seconds" in row:
            split = f"{row['offline_seconds']['median']:.3f} / {row['online_seconds']['median']:.3f} s"
        if "bytes_per_party" in row:
            bytes_cell = f"{_fmt_bytes(row['bytes_per_party'])} ({_fmt_bytes(row['bytes_theory'])})"
            rounds = f"{row['rounds']} ({row['rounds_theory']})"
            error = f"{row['max_error']:.2e} (<= {_fmt_bound(row['error_bound'])})"
            if row.get("within_bound") is False:
                error += " EXCEEDED"
        else:
            if "bytes_per_client" in row:
                bytes_cell = f"{_fmt_bytes(row['bytes_per_client'])} per client"
            if "rounds" in row:
                rounds = f"{row['rounds']} ({row['rounds_theory']})"
            if "max_error" in row:
                error = f"{row['max_error']:.2e} (<= {_fmt_bound(row['error_bound'])})"
            elif row["group"] == "ring matmul":
                error = "exact" if row["exact"] else "inexact (float)"
        lines.append([row["name"], _fmt_seconds(row["seconds"]), ratio, split, bytes_cell, rounds, error])
    return lines


def render_markdown(lines: list[list[str]], stamp: dict, mode: str, repeat: int) -> str:
    machine = (f"{stamp['cpu']}, {stamp['cores']} cores, numpy {stamp['numpy']}, "
               f"numba {stamp['numba']}, BLAS {stamp['blas']}")
    intro = f"Measured by `python -m smpc_bench --{mode} --repeat {repeat}` on: {machine}.\n\n"
    return intro + render_markdown_table(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.repeat < 1:
        raise SystemExit("--repeat must be at least 1")
    mode = "quick" if args.quick else "full"
    sizes = chosen_sizes(args, mode)
    try:
        check_fits(sizes, cases=[label for label, _, _ in selected_cases(args.only_overhead)])
    except MemoryError as exc:
        raise SystemExit(f"sizes too large: {exc}") from None
    folder = Path(args.out)
    check_output_folder(folder)
    enabled = {"auto": None, "always": True, "never": False}[args.progress]
    with Progress(total=len(selected_cases(args.only_overhead)), enabled=enabled) as progress:
        rows = run_all(sizes, args.repeat, progress, folder, args.only_overhead)
    stamp = machine_stamp()
    lines = table(rows)
    print(render_text(lines))
    document = {"mode": mode, "repeat": args.repeat, "sizes": sizes, "machine": stamp, "rows": rows}
    (folder / "bench.json").write_text(json.dumps(document, indent=2))
    (folder / "bench.md").write_text(render_markdown(lines, stamp, mode, args.repeat))
    summary = overhead.collect(rows, sizes, mode, args.repeat, stamp)
    written = overhead.write(summary, folder)
    print("\nThe overhead table: median time (ratio to plaintext); PySyft's figures are quoted, not measured")
    print(render_text(overhead.headline(summary)))
    print(overhead.reference_line(summary))
    print(f"machine: {overhead.machine_line(stamp)}")
    plots = [] if args.only_overhead else [folder / "fedavg.png"]
    names = ", ".join(str(p) for p in [folder / "bench.json", folder / "bench.md", *written, *plots])
    print(f"\nwrote {names}", file=sys.stderr)
    return 0
