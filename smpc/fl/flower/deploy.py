"""The Flower App for a real federation: ``server_app`` and ``client_app``, configured from files.

A Flower App project names them as its components (``smpc.fl.flower.deploy:server_app`` and
``smpc.fl.flower.deploy:client_app``; ``python -m smpc flower-app --out DIR`` writes such a project).

Each SuperNode is one site; its ``--node-config`` names its own files::

    site-index=0 data-path='hospital_a.csv' key-path='site0.key' registry-path='registry.json'

(the CSV or .npz rows of :func:`smpc.fl.load_site`, its signing key and its copy of the registry from
``python -m smpc enrol``; ``label='diagnosis'`` names another label column). The run config (the project's
``[tool.flwr.app.config]``, or ``flwr run --run-config``) sets the training: ``rounds``, ``local-epochs``,
``lr``, ``batch-size``, ``sample-rate``, ``seed``, ``model`` (``logistic_regression`` or ``mlp``, with
``hidden``), differential privacy (``dp-clip-norm``, ``dp-noise-multiplier``, ``dp-mode``, ``dp-delta``),
``typical-rows`` (the public row count that scales the weights riding along the sum), ``standardize`` (before training,
two secure aggregations of the sites' sums give the features' mean and spread, as
:func:`smpc.fl.federated_standardization`), ``registry-path`` and ``test-path`` (the server's own copy
of the registry and its held-out rows), ``history-path`` (where the server writes the per-round history
as JSON), ``timeout`` and ``threshold``. The server never sees a site's rows, update or statistics.
"""

from __future__ import annotations

import functools
import json
import logging
from typing import Callable

import numpy as np
from flwr.app import ConfigRecord, Context
from flwr.serverapp import Grid, ServerApp

from smpc.fl.datasets import ClientData, ServerData
from smpc.fl.fedavg import DPConfig
from smpc.fl.flower import frames
from smpc.fl.flower.client import Site, make_client_app
from smpc.fl.flower.server import FlowerFedAvg, nodes_by_site, secure_sum
from smpc.fl.secagg_enrolment import load_registry, load_signing_key
from smpc.fl.sites import finish_standardization, load_site, rough_scale, second_bound
from smpc.nn import models
from smpc.nn.module import Module

logger = logging.getLogger("smpc.fl.flower")
MODELS = ("logistic_regression", "mlp")


def model_from(config) -> Callable[[], Module]:
    """The model the run config names, for ``features`` inputs and ``classes`` outputs (2: one logit)."""
    name = str(config.get("model", "logistic_regression"))
    features, classes = int(config["features"]), int(config.get("classes", 2))
    outputs = 1 if classes == 2 else classes
    if name == "logistic_regression" and outputs == 1:
        return lambda: models.logistic_regression(features, rng=0)
    if name in MODELS:  # several classes: a linear layer of one logit per class, or an MLP
        hidden = [int(config.get("hidden", 32))] if name == "mlp" else []
        return lambda: models.mlp([features, *hidden, outputs], rng=0)
    raise ValueError(f"unknown model {name!r}; choose one of {MODELS}")


def dp_from(config) -> DPConfig | None:
    """Differential privacy from the run config: ``dp-clip-norm`` and ``dp-noise-multiplier`` switch it on,
    ``dp-mode`` (``distributed``, the default here: each site adds its noise share before masking, or
    ``central``) and ``dp-delta`` (1e-5) refine it; the server's history reports epsilon per round."""
    if "dp-clip-norm" not in config and "dp-noise-multiplier" not in config:
        return None
    if "dp-clip-norm" not in config or "dp-noise-multiplier" not in config:
        raise ValueError("differential privacy needs both dp-clip-norm and dp-noise-multiplier in the run config")
    return DPConfig(clip_norm=float(config["dp-clip-norm"]), noise_multiplier=float(config["dp-noise-multiplier"]),
                    delta=float(config.get("dp-delta", 1e-5)), mode=str(config.get("dp-mode", "distributed")))


