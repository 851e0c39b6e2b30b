"""pytest-benchmark suite for the core (not part of the default test run).

Run: ``python -m pytest smpc_bench --benchmark-only`` (add ``--benchmark-autosave`` to
keep results and ``--benchmark-compare`` to compare with the last saved run).
"""

import numpy as np
import pytest

import smpc
from smpc.ring import PRG, encode, matmul
from smpc.ring.jit import warmup

RNG = np.random.default_rng(0)


@pytest.fixture(scope="module", autouse=True)
def compiled():
    warmup()


@pytest.mark.parametrize("n", [100, 300, 1000])
def test_ring_matmul(benchmark, n):
    a = RNG.integers(0, 2**64, size=(n, n), dtype=np.uint64)
    b = RNG.integers(0, 2**64, size=(n, n), dtype=np.uint64)
    benchmark(matmul, a, b)


@pytest.mark.parametrize("n", [100, 300])
def test_numpy_uint64_matmul(benchmark, n):
    a = RNG.integers(0, 2**64, size=(n, n), dtype=np.uint64)
    benchmark(np.matmul, a, a)


def test_prg_one_million_ring_elements(benchmark):
    prg = PRG.fresh()
    benchmark(prg.random_ring, 10**6)


def test_fixed_point_encode(benchmark):
    values = RNG.standard_normal(10**6)
    benchmark(encode, values)


def _mpc_matmul(n, parties):
    x, y = RNG.standard_normal((n, n)), RNG.standard_normal((n, n))

    def program(party):
        a = party.share(x if party.rank == 0 else None, src=0)
        b = party.share(y if party.rank == parties - 1 else None, src=parties - 1)
        return (a @ b).reveal()

    return program


@pytest.mark.parametrize("parties", [2, 3])
@pytest.mark.parametrize("n", [200, 1000])
def test_additive_fixed_point_matmul(benchmark, n, parties):
    program = _mpc_matmul(n, parties)
    benchmark.pedantic(smpc.run, args=(program,), kwargs={"parties": parties}, rounds=3, warmup_rounds=1)


def test_additive_reveal_one_million(benchmark):
    values = RNG.standard_normal(10**6)

    def program(party):
        return party.share(values if party.rank == 0 else None, src=0).reveal()

    benchmark.pedantic(smpc.run, args=(program,), kwargs={"parties": 2}, rounds=3, warmup_rounds=1)
