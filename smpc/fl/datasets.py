"""Data sets split across federated clients: IID, Dirichlet non-IID (by class proportions) and by label shards.

Only the data sets scikit-learn ships are loaded by name (digits, breast cancer; no downloads); any
(x, y) arrays work too. Features are standardised with the training set's statistics. Sites that hold
their own rows come in through :meth:`FederatedDataset.from_sites` (standardised federatedly, see
:mod:`smpc.fl.sites`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from smpc.fl.sites import (
    DEFAULT_SUM_BOUND,
    SiteData,
    Standardization,
    check_sites,
    federated_standardization,
    load_site,
)

PARTITIONS = ("iid", "dirichlet", "label")
SKLEARN_SETS = ("digits", "breast_cancer")


@dataclass
class ClientData:
    """One client's private training rows."""

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return int(self.y.shape[0])


class FederatedDataset:
    """A classification data set whose training rows are split across ``num_clients`` clients.

    ``partition``:
      * ``"iid"``: a uniform random split into near-equal parts;
      * ``"dirichlet"``: for every class, the clients' shares of its rows are drawn from
        Dirichlet(``alpha``) (Hsu, Qi and Brown 2019); small alpha gives skewed label mixes;
      * ``"label"``: rows sorted by label, cut into ``labels_per_client * num_clients`` shards, each
        client getting ``labels_per_client`` shards (McMahan et al., AISTATS 2017, section 3).
    Every client gets at least one row. ``test`` keeps ``test_fraction`` of the rows for evaluation.
    """

    def __init__(self, x, y, num_clients: int, partition: str = "iid", *, alpha: float = 0.5,
                 labels_per_client: int = 2, test_fraction: float = 0.2, seed: int = 0, standardize: bool = True):
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y)
        if x.ndim < 2 or y.ndim != 1 or x.shape[0] != y.shape[0]:
            raise ValueError(f"x must be (rows, features...) and y (rows,) with the same rows, got {x.shape} "
                             f"and {y.shape}")
        if y.dtype.kind not in "iu":
            raise ValueError(f"labels must be integers, got {y.dtype}")
        if partition not in PARTITIONS:
            raise ValueError(f"unknown partition {partition!r}; choose one of {PARTITIONS}")
        if not 0 < test_fraction < 1:
            raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
        rng = np.random.default_rng(seed)
        order = rng.permutation(x.shape[0])
        cut = int(round(x.shape[0] * (1 - test_fraction)))
        train, test = order[:cut], order[cut:]
        if isinstance(num_clients, bool) or not isinstance(num_clients, (int, np.integer)) \
                or not 1 <= num_clients <= len(train):
            raise ValueError(f"num_clients must be an integer in 1..{len(train)} (the training rows), "
                             f"got {num_clients!r}")
        self.standardization = None
        if standardize:
            mean, std = x[train].mean(axis=0), x[train].std(axis=0)
            self.standardization = Standardization(mean, std, len(train), "pooled: the training rows' own "
                                                   "statistics, computed where all rows are (a simulation)")
            x = self.standardization.apply(x)
        self.num_classes = int(y.max()) + 1
        self.partition = partition
        self.test = ClientData(x[test], y[test])
        parts = _split(y[train], int(num_clients), partition, alpha, labels_per_client, rng)
        self.clients = [ClientData(x[train[p]], y[train[p]]) for p in parts]

    @classmethod
    def from_sklearn(cls, name: str, num_clients: int, partition: str = "iid", **options) -> "FederatedDataset":
        """``"digits"`` (1797 8x8 images, 10 classes) or ``"breast_cancer"`` (569 rows, 30 features, 2 classes)."""
        from sklearn import datasets

        if name not in SKLEARN_SETS:
            raise ValueError(f"unknown data set {name!r}; choose one of {SKLEARN_SETS} (no downloads)")
        loader = datasets.load_digits if name == "digits" else datasets.load_breast_cancer
        x, y = loader(return_X_y=True)
        return cls(x, y, num_clients, partition, **options)

    @classmethod
    def from_sites(cls, sites: Sequence[SiteData | str | os.PathLike], *, num_classes: int | None = None,
                   test_fraction: float = 0.2, standardize: bool = True, secure: bool = True,
                   bound: float = DEFAULT_SUM_BOUND, seed: int = 0) -> "FederatedDataset":
        """One client per site, each with its own rows (a :class:`~smpc.fl.sites.SiteData`, or the path of its
        CSV or .npz file, :func:`~smpc.fl.sites.load_site`). The sites must agree on columns and labels
        (:func:`~smpc.fl.sites.check_sites`: ``ValueError`` naming the site that does not). Each site keeps
        ``test_fraction`` of its own rows for evaluation; ``test`` is their union (a simulation's view: in a
        deployment each site evaluates on its own). ``standardize``: with the mean and standard deviation
        over all sites' training rows, computed federatedly (secure aggregation of sums unless
        ``secure=False``; ``standardization.how`` says which); no row leaves its site for it.
        """
        loaded = [site if isinstance(site, SiteData) else load_site(site) for site in sites]
        classes = check_sites(loaded, num_classes)
        if not 0 < test_fraction < 1:
            raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
        rng = np.random.default_rng(seed)
        trains, tests = [], []
        for site in loaded:
            order = rng.permutation(len(site))
            cut = max(1, int(round(len(site) * (1 - test_fraction))))
            trains.append(ClientData(site.x[order[:cut]], site.y[order[:cut]]))
            tests.append(ClientData(site.x[order[cut:]], site.y[order[cut:]]))
        data = cls.__new__(cls)
        data.num_classes, data.partition, data.standardization = classes, "sites", None
        if standardize:
            data.standardization = federated_standardization([c.x for c in trains], secure=secure and len(trains) > 1,
                                                             bound=bound)
            for part in trains + tests:
                part.x = data.standardization.apply(part.x)
        data.clients = trains
        data.test = ClientData(np.concatenate([t.x for t in tests]), np.concatenate([t.y for t in tests]))
        return data

    @property
    def num_clients(self) -> int:
        return len(self.clients)

    @property
    def num_features(self) -> int:
        return int(np.prod(self.test.x.shape[1:]))

    @property
    def sizes(self) -> list[int]:
        return [len(c) for c in self.clients]

    def label_histogram(self) -> np.ndarray:
        """(clients, classes) counts: how skewed the split is."""
        return np.stack([np.bincount(c.y, minlength=self.num_classes) for c in self.clients])


