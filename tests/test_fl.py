"""Federated data sets and FedAvg: splits, learning, secure aggregation inside rounds, DP accounting per round."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

from smpc import dp, fl
from smpc.nn import models


def _digits(clients=6, partition="iid", **options):
    return fl.FederatedDataset.from_sklearn("digits", num_clients=clients, partition=partition, **options)


@given(st.integers(1, 30), st.sampled_from(["iid", "dirichlet", "label"]), st.integers(0, 2**31))
def test_every_training_row_goes_to_exactly_one_client(clients, partition, seed):
    x = np.arange(400, dtype=float).reshape(200, 2)
    y = np.arange(200) % 5
    data = fl.FederatedDataset(x, y, clients, partition, alpha=0.3, labels_per_client=2, seed=seed,
                               standardize=False)
    rows = np.concatenate([c.x[:, 0] for c in data.clients] + [data.test.x[:, 0]])
    assert sorted(rows.tolist()) == x[:, 0].tolist()  # a partition of all rows, test included
    assert all(len(c) >= 1 for c in data.clients) and data.num_clients == clients
    assert len(data.test) == 40
    for c in data.clients:
        assert np.array_equal(c.y, (c.x[:, 0] / 2).astype(int) % 5)  # labels travel with their rows


def test_non_iid_splits_are_skewed():
    iid = _digits(10, "iid").label_histogram()
    label = _digits(10, "label", labels_per_client=2).label_histogram()
    skewed = _digits(10, "dirichlet", alpha=0.1).label_histogram()
    assert (iid > 0).sum(axis=1).min() >= 8  # IID clients see (almost) every class
    assert (label > 0).sum(axis=1).max() <= 4  # two shards: two labels, or up to 4 where a shard straddles two
    assert np.median((skewed > 0).sum(axis=1)) < np.median((iid > 0).sum(axis=1))


def test_dataset_bad_input():
    with pytest.raises(ValueError, match="unknown partition"):
        _digits(3, "random")
    with pytest.raises(ValueError, match="num_clients"):
        _digits(0)
    with pytest.raises(ValueError, match="no downloads"):
        fl.FederatedDataset.from_sklearn("mnist", 3)
    with pytest.raises(ValueError, match="alpha"):
        _digits(3, "dirichlet", alpha=0.0)
    with pytest.raises(ValueError, match="labels must be integers"):
        fl.FederatedDataset(np.ones((10, 2)), np.ones(10), 2)


def test_fedavg_learns_and_weights_by_client_size():
    data = _digits(5, "iid")
    history = fl.FedAvg(lambda: models.mlp([64, 10], rng=0), data, local_epochs=2, lr=0.1).fit(4)
    assert len(history) == 4 and history.accuracy[-1] > 0.85 and history.epsilon == [0.0] * 4
    # one round by hand: the size-weighted mean of the clients' local models
    data = _digits(3, "dirichlet", alpha=0.3)
    algo = fl.FedAvg(lambda: models.mlp([64, 10], rng=0), data, lr=0.1, seed=5)
    start = fl.parameters_vector(algo.model)
    algo.fit(1)
    twin = fl.FedAvg(lambda: models.mlp([64, 10], rng=0), data, lr=0.1, seed=5)  # same shuffles, same order
    updates = [twin._local_update(c, start) for c in range(3)]
    sizes = np.array(data.sizes, dtype=float)
    expected = start + sum(u * s for u, s in zip(updates, sizes)) / sizes.sum()
    assert np.allclose(fl.parameters_vector(algo.model), expected, atol=1e-12)


def test_secure_aggregation_inside_fedavg_matches_the_plain_sum():
    data = _digits(4, "iid")
    plain = fl.FedAvg(lambda: models.mlp([64, 10], rng=1), data, lr=0.1, seed=3).fit(2)
    secure = fl.FedAvg(lambda: models.mlp([64, 10], rng=1), data, lr=0.1, seed=3, secure=True).fit(2)
    assert np.allclose(plain.accuracy, secure.accuracy, atol=0.01)
    assert secure.rounds[-1]["bytes_per_client"] > 0
    # a client that drops before sending is left out of the average; after sending it still counts
    dropped = fl.FedAvg(lambda: models.mlp([64, 10], rng=1), data, lr=0.1, seed=3, secure=True, threshold=3,
                        drop_rate_before=0.3, drop_rate_after=0.3).fit(6)
    assert all(r["participants"] + r["dropped_before"] == 4 for r in dropped.rounds)
    lost = [r for r in dropped.rounds if r["aborted"]]
    assert all("threshold 3" in r["aborted"] for r in lost)  # fewer than t answered: that round is lost
    assert all(r["participants"] - r["dropped_after"] < 3 for r in lost)
    assert len(lost) < 6 and dropped.accuracy[-1] > 0.5


def test_dp_rounds_report_the_accountants_epsilon():
    data = _digits(8, "iid")
    config = fl.DPConfig(clip_norm=0.5, noise_multiplier=1.1, delta=1e-5)
    history = fl.FedAvg(lambda: models.mlp([64, 10], rng=2), data, sample_rate=0.5, dp=config, lr=0.2,
                        local_epochs=2).fit(3)
    oracle = dp.RDPAccountant()
    for record in history.rounds:
        oracle.step(noise_multiplier=1.1, sample_rate=0.5, steps=1)
        assert record["epsilon"] == pytest.approx(oracle.get_epsilon(1e-5), rel=1e-12)
    assert history.epsilon == sorted(history.epsilon) and history.epsilon[0] > 0


def test_dp_clips_every_update_and_distributed_noise_needs_secure_aggregation():
    data = _digits(4, "iid")
    config = fl.DPConfig(clip_norm=0.05, noise_multiplier=0.0)
    algo = fl.FedAvg(lambda: models.mlp([64, 10], rng=2), data, dp=config, lr=0.5)
    start = fl.parameters_vector(algo.model)
    assert np.linalg.norm(algo._local_update(0, start)) <= 0.05 + 1e-12
    algo.fit(1)
    moved = np.linalg.norm(fl.parameters_vector(algo.model) - start)
    assert moved <= 0.05 + 1e-9  # the average of clipped updates, fixed denominator, no noise
    assert algo.history.epsilon == [float("inf")]  # no noise: no privacy, said plainly
    with pytest.raises(ValueError, match="distributed DP needs secure=True"):
        fl.FedAvg(lambda: models.mlp([64, 10]), data, dp=fl.DPConfig(1.0, 1.0, mode="distributed"))
    noisy = fl.FedAvg(lambda: models.mlp([64, 10], rng=2), data, dp=fl.DPConfig(1.0, 2.0, mode="distributed"),
                      secure=True).fit(1)
    assert np.isfinite(noisy.epsilon[0])


def test_fedavg_bad_input():
    data = _digits(3)
    with pytest.raises(ValueError, match="sample_rate"):
        fl.FedAvg(lambda: models.mlp([64, 10]), data, sample_rate=0)
    with pytest.raises(ValueError, match="outputs but the data set has 10 classes"):
        fl.FedAvg(lambda: models.mlp([64, 3]), data)
    with pytest.raises(ValueError, match="clip_norm"):
        fl.DPConfig(clip_norm=0, noise_multiplier=1)
    with pytest.raises(ValueError, match="rounds"):
        fl.FedAvg(lambda: models.mlp([64, 10]), data).fit(0)
    with pytest.raises(TypeError, match="FederatedDataset"):
        fl.FedAvg(lambda: models.mlp([64, 10]), (np.ones((3, 64)), np.zeros(3)))


def test_federated_accuracy_is_within_two_points_of_centralised_training():
    """DP off, IID clients, secure aggregation on: FedAvg reaches the accuracy of training on the pooled rows
    (digits, softmax regression; 10 rounds of 3 local epochs against 10 epochs)."""
    from smpc.nn import CrossEntropyLoss, SGD, Variable

    data = fl.FederatedDataset.from_sklearn("digits", num_clients=5, partition="iid", seed=4)
    federated = fl.FedAvg(lambda: models.mlp([64, 10], rng=9), data, local_epochs=3, lr=0.1, secure=True,
                          seed=4).fit(10)
    central = models.mlp([64, 10], rng=9)
    x = np.concatenate([c.x for c in data.clients])
    y = np.concatenate([c.y for c in data.clients])
    opt = SGD(central.parameters(), lr=0.1)
    order_rng = np.random.default_rng(4)
    for _ in range(10):
        order = order_rng.permutation(len(y))
        for i in range(0, len(y), 32):
            rows = order[i:i + 32]
            opt.zero_grad()
            CrossEntropyLoss()(central(Variable(x[rows])), y[rows]).backward()
            opt.step()
    central_accuracy = (central.eval()(data.test.x).argmax(axis=1) == data.test.y).mean()
    assert central_accuracy > 0.9
    assert abs(federated.accuracy[-1] - central_accuracy) <= 0.02


def test_dp_sgd_local_training_with_per_example_gradients():
    """DP-SGD (per-example clipping, noise, Poisson batches) on one client's rows, with its epsilon."""
    from smpc.nn import BCEWithLogitsLoss, Variable, per_example_gradients

    data = fl.FederatedDataset.from_sklearn("breast_cancer", num_clients=1, seed=5)
    x, y = data.clients[0].x, data.clients[0].y.reshape(-1, 1).astype(float)
    model = models.logistic_regression(30, rng=1)
    loss_fn = BCEWithLogitsLoss()
    grads = per_example_gradients(model, loss_fn, x[:4], y[:4])
    for i in range(4):  # each row is that example's own gradient
        model.zero_grad()
        loss_fn(model(Variable(x[i:i + 1])), y[i:i + 1]).backward()
        assert np.allclose(grads[0][i], model[0].weight.grad) and np.allclose(grads[1][i], model[0].bias.grad)
    opt = dp.DPSGD(noise_multiplier=1.0, max_grad_norm=1.0, batch_size=32, dataset_size=len(y), rng=7)
    params, steps = model.parameters(), 0
    for _ in range(60):
        batch = opt.sample_batch()
        if batch.size == 0:
            continue
        steps += 1
        noisy = opt.privatize(per_example_gradients(model, loss_fn, x[batch], y[batch]))
        for p, g in zip(params, noisy):
            p.data = p.data - 0.5 * g
    accuracy = ((model.eval()(data.test.x)[:, 0] > 0) == data.test.y).mean()
    assert accuracy > 0.85
    reference = dp.RDPAccountant()
    reference.step(noise_multiplier=1.0, sample_rate=32 / len(y), steps=steps)
    assert opt.epsilon(1e-5) == pytest.approx(reference.get_epsilon(1e-5), rel=1e-12)


def test_distributed_noise_uses_secure_aggregations_own_threshold():
    """Each client's noise share is sigma^2 C^2 / t for the t secure aggregation will enforce, sparse graph too."""
    from smpc.fl.secagg_config import make_config

    data = _digits(10)
    for neighbours in (None, 4):
        algo = fl.FedAvg(lambda: models.mlp([64, 10]), data, secure=True, neighbours=neighbours,
                         dp=fl.DPConfig(1.0, 1.0, mode="distributed"))
        config = make_config(10, (3,), None, (), (), neighbours, 16.0, 32, None)
        assert algo._threshold(10) == config.threshold
