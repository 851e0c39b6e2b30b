"""The overhead table per network (``python -m smpc_bench.network_overhead``): its cells against theory, the
ahead mode's split, the model's latency floor, and the memory guard."""

from __future__ import annotations

import pytest

from smpc.mpc import registry
from smpc.net.network import Network
from smpc_bench import network_overhead


@pytest.fixture(scope="module")
def document():
    networks = (("slow", Network(rtt_ms=4, bandwidth_mbps=10_000)),)
    return network_overhead.network_overhead(matmul=16, image=32, repeat=1, networks=networks)


def test_every_setup_network_and_mode_has_a_cell(document):
    setups = registry.bench_setups(group="networks")
    for row in document["rows"]:
        expected = sum((2 if registry.get(name).kind(None).preprocessing else 1) for name, _ in setups)
        assert len(row["cells"]) == expected
        for cell in row["cells"]:
            assert cell["within_bound"], cell
            assert cell["bytes_per_party"] >= cell["bytes_theory"]  # the forward pass, plus sharing the inputs
            assert ("offline_seconds" in cell) == (cell["preprocessing"] == "ahead")
            if cell["network"] == "slow":  # every round waits at least half the round trip
                assert cell["online_seconds"]["min"] >= cell["rounds"] * 0.002
    lines = network_overhead.table(document)
    assert lines[0] == ["operation", "setup", "slow"]
    assert any("preprocessed ahead (offline / online)" in line[1] for line in lines)


def test_a_cell_that_would_not_fit_is_skipped_with_its_reason(monkeypatch):
    monkeypatch.setattr(network_overhead, "available_bytes", lambda: 1)
    doc = network_overhead.network_overhead(matmul=8, image=32, repeat=1, networks=(("loopback", None),))
    skipped = [cell for row in doc["rows"] for cell in row["cells"] if "skipped" in cell]
    assert skipped and all(cell["preprocessing"] == "ahead" for cell in skipped)
    assert "GiB of dealer material" in skipped[0]["skipped"]
    assert "skipped:" in " ".join(" ".join(line) for line in network_overhead.table(doc))
