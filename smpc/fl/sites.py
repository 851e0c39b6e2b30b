"""Each site's own data: loading a site's file, checking that the sites agree, standardising federatedly.

A hospital or bank joins with the rows it holds, from its own file: :func:`load_site` reads a CSV file
(a header row; the label column by name, every other column a numeric feature) or an ``.npz`` file
(arrays ``x`` and ``y``, optionally ``columns``). :func:`check_sites` refuses sites whose columns or
labels do not fit the others, naming the site and the difference. Standardising features needs the
mean and standard deviation over all sites' rows; :func:`federated_standardization` computes them
with secure aggregation, so no site reveals its own statistics: one aggregation of per-site row
counts and feature sums gives the mean, a second of squared deviations from that mean gives the
variance (the two-pass form keeps float precision). Only the global statistics become known.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from smpc.fl.secagg import secure_aggregate
from smpc.net.peer_text import printable

#: the public bound, per element, of what a site's sums may reach in the standardisation's aggregation
DEFAULT_SUM_BOUND = float(2**40)
MAX_COLUMNS = 100_000


@dataclass
class SiteData:
    """One site's rows: features ``x`` (rows, features), integer labels ``y``, the feature ``columns``
    (names, or None when the file has none) and a ``name`` for messages (its file name)."""

    x: np.ndarray
    y: np.ndarray
    columns: tuple[str, ...] | None
    name: str

    def __len__(self) -> int:
        return int(self.y.shape[0])


def load_site(path: str | os.PathLike, *, label: str = "label", name: str | None = None) -> SiteData:
    """A site's rows from its own file: CSV with a header (``label`` names the label column; every other
    column is a feature) or ``.npz`` (``x``, ``y``, optional ``columns``). Raises ``ValueError`` naming the
    file, row and column of anything that is not a finite number or an integer label."""
    path = os.fspath(path)
    name = name or os.path.basename(path)
    if not os.path.isfile(path):
        raise ValueError(f"site {printable(name)}: no such file {printable(path)}")
    if path.endswith(".npz"):
        return _load_npz(path, name)
    if path.endswith(".csv"):
        return _load_csv(path, label, name)
    raise ValueError(f"site {printable(name)}: expected a .csv or .npz file, got {printable(path)}")


def check_sites(sites: Sequence[SiteData], num_classes: int | None = None) -> int:
    """Refuse sites that do not fit together (``ValueError`` naming the site): every site needs rows, the
    same feature count and column names as the first, and integer labels in 0..num_classes-1 (default:
    up to the largest label any site holds). Returns the number of classes."""
    if len(sites) < 1:
        raise ValueError("at least one site is needed")
    first = sites[0]
    for site in sites:
        if len(site) == 0:
            raise ValueError(f"site {printable(site.name)} has no rows")
        if site.x.shape[1:] != first.x.shape[1:]:
            raise ValueError(f"site {printable(site.name)} has {site.x.shape[1]} feature columns where site "
                             f"{printable(first.name)} has {first.x.shape[1]}")
        if site.columns is not None and first.columns is not None and site.columns != first.columns:
            differ = next(i for i, (a, b) in enumerate(zip(site.columns, first.columns)) if a != b)
            raise ValueError(f"site {printable(site.name)}'s column {differ + 1} is {printable(site.columns[differ])} "
                             f"where site {printable(first.name)} has {printable(first.columns[differ])}: the "
                             f"sites' columns do not match")
    largest = max(int(site.y.max()) for site in sites)
    classes = largest + 1 if num_classes is None else num_classes
    if isinstance(classes, bool) or not isinstance(classes, (int, np.integer)) or classes < 2:
        raise ValueError(f"num_classes must be an integer of at least 2, got {num_classes!r}")
    for site in sites:
        low, high = int(site.y.min()), int(site.y.max())
        if low < 0 or high >= classes:
            bad = low if low < 0 else high
            raise ValueError(f"site {printable(site.name)} has label {bad}, outside 0..{classes - 1}: the sites' "
                             f"labels do not match")
    return int(classes)


@dataclass(frozen=True)
class Standardization:
    """Feature mean and standard deviation over every site's training rows, and how they were obtained."""

    mean: np.ndarray
    std: np.ndarray
    rows: int
    how: str

    def apply(self, x: np.ndarray) -> np.ndarray:
        """(x - mean) / std, with constant features left at 0."""
        return (np.asarray(x, dtype=np.float64) - self.mean) / np.where(self.std > 0, self.std, 1.0)


