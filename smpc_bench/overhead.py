"""The overhead table: what privacy costs for a matrix product, ResNet-18 inference and gradient aggregation,
plaintext against DP against MPC, measured in one run next to the figures quoted for PySyft.

The cells are bench rows tagged ``"cell": [operation, column]`` by :mod:`smpc_bench.cases`,
:mod:`smpc_bench.nn_rows`, :mod:`smpc_bench.fl_rows` and :mod:`smpc_bench.dp_rows`; this module picks them out,
computes every cell's ratio to its row's plaintext cell and writes ``overhead.json``, ``overhead.md`` and
``overhead.png``.
"""

from __future__ import annotations

import json
from pathlib import Path

from smpc_bench.dp_rows import DELTA, EPSILON
from smpc_bench.text_table import render_markdown_table
from smpc.mpc import registry

SCHEMA = "smpc.overhead/1"
OPERATIONS = {
    "matmul": "matrix multiplication {matmul}x{matmul}",
    "resnet18": "ResNet-18 inference, 1x3x{image}x{image}",
    "aggregation": "gradient aggregation, {clients} clients x {parameters:,} parameters",
}
# the bench protocols and those that join the table only (spdz2k: its matmul and ResNet-18 cells)
PROTOCOL_COLUMNS = tuple(name for name, _ in registry.bench_setups(group="overhead"))
COLUMNS = {
    "plaintext": "plaintext",
    "dp": f"DP (epsilon {EPSILON:g}, delta {DELTA:g})",
    **{name: f"{parties}-party {registry.get(name).label}"
       for name, parties in registry.bench_setups(group="overhead")},
    "secagg": "secure aggregation",
}
MPC_COLUMNS = (*PROTOCOL_COLUMNS, "secagg")
# PySyft's figures as quoted in the project's issue (times on an unnamed machine); not measured by us
QUOTED_PYSYFT = {
    "matmul": {"plaintext": 0.05, "dp": 0.07, "mpc": 52.0},
    "resnet18": {"plaintext": 0.15, "dp": 0.18, "mpc": 180.0},
    "aggregation": {"plaintext": 0.01, "dp": 0.02, "mpc": 8.0},
}
_CELL_KEYS = ("name", "seconds", "offline_seconds", "online_seconds", "bytes_per_party", "bytes_theory",
              "bytes_per_client", "rounds", "rounds_theory", "max_error", "error_bound", "within_bound",
              "error_against", "sigma", "epsilon", "delta", "protects", "argmax_kept", "phases")


def collect(rows: list[dict], sizes: dict, mode: str, repeat: int, stamp: dict) -> dict:
    """The overhead document from the tagged bench rows: one entry per operation, one cell per column."""
    cells: dict[str, dict[str, dict]] = {op: {} for op in OPERATIONS}
    references: dict[str, dict] = {}
    for row in rows:
        tag = row.get("cell")
        if not tag:
            continue
        operation, column = tag
        picked = {key: row[key] for key in _CELL_KEYS if key in row}
        if column in COLUMNS:
            cells[operation][column] = picked
        else:  # e.g. PyTorch's forward pass: a reference, not a column
            references[column] = picked
    document_rows = []
    for operation, template in OPERATIONS.items():
        row_cells = cells[operation]
        plain = row_cells.get("plaintext")
        if plain is None:
            raise ValueError(f"the bench produced no plaintext cell for {operation}")
        plain.update(max_error=0.0, error_bound=0.0, within_bound=True, error_against="itself")
        for column, cell in row_cells.items():
            cell["ratio"] = cell["seconds"]["median"] / plain["seconds"]["median"]
            if column == "secagg":  # every round of Bonawitz et al. needs this round's fresh keys or inputs
                cell.setdefault("offline_seconds", {"median": 0.0, "min": 0.0, "max": 0.0})
                cell.setdefault("online_seconds", cell["seconds"])
            elif column in PROTOCOL_COLUMNS and operation != "aggregation":
                cell.setdefault("phases", "offline: the correlated randomness (a dealer's triples and truncation "
                                          "pairs; none for a protocol without a dealer); online: the parties' time "
                                          "outside waiting for or expanding it")
        entry = {"operation": operation, "label": template.format(matmul=sizes["mpc"], **sizes), "cells": row_cells,
                 "quoted_pysyft": QUOTED_PYSYFT[operation]}
        if operation == "resnet18" and "pytorch" in references:
            reference = references["pytorch"]
            reference["ratio"] = reference["seconds"]["median"] / plain["seconds"]["median"]
            entry["reference_pytorch"] = reference
        document_rows.append(entry)
    return {"schema": SCHEMA, "mode": mode, "repeat": repeat, "sizes": sizes, "machine": stamp,
            "epsilon": EPSILON, "delta": DELTA, "columns": COLUMNS, "rows": document_rows}


def _seconds(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.1f} s"


def _ratio(ratio: float) -> str:
    return f"{ratio:.2f}x" if ratio < 10 else f"{ratio:.0f}x"


def headline(document: dict) -> list[list[str]]:
    """The table as text cells: one line per operation, each cell 'time (ratio to plaintext)', then PySyft's."""
    header = ["operation"] + list(document["columns"].values()) + ["PySyft, quoted: plaintext / DP / MPC"]
    lines = [header]
    for entry in document["rows"]:
        line = [entry["label"]]
        for column in document["columns"]:
            cell = entry["cells"].get(column)
            line.append("n/a" if cell is None else f"{_seconds(cell['seconds']['median'])} ({_ratio(cell['ratio'])})")
        quoted = entry["quoted_pysyft"]
        line.append(" / ".join(_seconds(quoted[k]) for k in ("plaintext", "dp", "mpc"))
                    + f" ({_ratio(quoted['mpc'] / quoted['plaintext'])} MPC)")
        lines.append(line)
    return lines


