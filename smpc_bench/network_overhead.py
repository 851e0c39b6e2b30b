"""The overhead table per network: the fixed-point matmul and ResNet-18 inference of the overhead table, for every
protocol of the networks group, on loopback, the LAN preset and the WAN preset.

``python -m smpc_bench.network_overhead [--matmul N] [--image S] [--repeat R] [--out DIR]``

Every cell is one program from sharing the inputs (the model too) to revealing the result, under the local
transport's network model (:mod:`smpc.net.network`). A protocol whose source can fetch its material ahead runs
twice: on demand (the dealer's replies on the critical path) and with ``preprocessing="ahead"``, whose offline
phase (the planning pass) and online phase are reported apart. Plaintext numpy runs no network, so its time is the
row's reference on every network. A cell whose preprocessed material would not fit in memory (the cost model's
dealer bytes, all held at once) is skipped with that reason. Gradient aggregation is not here: its clients
upload their shares outside ``smpc.run``, so the network model does not apply to it.

Writes ``network_overhead.json`` and ``network_overhead.md`` into ``--out`` (default ``results``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import smpc
from smpc.mpc import registry
from smpc.net.allocator import restart_tuned
from smpc_bench.cases import _mpc_matmul_program, _theory as _matmul_theory
from smpc_bench.machine import machine_stamp
from smpc_bench.memory import GIB, available_bytes
from smpc_bench.network_rows import NETWORKS
from smpc_bench.nn_rows import _forward_theory, inference_program, realistic_resnet18
from smpc_bench.text_table import render_markdown_table
from smpc_bench.timing import spread, timed

SCHEMA = "smpc.network_overhead/1"
#: memory a ResNet-18 run holds besides the dealer's material (weights, shares, activations; all parties)
_WORKING_BYTES = 4 * GIB


def _cell(program, protocol: str, parties: int, network, preprocessing: str | None, repeat: int,
          result_of) -> dict:
    """Median/min/max walls (the slowest party), the planning pass's and the online phase's, and the last result."""
    totals, offline, online, last = [], [], [], None
    for _ in range(repeat):
        start = time.perf_counter()
        last = smpc.run(program, parties=parties, protocol=protocol, network=network, preprocessing=preprocessing,
                        timeout=1200)
        totals.append(time.perf_counter() - start)
        offline.append(max(stats["preprocessing_seconds"] for _, stats in last))
        online.append(max(stats["wall"] for _, stats in last))
    cell = {"seconds": spread(totals), "online_seconds": spread(online), "rounds": max(s["rounds"] for _, s in last),
            "bytes_per_party": max(s["bytes_sent"] for _, s in last), "result": result_of(last)}
    if preprocessing:
        cell["offline_seconds"] = spread(offline)
    return cell


def network_overhead(matmul: int, image: int, repeat: int, networks=NETWORKS) -> dict:
    """The document: per operation, the plaintext reference and a cell per (protocol, network, mode);
    ``networks``: (label, :class:`smpc.Network` or None) pairs."""
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((matmul, matmul)), rng.standard_normal((matmul, matmul))
    model = realistic_resnet18()
    picture = np.random.default_rng(2).standard_normal((1, 3, image, image))
    operations = {
        "matmul": {"label": f"matrix multiplication {matmul}x{matmul}", "plain": lambda: x @ y,
                   "program": _mpc_matmul_program(x, y), "result": lambda res: res[0][0], "bound": 0.01,
                   "theory": lambda protocol, parties: _matmul_theory(protocol, parties, matmul)},
        "resnet18": {"label": f"ResNet-18 inference, 1x3x{image}x{image}", "plain": lambda: model(picture),
                     "program": inference_program(model, picture), "result": lambda res: res[1][0], "bound": 0.01,
                     "theory": lambda protocol, parties: _forward_theory(model, picture.shape, protocol, parties)},
    }
    available = available_bytes()
    smpc.run(_mpc_matmul_program(x[:8, :8], y[:8, :8]), parties=2)  # compile kernels first
    rows = []
    for name, op in operations.items():
        plain, reference = timed(op["plain"], repeat, warmup=True)
        row = {"operation": name, "label": op["label"], "plaintext_seconds": plain, "cells": []}
        for protocol, parties in registry.bench_setups(group="networks"):
            spec = registry.get(protocol)
            theory = op["theory"](protocol, parties)
            modes = [None] + (["ahead"] if spec.kind(None).preprocessing else [])
            for network_label, network in networks:
                for mode in modes:
                    column = {"protocol": protocol, "parties": parties, "label": spec.label,
                              "network": network_label, "preprocessing": mode, "rounds_theory": theory["rounds"],
                              "bytes_theory": theory["bytes"], "dealer_bytes_theory": theory["dealer_bytes"]}
                    held = theory["dealer_bytes"] + _WORKING_BYTES
                    if mode and available is not None and held > available:
                        column["skipped"] = (f"preprocessing ahead would hold about {held / GIB:.1f} GiB of dealer "
                                             f"material and working memory; {available / GIB:.1f} GiB available")
                        row["cells"].append(column)
                        continue
                    cell = _cell(op["program"], protocol, parties, network, mode, repeat, op["result"])
                    error = float(np.max(np.abs(cell.pop("result") - reference)))
                    column.update(cell, max_error=error, error_bound=op["bound"], within_bound=error <= op["bound"],
                                  ratio=cell["online_seconds"]["median"] / plain["median"])
                    row["cells"].append(column)
        rows.append(row)
    return {"schema": SCHEMA, "sizes": {"matmul": matmul, "image": image}, "repeat": repeat,
            "machine": machine_stamp(), "networks": {label: str(net) if net else "no delay" for label, net in networks},
            "rows": rows}


def table(document: dict) -> list[list[str]]:
    """Text cells: one line per operation and setup, a column per network (time, and for ahead offline / online)."""
    networks = list(document["networks"])
    lines = [["operation", "setup", *networks]]
    for row in document["rows"]:
        lines.append([row["label"], "plaintext numpy",
                      *[f"{row['plaintext_seconds']['median']:.3f} s"] * len(networks)])
        setups: dict[tuple, dict] = {}
        for cell in row["cells"]:
            setups.setdefault((cell["label"], cell["parties"], cell["preprocessing"]), {})[cell["network"]] = cell
        for (label, parties, mode), by_network in setups.items():
            what = f"{parties}-party {label}" + (", preprocessed ahead (offline / online)" if mode else ", on demand")
            lines.append(["", what, *[_text(by_network.get(net)) for net in networks]])
    return lines


def _text(cell: dict | None) -> str:
    if cell is None:
        return ""
    if "skipped" in cell:
        return f"skipped: {cell['skipped']}"
    text = (f"{cell['offline_seconds']['median']:.2f} / {cell['online_seconds']['median']:.2f} s"
            if "offline_seconds" in cell else f"{cell['online_seconds']['median']:.2f} s")
    text += f" ({cell['ratio']:.0f}x, {cell['rounds']} rounds)"
    return text + ("" if cell["within_bound"] else " ERROR EXCEEDED")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m smpc_bench.network_overhead", description=__doc__.split("\n")[0])
    parser.add_argument("--matmul", type=int, default=1000, help="side of the matrix product (default 1000)")
    parser.add_argument("--image", type=int, default=224, help="ResNet-18's input side in pixels (default 224)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--out", default="results")
    args = parser.parse_args(argv)
    if args.matmul < 1 or args.image < 32 or args.repeat < 1:
        raise SystemExit("--matmul and --repeat must be at least 1, --image at least 32")
    restart_tuned()
    document = network_overhead(args.matmul, args.image, args.repeat)
    folder = Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)
    lines = table(document)
    (folder / "network_overhead.json").write_text(json.dumps(document, indent=2))
    (folder / "network_overhead.md").write_text(render_markdown_table(lines) + "\n")
    print(render_markdown_table(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
