"""What catching a cheater costs: spdz2k against the semi-honest additive protocol, in the same run.

``python -m smpc_bench.spdz2k_rows [--matmul N] [--parties P] [--repeat R]``

The fixed-point N x N matmul of the overhead table, from sharing the inputs to the revealed product (spdz2k's reveal
includes its MAC check), under the additive protocol and under spdz2k with the same party count: wall time (the
slowest party), bytes sent by the busiest party and rounds next to each protocol's theory, the dealer's bytes, the
error against numpy, and spdz2k's time as a multiple of the additive protocol's. ResNet-18 rows come once
comparisons run under spdz2k.
"""

from __future__ import annotations

import argparse

import numpy as np

import smpc
from smpc.net.allocator import restart_tuned
from smpc_bench.cases import _mpc_matmul_program, _theory
from smpc_bench.machine import machine_stamp
from smpc_bench.nn_rows import _forward_theory, inference_program, realistic_resnet18
from smpc_bench.text_table import render_markdown_table
from smpc_bench.timing import spread

PROTOCOLS = ("additive", "spdz2k")


def spdz2k_rows(n: int, parties: int, repeat: int) -> list[dict]:
    """One row per protocol: the fixed-point n x n matmul with its reveal; spdz2k's ratio to additive."""
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((n, n)), rng.standard_normal((n, n))
    reference = x @ y
    rows = []
    for protocol in PROTOCOLS:
        smpc.run(_mpc_matmul_program(x[:8, :8], y[:8, :8]), parties=parties, protocol=protocol)  # compile kernels
        walls, last = [], None
        for _ in range(repeat):
            last = smpc.launch(_mpc_matmul_program(x, y), parties=parties, protocol=protocol)
            walls.append(max(stats["wall"] for _, stats in last.results))
        theory = _theory(protocol, parties, n)
        error = float(np.max(np.abs(last.results[0][0] - reference)))
        rows.append({"group": "spdz2k", "protocol": protocol, "parties": parties, "n": n,
                     "seconds": spread(walls),
                     "bytes_per_party": max(stats["bytes"] for _, stats in last.results),
                     "bytes_theory": theory["bytes"],
                     "rounds": max(stats["rounds"] for _, stats in last.results), "rounds_theory": theory["rounds"],
                     "dealer_bytes": last.dealer_stats["offline_bytes_sent"], "dealer_bytes_theory":
                     theory["dealer_bytes"], "max_error": error})
    base = rows[0]["seconds"]["median"]
    for row in rows:
        row["ratio"] = row["seconds"]["median"] / base
    return rows


def resnet_rows(image: int, parties: int, repeat: int) -> list[dict]:
    """ResNet-18 inference (one 3 x image x image image, 1000 classes; the model party 0's, the image party
    1's) under additive and spdz2k: wall time from sharing the model to the logits revealed to party 1, bytes and
    rounds of the forward pass against the theory, and the logits' error against plaintext."""
    model = realistic_resnet18()
    x = np.random.default_rng(2).standard_normal((1, 3, image, image))
    reference = model(x)
    rows = []
    for protocol in PROTOCOLS:
        walls, last = [], None
        for _ in range(repeat):
            last = smpc.launch(inference_program(model, x), parties=parties, protocol=protocol, timeout=1200)
            walls.append(max(stats["wall"] for _, stats in last.results))
        theory = _forward_theory(model, x.shape, protocol, parties)
        logits = last.results[1][0]
        rows.append({"group": "spdz2k", "case": "resnet", "protocol": protocol, "parties": parties, "n": image,
                     "seconds": spread(walls), "bytes_per_party": max(stats["bytes"] for _, stats in last.results),
                     "bytes_theory": theory["bytes"], "rounds": max(stats["rounds"] for _, stats in last.results),
                     "rounds_theory": theory["rounds"], "dealer_bytes": last.dealer_stats["offline_bytes_sent"],
                     "dealer_bytes_theory": theory["dealer_bytes"],
                     "max_error": float(np.max(np.abs(logits - reference)))})
    base = rows[0]["seconds"]["median"]
    for row in rows:
        row["ratio"] = row["seconds"]["median"] / base
    return rows


def table(rows: list[dict]) -> list[list[str]]:
    """The rows as table lines, the header first."""
    cells = [{"case": (f"ResNet-18 {row['n']}x{row['n']}" if row.get("case") == "resnet" else
                       f"matmul {row['n']}x{row['n']}") + f", {row['parties']}-party {row['protocol']}",
             "time (median [min, max])": f"{row['seconds']['median']:.3f} s [{row['seconds']['min']:.3f}, "
                                         f"{row['seconds']['max']:.3f}]",
             "ratio to additive": f"{row['ratio']:.2f}x",
             "bytes, busiest party (theory)": f"{row['bytes_per_party'] / 2**20:.1f} MiB "
                                              f"({row['bytes_theory'] / 2**20:.1f} MiB)",
             "rounds (theory)": f"{row['rounds']} ({row['rounds_theory']})",
             "dealer bytes, whole run (theory; ResNet-18: after the inputs)": f"{row['dealer_bytes'] / 2**20:.1f} MiB "
                                      f"({row['dealer_bytes_theory'] / 2**20:.1f} MiB)",
             "max error": f"{row['max_error']:.2e}"} for row in rows]
    return [list(cells[0])] + [list(cell.values()) for cell in cells]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--matmul", type=int, default=1000, help="the matmul's size N (default 1000)")
    parser.add_argument("--image", type=int, default=0, help="also ResNet-18 on an image of this size (e.g. 224)")
    parser.add_argument("--parties", type=int, default=2, help="parties (default 2)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per cell (default 3)")
    args = parser.parse_args(argv)
    if args.matmul < 1 or args.parties < 2 or args.repeat < 1:
        parser.error("--matmul and --repeat must be >= 1, --parties >= 2")
    rows = spdz2k_rows(args.matmul, args.parties, args.repeat)
    if args.image:
        rows += resnet_rows(args.image, args.parties, args.repeat)
    stamp = machine_stamp()
    print(f"Measured on: {stamp['cpu']}, {stamp['cores']} cores, numpy {stamp['numpy']}, numba {stamp['numba']}")
    print(render_markdown_table(table(rows)))
    return 0


if __name__ == "__main__":
    restart_tuned()
    raise SystemExit(main())
