"""Federated averaging (McMahan et al., AISTATS 2017) with client sampling, server momentum, secure
aggregation and differential privacy at aggregation (DP-FedAvg, McMahan et al., ICLR 2018).

A round: sample clients (Poisson, rate ``sample_rate``); each sampled client copies the global model,
trains it on its own rows for ``local_epochs`` and returns only the difference of weights; the server
aggregates the differences (a plain sum, or :func:`smpc.fl.secure_aggregate` so that it sees the sum
alone) and moves the global model by their average, optionally with server momentum (Hsu et al. 2019).

With ``dp=DPConfig(...)`` every update is clipped to L2 norm C, Gaussian noise of standard deviation
``noise_multiplier * C`` is added once to the sum (``mode="central"``: by the server, which is then
trusted with the clipped updates unless secure aggregation hides them; ``mode="distributed"``: each
client adds its share N(0, sigma^2 C^2 / t) before secure aggregation, so any t or more surviving
clients give the sum at least the full noise and the server never sees a less noisy value), and the
average uses the fixed denominator ``sample_rate * num_clients`` so that one client's influence stays
bounded. An :class:`smpc.dp.RDPAccountant` composes one Poisson-subsampled Gaussian step per round
(also for a round that secure aggregation had to abort for lack of survivors: conservative); the
history reports the epsilon spent after every round.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from smpc import dp as dp_lib
from smpc.fl.datasets import FederatedDataset
from smpc.fl.secagg import run_secure_aggregation
from smpc.fl.secagg_config import threshold_range
from smpc.fl.secagg_errors import TooFewSurvivorsError
from smpc.fl.secagg_graph import graph_degree
from smpc.nn import BCEWithLogitsLoss, CrossEntropyLoss, SGD, Variable
from smpc.nn.module import Module

MODES = ("central", "distributed")


@dataclass(frozen=True)
class DPConfig:
    """Differential privacy at aggregation: per-client L2 clipping and Gaussian noise on the sum."""

    clip_norm: float
    noise_multiplier: float
    delta: float = 1e-5
    mode: str = "central"

    def __post_init__(self):
        if not (np.isfinite(self.clip_norm) and self.clip_norm > 0):
            raise ValueError(f"clip_norm must be positive and finite, got {self.clip_norm!r}")
        if not (np.isfinite(self.noise_multiplier) and self.noise_multiplier >= 0):
            raise ValueError(f"noise_multiplier must be non-negative and finite, got {self.noise_multiplier!r}")
        if not 0 < self.delta < 1:
            raise ValueError(f"delta must be in (0, 1), got {self.delta!r}")
        if self.mode not in MODES:
            raise ValueError(f"unknown DP mode {self.mode!r}; choose one of {MODES}")


@dataclass
class History:
    """Per-round records: accuracy on the test rows, epsilon spent so far, who took part, costs."""

    rounds: list[dict] = field(default_factory=list)

    @property
    def accuracy(self) -> list[float]:
        return [r["accuracy"] for r in self.rounds]

    @property
    def epsilon(self) -> list[float]:
        return [r["epsilon"] for r in self.rounds]

    def __len__(self) -> int:
        return len(self.rounds)


class FedAvg:
    """Train ``model_fn()`` across the clients of ``data``; ``fit(rounds)`` returns a :class:`History`.

    Clients train with SGD (``lr``, ``momentum``, ``batch_size``) for ``local_epochs``. Without DP the
    average is weighted by the clients' row counts (the weights ride along in the aggregate, so they
    renormalise over whoever survived). ``secure=True`` aggregates with secure aggregation
    (``threshold``, ``neighbours``, ``transport`` as :func:`smpc.fl.secure_aggregate`), with the public
    element-wise quantisation bound ``secure_clip`` for updates without DP (entries beyond it are
    clipped and counted in the round's ``clipped_elements``; under DP the bound follows from the
    clipping norm and the noise); ``drop_rate_before`` and ``drop_rate_after`` are the probabilities
    that a sampled client drops before or after sending its update (simulated dropouts). A round that
    loses too many clients (or samples fewer than 2 for secure aggregation) is recorded as aborted and
    leaves the model unchanged. ``seed`` fixes sampling, shuffling and dropouts; DP noise always
    comes from the CSPRNG.
    """

    _data_types: tuple = (FederatedDataset,)  # where the clients' rows are (subclasses may take less)

    def __init__(self, model_fn: Callable[[], Module], data: FederatedDataset, *, sample_rate: float = 1.0,
                 local_epochs: int = 1, batch_size: int = 32, lr: float = 0.1, momentum: float = 0.0,
                 server_lr: float = 1.0, server_momentum: float = 0.0, dp: DPConfig | None = None,
                 secure: bool = False, threshold: int | None = None, neighbours: int | None = None,
                 secure_clip: float = 16.0, drop_rate_before: float = 0.0, drop_rate_after: float = 0.0,
                 transport: str = "local", seed: int = 0):
        if not callable(model_fn):
            raise TypeError("model_fn must be a callable that builds the model")
        if not isinstance(data, self._data_types):
            raise TypeError(f"data must be a FederatedDataset, got {type(data).__name__}")
        if not 0 < sample_rate <= 1:
            raise ValueError(f"sample_rate must be in (0, 1], got {sample_rate!r}")
        for name, value in (("local_epochs", local_epochs), ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name, value in (("lr", lr), ("server_lr", server_lr)):
            if not value > 0:
                raise ValueError(f"{name} must be positive, got {value!r}")
        for name, value in (("momentum", momentum), ("server_momentum", server_momentum)):
            if not 0 <= value < 1:
                raise ValueError(f"{name} must be in [0, 1), got {value!r}")
        if not (np.isfinite(secure_clip) and secure_clip > 0):
            raise ValueError(f"secure_clip must be positive and finite, got {secure_clip!r}")
        for name, value in (("drop_rate_before", drop_rate_before), ("drop_rate_after", drop_rate_after)):
            if not 0 <= value < 1:
                raise ValueError(f"{name} must be a probability in [0, 1), got {value!r}")
        if dp is not None and dp.mode == "distributed" and not secure:
            raise ValueError("distributed DP needs secure=True: each client's share of the noise alone does not "
                             "protect its update from the server")
        self.model_fn, self.data = model_fn, data
        self.sample_rate, self.local_epochs, self.batch_size = float(sample_rate), int(local_epochs), int(batch_size)
        self.lr, self.momentum = float(lr), float(momentum)
        self.server_lr, self.server_momentum = float(server_lr), float(server_momentum)
        self.dp, self.secure, self.threshold, self.neighbours = dp, bool(secure), threshold, neighbours
        self.secure_clip, self.transport = float(secure_clip), transport
        self.drop_rate_before, self.drop_rate_after = float(drop_rate_before), float(drop_rate_after)
        self.rng = np.random.default_rng(seed)
        self.model = model_fn()
        self.binary = _output_width(self.model, data) == 1
        self.accountant = dp_lib.RDPAccountant()
        self.history = History()
        self._velocity = None

    # --- one round -----------------------------------------------------------------------------------------
    def fit(self, rounds: int) -> History:
        """Run ``rounds`` more rounds; returns the history of all rounds so far."""
        if isinstance(rounds, bool) or not isinstance(rounds, (int, np.integer)) or rounds < 1:
            raise ValueError(f"rounds must be a positive integer, got {rounds!r}")
        for _ in range(int(rounds)):
            self.history.rounds.append(self._round(len(self.history) + 1))
        return self.history

    def _round(self, number: int) -> dict:
        start = time.perf_counter()
        n = self.data.num_clients
        sampled = [int(c) for c in (np.flatnonzero(self.rng.random(n) < self.sample_rate) if self.sample_rate < 1
                                    else np.arange(n))]
        global_vector = parameters_vector(self.model)
        work = self._train_sampled(sampled, global_vector, number)
        before = [i for i in range(len(sampled)) if self.rng.random() < self.drop_rate_before]
        after = [i for i in range(len(sampled)) if i not in before and self.rng.random() < self.drop_rate_after]
        record = {"round": number, "participants": len(sampled) - len(before), "dropped_before": len(before),
                  "dropped_after": len(after), "bytes_per_client": 0.0, "clipped_elements": 0, "aborted": None}
        if len(sampled) - len(before) > 0:
            try:
                total, total_weight = self._aggregate_sampled(sampled, work, before, after, number, record)
                self._apply(total, total_weight, global_vector)
            except TooFewSurvivorsError as exc:  # the round is lost; the model stays as it was
                record["aborted"] = str(exc)
        if self.dp is not None:
            self.accountant.step(noise_multiplier=self.dp.noise_multiplier, sample_rate=self.sample_rate, steps=1)
        record["epsilon"] = self.epsilon()
        record["accuracy"] = self.evaluate()
        record["seconds"] = time.perf_counter() - start
        return record

    def _train_sampled(self, sampled: list[int], global_vector: np.ndarray, number: int):
        """The sampled clients' local training (here, in this process): their updates and weights."""
        updates = [self._local_update(c, global_vector) for c in sampled]
        weights = [1.0 if self.dp is not None else len(self.data.clients[c]) / np.mean(self.data.sizes)
                   for c in sampled]
        return updates, weights

    def _aggregate_sampled(self, sampled: list[int], work, before, after, number: int,
                           record: dict) -> tuple[np.ndarray, float]:
        """(sum, total weight) of what :meth:`_train_sampled` produced, without the dropped clients."""
        updates, weights = work
        return self._aggregate(updates, weights, before, after, record)

    def _local_update(self, client: int, global_vector: np.ndarray) -> np.ndarray:
        """The client's trained weights minus the global ones (clipped under DP)."""
        return local_update(self.model_fn, self.data.clients[client], global_vector, self.rng, lr=self.lr,
                            momentum=self.momentum, local_epochs=self.local_epochs, batch_size=self.batch_size,
                            binary=self.binary, clip_norm=None if self.dp is None else self.dp.clip_norm)

    def _aggregate(self, updates, weights, before, after, record: dict) -> tuple[np.ndarray, float]:
        """(sum of the surviving weighted updates with DP noise, their total weight); ``record`` gets the
        bytes a client sent for aggregation and how many entries quantisation clipped."""
        config = self.dp
        noise_std = 0.0 if config is None else config.noise_multiplier * config.clip_norm
        if config is None:
            vectors = [np.append(u * w, w) for u, w in zip(updates, weights)]  # the weight rides along
        elif config.mode == "distributed":
            t = self._threshold(len(updates))
            vectors = [u + dp_lib.gaussian_noise(u.shape, noise_std / np.sqrt(t)) for u in updates]
        else:
            vectors = list(updates)
        if self.secure:
            if len(updates) < 2:
                raise TooFewSurvivorsError(f"secure aggregation needs at least 2 sampled clients, this round "
                                           f"sampled {len(updates)}", "sampling", len(updates), 2)
            result = run_secure_aggregation(vectors, self.threshold, before, after, self.transport,
                                            neighbours=self.neighbours, clip=self._secure_bound(len(updates)))
            total = result.total
            record["bytes_per_client"] = float(np.mean(result.client_bytes_sent))
            record["clipped_elements"] = result.clipped_elements
        else:
            total = np.sum([v for i, v in enumerate(vectors) if i not in before], axis=0)
            record["bytes_per_client"] = float(8 * vectors[0].size)
        return self._finish_sum(total)

    def _secure_bound(self, sampled: int) -> float:
        """The public element-wise bound secure aggregation quantises with: ``secure_clip`` without DP, else
        the clipping norm plus 8 standard deviations of one client's noise share."""
        if self.dp is None:
            return self.secure_clip
        noise_std = self.dp.noise_multiplier * self.dp.clip_norm
        return self.dp.clip_norm + 8 * noise_std / np.sqrt(self._threshold(sampled))

    def _finish_sum(self, total: np.ndarray) -> tuple[np.ndarray, float]:
        """(the sum of the updates, the total weight): without DP the weight rode along as the last entry;
        central DP adds its noise here, and DP divides by the expected number of clients."""
        config = self.dp
        if config is None:
            return total[:-1], float(total[-1])
        if config.mode == "central":
            total = total + dp_lib.gaussian_noise(total.shape, config.noise_multiplier * config.clip_norm)
        return total, self.sample_rate * self.data.num_clients

    def _threshold(self, sampled: int) -> int:
        """The Shamir threshold secure aggregation will use for ``sampled`` clients (its own default rule,
        which depends on the neighbour graph): the fewest updates any successful sum contains."""
        if self.threshold is not None:
            return self.threshold
        return threshold_range(graph_degree(sampled, self.neighbours) + 1)[0]

    def _apply(self, total: np.ndarray, total_weight: float, global_vector: np.ndarray) -> None:
        step = total / total_weight
        if self.server_momentum:
            self._velocity = step if self._velocity is None else self.server_momentum * self._velocity + step
            step = self._velocity
        assign_vector(self.model, global_vector + self.server_lr * step)

    # --- reporting -----------------------------------------------------------------------------------------
    def epsilon(self) -> float:
        """The (epsilon, delta) budget spent so far (0 without DP; inf with zero noise)."""
        if self.dp is None:
            return 0.0
        if self.dp.noise_multiplier == 0:
            return float("inf")
        return float(self.accountant.get_epsilon(self.dp.delta))

    def evaluate(self) -> float:
        """Accuracy of the global model on the held-out rows."""
        self.model.eval()
        out = self.model(self.data.test.x)
        self.model.train()
        predicted = (out[:, 0] > 0).astype(int) if out.shape[1] == 1 else out.argmax(axis=1)
        return float((predicted == self.data.test.y).mean())