def details(document: dict) -> list[list[str]]:
    """Every measured cell with its spread, offline/online split, bytes, rounds and error against its bound."""
    lines = [["operation", "column", "time (median [min, max])", "ratio", "offline / online", "bytes",
              "rounds (theory)", "max error (bound)"]]
    for entry in document["rows"]:
        for column, cell in entry["cells"].items():
            s = cell["seconds"]
            split = ""
            if "online_seconds" in cell:
                split = f"{cell['offline_seconds']['median']:.3f} / {cell['online_seconds']['median']:.3f} s"
            if "bytes_per_party" in cell:
                size = f"{cell['bytes_per_party'] / 2**20:.2f} MiB per party"
            elif "bytes_per_client" in cell and column == "secagg":
                size = f"{cell['bytes_per_client'] / 2**20:.2f} MiB per client"
            else:
                size = ""
            rounds = f"{cell['rounds']} ({cell['rounds_theory']})" if "rounds" in cell else ""
            error = f"{cell['max_error']:.2e} (<= {cell['error_bound']:.2e})"
            if column == "dp":
                error += f", sigma {cell['sigma']:.3g}"
            lines.append([entry["operation"], document["columns"][column],
                          f"{s['median']:.4f} s [{s['min']:.4f}, {s['max']:.4f}]", _ratio(cell["ratio"]), split, size,
                          rounds, error])
    return lines


def machine_line(stamp: dict) -> str:
    return (f"{stamp['cpu']}, {stamp['cores']} cores, {stamp.get('memory_gib')} GiB, numpy {stamp['numpy']}, "
            f"numba {stamp['numba']}, BLAS {stamp['blas']}")


def reference_line(document: dict) -> str:
    """PyTorch's forward pass of the same ResNet-18, when it was measured (a reference, not a column)."""
    for entry in document["rows"]:
        reference = entry.get("reference_pytorch")
        if reference:
            return (f"Reference: PyTorch's CPU forward pass of the same ResNet-18 took "
                    f"{_seconds(reference['seconds']['median'])} ({_ratio(reference['ratio'])} the plaintext cell).")
    return "Reference: PyTorch is not installed, so its ResNet-18 forward pass was not measured."


def render_markdown(document: dict) -> str:
    """``overhead.md``: the headline table, the PyTorch reference, the cell details and the machine stamp."""
    return (f"Measured by `python -m smpc_bench --{document['mode']} --repeat {document['repeat']}` on: "
            f"{machine_line(document['machine'])}. Each cell: median time (ratio to the plaintext cell). "
            "PySyft's figures are quoted, not measured here.\n\n"
            + render_markdown_table(headline(document)) + "\n\n" + reference_line(document) + "\n\n"
            + render_markdown_table(details(document)) + "\n")


def plot(document: dict, path: Path) -> None:
    """A log-scale bar chart of every cell's ratio to plaintext, one bar per column, PySyft's quoted ratios hatched."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    columns = list(document["columns"])
    series = [(COLUMNS[c], [e["cells"].get(c, {}).get("ratio") for e in document["rows"]], {}) for c in columns]
    for key, label in (("dp", "PySyft DP (quoted)"), ("mpc", "PySyft MPC (quoted)")):
        ratios = [e["quoted_pysyft"][key] / e["quoted_pysyft"]["plaintext"] for e in document["rows"]]
        series.append((label, ratios, {"hatch": "//", "edgecolor": "black", "color": "lightgrey" if key == "dp"
                                       else "darkgrey"}))
    fig, axis = plt.subplots(figsize=(11, 4.2))
    width = 0.8 / len(series)
    for i, (label, ratios, style) in enumerate(series):
        xs = [j + (i - (len(series) - 1) / 2) * width for j, r in enumerate(ratios) if r is not None]
        heights = [r for r in ratios if r is not None]
        bars = axis.bar(xs, heights, width, label=label, **style)
        for bar, value in zip(bars, heights):
            axis.annotate(_ratio(value), (bar.get_x() + bar.get_width() / 2, value), ha="center", va="bottom",
                          fontsize=6, rotation=90, xytext=(0, 2), textcoords="offset points")
    axis.set_yscale("log")
    highest = max(r for _, ratios, _ in series for r in ratios if r is not None)
    axis.set_ylim(0.5, highest * 6)
    axis.axhline(1.0, color="black", linewidth=0.6)
    axis.set_xticks(range(len(document["rows"])), [e["label"] for e in document["rows"]], fontsize=8)
    axis.set_ylabel("time / plaintext time (log)")
    axis.set_title(f"What privacy costs with smpc ({document['machine']['cores']} cores, "
                   f"--{document['mode']})", fontsize=10)
    axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(document: dict, folder: Path) -> list[Path]:
    """Write ``overhead.json``, ``overhead.md`` and ``overhead.png`` into ``folder``; return their paths."""
    paths = [folder / "overhead.json", folder / "overhead.md", folder / "overhead.png"]
    paths[0].write_text(json.dumps(document, indent=2))
    paths[1].write_text(render_markdown(document))
    plot(document, paths[2])
    return paths