def _split(labels: np.ndarray, n: int, partition: str, alpha: float, labels_per_client: int,
           rng: np.random.Generator) -> list[np.ndarray]:
    """Row indices (into ``labels``) of each client."""
    rows = np.arange(labels.shape[0])
    if partition == "iid":
        return [np.sort(p) for p in np.array_split(rng.permutation(rows), n)]
    if partition == "label":
        if isinstance(labels_per_client, bool) or not isinstance(labels_per_client, (int, np.integer)) \
                or labels_per_client < 1 or labels_per_client * n > len(rows):
            raise ValueError(f"labels_per_client must be a positive integer with labels_per_client * num_clients "
                             f"<= {len(rows)} rows, got {labels_per_client!r}")
        by_label = rows[np.argsort(labels, kind="stable")]
        shards = np.array_split(by_label, labels_per_client * n)
        assignment = rng.permutation(len(shards)).reshape(n, labels_per_client)
        return [np.sort(np.concatenate([shards[s] for s in row])) for row in assignment]
    if not alpha > 0:
        raise ValueError(f"the Dirichlet alpha must be positive, got {alpha!r}")
    parts: list[list[int]] = [[] for _ in range(n)]
    for label in np.unique(labels):
        members = rng.permutation(rows[labels == label])
        shares = rng.dirichlet(np.full(n, float(alpha)))
        cuts = (np.cumsum(shares)[:-1] * len(members)).astype(int)
        for client, chunk in enumerate(np.split(members, cuts)):
            parts[client].extend(chunk.tolist())
    _give_everyone_a_row(parts, rng)
    return [np.sort(np.array(p, dtype=np.int64)) for p in parts]


def _give_everyone_a_row(parts: list[list[int]], rng: np.random.Generator) -> None:
    """Move single rows from the largest clients to empty ones (very small alpha can leave some empty)."""
    for empty in [i for i, p in enumerate(parts) if not p]:
        donor = max(range(len(parts)), key=lambda i: len(parts[i]))
        parts[empty].append(parts[donor].pop(int(rng.integers(len(parts[donor])))))


@dataclass
class ServerData:
    """What a deployed server knows of a federation's data: how many sites, a public typical row count
    (it scales the weights that ride along the sum; the sites' own counts stay private), its own held-out
    ``test`` rows and the number of classes. Stands in for a :class:`FederatedDataset` where the rows live
    at the sites (:class:`smpc.fl.flower.FlowerFedAvg` in a deployment)."""

    num_clients: int
    typical_rows: float
    test: ClientData
    num_classes: int

    @property
    def sizes(self) -> list[float]:
        """The typical row count for every site (the server does not know the sites' own)."""
        return [float(self.typical_rows)] * self.num_clients

    @property
    def num_features(self) -> int:
        return int(np.prod(self.test.x.shape[1:]))
