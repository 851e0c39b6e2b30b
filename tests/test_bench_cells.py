"""The overhead table's own cells: DP releases (clipping, sensitivity, noise bound), client-to-servers
aggregation, and assembling the table from tagged rows."""

import json

import numpy as np

import smpc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smpc.fl import server_aggregation
from smpc_bench import dp_rows, overhead

SETTINGS = settings(max_examples=15, deadline=None)


@SETTINGS
@given(rows=st.integers(1, 6), cols=st.integers(1, 6), norm=st.floats(0.1, 10), seed=st.integers(0, 2**32 - 1))
def test_clip_rows_bounds_every_row_and_keeps_short_ones(rows, cols, norm, seed):
    x = np.random.default_rng(seed).standard_normal((rows, cols)) * 5
    clipped = dp_rows.clip_rows(x, norm)
    assert np.all(np.linalg.norm(clipped, axis=1) <= norm * (1 + 1e-12))
    short = np.linalg.norm(x, axis=1) <= norm
    np.testing.assert_array_equal(clipped[short], x[short])
    assert np.all(dp_rows.clip_rows(np.zeros((rows, cols)), norm) == 0)


@SETTINGS
@given(n=st.integers(2, 8), k=st.integers(1, 6), seed=st.integers(0, 2**32 - 1))
def test_matmul_sensitivity_bound_holds_for_a_replaced_record(n, k, seed):
    """Replacing one row of x moves clip_rows(x) @ y by at most 2 C ||y||_F in L2, the noise's calibration."""
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((n, k)) * 3, rng.standard_normal((k, n))
    other = x.copy()
    other[rng.integers(n)] = rng.standard_normal(k) * 10
    c = float(np.sqrt(k))
    moved = np.linalg.norm(dp_rows.clip_rows(x, c) @ y - dp_rows.clip_rows(other, c) @ y)
    assert moved <= 2 * c * np.linalg.norm(y) * (1 + 1e-12)


def test_dp_releases_stay_within_the_hard_noise_bound():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((40, 30)), rng.standard_normal((30, 20))
    noisy, sigma = dp_rows.dp_matmul(x, y, 2.0)
    assert sigma > 0 and np.max(np.abs(noisy - dp_rows.clip_rows(x, 2.0) @ y)) <= dp_rows.NOISE_TAIL * sigma
    logits = rng.standard_normal((1, 10)) * 100
    noisy, clipped, sigma = dp_rows.dp_logits(lambda: logits, 5.0)
    assert np.linalg.norm(clipped) <= 5.0 * (1 + 1e-12) and np.max(np.abs(noisy - clipped)) <= 8.58 * sigma
    updates = [rng.standard_normal(1000) for _ in range(4)]
    total, sigma = dp_rows.dp_aggregate(updates, 1.0)
    from smpc import dp

    assert np.max(np.abs(total - dp.clipped_sum(updates, 1.0))) <= dp_rows.NOISE_TAIL * sigma
    assert sigma == pytest.approx(dp.gaussian_sigma(1.0, dp_rows.EPSILON, dp_rows.DELTA))


@SETTINGS
@given(protocol=st.sampled_from(sorted(name for name, spec in smpc.protocols().items()
                                       if not spec.unsupported_reason("outsourced"))), clients=st.integers(1, 5),
       shape=st.lists(st.integers(1, 7), min_size=1, max_size=3), seed=st.integers(0, 2**32 - 1))
def test_servers_open_only_the_sum_within_the_encoding_bound(protocol, clients, shape, seed):
    rng = np.random.default_rng(seed)
    updates = [rng.uniform(-100, 100, size=tuple(shape)) for _ in range(clients)]
    result = server_aggregation.aggregate(updates, protocol)
    error = np.max(np.abs(result["total"] - np.sum(updates, axis=0)))
    assert error <= server_aggregation.error_bound(clients)
    assert result["rounds"] == 1 and result["bytes_per_party"] > 0


