"""The transformer bench rows (smpc_bench.transformer_rows) on tiny BERT, GPT-2 and ViT models: their fields, their
theory, their error."""

import sys

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from smpc_bench import transformer_rows  # noqa: E402

TINY = {"hidden": 32, "heads": 2, "intermediate": 64, "vocabulary": 64, "positions": 16}  # BERT's and GPT-2's
TINY_VIT = {"hidden": 32, "heads": 2, "intermediate": 64, "image": 32, "patch": 16}  # 4 patches and the class token
SPREAD_KEYS = ("seconds", "share_seconds", "forward_seconds", "offline_seconds", "online_seconds",
               "conversion_seconds", "torch_seconds")


SETUPS = (("additive", 2), ("aby3", 3))


@pytest.fixture(scope="module")
def rows():
    return transformer_rows.bert_rows(layers=1, tokens=8, repeat=1, setups=SETUPS, **TINY)


@pytest.fixture(scope="module")
def gpt2_rows():
    return transformer_rows.gpt2_rows(layers=1, tokens=8, repeat=1, setups=SETUPS, **TINY)


@pytest.fixture(scope="module")
def vit_rows():  # through the bench's entry point, which picks the families' sizes out of the bench's
    return transformer_rows.transformer_rows({"vit": {"layers": 1, **TINY_VIT}, "ring": 300}, 1, SETUPS)


def check_rows(rows, tokens: int) -> None:
    """What every family's rows promise: timings, bytes and rounds equal to the theory, the error within its bound."""
    additive, aby3 = rows
    assert "2-party additive (trusted dealer)" in additive["name"] and "3-party aby3" in aby3["name"]
    for row in rows:
        assert row["group"] == transformer_rows.GROUP
        assert "1 layers, hidden 32, 0.0 M parameters) via from_torch" in row["name"]
        for key in SPREAD_KEYS:
            assert set(row[key]) == {"median", "min", "max"} and row[key]["median"] > 0, key
        assert row["seconds"]["median"] >= row["forward_seconds"]["median"]
        assert row["ratio"] == row["seconds"]["median"] / row["torch_seconds"]["median"]
        assert row["ratio_to"] == "PyTorch float32"
        assert row["bytes_per_party"] > 0 and row["rounds"] > 0 and row["offline_bytes"] > 0
        assert row["bytes_per_party"] == row["bytes_theory"]  # the busiest party, to the byte
        assert 0 <= row["max_error"] <= row["error_bound"] == 2e-2 and row["within_bound"] is True
        assert row["layers"] == 1 and row["tokens"] == tokens and row["hidden"] == 32
        assert 0 < row["parameters"] < 100_000
        if sys.platform == "linux":
            assert row["peak_rss_bytes"] >= row["rss_before_bytes"] > 0
    # the rounds are the theory's exactly (aby3's: each party's receive phases followed across steps)
    assert additive["rounds"] == additive["rounds_theory"] and aby3["rounds"] == aby3["rounds_theory"]
    assert [(row["protocol"], row["parties"]) for row in rows] == list(SETUPS)


def test_tiny_bert_rows_fields_and_error(rows):
    check_rows(rows, 8)
    for row in rows:
        assert row["name"].startswith("BERT (BertModel, ") and ", 8 private token ids, " in row["name"]
        assert (row["family"], row["model"]) == ("bert", "BertModel") and "last hidden state" in row["error_kind"]
        assert "top1_agreement" not in row and "image" not in row


def test_tiny_gpt2_rows_fields_and_error(gpt2_rows):
    check_rows(gpt2_rows, 8)
    for row in gpt2_rows:
        assert row["name"].startswith("GPT-2 (GPT2LMHeadModel: logits over 64 words, ")
        assert "8 private token ids, causal mask, " in row["name"]
        assert (row["family"], row["model"]) == ("gpt2", "GPT2LMHeadModel") and "(logits)" in row["error_kind"]
        # within the bound no position's most likely word can change but one, whose top two logits are 0.016 apart
        assert 7 / 8 <= row["top1_agreement"] <= 1


def test_tiny_vit_rows_fields_and_error(vit_rows):
    check_rows(vit_rows, 5)
    for row in vit_rows:
        assert row["name"].startswith("ViT (ViTModel, ") and "a private 32x32 image (5 tokens), " in row["name"]
        assert (row["family"], row["model"], row["image"]) == ("vit", "ViTModel", 32)


def test_rows_render_in_the_bench_table(rows):
    from smpc_bench.cli import table

    lines = table(rows)
    assert lines[1][0] == rows[0]["name"] and "PyTorch float32" in lines[1][2] and "EXCEEDED" not in lines[1][6]


def test_skipped_without_transformers(monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)  # import transformers now raises ImportError
    for rows in (transformer_rows.bert_rows(layers=1, tokens=8, **TINY),
                 transformer_rows.transformer_rows({"gpt2": {"layers": 1, **TINY}, "vit": TINY_VIT})):
        assert len(rows) == 1 and "transformers is not installed" in rows[0]["skipped"]


def test_the_bench_sizes_make_tiny_configs_and_the_default_ones():
    from smpc_bench.cli import SIZES

    for family in transformer_rows.FAMILIES:
        quick, full = (dict(SIZES[mode][family.key]) for mode in ("quick", "full"))
        assert ("tokens" in quick) == ("tokens" in full) == family.tokens
        quick.pop("tokens", None), full.pop("tokens", None)
        assert not transformer_rows.is_default(transformer_rows.make_config(family, **quick))
        assert transformer_rows.is_default(transformer_rows.make_config(family, **full))  # BERT-base, GPT-2 small...
    assert transformer_rows.make_config(transformer_rows.GPT2, vocabulary=64).eos_token_id == 63  # within it
    with pytest.raises(ValueError, match="ViT has no size tokens, vocabulary"):
        transformer_rows.make_config(transformer_rows.VIT, vocabulary=3, tokens=2)
    with pytest.raises(ValueError, match="takes an image, not token ids"):
        transformer_rows.vit_rows(layers=1, tokens=8, **TINY_VIT)


def test_token_ids_respect_the_positions_and_images_the_config():
    config = transformer_rows.bert_config(1, **TINY)
    ids = transformer_rows.token_ids(config, 8)
    assert ids.shape == (1, 8) and ids.dtype == np.int64 and 0 <= ids.min() and ids.max() < 64
    with pytest.raises(ValueError, match="tokens"):
        transformer_rows.token_ids(config, 17)
    pixels = transformer_rows.image(transformer_rows.make_config(transformer_rows.VIT, **TINY_VIT))
    assert pixels.shape == (1, 3, 32, 32) and pixels.dtype == np.float32


def test_peak_memory_sees_an_allocation():
    import mmap
    import time

    with transformer_rows.PeakMemory(period=0.001) as memory:
        block = mmap.mmap(-1, 64 * 2**20)  # 64 MiB of fresh pages (not free memory the heap already holds), touched
        np.frombuffer(block, dtype=np.uint8)[:] = 1
        time.sleep(0.05)
        block.close()
    assert memory.peak is not None
    if memory.before is not None:
        assert memory.peak - memory.before >= 32 * 2**20
