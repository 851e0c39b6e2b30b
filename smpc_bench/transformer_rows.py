"""Bench rows for a Hugging Face transformer converted by :func:`smpc.nn.from_torch`: ``transformers.BertModel``.

One row per protocol setup: BERT (by default BERT-base, ``transformers.BertConfig()``: 12 layers, hidden 768,
12 heads, intermediate 3072, vocabulary 30522) with random weights (transformers' own initialisation under a
fixed seed; nothing is downloaded), its last hidden state on ``tokens`` token ids. Party 0 owns the weights,
party 1 the token ids (shared by :func:`smpc.nn.share_tokens`, so the embedding lookup happens privately).

Each row: the conversion time (``from_torch``, verification on), then private inference timed as the imported
models' rows are (sharing the model and the ids to revealing the hidden state to party 1; median over
``repeat``), the sharing and the forward pass apart, the offline/online split, bytes and rounds (and their theory
from :mod:`smpc.mpc.cost`), the dealer's offline bytes, the peak resident memory of the whole process
during the private runs (every party, and the dealer, are threads of this one process under the local
transport), and the error of the hidden state relative to torch's float32 one, ``max |smpc - torch| / max
|torch|``. The ratio is to torch's float32 forward pass.

Measured on the development machine (Xeon, 2 cores, 24 GiB), BERT-base, 128 tokens: 2-party additive about
50 s (11 s sharing, 39 s forward), 3.3 GiB sent per party, 2859 rounds, 7.7 GiB peak; 3-party aby3 about 108 s
(29 s sharing, 79 s forward), 3.6 GiB, 3045 rounds, 14.2 GiB peak. PyTorch and transformers are optional:
without them the rows say they were skipped. Nothing here imports torch or transformers before a row is made.
"""

from __future__ import annotations

import functools
import time
import warnings

import numpy as np

import smpc
from smpc.mpc.cost import CostRun
import smpc.nn  # smpc.nn.from_torch, smpc.nn.share_tokens (not imported by smpc itself)
from smpc.exceptions import FixedPointPrecisionWarning
from smpc.mpc import registry
from smpc_bench.memory import PeakMemory
from smpc_bench.timing import spread

GROUP = "imported transformers"
RELATIVE_ERROR_BOUND = 2e-2  # as the importer's tests and the imported models' rows
SETUPS = (("additive", 2),)  # the default setups of bert_rows; ("aby3", 3) works too (about 2.3x the time)
RUN_TIMEOUT = 3000.0  # seconds per receive: the embedding's product alone moves ~200 MiB at once


