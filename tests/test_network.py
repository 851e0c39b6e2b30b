"""The network model of the local transport: latency, bandwidth and link queues as the model says, on every
protocol, reported apart from compute, and bad settings refused."""

from __future__ import annotations

import time

import numpy as np
import pytest

import smpc
from protocol_matrix import opening_rounds, setups
from smpc.net.network import PRESETS, Link, Network, network_of


def _timed_reveals(count: int):
    def program(party):
        x = party.protocol.from_public(party, np.ones(4))  # shared without any message
        x.reveal()  # the parties' threads start apart; they leave this round together
        party.reset_stats()
        start = time.monotonic()
        for _ in range(count):
            x.reveal()
        return time.monotonic() - start, party.stats

    return program


@pytest.mark.parametrize("setup", setups("arithmetic", min_parties=2))
def test_every_round_costs_half_a_round_trip(setup):
    rtt = 0.06
    rounds = 5 * opening_rounds(setup.protocol, setup.parties)  # 5 reveals (spdz2k's include their MAC checks)
    results = setup.run(_timed_reveals(5), network=Network(rtt_ms=rtt * 1000, bandwidth_mbps=1e6))
    # a reveal that first fetches a mask from the dealer (spdz2k) waits up to one more round trip for it
    fetches = 5 if any(stats["offline_messages"] for _, stats in results) else 0
    for wall, stats in results:
        # a party that left the first round a little late finds its peers' next frames that much closer
        assert rounds * rtt / 2 - 0.01 <= wall <= rounds * rtt / 2 + fetches * rtt + 0.15, wall
        assert stats["rounds"] == rounds
        assert 0 < stats["network_seconds"] <= wall


def test_bandwidth_and_the_reported_network_time():
    def program(party):
        x = party.protocol.from_public(party, np.ones(10**6))
        party.reset_stats()
        start = time.monotonic()
        x.reveal()
        return time.monotonic() - start, party.stats

    results = smpc.run(program, parties=2, network=Network(rtt_ms=0, bandwidth_mbps=80))
    for wall, stats in results:  # 8 MB at 80 Mbit/s: 0.8 s
        assert 0.75 <= wall <= 1.2 and 0.7 <= stats["network_seconds"] <= wall  # timers start a little apart
        assert stats["bytes"] == 8_000_028


def test_frames_on_one_link_queue_and_links_run_in_parallel():
    network = Network(rtt_ms=100, bandwidth_mbps=8)  # 1 MB takes 1 s
    link, other = Link(network), Link(network)
    now = time.monotonic()
    first, second = link.deliver_at(1_000_000), link.deliver_at(500_000)
    parallel = other.deliver_at(1_000_000)
    assert first == pytest.approx(now + 1.0 + 0.05, abs=0.02)
    assert second == pytest.approx(first + 0.5, abs=1e-9)  # waits for the first frame to leave
    assert parallel == pytest.approx(first, abs=0.02)


@pytest.mark.parametrize("setup", setups("arithmetic", "matmul", "comparison"))
def test_a_model_changes_times_not_results_or_counts(setup):
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(4, 5)), rng.normal(size=(5, 3))

    def program(party):
        a = party.share(x if party.rank == 0 else None, src=0)
        b = party.share(y if party.rank == party.world_size - 1 else None, src=party.world_size - 1)
        party.reset_stats()
        out = (a @ b + a.sum()).relu().reveal()
        stats = party.stats
        return out, stats["rounds"], stats["bytes"]

    plain = setup.run(program, seed=7)
    modelled = setup.run(program, seed=7, network="lan")
    for (out, rounds, nbytes), (out_lan, rounds_lan, nbytes_lan) in zip(plain, modelled):
        np.testing.assert_array_equal(out, out_lan)
        assert (rounds, nbytes) == (rounds_lan, nbytes_lan)


def test_a_failing_party_stops_a_peer_waiting_for_a_slow_transfer():
    def program(party):
        if party.rank == 0:
            party.send(1, np.zeros(10**6, np.uint64))  # 8 MB at 1 Mbit/s: a minute on the wire
            time.sleep(0.2)
            raise RuntimeError("party 0 gives up")
        return party.recv(0)

    start = time.monotonic()
    with pytest.raises(smpc.PartyFailedError, match="party 0"):
        smpc.run(program, parties=2, network=Network(rtt_ms=1, bandwidth_mbps=1))
    assert time.monotonic() - start < 5


def test_presets_and_bad_settings():
    assert network_of("lan") == PRESETS["lan"] == Network(0.3, 3000, "lan")
    assert network_of("wan").rtt_ms == 40 and network_of("wan").bandwidth_mbps == 400
    assert network_of(None) is None and "400 Mbit/s, 40 ms round trip" in str(PRESETS["wan"])
    for rtt, bandwidth, message in [(-1, 10, "rtt_ms must be >= 0"), (1, 0, "bandwidth_mbps must be > 0"),
                                    (float("nan"), 1, "finite"), (1, float("inf"), "finite"), (True, 1, "number")]:
        with pytest.raises(ValueError, match=message):
            Network(rtt, bandwidth)
    with pytest.raises(ValueError, match="one of \\['lan', 'wan'\\]"):
        smpc.run(lambda p: None, parties=2, network="moon")
    with pytest.raises(ValueError, match="local transport"):
        smpc.run(lambda p: None, parties=2, transport="tcp", network="lan")
