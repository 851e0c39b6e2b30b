"""Party programs used by the TCP tests (module level, so spawned processes can import them)."""

import os
import time

import numpy as np

from smpc.mpc import concatenate
from smpc.mpc.additive import binary, conversions


def only(value, party, src):
    return value if party.rank == src else None


def arithmetic_suite(x, y, party):
    """Several ops at once, so one process launch covers many checks."""
    n = party.world_size
    a = party.share(only(x, party, 0), src=0)
    b = party.share(only(y, party, n - 1), src=n - 1)
    party.reset_stats()
    product = (a @ b).reveal()
    stats = party.stats
    return {
        "matmul": product,
        "matmul_stats": stats,
        "mul": (a * a).reveal(),
        "affine": (a * 2 - 1.5 + a).reveal(),
        "sum": a.sum(axis=0).reveal(),
        "to_last": a.reveal(to=n - 1),
        "conv": a.reshape(1, 1, *a.shape).conv2d(b[:1, :1].reshape(1, 1, 1, 1), padding=1).reveal(),
        "shape_ops": concatenate([a.T, a.T[::-1]], axis=1)[:, 1:].reveal(),
        "mean": a.mean(axis=1).reveal(),
    }


def integer_product(x, party):
    a = party.share(only(x, party, 0), src=0)
    return (a * a).reveal()


def raise_on(rank, party):
    if party.rank == rank:
        raise ValueError(f"boom from {rank}")
    a = party.share(only(np.ones(3), party, 0), src=0)
    return (a * a).reveal()


def die_on(rank, party):
    a = party.share(only(np.ones(3), party, 0), src=0)
    if party.rank == rank:
        os._exit(3)
    return (a * a).reveal()


def sleep_on(rank, seconds, party):
    if party.rank == rank:
        time.sleep(seconds)
        return None
    return party.recv(rank)


def bad_dealer_request(party):
    if party.rank == party.world_size - 1:
        party.send(party.dealer_endpoint, np.array([99, 1, 2], dtype=np.int64))
    a = party.share(only(np.ones(3), party, 0), src=0)
    return (a * a).reveal()


def share_values(party):
    return party.share(only(np.arange(4.0), party, 0), src=0).share


def comparison_suite(x, y, party):
    """Comparisons and sign-based functions of x (party 0) against y (the last party)."""
    a = party.share(only(x, party, 0), src=0)
    b = party.share(only(y, party, party.world_size - 1), src=party.world_size - 1)
    return {
        "lt": (a < b).reveal(), "le": (a <= b).reveal(), "gt": (a > b).reveal(), "ge": (a >= b).reveal(),
        "eq": (a == b).reveal(), "ne": (a != b).reveal(), "lt_public": (a < 0.5).reveal(),
        "sign": a.sign().reveal(), "relu": a.relu().reveal(), "abs": a.abs().reveal(),
    }


def functions_suite(x, y, party):
    """Every non-linear function on x (party 0; positive for log/sqrt/reciprocal) and y (the last party)."""
    a = party.share(only(x, party, 0), src=0)
    b = party.share(only(y, party, party.world_size - 1), src=party.world_size - 1)
    return {
        "exp": a.exp().reveal(), "log": a.log().reveal(), "reciprocal": a.reciprocal().reveal(),
        "sqrt": a.sqrt().reveal(), "inv_sqrt": a.inv_sqrt().reveal(), "sigmoid": b.sigmoid().reveal(),
        "tanh": b.tanh().reveal(), "softmax": b.softmax().reveal(), "log_softmax": b.log_softmax().reveal(),
        "divide": (b / a).reveal(),
    }


def paillier_suite(x, y, party):
    """Products and truncations under dealer='paillier' (module level: the TCP test spawns it)."""
    a = party.share(only(x, party, 0), src=0)
    b = party.share(only(y, party, party.world_size - 1), src=party.world_size - 1)
    party.reset_stats()
    product = a * b
    stats = party.stats
    return {
        "mul": product.reveal(),
        "mul_stats": stats,
        "matmul": (a @ b.T).reveal(),
        "vector": (a[0] @ b.T).reveal(),
        "square_sum": ((a * a).sum(axis=1) / 4).reveal(),
        "integers": (party.share(only(np.arange(x.size).reshape(x.shape), party, 0), src=0) * 3).reveal(),
        "requests": party.dealer.requests,
    }



def private_nn_suite(cnn_state, x, mlp_state, features, labels, party):
    """Private inference of a small CNN (weights from party 0, image from party 1, logits to party 1 only),
    then one private SGD step of an MLP on features shared by party 1. Returns (logits, new MLP state)."""
    from smpc import nn
    from smpc.nn import Variable, models

    cnn = models.lenet(num_classes=3, input_size=8, rng=None)
    if party.rank == 0:
        cnn.load_state_dict(cnn_state)
    image = party.share(x if party.rank == party.world_size - 1 else None, src=party.world_size - 1)
    logits = cnn.eval().share(party, src=0)(image).reveal(to=party.world_size - 1)
    mlp = models.mlp([features.shape[1], 4, 3], rng=None)
    mlp.load_state_dict(mlp_state)  # a public initialisation every party knows
    shared_mlp = mlp.share(party, src=0)
    opt = nn.SGD(shared_mlp.parameters(), lr=0.5, momentum=0.9)
    data = party.share(features if party.rank == party.world_size - 1 else None, src=party.world_size - 1)
    nn.CrossEntropyLoss()(shared_mlp(Variable(data)), np.eye(3)[labels]).backward()
    opt.step()
    return logits, {k: v.reveal() for k, v in shared_mlp.state_dict().items()}


def one_hot_and_lookup(ids, size, table, party):
    """Token ids of party 0 one-hot encoded privately, and rows of party 1's table looked up with them."""
    shared_ids = party.share(only(ids, party, 0), src=0)
    shared_table = party.share(only(table, party, party.world_size - 1), src=party.world_size - 1)
    encoded = shared_ids.one_hot(size)
    return encoded.reveal(), (encoded @ shared_table).reveal()


def malloc_settings(party):
    """The malloc tunables this party's process started with."""
    return {name: os.environ.get(name) for name in ("MALLOC_ARENA_MAX", "MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_")}


def relu_product(x, party):
    """x * relu(x) of party 0's x, and how long the party's planning pass took (preprocessing="ahead")."""
    shared = party.share(only(x, party, 0), src=0)
    return (shared.relu() * shared).reveal(), party.stats["preprocessing_seconds"]


def shifted_ands(x, y, shifts, party):
    """Words x (party 0) and y (the last party) to binary sharing, then one round of ANDs of them and their shifts
    (``shifts``: four signed amounts, positive left), with its stats; then party 0's and the last party's shares
    of x ANDed as private words (an A2B's first AND), with its stats and this party's share."""
    a = party.share(only(x, party, 0), src=0).to_binary()
    b = party.share(only(y, party, party.world_size - 1), src=party.world_size - 1).to_binary()
    s = [(lambda w, n=n: w << n) if n >= 0 else (lambda w, n=n: w >> -n) for n in shifts]
    party.reset_stats()
    words = binary.and_many(party, [(a, s[0](b)), (a, s[1](a)), (s[2](b), s[3](a))])
    opened = [word.reveal() for word in words]
    stats = dict(party.stats)
    inputs = conversions.private_inputs(party, a.share)
    party.reset_stats()
    private = binary.and_many(party, [(inputs[0], inputs[-1])])[0]
    return opened, stats, private.reveal(), dict(party.stats), a.share
