"""Bench rows for neural networks: ResNet-18 inference (plaintext, PyTorch if installed, 2-party additive,
3-party aby3) and one epoch of private logistic-regression training on scikit-learn's breast cancer data.

MPC inference rows time everything from sharing the model to revealing the logits to the input owner
(the slowest party); bytes and rounds are those of the forward pass alone, next to the theory that
:mod:`smpc.mpc.cost` derives by running the same forward pass on cost tensors.
"""

from __future__ import annotations

import time

import numpy as np

import smpc
from smpc import nn
from smpc.nn import Variable, models
from smpc.mpc.cost import cost
from smpc.mpc import registry
from smpc_bench import dp_rows
from smpc_bench.timing import spread, timed

LOGIT_ERROR_BOUND = 1e-2  # the agreement the private inference promises (issue: logits to 1e-2)
WEIGHT_ERROR_BOUND = 1e-2


def realistic_resnet18(num_classes: int = 1000, seed: int = 0) -> models.ResNet:
    """ResNet-18 with random weights and BatchNorm statistics away from the identity (so folding matters)."""
    model = models.resnet18(num_classes=num_classes, rng=seed)
    rng = np.random.default_rng(seed + 1)
    for _, module in model.named_modules():
        if isinstance(module, nn.BatchNorm2d):
            c = module.num_features
            module.weight.data = rng.uniform(0.8, 1.2, c)
            module.bias.data = rng.normal(0.0, 0.1, c)
            module.running_mean[:] = rng.normal(0.0, 0.1, c)
            module.running_var[:] = rng.uniform(0.5, 1.5, c)
    return model.eval()


def inference_program(model: nn.Module, x: np.ndarray):
    def program(party):
        start = time.perf_counter()
        net = model if party.rank == 0 else nn.skip_init(models.resnet18, num_classes=model.fc.out_features).eval()
        shared_model = net.share(party, src=0)
        shared_x = party.share(x if party.rank == 1 else None, src=1)
        party.reset_stats()
        logits = shared_model(shared_x)
        forward = party.stats
        out = logits.reveal(to=1)
        forward["wall"] = time.perf_counter() - start
        return out, forward

    return program


def _forward_theory(model: nn.Module, shape, protocol: str, parties: int) -> dict:
    folded = nn.fold_batchnorm(model.copy())

    def forward(x):
        for _, p in folded.named_parameters():
            p.data = type(x)(x.party, (np.zeros(p.shape, np.uint64),), x.frac_bits)
        folded(x)

    return cost(forward, [shape], protocol, parties)


def resnet_rows(size: int, setups: list[tuple[str, int]], repeat: int) -> list[dict]:
    """ResNet-18 (1000 classes) on one 3 x size x size image."""
    model = realistic_resnet18()
    x = np.random.default_rng(2).standard_normal((1, 3, size, size))
    group, label = "ResNet-18 inference", f"ResNet-18, 1x3x{size}x{size}"
    plain, reference = timed(lambda: model(x), repeat, warmup=True)
    rows = [{"group": group, "name": f"{label}, plaintext numpy float64", "seconds": plain, "ratio": 1.0,
             "ratio_to": "plaintext", "cell": ["resnet18", "plaintext"]}]
    rows.append(dp_rows.logits_row(group, label, lambda: model(x), plain, repeat))
    torch_row = _torch_row(model, x.astype(np.float32), repeat)
    if torch_row is not None:
        torch_row.update(group=group, name=f"{label}, PyTorch float32 (reference)",
                         ratio=torch_row["seconds"]["median"] / plain["median"], ratio_to="plaintext",
                         cell=["resnet18", "pytorch"])
        rows.append(torch_row)
    for protocol, parties in setups:
        program = inference_program(model, x)
        totals, offline, online, last = [], [], [], None
        for _ in range(repeat):
            report = smpc.launch(program, parties=parties, protocol=protocol, timeout=600)
            walls = [stats["wall"] for _, stats in report.results]
            totals.append(max(walls))
            dealer = report.dealer_stats["offline_seconds"] if report.dealer_stats else 0.0
            offline.append(dealer)
            online.append(max(stats["wall"] - stats["offline_seconds"] for _, stats in report.results))
            last = report
        theory = _forward_theory(model, x.shape, protocol, parties)
        total = spread(totals)
        kind = registry.get(protocol).label
        logits = last.results[1][0]
        rows.append({
            "group": group, "name": f"{label}, {parties}-party {kind}", "seconds": total,
            "offline_seconds": spread(offline), "online_seconds": spread(online),
            "ratio": total["median"] / plain["median"], "ratio_to": "plaintext",
            "bytes_per_party": max(stats["bytes_sent"] for _, stats in last.results),
            "bytes_theory": theory["bytes"],
            "rounds": max(stats["rounds"] for _, stats in last.results), "rounds_theory": theory["rounds"],
            "max_error": float(np.max(np.abs(logits - reference))), "error_bound": LOGIT_ERROR_BOUND,
            "within_bound": bool(np.max(np.abs(logits - reference)) <= LOGIT_ERROR_BOUND
                                 and logits.argmax() == reference.argmax()),
            "cell": ["resnet18", protocol],
        })
    return rows