def test_client_messages_hide_the_update_from_each_server():
    """Additive: server 0 receives only a 16-byte key; aby3: each server holds two of three components, one of
    them from a key the other servers' views do not determine, and the three add up to the encoding."""
    from smpc.ring import PRG, encode

    update = np.arange(12.0).reshape(3, 4) - 5
    additive = server_aggregation.client_messages(update, "additive")
    assert [type(m) for server in additive for m in server] == [bytes, np.ndarray]
    assert len(additive[0][0]) == 16
    np.testing.assert_array_equal(PRG(additive[0][0]).random_ring((3, 4)) + additive[1][0], encode(update))
    replicated = server_aggregation.client_messages(update, "aby3")
    k0, k1 = replicated[0]
    assert replicated[1][0] == k1 and replicated[2][1] == k0
    x2 = replicated[1][1]
    np.testing.assert_array_equal(replicated[2][0], x2)
    np.testing.assert_array_equal(PRG(k0).random_ring((3, 4)) + PRG(k1).random_ring((3, 4)) + x2, encode(update))
    assert server_aggregation.message_bytes(replicated) == 4 * 16 + 2 * x2.nbytes  # 4 keys, x2 twice


def _row(operation, column, median):
    return {"cell": [operation, column], "name": f"{operation} {column}",
            "seconds": {"median": median, "min": median, "max": median}}


def test_overhead_collects_tagged_rows_and_computes_ratios():
    rows = [_row(op, "plaintext", 0.5) for op in overhead.OPERATIONS]
    rows += [_row("matmul", "aby3", 5.0), _row("resnet18", "pytorch", 0.25), {"name": "untagged", "cell": None}]
    sizes = {"mpc": 10, "image": 32, "clients": 10, "parameters": 100}
    document = overhead.collect(rows, sizes, "quick", 1, {"cpu": "x", "cores": 2})
    matmul, resnet, _ = document["rows"]
    assert matmul["label"] == "matrix multiplication 10x10" and matmul["cells"]["aby3"]["ratio"] == 10.0
    assert resnet["reference_pytorch"]["ratio"] == 0.5 and "pytorch" not in resnet["cells"]
    assert matmul["cells"]["plaintext"]["within_bound"] is True
    lines = overhead.headline(document)
    assert lines[1][0] == "matrix multiplication 10x10" and lines[1][4] == "5.00 s (10x)" and lines[1][5] == "n/a"


def test_overhead_needs_every_plaintext_cell():
    rows = [_row("matmul", "plaintext", 0.5), _row("resnet18", "plaintext", 0.5)]
    with pytest.raises(ValueError, match="no plaintext cell for aggregation"):
        overhead.collect(rows, {"mpc": 1, "image": 32, "clients": 8, "parameters": 1}, "quick", 1, {})


def _document(cpu, seconds, label="matrix multiplication 10x10"):
    cells = {"plaintext": {"seconds": {"median": 1.0}, "ratio": 1.0},
             "aby3": {"seconds": {"median": seconds}, "ratio": seconds}}
    return {"schema": overhead.SCHEMA, "machine": {"cpu": cpu, "cores": 2, "numpy": "2", "numba": "0", "blas": "x"},
            "rows": [{"operation": "matmul", "label": label, "cells": cells}]}


def test_compare_refuses_tables_from_different_machines(tmp_path, capsys):
    from smpc_bench import compare

    paths = []
    for name, document in (("old", _document("AMD", 8.0)), ("new", _document("AMD", 4.0)),
                           ("other", _document("Intel", 2.0)), ("bigger", _document("AMD", 4.0, "other size"))):
        paths.append(tmp_path / f"{name}.json")
        paths[-1].write_text(json.dumps(document))
    old, new, other, bigger = paths
    assert compare.main([str(old), str(new)]) == 0
    assert "2.00x faster" in capsys.readouterr().out
    with pytest.raises(SystemExit, match=r"different machines \(cpu: AMD -> Intel\)"):
        compare.main([str(old), str(other)])
    assert compare.main([str(old), str(other), "--any-machine"]) == 0
    out = capsys.readouterr().out
    assert "ratio to plaintext" in out and "4.00x faster" in out
    compare.main([str(old), str(bigger)])
    assert "sizes differ" in capsys.readouterr().out
    (tmp_path / "bench.json").write_text("{}")
    with pytest.raises(SystemExit, match="is not an overhead table"):
        compare.main([str(old), str(tmp_path / "bench.json")])
