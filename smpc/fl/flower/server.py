"""The Flower ServerApp side: smpc's FedAvg whose clients are Flower nodes, summed by smpc's secure aggregation.

:class:`FlowerFedAvg` keeps :class:`smpc.fl.FedAvg`'s round exactly (Poisson sampling with the same seed,
weights riding along the sum, central or distributed DP with the RDP accountant, server momentum,
evaluation on the held-out rows) and changes only where the work happens: each sampled node trains on
its own rows when the ``train.smpc`` message reaches it, and the updates are summed by
:class:`smpc.fl.secagg_server.SecAggServer` talking to the nodes through :class:`~smpc.fl.flower.links.GridLink`.
The server never sees one update: only the sum. With secure aggregation the global model and the round's
settings ride along with the masked-input round's message, so a round is five exchanges of messages.
"""

from __future__ import annotations

import time

import numpy as np
from flwr.app import ConfigRecord, Message, RecordDict
from flwr.serverapp import Grid

from smpc.fl import secagg_config
from smpc.fl.datasets import FederatedDataset, ServerData
from smpc.fl.fedavg import FedAvg, parameters_vector
from smpc.fl.flower import frames
from smpc.fl.flower.client import TRAIN, TRAIN_TYPE
from smpc.fl.flower.links import GridLink
from smpc.fl.secagg import _raise_failure
from smpc.fl.secagg_errors import TooFewSurvivorsError
from smpc.fl.secagg_identity import Enrolment, new_session
from smpc.fl.secagg_quantize import error_bound
from smpc.fl.secagg_messages import ROUND_MASKED
from smpc.fl.secagg_server import SecAggServer
from smpc.fl.sites import Standardization


