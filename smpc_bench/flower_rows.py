"""Secure aggregation on Flower's simulation engine: Flower's own SecAgg+ beside smpc's, same clients, sizes
and dropouts, in one run.

Both sum one fixed float vector per client for several rounds (no training: the aggregation alone), with
``dropouts`` clients leaving after they sent their masked vector (they never answer the unmasking
stage). A warm round is a round after the first (Ray and the nodes started, code imported); the row
reports their median and the cold first round beside it.

- Flower 1.42's SecAgg+: ``SecAggPlusWorkflow`` under ``DefaultWorkflow`` with its FedAvg strategy, a
  NumPyClient returning the vector and ``secaggplus_mod`` on the ClientApp; the dropping clients return
  an error in the unmask stage. Its masks are drawn from MT19937 seeded with 32 bits, its pairwise keys
  are not signed, and it has no consistency check (the issue's security review).
- smpc on Flower (:func:`smpc.fl.flower.run_aggregation_simulation`): signed keys, the ConsistencyCheck
  round, AES key-stream masks, the range check, five exchanges per round.

Both read each client's vector from a file of its own: a ClientApp holding every vector would ship them
all with each message. Skipped, with a note, where ``flwr`` is not installed.
"""

from __future__ import annotations

import importlib.util
import logging
import statistics
import tempfile
import time

import numpy as np

GROUP = "federated learning on Flower"


def available() -> str | None:
    """None if Flower's simulation engine can run here, else why not."""
    for module in ("flwr", "ray"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install 'smpc-numpy[flower]')"
    return None


def _updates(clients: int, size: int) -> list[np.ndarray]:
    rng = np.random.default_rng(11)
    return [rng.standard_normal(size) * 1e-2 for _ in range(clients)]


def smpc_round_seconds(clients: int, size: int, dropouts: int, rounds: int) -> tuple[list[float], float, float]:
    """Seconds of each round of smpc's secure aggregation on Flower, the last sum's largest error and its
    stated bound."""
    from smpc.fl.flower.simulation import run_aggregation_simulation

    updates = _updates(clients, size)
    results = run_aggregation_simulation(updates, rounds, drop_after=tuple(range(dropouts)))
    error = float(np.max(np.abs(results[-1]["total"] - np.sum(updates, axis=0))))
    return [r["seconds"] for r in results], error, results[-1]["error_bound"]


