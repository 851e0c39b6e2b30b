"""preprocessing="ahead": a planning pass fetches all of a program's correlated randomness before it runs online.

Checked on every protocol and party count whose source supports it (and TCP): the same results as on demand within
the documented error bounds, the same online rounds and bytes, no message with the dealer in the online phase, the
online wall time on a modelled WAN as the rounds alone predict, a program that branches on a revealed value
stopped with both requests named, and bad settings refused.
"""

from __future__ import annotations

import functools
import time

import numpy as np
import pytest

import programs
import smpc
from protocol_matrix import Setup, setups
from smpc.mpc import registry
from smpc.mpc.correlated.preprocessed import PlanMismatchError, ReplaySource
from smpc.net.network import Network

RNG = np.random.default_rng(7)
X = RNG.uniform(-3, 3, (6, 5))
Y = RNG.uniform(0.5, 2, (6, 5))


def preprocessing_setups(*needs: str, transport: str = "local") -> list:
    """The matrix's cells whose default correlated source can fetch its material ahead."""
    return [p for p in setups(*needs, transport=transport, min_parties=2)
            if registry.get(p.values[0].protocol).kind(None).preprocessing]


def _mix(party):
    """Products, a matmul, comparisons and table-lookup and bit-length functions: every kind of material."""
    last = party.world_size - 1
    x = party.share(X if party.rank == 0 else None, src=0)
    y = party.share(Y if party.rank == last else None, src=last)
    party.reset_stats()
    values = {
        "mul": x * y,
        "matmul": x @ y.T,
        "relu": x.relu(),
        "max": x.max(axis=1),
        "exp": (x * 0.5).exp(),
        "reciprocal": y.reciprocal(),
        "sigmoid": x.sigmoid(),
    }
    revealed = {name: value.reveal() for name, value in values.items()}
    return revealed, party.stats, party.planning


EXPECTED = {
    "mul": X * Y, "matmul": X @ Y.T, "relu": np.maximum(X, 0), "max": X.max(axis=1), "exp": np.exp(X * 0.5),
    "reciprocal": 1 / Y, "sigmoid": 1 / (1 + np.exp(-X)),
}


def _check_values(results):
    for revealed, _, _ in results:
        for name, value in revealed.items():
            assert np.allclose(value, EXPECTED[name], rtol=1e-3, atol=2e-4), name


@pytest.mark.parametrize("setup", preprocessing_setups("functions"))
def test_same_results_and_online_counts_and_no_dealer_traffic_online(setup: Setup):
    on_demand = setup.run(_mix, seed=3)
    ahead = setup.run(_mix, seed=3, preprocessing="ahead")
    _check_values(on_demand)
    _check_values(ahead)
    for (_, demand_stats, _), (_, ahead_stats, planning) in zip(on_demand, ahead):
        assert planning is False  # what the program returns comes from the online pass
        assert ahead_stats["rounds"] == demand_stats["rounds"] > 0
        assert ahead_stats["bytes"] == demand_stats["bytes"]
        assert demand_stats["offline_messages"] > 0  # the dealer's requests and replies, on demand
        assert ahead_stats["offline_messages"] == 0  # none once online: everything was fetched in the planning pass
        assert ahead_stats["preprocessing_seconds"] > 0 == demand_stats["preprocessing_seconds"]


@pytest.mark.parametrize("setup", preprocessing_setups("comparison", transport="tcp"))
def test_ahead_over_tcp(setup: Setup):
    for value, seconds in setup.run(functools.partial(programs.relu_product, X), preprocessing="ahead"):
        assert np.allclose(value, np.maximum(X, 0) * X, atol=2e-4)
        assert seconds > 0


def test_the_program_runs_twice_and_can_tell_which_pass_it_is_in():
    seen = []

    def program(party):
        seen.append((party.rank, party.planning))
        x = party.share(X if party.rank == 0 else None, src=0)
        return (x * x).reveal()

    results = smpc.run(program, parties=2, preprocessing="ahead")
    assert np.allclose(results[0], X * X, atol=2e-4)
    assert sorted(seen) == [(0, False), (0, True), (1, False), (1, True)]


def test_online_time_on_a_wan_is_the_rounds_alone():
    """Ahead, an online round costs half a round trip (the model of :mod:`smpc.net.network`) and the online phase
    nothing more: no dealer reply is waited for."""
    rtt = 0.08

    def program(party):
        x = party.share(np.linspace(-1, 1, 64) if party.rank == 0 else None, src=0)
        party.reset_stats()
        start = time.monotonic()
        (x * x).relu().reveal()
        return time.monotonic() - start, party.stats

    network = Network(rtt_ms=rtt * 1000, bandwidth_mbps=1e6)
    for wall, stats in smpc.run(program, parties=2, network=network, preprocessing="ahead"):
        assert stats["rounds"] * rtt / 2 <= wall <= stats["rounds"] * rtt / 2 + 0.2, (wall, stats["rounds"])
        assert stats["offline_messages"] == 0