def available() -> str | None:
    """None when torch and transformers import, else why not (the skipped row's reason)."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return 'PyTorch is not installed: pip install "smpc-numpy[torch]"'
    try:
        import transformers  # noqa: F401
    except ImportError:
        return "transformers is not installed: pip install transformers"
    return None


def bert_config(layers: int = 12, hidden: int = 768, heads: int = 12, intermediate: int = 3072,
                vocabulary: int = 30522, positions: int = 512):
    """``transformers.BertConfig`` with these sizes (the defaults are BERT-base's, ``BertConfig()``)."""
    import transformers

    return transformers.BertConfig(vocab_size=vocabulary, hidden_size=hidden, num_hidden_layers=layers,
                                   num_attention_heads=heads, intermediate_size=intermediate,
                                   max_position_embeddings=positions)


@functools.cache
def _wrapper_class():
    """A torch module returning BertModel's last hidden state (defined on first use: torch imported lazily)."""
    import torch

    class LastHiddenState(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, ids):
            return self.model(input_ids=ids).last_hidden_state

    return LastHiddenState


def bert_model(config, seed: int = 0):
    """``transformers.BertModel(config)`` with transformers' random initialisation under ``seed``, eval mode,
    wrapped to return the last hidden state."""
    import torch
    import transformers

    torch.manual_seed(seed)
    model = transformers.BertModel(config).eval()
    return _wrapper_class()(model).eval()


def token_ids(config, tokens: int, seed: int = 1) -> np.ndarray:
    """(1, tokens) random token ids in [0, vocabulary)."""
    if not 1 <= tokens <= config.max_position_embeddings:
        raise ValueError(f"tokens must lie in [1, {config.max_position_embeddings}], got {tokens}")
    return np.random.default_rng(seed).integers(0, config.vocab_size, size=(1, tokens), dtype=np.int64)


def _relative_error(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.max(np.abs(got - want)) / np.max(np.abs(want)))


def _torch_forward(torch_model, ids: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return torch_model(torch.from_numpy(ids)).numpy().astype(np.float64)


def private_program(converted, ids: np.ndarray, vocabulary: int):
    """Party 0 shares the weights, party 1 its token ids; the hidden state is revealed to party 1. Each party
    returns (hidden state or None, stats with ``share``, ``forward`` and ``wall`` seconds)."""

    def program(party):
        start = time.perf_counter()
        shared_model = converted.share(party, src=0)
        shared_ids = smpc.nn.share_tokens(party, ids if party.rank == 1 else None, 1, vocabulary)
        shared = time.perf_counter() - start
        party.reset_stats()
        begin = time.perf_counter()
        hidden = shared_model(shared_ids)
        stats = party.stats
        stats["forward"] = time.perf_counter() - begin
        out = hidden.reveal(to=1)
        stats["share"] = shared
        stats["wall"] = time.perf_counter() - start
        return out, stats

    return program


class _Runs:
    """Private runs of one program: total (slowest party), sharing, forward, offline, online, the last report."""

    def __init__(self):
        self.totals, self.shares, self.forward, self.offline, self.online = [], [], [], [], []
        self.last = None

    def add(self, program, protocol: str, parties: int) -> None:
        report = smpc.launch(program, parties=parties, protocol=protocol, timeout=RUN_TIMEOUT)
        stats = [s for _, s in report.results]
        self.totals.append(max(s["wall"] for s in stats))
        self.shares.append(max(s["share"] for s in stats))
        self.forward.append(max(s["forward"] for s in stats))
        # the dealer's time where there is one; without (aby3) the parties' own offline blocks (the one-hot's)
        self.offline.append(report.dealer_stats["offline_seconds"] if report.dealer_stats
                            else max(s["offline_seconds"] for s in stats))
        self.online.append(max(s["wall"] - s["offline_seconds"] for s in stats))
        self.last = report

    def fields(self) -> dict:
        stats = [s for _, s in self.last.results]
        dealer = self.last.dealer_stats
        return {"seconds": spread(self.totals), "share_seconds": spread(self.shares),
                "forward_seconds": spread(self.forward), "offline_seconds": spread(self.offline),
                "online_seconds": spread(self.online),
                "bytes_per_party": max(s["bytes_sent"] for s in stats),
                "rounds": max(s["rounds"] for s in stats),
                "offline_bytes": (dealer["offline_bytes_sent"] if dealer
                                  else max(s["offline_bytes_sent"] for s in stats))}

    def hidden(self) -> np.ndarray:
        return self.last.results[1][0]


def theory(converted, ids_shape: tuple, protocol: str, parties: int) -> dict:
    """Bytes (busiest party) and rounds of the forward pass on cost tensors: the weights and the ids (an integer
    tensor, as share_tokens makes it) are zeros whose protocol steps only add up their theoretical cost."""
    run = CostRun(protocol, parties)
    model = converted.copy()
    for _, parameter in model.named_parameters():
        parameter.data = run.tensor(parameter.shape)
    model(run.tensor(ids_shape, integer=True))
    return run.result()


def _setup_text(protocol: str, parties: int) -> str:
    return f"{parties}-party {registry.get(protocol).label}"


def bert_row(layers: int = 12, tokens: int = 128, repeat: int = 1, protocol: str = "additive", parties: int = 2,
             *, hidden: int = 768, heads: int = 12, intermediate: int = 3072, vocabulary: int = 30522,
             positions: int = 512, seed: int = 0, prepared: tuple | None = None) -> dict:
    """One row: BertModel of these sizes (BERT-base by default) converted and run privately on ``tokens`` ids.

    ``prepared``: (torch model, converted model, ids, conversion spread, torch spread, reference) from
    :func:`prepare`, so that several setups share one conversion.
    """
    config = bert_config(layers, hidden, heads, intermediate, vocabulary, positions)
    torch_model, converted, ids, conversion, plain, reference = prepared or prepare(config, tokens, repeat, seed)
    runs = _Runs()
    with warnings.catch_warnings():
        # BertConfig's layer_norm_eps = 1e-12 encodes to 0 in fixed point; inv_sqrt clamps var + eps at 2^-16
        warnings.simplefilter("ignore", FixedPointPrecisionWarning)
        with PeakMemory() as memory:
            for _ in range(repeat):
                runs.add(private_program(converted, ids, vocabulary), protocol, parties)
        cost = theory(converted, ids.shape, protocol, parties)
    fields = runs.fields()
    error = _relative_error(runs.hidden(), reference)
    parameters = sum(p.numel() for p in torch_model.parameters())
    size = "BERT-base" if (layers, hidden, heads, intermediate, vocabulary) == (12, 768, 12, 3072, 30522) else "BERT"
    return {"group": GROUP,
            "name": f"{size} ({layers} layers, hidden {hidden}, {parameters / 1e6:.1f} M parameters) via from_torch, "
                    f"{tokens} private token ids, {_setup_text(protocol, parties)}",
            **fields, "ratio": fields["seconds"]["median"] / plain["median"], "ratio_to": "PyTorch float32",
            "torch_seconds": plain, "conversion_seconds": conversion,
            "bytes_theory": cost["bytes"], "rounds_theory": cost["rounds"],
            "peak_rss_bytes": memory.peak, "rss_before_bytes": memory.before,
            "memory_kind": "resident memory of the whole process (all parties and the dealer are its threads)",
            "layers": layers, "tokens": tokens, "hidden": hidden, "parameters": parameters,
            "protocol": protocol, "parties": parties,
            "max_error": error, "error_bound": RELATIVE_ERROR_BOUND,
            "error_kind": "max |smpc - torch| / max |torch| (last hidden state)",
            "within_bound": error <= RELATIVE_ERROR_BOUND}


def prepare(config, tokens: int, repeat: int, seed: int = 0) -> tuple:
    """The torch model, its conversion (timed once: BERT-base takes seconds), ids, torch's timing and output."""
    import torch

    torch_model = bert_model(config, seed)
    ids = token_ids(config, tokens, seed + 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FixedPointPrecisionWarning)
        start = time.perf_counter()
        converted = smpc.nn.from_torch(torch_model, (torch.from_numpy(ids),))
        conversion = spread([time.perf_counter() - start])
    reference = _torch_forward(torch_model, ids)
    seconds = []
    for _ in range(max(1, repeat)):
        begin = time.perf_counter()
        _torch_forward(torch_model, ids)
        seconds.append(time.perf_counter() - begin)
    return torch_model, converted, ids, conversion, spread(seconds), reference


def skipped_row(reason: str) -> dict:
    return {"group": GROUP, "name": f"imported transformers: skipped ({reason})", "skipped": reason,
            "seconds": {"median": 0.0, "min": 0.0, "max": 0.0}, "ratio": 0.0, "ratio_to": "skipped"}


def bert_rows(layers: int = 12, tokens: int = 128, repeat: int = 1, setups=SETUPS, **sizes) -> list[dict]:
    """A row per (protocol, parties) of ``setups`` for one BertModel (converted once), or one skipped row."""
    reason = available()
    if reason is not None:
        return [skipped_row(reason)]
    config = bert_config(layers, **sizes)
    prepared = prepare(config, tokens, repeat)
    return [bert_row(layers, tokens, repeat, protocol, parties, prepared=prepared, **sizes)
            for protocol, parties in setups]