def federated_standardization(sites: Sequence[np.ndarray], *, secure: bool = True,
                              bound: float = DEFAULT_SUM_BOUND, transport: str = "local") -> Standardization:
    """Mean and standard deviation of the features over all sites' rows (``sites``: each site's x),
    from sums alone: with ``secure=True`` by two secure aggregations (:func:`smpc.fl.secure_aggregate`,
    64-bit ring), so no site's own sums are revealed. The first sums [rows, feature sums, sums of
    squares] under the public ``bound`` (``ValueError`` if a site exceeds it: raise it); it gives a first
    mean and a rough scale per feature. The second sums the deviations from that mean and their squares
    in units of the scale, so its public bound follows from the row count and its fixed point refines
    the mean and gives the variance to about 1e-9 of the scale, however large the features' offsets.
    With ``secure=False`` the sums are added in the clear."""
    arrays = [np.asarray(x, dtype=np.float64).reshape(len(x), -1) for x in sites]
    if not arrays or any(a.shape[1] != arrays[0].shape[1] for a in arrays):
        raise ValueError("federated_standardization needs one (rows, features) array per site, same features")
    if len(arrays) < 2 and secure:
        raise ValueError("secure aggregation needs at least 2 sites")
    if not (math.isfinite(bound) and bound > 0):
        raise ValueError(f"bound must be a positive finite number, got {bound!r}")
    totals = _sum([first_sums(a) for a in arrays], secure, bound, transport,
                  "row counts, feature sums and sums of squares")
    rough_mean, scale = rough_scale(totals)
    refined = _sum([second_sums(a, rough_mean, scale) for a in arrays], secure, second_bound(totals), transport,
                   "scaled deviations and their squares")
    how = ("federated: secure aggregation of the sites' row counts, feature sums and sums of squares, then of "
           "their scaled deviations from the global mean (no site's own statistics revealed)" if secure else
           "federated: the sites' row counts, feature sums and squared deviations added in the clear")
    return finish_standardization(totals, refined, rough_mean, scale, how)


# The two sums of :func:`federated_standardization`, step by step, for runtimes that aggregate them
# themselves (the Flower deployment): each site computes first_sums of its rows; the sum of those gives
# rough_scale; each site computes second_sums with it; finish_standardization combines the two sums.
def first_sums(x: np.ndarray) -> np.ndarray:
    """[rows, feature sums, sums of squares] of one site's rows."""
    a = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    return np.concatenate([[len(a)], a.sum(axis=0), (a * a).sum(axis=0)])