def flower_secaggplus_round_seconds(clients: int, size: int, dropouts: int,
                                    rounds: int) -> tuple[list[float], float, str]:
    """Seconds of each round of Flower's SecAgg+ workflow, the last average's largest error (no bound is
    stated: its quantisation step grows with ``max_weight``)."""
    from flwr.app import Context, Error, Message
    from flwr.client import ClientApp, NumPyClient
    from flwr.client.mod import secaggplus_mod
    from flwr.common import ndarrays_to_parameters, parameters_to_ndarrays
    from flwr.server import LegacyContext, ServerApp, ServerConfig
    from flwr.server.strategy import FedAvg
    from flwr.server.workflow import DefaultWorkflow, SecAggPlusWorkflow
    from flwr.simulation import run_simulation

    from smpc.fl.flower import site_files

    updates = _updates(clients, size)
    expected = np.mean(updates, axis=0)  # Flower's FedAvg averages over all clients with weight 1
    folder = tempfile.TemporaryDirectory(prefix="smpc-bench-flower-")
    paths = [site_files.save(folder.name, i, vector=u) for i, u in enumerate(updates)]
    del updates  # as for smpc's run: the ClientApp holds file paths, not every client's vector
    dropping = set(range(dropouts))

    class Fixed(NumPyClient):
        def __init__(self, index: int):
            self.index = index

        def fit(self, parameters, config):
            return [site_files.load(paths[self.index])["vector"]], 1, {}

    def client_fn(context: Context):
        return Fixed(int(context.node_config["partition-id"])).to_client()

    def drop_after_masking(message, context, call_next):
        configs = message.content.config_records.get("secaggplus_configs")
        if configs is not None and configs.get("stage") == "unmask" \
                and int(context.node_config["partition-id"]) in dropping:
            return Message(Error(code=0, reason="dropped out"), reply_to=message)
        return call_next(message, context)

    ends: list[float] = []
    averages: list[np.ndarray] = []

    class Timed(FedAvg):
        def aggregate_fit(self, server_round, results, failures):
            out = super().aggregate_fit(server_round, results, failures)
            ends.append(time.perf_counter())
            if out[0] is not None:
                averages.append(parameters_to_ndarrays(out[0])[0])
            return out

    server = ServerApp()
    starts: list[float] = []

    @server.main()
    def main(grid, context) -> None:
        strategy = Timed(fraction_fit=1.0, fraction_evaluate=0.0, min_fit_clients=clients,
                         min_available_clients=clients, initial_parameters=ndarrays_to_parameters([np.zeros(size)]))
        legacy = LegacyContext(context=context, config=ServerConfig(num_rounds=rounds), strategy=strategy)
        shares = clients  # every client a neighbour of every other: the complete graph, as smpc's default
        workflow = DefaultWorkflow(fit_workflow=SecAggPlusWorkflow(num_shares=shares,
                                                                   reconstruction_threshold=clients // 2 + 1,
                                                                   timeout=60.0))
        starts.append(time.perf_counter())
        workflow(grid, legacy)

    logging.getLogger("flwr").setLevel(logging.WARNING)
    with folder:
        run_simulation(server, ClientApp(client_fn=client_fn, mods=[drop_after_masking, secaggplus_mod]),
                       num_supernodes=clients, backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0}})
    if len(ends) != rounds or not averages:
        raise RuntimeError(f"Flower's SecAgg+ finished {len(ends)} of {rounds} rounds")
    seconds = [ends[0] - starts[0]] + [b - a for a, b in zip(ends, ends[1:])]
    return seconds, float(np.max(np.abs(averages[-1] - expected))), "none stated"


def flower_rows(clients: int = 10, size: int = 1_000_000, dropouts: int = 3, rounds: int = 4) -> list[dict]:
    """Two rows, one per implementation: the median warm round, the cold first round, the error."""
    reason = available()
    if reason is not None:
        return [{"group": GROUP, "name": f"secure aggregation on Flower: skipped ({reason})", "skipped": reason,
                 "seconds": {"median": 0.0, "min": 0.0, "max": 0.0}, "ratio": 0.0, "ratio_to": "skipped"}]
    label = f"{clients} clients x {size:.0e} parameters, {dropouts} drop after masking"
    rows = []
    for name, measure, error_kind in (
        ("smpc secure aggregation on Flower (signed keys, consistency check)", smpc_round_seconds,
         "max |sum - numpy sum|"),
        ("Flower 1.42 SecAgg+ workflow", flower_secaggplus_round_seconds, "max |average - numpy average|"),
    ):
        seconds, error, bound = measure(clients, size, dropouts, rounds)
        warm = seconds[1:] or seconds
        rows.append({"group": GROUP, "name": f"{label}, {name}, warm round",
                     "seconds": {"median": statistics.median(warm), "min": min(warm), "max": max(warm)},
                     "cold_seconds": seconds[0], "aggregation_rounds": rounds, "max_error": error,
                     "error_bound": bound, "error_kind": error_kind})
    smpc_row, flower_row = rows
    smpc_row["ratio"] = smpc_row["seconds"]["median"] / flower_row["seconds"]["median"]
    smpc_row["ratio_to"] = "Flower SecAgg+"
    flower_row["ratio"], flower_row["ratio_to"] = 1.0, "Flower SecAgg+"
    return rows


if __name__ == "__main__":
    for row in flower_rows():
        print(row)