def _torch_row(model: nn.Module, x32: np.ndarray, repeat: int) -> dict | None:
    """PyTorch's CPU forward pass of the same weights, when torch is installed (never required)."""
    try:
        import torch
    except ImportError:
        return None
    from smpc_bench.torch_reference import torch_resnet18

    reference = torch_resnet18(model.fc.out_features)
    reference.load_state_dict({k: torch.tensor(np.asarray(v, dtype=np.float32 if np.asarray(v).dtype.kind == "f"
                                                          else np.int64)) for k, v in model.state_dict().items()})
    reference.eval()
    tensor = torch.from_numpy(x32)
    with torch.no_grad():
        reference(tensor)  # warm-up
        seconds, _ = timed(lambda: reference(tensor), repeat)
    return {"seconds": seconds}


# --- private training --------------------------------------------------------------------------------------------
def _breast_cancer(seed: int = 0):
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True)
    idx = np.random.default_rng(seed).permutation(len(x))
    x, y = x[idx], y[idx]
    cut = int(0.8 * len(x))
    mean, std = x[:cut].mean(axis=0), x[:cut].std(axis=0) + 1e-8
    return (x[:cut] - mean) / std, y[:cut].reshape(-1, 1).astype(float), (x[cut:] - mean) / std, y[cut:]


def _epoch(model: nn.Module, x, targets, batch: int, lr: float) -> None:
    opt = nn.SGD(model.parameters(), lr=lr, momentum=0.9)
    loss_fn = nn.BCEWithLogitsLoss()
    for i in range(0, x.shape[0], batch):
        opt.zero_grad()
        loss_fn(model(Variable(x[i:i + batch])), targets[i:i + batch]).backward()
        opt.step()


def _training_program(x, targets, batch: int, lr: float):
    halves = np.array_split(np.arange(x.shape[0]), 2)

    def program(party):
        start = time.perf_counter()
        owners = [(r % party.world_size, rows) for r, rows in enumerate(halves)]
        xs = smpc.concatenate([party.share(x[b] if party.rank == r else None, src=r) for r, b in owners])
        ts = smpc.concatenate([party.share(targets[b] if party.rank == r else None, src=r) for r, b in owners])
        shared = models.logistic_regression(x.shape[1], rng=7).share(party, src=0)
        party.reset_stats()
        _epoch(shared, xs, ts, batch, lr)
        stats = party.stats
        state = {k: v.reveal() for k, v in shared.state_dict().items()}
        stats["wall"] = time.perf_counter() - start
        return state, stats

    return program


def training_rows(setups: list[tuple[str, int]], repeat: int, batch: int = 32, lr: float = 0.1) -> list[dict]:
    """One epoch of logistic regression on breast cancer (455 rows, 30 features), two data owners."""
    x, targets, x_test, y_test = _breast_cancer()
    group = "private training"
    label = f"logistic regression, 1 epoch, {x.shape[0]}x{x.shape[1]} breast cancer, batch {batch}"

    def plain_epoch():
        model = models.logistic_regression(x.shape[1], rng=7)
        _epoch(model, x, targets, batch, lr)
        return model

    plain, reference = timed(plain_epoch, repeat)

    def accuracy(model):
        return float(((model.eval()(x_test)[:, 0] > 0) == y_test).mean())

    rows = [{"group": group, "name": f"{label}, plaintext (test accuracy {accuracy(reference):.3f})",
             "seconds": plain, "ratio": 1.0, "ratio_to": "plaintext"}]
    expected = reference.state_dict()
    for protocol, parties in setups:
        program = _training_program(x, targets, batch, lr)
        seconds, last = [], None
        for _ in range(repeat):
            last = smpc.run(program, parties=parties, protocol=protocol, timeout=600)
            seconds.append(max(stats["wall"] for _, stats in last))
        trained = models.logistic_regression(x.shape[1], rng=7)
        trained.load_state_dict(last[0][0])
        error = max(float(np.max(np.abs(last[0][0][k] - v))) for k, v in expected.items())
        theory = _training_cost(x, targets, batch, protocol, parties)
        kind = registry.get(protocol).label
        total = spread(seconds)
        rows.append({
            "group": group, "name": f"{label}, {parties}-party {kind} (test accuracy {accuracy(trained):.3f})",
            "seconds": total, "ratio": total["median"] / plain["median"], "ratio_to": "plaintext",
            "bytes_per_party": max(stats["bytes_sent"] for _, stats in last),
            "bytes_theory": theory["bytes"],
            "rounds": max(stats["rounds"] for _, stats in last),
            "rounds_theory": theory["rounds"],
            "max_error": error, "error_bound": WEIGHT_ERROR_BOUND, "within_bound": error <= WEIGHT_ERROR_BOUND,
        })
    return rows


def _training_cost(x, targets, batch: int, protocol: str, parties: int) -> dict:
    def run(xs, ts):
        model = models.logistic_regression(x.shape[1], rng=7)
        for p in model.parameters():
            p.data = type(xs)(xs.party, (np.zeros(p.shape, np.uint64),), xs.frac_bits)
        _epoch(model, xs, ts, batch, 0.1)

    return cost(run, [x.shape, targets.shape], protocol, parties)