@functools.lru_cache(maxsize=4)
def _site(index: int, data_path: str, key_path: str, registry_path: str, label: str) -> Site:
    rows = load_site(data_path, label=label)
    return Site(ClientData(rows.x, rows.y), index, load_signing_key(key_path), load_registry(registry_path))


def site_from_node_config(context: Context) -> Site:
    """The node's site from its ``--node-config`` files (read once per process)."""
    config = context.node_config
    return _site(int(config["site-index"]), str(config["data-path"]), str(config["key-path"]),
                 str(config["registry-path"]), str(config.get("label", "label")))


def _model_of(context: Context) -> Callable[[], Module]:
    """The run config's model for the site's own feature count (built when training asks for it)."""
    config = dict(context.run_config)
    return lambda: model_from({**config, "features": site_from_node_config(context).data.x.shape[1]})()


client_app = make_client_app(site_from_node_config, model_of=_model_of,
                             index_of=lambda context: int(context.node_config["site-index"]))
server_app = ServerApp()


@server_app.main()
def _main(grid: Grid, context: Context) -> None:
    history = train(grid, context.run_config)
    path = context.run_config.get("history-path")
    if path:
        with open(str(path), "w", encoding="utf-8") as handle:
            json.dump(history, handle, indent=1, default=float)


def train(grid: Grid, config) -> list[dict]:
    """The deployed run: wait for every enrolled site, standardise federatedly if asked, train; returns
    the per-round records (accuracy on the server's held-out rows, epsilon, who took part)."""
    registry = load_registry(str(config["registry-path"]))
    timeout = float(config.get("timeout", 120.0))
    test = load_site(str(config["test-path"]), label=str(config.get("label", "label")))
    classes = int(config.get("classes", 2))
    nodes = nodes_by_site(grid, len(registry), timeout)
    standardization = None
    if bool(config.get("standardize", True)):
        standardization = _standardize(grid, nodes, registry, test.x.shape[1], timeout)
        test = type(test)(standardization.apply(test.x), test.y, test.columns, test.name)
    data = ServerData(len(registry), float(config.get("typical-rows", 100)), ClientData(test.x, test.y), classes)
    model_fn = model_from({**dict(config), "features": test.x.shape[1], "classes": classes})
    threshold = int(config["threshold"]) if "threshold" in config else None
    trainer = FlowerFedAvg(grid, nodes, registry, model_fn, data, timeout=timeout, standardization=standardization,
                           local_epochs=int(config.get("local-epochs", 1)), lr=float(config.get("lr", 0.1)),
                           batch_size=int(config.get("batch-size", 32)), threshold=threshold, secure=True,
                           dp=dp_from(config), sample_rate=float(config.get("sample-rate", 1.0)),
                           seed=int(config.get("seed", 0)))
    records = trainer.fit(int(config.get("rounds", 3))).rounds
    for record in records:
        logger.warning("round %d: accuracy %.3f, %d sites", record["round"], record["accuracy"],
                       record["participants"])
    return records


def _standardize(grid: Grid, nodes: list[int], registry, features: int, timeout: float):
    """The features' mean and spread over every site's rows, by two secure aggregations of their sums
    (:mod:`smpc.fl.sites`'s steps; the sites' files have the server's test file's columns)."""
    everyone = list(range(len(nodes)))

    def summed(settings: ConfigRecord, size: int, bound: float, group: str) -> np.ndarray:
        outcome, _, _ = secure_sum(grid, nodes, registry, everyone, size, bound, settings, group=group,
                                   timeout=timeout, ring_bits=64)
        return outcome.total

    totals = summed(ConfigRecord({"vector": "first_sums"}), 1 + 2 * features, 2.0**40, "standardize 1")
    rough_mean, scale = rough_scale(totals)
    second = frames.encode([rough_mean, scale])
    second["vector"] = "second_sums"
    refined = summed(second, 2 * features, second_bound(totals), "standardize 2")
    return finish_standardization(totals, refined, rough_mean, scale,
                                  "federated: two secure aggregations of the sites' sums over Flower")
