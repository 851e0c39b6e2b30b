"""``run_simulation``: smpc's FedAvg with secure aggregation on Flower's simulation engine (Ray)."""

from __future__ import annotations

import logging
import time
from typing import Callable

from flwr.app import ConfigRecord, Context, Message, RecordDict
from flwr.serverapp import Grid, ServerApp
from flwr.simulation import run_simulation as flower_run_simulation

from smpc.fl.datasets import FederatedDataset
from smpc.fl.fedavg import DPConfig, FedAvg, History
from smpc.fl.flower.client import Site, make_client_app
from smpc.fl.flower.server import FlowerFedAvg
from smpc.fl.secagg_identity import enrol
from smpc.nn.module import Module

#: how long the ServerApp waits for the simulated nodes to register
NODES_TIMEOUT = 120.0


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
    clients = data.clients

    def site_of(context: Context) -> Site:
        index = int(context.node_config["partition-id"])
        return Site(clients[index], index, keys[index], registry)

    outcome: dict = {}
    server = ServerApp()

    @server.main()
    def main(grid: Grid, context: Context) -> None:
        try:
            nodes = _nodes_by_partition(grid, data.num_clients)
            trainer = FlowerFedAvg(grid, nodes, registry, model_fn, data, timeout=timeout, **options)
            outcome["history"] = trainer.fit(rounds)
        except BaseException as exc:  # re-raised in the caller's thread below
            outcome["error"] = exc

    config = backend_config or {"client_resources": {"num_cpus": 1, "num_gpus": 0.0}}
    logging.getLogger("flwr").setLevel(logging.WARNING)
    flower_run_simulation(server, make_client_app(site_of, model_fn), num_supernodes=data.num_clients,
                          backend_config=config)
    if "error" in outcome:
        raise outcome["error"]
    if "history" not in outcome:
        raise RuntimeError("Flower's simulation ended without running the ServerApp (see its log above)")
    return outcome["history"]


def _nodes_by_partition(grid: Grid, count: int) -> list[int]:
    """The node ids, ordered by the partition each simulated node serves (Flower numbers them 0..count-1)."""
    deadline = time.monotonic() + NODES_TIMEOUT
    nodes = sorted(grid.get_node_ids())
    while len(nodes) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(nodes)} of {count} simulated nodes registered")
        time.sleep(0.05)
        nodes = sorted(grid.get_node_ids())
    return _partition_order(grid, nodes)


def _partition_order(grid: Grid, nodes: list[int]) -> list[int]:
    """Ask every node which partition it serves (one query round), so that client i is partition i."""
    messages = [Message(RecordDict({"ask": ConfigRecord({})}), node, "query.smpc_partition", group_id="setup")
                for node in nodes]
    order = {}
    for reply in grid.send_and_receive(messages, timeout=NODES_TIMEOUT):
        if reply.has_content():
            order[int(reply.content["partition"]["id"])] = reply.metadata.src_node_id
    if sorted(order) != list(range(len(nodes))):
        raise RuntimeError(f"the simulated nodes reported partitions {sorted(order)}")
    return [order[i] for i in range(len(nodes))]
