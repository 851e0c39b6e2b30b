"""Bench rows for federated learning: aggregating 10 clients' updates (plaintext sum, DP clip and noise,
secure aggregation with and without dropouts) and one private FedAvg run, plotted to a PNG (matplotlib).

Aggregation rows time the whole operation as a server would run it: the plaintext sum of the updates;
the same with each update clipped to L2 norm C and Gaussian noise of std sigma C added to the sum; secure
aggregation from key agreement to the decoded sum (all endpoints on this machine's threads).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from smpc import fl
from smpc.fl import server_aggregation
from smpc.mpc import registry
from smpc.nn import models
from smpc_bench import dp_rows
from smpc.net.wire import frame_bytes
from smpc_bench.timing import spread, timed

CLIP_NORM = 1.0
NOISE_MULTIPLIER = 1.0
DELTA = 1e-5
SECAGG_ROUNDS = 5  # advertise keys, share keys, masked input, consistency check, unmasking (Bonawitz et al. 2017)


def _updates(clients: int, size: int) -> list[np.ndarray]:
    rng = np.random.default_rng(4)
    return [rng.standard_normal(size) * 1e-2 for _ in range(clients)]  # update-like scale, L2 norm ~ 0.01 sqrt(n)


def aggregation_rows(clients: int, size: int, repeat: int) -> list[dict]:
    """Sum ``clients`` updates of ``size`` parameters each, four ways."""
    updates = _updates(clients, size)
    group = "gradient aggregation"
    label = f"{clients} clients x {size:.0e} parameters"
    plain, expected = timed(lambda: np.sum(updates, axis=0), repeat, warmup=True)
    rows = [{"group": group, "name": f"{label}, plaintext sum", "seconds": plain, "ratio": 1.0,
             "ratio_to": "plaintext", "bytes_per_client": 8 * size, "cell": ["aggregation", "plaintext"]}]
    rows.append(dp_rows.aggregation_row(updates, CLIP_NORM, plain, label, repeat))
    rows += [_server_row(updates, protocol, plain, expected, label, repeat) for protocol, _ in registry.bench_setups()]
    drops = {"no dropout": ((), ()), "3 drop after sending": ((), (0, 1, 2)),
             "3 drop before sending": ((0, 1, 2), ())}
    for what, (before, after) in drops.items():
        results = [fl.run_secure_aggregation(updates, None, before, after) for _ in range(repeat)]
        seconds = spread([r.seconds for r in results])
        last = results[-1]
        reference = np.sum([u for i, u in enumerate(updates) if i not in before], axis=0)
        error = float(np.max(np.abs(last.total - reference)))
        rows.append({
            "group": group, "name": f"{label}, secure aggregation (t={last.config.threshold}), {what}",
            "seconds": seconds, "ratio": seconds["median"] / plain["median"], "ratio_to": "plaintext",
            "bytes_per_client": float(np.mean(last.client_bytes_sent)),  # what a client sends
            "max_error": error, "error_bound": last.error_bound, "within_bound": error <= last.error_bound,
            "rounds": SECAGG_ROUNDS, "rounds_theory": SECAGG_ROUNDS,
            "phases": "no offline phase: every round needs this round's fresh keys or the inputs",
            "cell": ["aggregation", "secagg"] if not before and not after else None,
        })
    return rows


def _server_row(updates, protocol: str, plain: dict, expected: np.ndarray, label: str, repeat: int) -> dict:
    """Clients share their updates to the protocol's servers (2 additive, 3 aby3), which open only the sum."""
    runs = [server_aggregation.aggregate(updates, protocol) for _ in range(repeat)]
    totals = [r["client_seconds"] + r["server_seconds"] for r in runs]
    last = runs[-1]
    error = float(np.max(np.abs(last["total"] - expected)))
    bound = server_aggregation.error_bound(len(updates))
    servers = server_aggregation.servers_of(protocol)
    kind = f"{protocol} shares"
    seconds = spread(totals)
    return {
        "group": "gradient aggregation", "name": f"{label}, {servers} servers, {kind} (clients' sharing + servers)",
        "seconds": seconds, "ratio": seconds["median"] / plain["median"], "ratio_to": "plaintext",
        "offline_seconds": spread([0.0] * len(runs)), "online_seconds": seconds,
        "phases": "no offline phase: sums need no correlated randomness; the time is the clients' sharing plus the "
                  "servers' adding and opening",
        "client_seconds": spread([r["client_seconds"] for r in runs]),
        "server_seconds": spread([r["server_seconds"] for r in runs]),
        "bytes_per_client": last["bytes_per_client"], "bytes_per_party": last["bytes_per_party"],
        "bytes_theory": frame_bytes(updates[0].shape), "rounds": last["rounds"], "rounds_theory": 1,
        "max_error": error, "error_bound": bound, "within_bound": error <= bound,
        "cell": ["aggregation", protocol],
    }


def fedavg_rows(rounds: int, folder: Path) -> list[dict]:
    """Private FedAvg of a logistic regression on breast cancer (10 hospitals, Dirichlet 0.5 split): secure
    aggregation with distributed DP and a 10% dropout risk per client and round, against plaintext FedAvg;
    writes ``fedavg.png`` into ``folder``. (With 10 clients the DP noise is large against a bigger model's
    average update; a 31-parameter model keeps its accuracy, which is the honest regime for so few clients.)"""
    data = fl.FederatedDataset.from_sklearn("breast_cancer", num_clients=10, partition="dirichlet", alpha=0.5,
                                            seed=1)
    settings = dict(local_epochs=2, lr=0.1, momentum=0.5, seed=2)

    def model():
        return models.logistic_regression(data.num_features, rng=3)

    plain = fl.FedAvg(model, data, **settings).fit(rounds)
    config = fl.DPConfig(clip_norm=CLIP_NORM, noise_multiplier=NOISE_MULTIPLIER, delta=DELTA, mode="distributed")
    private = fl.FedAvg(model, data, dp=config, secure=True, drop_rate_after=0.1, server_momentum=0.5,
                        **settings).fit(rounds)
    png = folder / "fedavg.png"
    plot_fedavg(plain, private, png)
    group = "private FedAvg"
    rows = []
    for name, history in (("plaintext FedAvg", plain), ("secure aggregation + distributed DP", private)):
        seconds = spread([r["seconds"] for r in history.rounds])
        rows.append({
            "group": group,
            "name": f"breast cancer, 10 clients, {rounds} rounds, {name}: accuracy {history.accuracy[-1]:.3f}, "
                    f"epsilon {history.epsilon[-1]:.2f} (delta {DELTA})",
            "seconds": seconds, "ratio": seconds["median"] / spread([r["seconds"] for r in plain.rounds])["median"],
            "ratio_to": "plaintext", "accuracy_per_round": history.accuracy, "epsilon_per_round": history.epsilon,
            "plot": png.name,
        })
    return rows


def plot_fedavg(plain: fl.History, private: fl.History, path: Path) -> None:
    """Accuracy per round of both runs and the epsilon spent by the private one, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
    rounds = np.arange(1, len(plain) + 1)
    left.plot(rounds, plain.accuracy, marker="o", label="plaintext FedAvg")
    left.plot(rounds, private.accuracy, marker="s", label="secure aggregation + DP")
    left.set(xlabel="round", ylabel="test accuracy", title="breast cancer, 10 hospitals (Dirichlet 0.5)")
    left.legend()
    right.plot(rounds, private.epsilon, marker="s", color="C1")
    right.set(xlabel="round", ylabel=f"epsilon (delta={DELTA})", title="privacy spent (RDP accountant)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