def local_update(model_fn: Callable[[], Module], data, global_vector: np.ndarray, rng: np.random.Generator, *,
                 lr: float, momentum: float, local_epochs: int, batch_size: int, binary: bool,
                 clip_norm: float | None = None) -> np.ndarray:
    """One client's round of FedAvg on its own rows ``data`` (x, y): a copy of the global model trained with
    SGD for ``local_epochs`` (batches shuffled by ``rng``), returned as its weights minus the global ones,
    clipped to L2 norm ``clip_norm`` when given (DP). Shared by :class:`FedAvg` and the Flower client."""
    model = model_fn()
    assign_vector(model, global_vector)
    model.train()
    loss_fn = BCEWithLogitsLoss() if binary else CrossEntropyLoss()
    opt = SGD(model.parameters(), lr=lr, momentum=momentum)
    for _ in range(local_epochs):
        order = rng.permutation(len(data))
        for i in range(0, len(data), batch_size):
            rows = order[i:i + batch_size]
            opt.zero_grad()
            targets = data.y[rows].reshape(-1, 1).astype(float) if binary else data.y[rows]
            loss_fn(model(Variable(data.x[rows])), targets).backward()
            opt.step()
    update = parameters_vector(model) - global_vector
    if clip_norm is not None:
        update = dp_lib.clip_by_l2_norm(update, clip_norm)
    return update


def parameters_vector(model: Module) -> np.ndarray:
    """Every parameter of a plaintext model, flattened into one float64 vector (state-dict order)."""
    return np.concatenate([np.asarray(p.data, dtype=np.float64).ravel() for p in model.parameters()])


def assign_vector(model: Module, vector: np.ndarray) -> None:
    """Write a vector from :func:`parameters_vector` back into the model's parameters."""
    offset = 0
    for p in model.parameters():
        size = int(np.prod(p.shape))
        p.data = np.array(vector[offset:offset + size]).reshape(p.shape)
        offset += size
    if offset != vector.size:
        raise ValueError(f"vector has {vector.size} entries, the model {offset}")


def _output_width(model: Module, data: FederatedDataset) -> int:
    """The model's number of outputs, checked against the classes (1 output: binary logits)."""
    outputs = int(np.shape(model.eval()(data.test.x[:1]))[-1])
    model.train()
    if not (outputs == data.num_classes or (outputs == 1 and data.num_classes == 2)):
        raise ValueError(f"the model has {outputs} outputs but the data set has {data.num_classes} classes")
    return outputs
