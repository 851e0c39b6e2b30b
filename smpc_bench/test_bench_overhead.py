"""pytest-benchmark suite for the overhead table's cells (not part of the default test run).

Run: ``python -m pytest smpc_bench/test_bench_overhead.py --benchmark-only``; add ``--benchmark-autosave``
to keep a run and ``--benchmark-compare`` to compare with the last saved one. Sizes are the table's
``--full`` sizes for the matmul and the aggregation, and 64x64 images for ResNet-18 (224x224 takes 3 s a
round in MPC; pass ``--benchmark-min-rounds`` to taste).
"""

import numpy as np
import pytest

import smpc
from smpc import fl
from smpc.ring.jit import warmup
from smpc.fl import server_aggregation
from smpc.mpc import registry
from smpc_bench import dp_rows, nn_rows

RNG = np.random.default_rng(0)
N = 1000
X, Y = RNG.standard_normal((N, N)), RNG.standard_normal((N, N))
UPDATES = [RNG.standard_normal(10**6) * 1e-2 for _ in range(10)]
IMAGE = RNG.standard_normal((1, 3, 64, 64))


@pytest.fixture(scope="module", autouse=True)
def compiled():
    warmup()
    dp_rows.dp_aggregate(UPDATES[:2], 1.0)  # compile the DP kernels outside the timings


@pytest.fixture(scope="module")
def resnet():
    return nn_rows.realistic_resnet18()


def _matmul_program(party):
    a = party.share(X if party.rank == 0 else None, src=0)
    b = party.share(Y if party.rank == party.world_size - 1 else None, src=party.world_size - 1)
    return (a @ b).reveal()


def test_matmul_plaintext(benchmark):
    benchmark(np.matmul, X, Y)


def test_matmul_dp(benchmark):
    benchmark(dp_rows.dp_matmul, X, Y, float(np.sqrt(N)))


@pytest.mark.parametrize("protocol, parties", registry.bench_setups(group="overhead"))
def test_matmul_mpc(benchmark, protocol, parties):
    benchmark.pedantic(smpc.launch, args=(_matmul_program, parties, protocol), rounds=3, warmup_rounds=1)


def test_resnet18_plaintext(benchmark, resnet):
    benchmark(resnet, IMAGE)


def test_resnet18_dp(benchmark, resnet):
    benchmark(dp_rows.dp_logits, lambda: resnet(IMAGE), 10.0)


@pytest.mark.parametrize("protocol, parties", registry.bench_setups(group="overhead"))
def test_resnet18_mpc(benchmark, resnet, protocol, parties):
    program = nn_rows.inference_program(resnet, IMAGE)
    benchmark.pedantic(smpc.launch, args=(program, parties, protocol), rounds=2, warmup_rounds=0)


def test_aggregation_plaintext(benchmark):
    benchmark(np.sum, UPDATES, axis=0)


def test_aggregation_dp(benchmark):
    benchmark(dp_rows.dp_aggregate, UPDATES, 1.0)


def test_aggregation_secure(benchmark):
    benchmark.pedantic(fl.run_secure_aggregation, args=(UPDATES,), rounds=3, warmup_rounds=1)


@pytest.mark.parametrize("protocol", ["additive", "aby3"])
def test_aggregation_servers(benchmark, protocol):
    benchmark.pedantic(server_aggregation.aggregate, args=(UPDATES, protocol), rounds=3, warmup_rounds=1)