def rough_scale(totals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A first mean and a scale per feature from the summed :func:`first_sums` (E[x^2] - mean^2 cancels
    badly: good for a scale only)."""
    features = (len(totals) - 1) // 2
    rows = max(int(round(totals[0])), 1)
    rough_mean = totals[1 : features + 1] / rows
    rough = np.maximum(totals[features + 1 :] / rows - rough_mean**2, 0.0)
    return rough_mean, np.maximum(np.sqrt(rough), np.maximum(np.abs(rough_mean), 1.0) * 2.0**-20)


def second_bound(totals: np.ndarray) -> float:
    """The public bound of the second sums: what the scaled deviations of all rows can reach."""
    return float(max(int(round(totals[0])), 1)) * 2.0**20


def second_sums(x: np.ndarray, rough_mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """[sums of the deviations from the first mean, sums of their squares], in units of the scale."""
    units = (np.asarray(x, dtype=np.float64).reshape(len(x), -1) - rough_mean) / scale
    return np.concatenate([units.sum(axis=0), (units * units).sum(axis=0)])


def finish_standardization(totals: np.ndarray, refined: np.ndarray, rough_mean: np.ndarray, scale: np.ndarray,
                           how: str) -> Standardization:
    """The mean and standard deviation from the two sums (the second refines the mean)."""
    features = len(rough_mean)
    rows = int(round(totals[0]))
    shift = refined[:features] / rows  # the exact mean minus the first one, in units of the scale
    mean = rough_mean + shift * scale
    variance = np.maximum(refined[features:] / rows - shift * shift, 0.0) * scale * scale
    return Standardization(mean, np.sqrt(variance), rows, how)


def _sum(vectors: list[np.ndarray], secure: bool, bound: float, transport: str, what: str) -> np.ndarray:
    for i, v in enumerate(vectors):
        if not np.isfinite(v).all() or np.abs(v).max(initial=0.0) > bound:
            raise ValueError(f"site {i}'s {what} exceed the public bound {bound:g} of the standardisation's "
                             f"aggregation: pass a larger bound")
    if not secure:
        return np.sum(vectors, axis=0)
    return secure_aggregate(vectors, clip=bound, ring_bits=64, transport=transport)


def _load_npz(path: str, name: str) -> SiteData:
    try:
        with np.load(path, allow_pickle=False) as archive:
            if "x" not in archive or "y" not in archive:
                raise ValueError(f"site {printable(name)}: the .npz file needs arrays 'x' and 'y'")
            x, y = archive["x"], archive["y"]
            columns = tuple(str(c) for c in archive["columns"]) if "columns" in archive else None
    except (OSError, EOFError) as exc:
        raise ValueError(f"site {printable(name)}: not a readable .npz file ({type(exc).__name__})") from None
    except ValueError as exc:
        if str(exc).startswith("site "):
            raise
        raise ValueError(f"site {printable(name)}: not a readable .npz file of plain arrays") from None
    if x.dtype.kind not in "iuf" or x.ndim != 2:
        raise ValueError(f"site {printable(name)}: x must be a 2-d numeric array, got {x.dtype}{list(x.shape)}")
    if y.dtype.kind not in "iu" or y.shape != (x.shape[0],):
        raise ValueError(f"site {printable(name)}: y must be {x.shape[0]} integer labels, got {y.dtype}{list(y.shape)}")
    if columns is not None and len(columns) != x.shape[1]:
        raise ValueError(f"site {printable(name)}: {len(columns)} column names for {x.shape[1]} features")
    x = x.astype(np.float64)
    if not np.isfinite(x).all():
        row, column = np.argwhere(~np.isfinite(x))[0]
        raise ValueError(f"site {printable(name)}: row {row + 1}, column {column + 1} is not a finite number")
    return SiteData(x, y.astype(np.int64), columns, name)


def _load_csv(path: str, label: str, name: str) -> SiteData:
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if not header:
            raise ValueError(f"site {printable(name)}: the CSV file is empty (a header row is needed)")
        if len(header) > MAX_COLUMNS:
            raise ValueError(f"site {printable(name)}: {len(header)} columns exceed the limit of {MAX_COLUMNS}")
        header = [h.strip() for h in header]
        if label not in header:
            raise ValueError(f"site {printable(name)}: no label column {printable(label)} in the header")
        if header.count(label) > 1:
            raise ValueError(f"site {printable(name)}: the label column {printable(label)} appears twice")
        where = header.index(label)
        columns = tuple(h for i, h in enumerate(header) if i != where)
        xs, ys = [], []
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise ValueError(f"site {printable(name)}: line {line} has {len(row)} fields, the header {len(header)}")
            ys.append(_label(row[where], name, line))
            xs.append([_number(cell, name, line, header[i]) for i, cell in enumerate(row) if i != where])
    if not ys:
        raise ValueError(f"site {printable(name)}: the CSV file has a header but no rows")
    return SiteData(np.array(xs, dtype=np.float64), np.array(ys, dtype=np.int64), columns, name)


def _number(cell: str, name: str, line: int, column: str) -> float:
    try:
        value = float(cell)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ValueError(f"site {printable(name)}: line {line}, column {printable(column)} is not a finite number")
    return value


def _label(cell: str, name: str, line: int) -> int:
    try:
        return int(cell.strip())
    except ValueError:
        raise ValueError(f"site {printable(name)}: line {line}'s label is not an integer") from None
