"""smpc's federated learning on Flower (optional extra ``smpc-numpy[flower]``): FedAvg with smpc's secure
aggregation (signed keys, consistency check, dropouts) and DP, carried by Flower messages.

``smpc.fl.flower.run_simulation(model_fn, data, rounds, ...)`` trains on Flower's simulation engine with
the arguments and :class:`~smpc.fl.History` of ``smpc.fl.FedAvg(...).fit``;
``run_aggregation_simulation(updates, rounds, ...)`` runs secure aggregation alone. The pieces:
:func:`~smpc.fl.flower.client.make_client_app` (a site's ClientApp: local training and the client's
steps of secure aggregation), :class:`~smpc.fl.flower.server.FlowerFedAvg` (the ServerApp's rounds) and
:mod:`~smpc.fl.flower.links` (secure aggregation's send/recv as Flower messages). Only this package
imports ``flwr``.
"""

from smpc.fl.flower.client import Site, make_client_app
from smpc.fl.flower.server import FlowerFedAvg
from smpc.fl.flower.server import secure_sum
from smpc.fl.flower.simulation import run_aggregation_simulation, run_simulation

__all__ = ["FlowerFedAvg", "Site", "make_client_app", "run_aggregation_simulation", "run_simulation", "secure_sum"]