def test_a_program_that_branches_on_a_revealed_value_is_stopped():
    def program(party):
        x = party.share(np.array([2.0, 3.0]) if party.rank == 0 else None, src=0)
        y = x * x
        if abs(y.reveal()[0] - 4) < 0.01:  # garbage in the planning pass (online receives give zeros), 4 online
            y = y * x
        else:
            y = y.relu()
        return y.reveal()

    with pytest.raises(smpc.PartyFailedError) as failure:
        smpc.run(program, parties=2, preprocessing="ahead", seed=5)
    error = failure.value.__cause__
    assert isinstance(error, PlanMismatchError)
    assert "depend on a revealed value" in str(error)
    assert "differs from the planning pass" in str(error) or "was not planned" in str(error)


def test_asking_for_more_than_was_planned_is_stopped():
    calls = []

    def program(party):
        calls.append(party.planning)
        x = party.share(np.ones(3) if party.rank == 0 else None, src=0)
        y = x * x
        if not party.planning:  # the online pass asks for one more triple than the plan holds
            y = y * x
        return y.reveal()

    with pytest.raises(smpc.PartyFailedError) as failure:
        smpc.run(program, parties=2, preprocessing="ahead")
    assert isinstance(failure.value.__cause__, PlanMismatchError)
    assert "was not planned" in str(failure.value.__cause__)


def test_the_online_pass_uses_every_planned_material_once():
    sources = []

    def program(party):
        x = party.share(np.ones(3) if party.rank == 0 else None, src=0)
        y = (x * x).relu()
        if not party.planning:
            sources.append(party.dealer)
        return y.reveal()

    smpc.run(program, parties=2, preprocessing="ahead")
    assert all(isinstance(s, ReplaySource) and s.planned > 0 and s.unused == 0 for s in sources)


def test_a_raw_receive_of_unknown_shape_in_the_planning_pass_is_refused():
    def program(party):
        x = party.share(np.ones(3) if party.rank == 0 else None, src=0)
        if party.rank == 0:
            party.send(1, np.arange(3, dtype=np.uint64))
            return None
        party.recv(0)
        return x.reveal()

    with pytest.raises(smpc.PartyFailedError) as failure:
        smpc.run(program, parties=2, preprocessing="ahead")
    error = failure.value.__cause__
    assert "unknown shape" in str(error) and "planning pass" in str(error)
    assert any("planning pass of preprocessing='ahead'" in note for note in getattr(error, "__notes__", []))


def test_bad_settings_are_refused():
    def program(party):
        return None

    with pytest.raises(ValueError, match="preprocessing must be None or one of"):
        smpc.run(program, parties=2, preprocessing="before")
    for name, spec in registry.protocols().items():
        for kind in spec.correlated:
            if not kind.preprocessing:
                with pytest.raises(ValueError, match="does not apply to protocol"):
                    smpc.run(program, parties=spec.test_parties[0], protocol=name, dealer=kind.name,
                             preprocessing="ahead")


@pytest.mark.parametrize("setup", preprocessing_setups("nn"))
def test_private_cnn_inference_ahead(setup: Setup):
    """A shared model (whose architecture digest moves as metadata in the planning pass too), conv, batch norm,
    ReLU and max pooling, with all material fetched ahead."""
    from smpc import nn

    def make():
        return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, rng=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Flatten(), nn.Linear(64, 3, rng=3))

    x = np.random.default_rng(14).standard_normal((2, 1, 8, 8))
    expected = make().eval()(x)

    def program(party):
        owner = party.world_size - 1
        shared_x = party.share(x if party.rank == owner else None, src=owner)
        return make().eval().share(party, src=0)(shared_x).reveal()

    for logits in setup.run(program, preprocessing="ahead"):
        assert np.allclose(logits, expected, atol=1e-2)


def test_paillier_preprocessing_ahead():
    """Paillier preprocessing's messages between the two parties are offline, so they move in the planning pass."""
    def program(party):
        x = party.share(X if party.rank == 0 else None, src=0)
        y = party.share(Y if party.rank == 1 else None, src=1)
        party.reset_stats()
        value = (x * y).reveal()
        return value, party.stats

    on_demand = smpc.run(program, parties=2, dealer="paillier")
    ahead = smpc.run(program, parties=2, dealer="paillier", preprocessing="ahead")
    for (value, stats), (_, demand_stats) in zip(ahead, on_demand):
        assert np.allclose(value, X * Y, atol=2e-4)
        assert stats["offline_messages"] == 0 < demand_stats["offline_messages"]
        assert stats["rounds"] == demand_stats["rounds"] and stats["bytes"] == demand_stats["bytes"]
