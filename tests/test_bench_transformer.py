"""The BERT bench row (smpc_bench.transformer_rows) on a tiny BertModel: its fields, its theory, its error."""

import sys

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from smpc_bench import transformer_rows  # noqa: E402

TINY = {"hidden": 32, "heads": 2, "intermediate": 64, "vocabulary": 64, "positions": 16}
SPREAD_KEYS = ("seconds", "share_seconds", "forward_seconds", "offline_seconds", "online_seconds",
               "conversion_seconds", "torch_seconds")


SETUPS = (("additive", 2), ("aby3", 3))


@pytest.fixture(scope="module")
def rows():
    return transformer_rows.bert_rows(layers=1, tokens=8, repeat=1, setups=SETUPS, **TINY)


def test_tiny_bert_rows_fields_and_error(rows):
    additive, aby3 = rows
    assert "1 layers, hidden 32" in additive["name"] and "8 private token ids" in additive["name"]
    assert "2-party additive (trusted dealer)" in additive["name"] and "3-party aby3" in aby3["name"]
    assert not additive["name"].startswith("BERT-base")
    for row in rows:
        assert row["group"] == transformer_rows.GROUP
        for key in SPREAD_KEYS:
            assert set(row[key]) == {"median", "min", "max"} and row[key]["median"] > 0, key
        assert row["seconds"]["median"] >= row["forward_seconds"]["median"]
        assert row["ratio"] == row["seconds"]["median"] / row["torch_seconds"]["median"]
        assert row["ratio_to"] == "PyTorch float32"
        assert row["bytes_per_party"] > 0 and row["rounds"] > 0 and row["offline_bytes"] > 0
        assert row["bytes_per_party"] == row["bytes_theory"]  # the busiest party, to the byte
        assert 0 <= row["max_error"] <= row["error_bound"] == 2e-2 and row["within_bound"] is True
        assert row["layers"] == 1 and row["tokens"] == 8 and row["hidden"] == 32
        assert 0 < row["parameters"] < 100_000
        if sys.platform == "linux":
            assert row["peak_rss_bytes"] >= row["rss_before_bytes"] > 0
    # the rounds are the theory's exactly (aby3's: each party's receive phases followed across steps)
    assert additive["rounds"] == additive["rounds_theory"] and aby3["rounds"] == aby3["rounds_theory"]
    assert [(row["protocol"], row["parties"]) for row in rows] == list(SETUPS)


def test_rows_render_in_the_bench_table(rows):
    from smpc_bench.cli import table

    lines = table(rows)
    assert lines[1][0] == rows[0]["name"] and "PyTorch float32" in lines[1][2] and "EXCEEDED" not in lines[1][6]


def test_skipped_without_transformers(monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)  # import transformers now raises ImportError
    rows = transformer_rows.bert_rows(layers=1, tokens=8, **TINY)
    assert len(rows) == 1 and "transformers is not installed" in rows[0]["skipped"]


def test_token_ids_respect_the_positions():
    config = transformer_rows.bert_config(1, **TINY)
    ids = transformer_rows.token_ids(config, 8)
    assert ids.shape == (1, 8) and ids.dtype == np.int64 and 0 <= ids.min() and ids.max() < 64
    with pytest.raises(ValueError, match="tokens"):
        transformer_rows.token_ids(config, 17)


def test_peak_memory_sees_an_allocation():
    with transformer_rows.PeakMemory(period=0.001) as memory:
        block = np.ones(64 * 2**20 // 8)  # 64 MiB touched
        import time

        time.sleep(0.05)
        del block
    assert memory.peak is not None
    if memory.before is not None:
        assert memory.peak - memory.before >= 32 * 2**20