class FlowerFedAvg(FedAvg):
    """:class:`~smpc.fl.FedAvg` over a Flower ``grid``: client ``i`` of the data set is node ``nodes[i]``;
    ``registry`` holds every client's verification key (index i: client i); ``timeout`` bounds each
    exchange of messages (a node that does not answer in time is a dropout)."""

    _data_types = (FederatedDataset, ServerData)  # the rows stay at the nodes

    def __init__(self, grid, nodes: list[int], registry: Enrolment, *args, timeout: float = 60.0,
                 standardization: Standardization | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if len(nodes) != self.data.num_clients or len(registry) != self.data.num_clients:
            raise ValueError(f"{len(nodes)} nodes and {len(registry)} enrolled keys for {self.data.num_clients} "
                             f"clients")
        self.grid, self.nodes, self.registry, self.timeout = grid, list(nodes), registry, float(timeout)
        self.standardization = standardization  # applied by each node to its rows before training
        poll_quickly(grid)

    def _train_sampled(self, sampled: list[int], global_vector: np.ndarray, number: int):
        """The round's settings for the nodes; without secure aggregation the nodes train now and return
        their vectors, with it they train when the masked-input round's message reaches them."""
        settings = self._settings(global_vector, len(sampled))
        return settings, ({} if self.secure else self._train(sampled, settings, number))

    def _aggregate_sampled(self, sampled: list[int], work, before, after, number: int,
                           record: dict) -> tuple[np.ndarray, float]:
        settings, vectors = work
        return self._sum(sampled, vectors, settings, before, after, number, record)

    def _settings(self, global_vector: np.ndarray, sampled: int) -> ConfigRecord:
        """The round's training settings for the nodes: the model, SGD's, and how to form the vector (weighted
        by its rows times the public ``1 / mean rows``, the weight riding along as in FedAvg; or with its
        share of DP noise)."""
        dp = self.dp
        noise_std = 0.0 if dp is None else dp.noise_multiplier * dp.clip_norm
        known = self.standardization
        settings = frames.encode([global_vector] if known is None else [global_vector, known.mean, known.std])
        settings.update({"seed": int(self.rng.integers(2**62)), "lr": self.lr, "momentum": self.momentum,
                         "epochs": self.local_epochs, "batch": self.batch_size, "binary": self.binary,
                         "clip_norm": -1.0 if dp is None else dp.clip_norm,
                         "vector": "weighted" if dp is None else "noised" if dp.mode == "distributed" else "plain",
                         "weight_scale": float(1.0 / np.mean(self.data.sizes)),
                         "noise_std": float(noise_std / np.sqrt(self._threshold(max(sampled, 1))))})
        return settings

    def _train(self, sampled: list[int], settings: ConfigRecord, number: int) -> dict[int, np.ndarray]:
        """A plain round (``secure=False``): the sampled nodes train and return their vectors."""
        messages = [Message(RecordDict({TRAIN: settings}), self.nodes[c], TRAIN_TYPE, group_id=f"round {number}")
                    for c in sampled]
        vectors = {}
        for reply in self.grid.send_and_receive(messages, timeout=self.timeout):
            if reply.has_content() and TRAIN in reply.content:
                vectors[self.nodes.index(reply.metadata.src_node_id)] = frames.decode(reply.content[TRAIN])[0]
        return vectors

    def _sum(self, sampled, vectors, settings, before, after, number: int,
             record: dict) -> tuple[np.ndarray, float]:
        """(sum of the surviving clients' vectors, with DP noise where central; their total weight)."""
        if not self.secure:
            kept = [vectors[c] for i, c in enumerate(sampled) if i not in before and c in vectors]
            if not kept:
                raise TooFewSurvivorsError("no sampled client returned its update", "training", 0, 1)
            total = np.sum(kept, axis=0)
            record["bytes_per_client"] = float(8 * total.size)
        else:
            total = self._secure_sum(sampled, settings, before, after, number, record)
        return self._finish_sum(total)

    def _secure_sum(self, sampled, settings, before, after, number: int, record: dict) -> np.ndarray:
        if len(sampled) < 2:
            raise TooFewSurvivorsError(f"secure aggregation needs at least 2 sampled clients, this round sampled "
                                       f"{len(sampled)}", "sampling", len(sampled), 2)
        size = self.model_size + (1 if self.dp is None else 0)  # without DP the weight rides along
        clip = self._secure_bound(len(sampled))
        outcome, exchanges, bound = secure_sum(self.grid, self.nodes, self.registry, sampled, size, clip,
                                               settings, before=before, after=after, threshold=self.threshold,
                                               neighbours=self.neighbours, group=f"round {number} secagg",
                                               timeout=self.timeout)
        record["secagg_exchanges"], record["error_bound"] = exchanges, bound
        record["summed"] = len(outcome.included)  # the sites whose masked update reached the sum
        return outcome.total

    @property
    def model_size(self) -> int:
        return int(parameters_vector(self.model).size)


def secure_sum(grid, nodes: list[int], registry: Enrolment, clients: list[int], size: int, clip: float,
               settings: ConfigRecord, *, before=(), after=(), threshold: int | None = None,
               neighbours: int | None = None, group: str = "secagg", timeout: float = 60.0,
               ring_bits: int = 32) -> tuple:
    """One secure aggregation of the ``clients``' vectors (``clients``: indices into ``nodes`` and
    ``registry``; ``size`` elements, public bound ``clip``), each formed by its node from ``settings`` (the
    round's training settings, or ``{"vector": "given"}``) when the masked-input round's message brings
    them; ``ring_bits`` 64 for sums beyond Z_2^32's reach (statistics). ``before`` /
    ``after``: positions in ``clients`` told to drop out before or after masking (simulations).
    Returns (the server's :class:`~smpc.fl.secagg_server.ServerOutcome`, the exchanges of messages, the
    error bound of the sum); raises :class:`~smpc.fl.TooFewSurvivorsError` or
    :class:`~smpc.fl.SecAggError` as :func:`smpc.fl.secure_aggregate` does."""
    enrolment = Enrolment(tuple(registry.keys[c] for c in clients))
    config = secagg_config.make_config(len(clients), (size,), threshold, (), (), neighbours, clip, ring_bits, None,
                                       enrolment=enrolment, session=new_session())
    start = {}
    for i in range(len(clients)):
        drop = "before" if i in before else "after" if i in after else ""
        start[i] = ConfigRecord({
            "sites": [int(c) for c in clients], "client": i, "session": config.session, "shape": [size],
            "threshold": config.threshold, "neighbours": -1 if neighbours is None else int(neighbours),
            "clip": float(clip), "ring_bits": ring_bits, "frac_bits": config.frac_bits, "drop": drop})
    link = GridLink(grid, [nodes[c] for c in clients], start, group, timeout, attach={ROUND_MASKED: {TRAIN: settings}})
    outcome = SecAggServer(config).run(link)
    link.flush()
    _raise_failure(outcome)
    return outcome, link.exchanges, error_bound(len(outcome.included), config.frac_bits)


#: how long the ServerApp waits for the nodes to register and say which site they serve
NODES_TIMEOUT = 120.0


def poll_quickly(grid) -> None:
    """Flower's in-memory grid (the simulation's) polls for replies every 0.1 s; a round of secure
    aggregation is five exchanges, so poll every 5 ms (other grids are left as they are)."""
    if hasattr(grid, "pull_interval"):
        grid.pull_interval = min(grid.pull_interval, 0.005)


def nodes_by_site(grid: Grid, count: int, timeout: float = NODES_TIMEOUT) -> list[int]:
    """The node ids of the ``count`` sites, in site order: each node says which partition (simulation) or
    registry index (deployment) it serves; waits up to ``timeout`` for them to register."""
    deadline = time.monotonic() + timeout
    nodes = sorted(grid.get_node_ids())
    while len(nodes) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(nodes)} of {count} nodes registered")
        time.sleep(0.05)
        nodes = sorted(grid.get_node_ids())
    return _site_order(grid, nodes, timeout)


def _site_order(grid: Grid, nodes: list[int], timeout: float = NODES_TIMEOUT) -> list[int]:
    """Ask every node which partition it serves (one query round), so that client i is partition i."""
    messages = [Message(RecordDict({"ask": ConfigRecord({})}), node, "query.smpc_partition", group_id="setup")
                for node in nodes]
    order = {}
    for reply in grid.send_and_receive(messages, timeout=timeout):
        if reply.has_content():
            order[int(reply.content["partition"]["id"])] = reply.metadata.src_node_id
    if sorted(order) != list(range(len(nodes))):
        raise RuntimeError(f"the nodes reported sites {sorted(order)}, expected each of 0..{len(nodes) - 1} once")
    return [order[i] for i in range(len(nodes))]
