"""Federated learning where data stays with its owners: client data sets, FedAvg, dropout-robust secure
aggregation and differential privacy at aggregation.

``fl.FederatedDataset.from_sklearn("digits", num_clients=10, partition="dirichlet")`` splits a data set;
``fl.FedAvg(model_fn, data, secure=True, dp=fl.DPConfig(...)).fit(rounds)`` trains and returns a history
with accuracy and epsilon per round; ``fl.secure_aggregate(updates, threshold=t, ...)`` sums client
updates so that the server learns the sum alone. Sites with their own files:
``fl.FederatedDataset.from_sites(["a.csv", "b.csv", "c.npz"])`` (checked to agree, standardised
federatedly by secure aggregation).
"""

from smpc.fl.datasets import ClientData, FederatedDataset
from smpc.fl.fedavg import DPConfig, FedAvg, History, assign_vector, parameters_vector
from smpc.fl.secagg import SecAggResult, run_secure_aggregation, secure_aggregate
from smpc.fl.secagg_errors import SecAggError, TooFewSurvivorsError
from smpc.fl.sites import SiteData, Standardization, check_sites, federated_standardization, load_site

__all__ = [
    "ClientData",
    "DPConfig",
    "FedAvg",
    "FederatedDataset",
    "History",
    "SecAggError",
    "SecAggResult",
    "SiteData",
    "Standardization",
    "TooFewSurvivorsError",
    "assign_vector",
    "check_sites",
    "federated_standardization",
    "load_site",
    "parameters_vector",
    "run_secure_aggregation",
    "secure_aggregate",
]
