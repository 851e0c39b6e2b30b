"""``run_simulation``: smpc's FedAvg with secure aggregation on Flower's simulation engine (Ray)."""

from __future__ import annotations

import logging
import tempfile
import time
from typing import Callable, Sequence

import numpy as np

from flwr.app import ConfigRecord, Context
from flwr.serverapp import Grid, ServerApp
from flwr.simulation import run_simulation as flower_run_simulation

from smpc.fl.datasets import ClientData, FederatedDataset
from smpc.fl.fedavg import DPConfig, FedAvg, History
from smpc.fl.flower import site_files
from smpc.fl.flower.client import Site, make_client_app
from smpc.fl.flower.server import FlowerFedAvg, nodes_by_site, poll_quickly, secure_sum
from smpc.fl.secagg import check_updates
from smpc.fl.secagg_identity import enrol
from smpc.nn.module import Module

def run_simulation(model_fn: Callable[[], Module], data: FederatedDataset, rounds: int, *, local_epochs: int = 1,
                   lr: float = 0.1, secure: bool = True, dp: DPConfig | None = None, drop_rate_before: float = 0.0,
                   drop_rate_after: float = 0.0, sample_rate: float = 1.0, batch_size: int = 32,
                   momentum: float = 0.0, server_lr: float = 1.0, server_momentum: float = 0.0,
                   threshold: int | None = None, neighbours: int | None = None, secure_clip: float = 16.0,
                   seed: int = 0, timeout: float = 60.0, backend_config: dict | None = None) -> History:
    """Train like ``fl.FedAvg(model_fn, data, ...).fit(rounds)`` (same arguments, same :class:`History`:
    accuracy and epsilon per round), with every client a Flower SuperNode of the simulation engine and
    secure aggregation carried by Flower messages. Each node gets a fresh Ed25519 signing key and the
    registry of all of them (a simulation's enrolment). ``backend_config``: Flower's (default: one CPU
    per client). Raises what :class:`~smpc.fl.FedAvg` raises for bad arguments, before anything starts."""
    options = dict(sample_rate=sample_rate, local_epochs=local_epochs, batch_size=batch_size, lr=lr,
                   momentum=momentum, server_lr=server_lr, server_momentum=server_momentum, dp=dp, secure=secure,
                   threshold=threshold, neighbours=neighbours, secure_clip=secure_clip,
                   drop_rate_before=drop_rate_before, drop_rate_after=drop_rate_after, seed=seed)
    FedAvg(model_fn, data, **options)  # the arguments are checked here, in the caller's process
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"rounds must be a positive integer, got {rounds!r}")
    keys, registry = enrol(data.num_clients)
    folder = tempfile.TemporaryDirectory(prefix="smpc-flower-")
    paths = [site_files.save(folder.name, i, x=c.x, y=c.y) for i, c in enumerate(data.clients)]

    def site_of(context: Context) -> Site:
        index = int(context.node_config["partition-id"])
        rows = site_files.load(paths[index])
        return Site(ClientData(rows["x"], rows["y"]), index, keys[index], registry)

    outcome: dict = {}
    server = ServerApp()

    @server.main()
    def main(grid: Grid, context: Context) -> None:
        try:
            nodes = nodes_by_site(grid, data.num_clients)
            trainer = FlowerFedAvg(grid, nodes, registry, model_fn, data, timeout=timeout, **options)
            outcome["history"] = trainer.fit(rounds)
        except BaseException as exc:  # re-raised in the caller's thread below
            outcome["error"] = exc

    with folder:
        _simulate(server, make_client_app(site_of, model_fn), data.num_clients, backend_config)
    if "error" in outcome:
        raise outcome["error"]
    if "history" not in outcome:
        raise RuntimeError("Flower's simulation ended without running the ServerApp (see its log above)")
    return outcome["history"]


def run_aggregation_simulation(updates: Sequence[np.ndarray], rounds: int = 1, *, drop_before=(), drop_after=(),
                               threshold: int | None = None, neighbours: int | None = None, clip: float = 16.0,
                               timeout: float = 60.0, backend_config: dict | None = None) -> list[dict]:
    """``rounds`` secure aggregations of the same vectors on Flower's simulation engine, node i holding
    ``updates[i]`` (as :func:`smpc.fl.secure_aggregate` in process): each round is the five exchanges of
    secure aggregation (the masked-input round's message tells each node to contribute its vector).
    Returns one dict per round: ``total``, ``included``, ``seconds`` (the whole round), ``exchanges`` and
    ``error_bound``."""
    arrays = check_updates(updates)
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"rounds must be a positive integer, got {rounds!r}")
    n = len(arrays)
    before, after = sorted(set(drop_before)), sorted(set(drop_after))
    if any(not 0 <= c < n for c in before + after) or set(before) & set(after):
        raise ValueError(f"drop_before and drop_after must name distinct clients of 0..{n - 1}")
    keys, registry = enrol(n)
    folder = tempfile.TemporaryDirectory(prefix="smpc-flower-")
    paths = [site_files.save(folder.name, i, vector=a) for i, a in enumerate(arrays)]
    shape, size = arrays[0].shape, arrays[0].size
    del arrays  # the closures below must not hold the vectors: Flower ships them with every message

    def site_of(context: Context) -> Site:
        index = int(context.node_config["partition-id"])
        return Site(site_files.load(paths[index])["vector"], index, keys[index], registry)

    outcome: dict = {"rounds": []}
    server = ServerApp()

    @server.main()
    def main(grid: Grid, context: Context) -> None:
        try:
            nodes = nodes_by_site(grid, n)
            poll_quickly(grid)
            for number in range(rounds):
                start = time.perf_counter()
                given = ConfigRecord({"vector": "given"})
                result, exchanges, bound = secure_sum(grid, nodes, registry, list(range(n)), size, clip,
                                                      given, before=before, after=after, threshold=threshold,
                                                      neighbours=neighbours, group=f"round {number} secagg",
                                                      timeout=timeout)
                outcome["rounds"].append({"total": result.total.reshape(shape), "included": result.included,
                                          "seconds": time.perf_counter() - start, "exchanges": exchanges,
                                          "error_bound": bound})
        except BaseException as exc:
            outcome["error"] = exc

    with folder:
        _simulate(server, make_client_app(site_of, None), n, backend_config)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["rounds"]


def _simulate(server: ServerApp, client, nodes: int, backend_config: dict | None) -> None:
    config = backend_config or {"client_resources": {"num_cpus": 1, "num_gpus": 0.0}}
    logging.getLogger("flwr").setLevel(logging.WARNING)
    flower_run_simulation(server, client, num_supernodes=nodes, backend_config=config)
