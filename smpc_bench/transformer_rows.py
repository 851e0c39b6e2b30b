"""Bench rows for Hugging Face transformers converted by :func:`smpc.nn.from_torch`: BERT, GPT-2 and ViT.

Three families (:data:`FAMILIES`), each built from a transformers config (by default the family's own default
config: BERT-base, ``BertConfig()``; GPT-2 small, ``GPT2Config()``; ViT-Base/16, ``ViTConfig()``) with random
weights (transformers' own initialisation under a fixed seed; nothing is downloaded), converted once and run
privately by every setup: party 0 owns the weights, party 1 the input. BERT: ``BertModel``'s last hidden state
on ``tokens`` token ids; GPT-2: ``GPT2LMHeadModel``'s logits over its whole vocabulary (50257 words) on
``tokens`` token ids, causal; the ids shared by :func:`smpc.nn.share_tokens`, so the embedding lookups happen
privately. ViT: ``ViTModel``'s last hidden state (no pooling layer) on one image with standard normal pixels
(224x224: 196 patches and the class token).

Each row: the conversion time (``from_torch``, verification on), then private inference timed as the imported
models' rows are (sharing the model and the input to revealing the output to party 1; median over
``repeat``), the sharing and the forward pass apart, the offline/online split, bytes and rounds (and their theory
from :mod:`smpc.mpc.cost`), the dealer's offline bytes, the peak resident memory of the whole process
during the private runs (every party, and the dealer, are threads of this one process under the local
transport), and the error of the output relative to torch's float32 one, ``max |smpc - torch| / max
|torch|`` (and for logits the share of positions whose most likely next word is torch's). The ratio is to
torch's float32 forward pass.

Measured on the development machine (Xeon, 2 cores, 24 GiB, shared; repeat 1, with the malloc settings
``python -m smpc_bench`` starts with; the fastest of three runs: each family alone in a process twice, and the
bench's group once), 2-party additive / 3-party aby3, wall (forward) seconds, GB sent per party, rounds (equal to
the theory), peak GB of the process, relative error:

- BERT-base, 128 tokens: 29.6 (20.3) / 39.1 (29.9) s, 3.10 / 4.17 GB, 2941 / 3257 rounds, 8.2 / 12.4 GB,
  4.7e-4 / 4.9e-4.
- GPT-2 small, 128 tokens, logits: 30.7 (29.1) / 50.3 (34.8) s, 3.92 / 5.13 GB, 2979 / 3331 rounds, 9.7 / 14.3 GB,
  2.1e-3 / 2.0e-3, every position's most likely next word torch's. ``GPT2Model``'s last hidden state alone (2-party
  additive): 30.9 (21.0) s, 3.56 GB, 2977 rounds, 9.4 GB; the head (a 128x768 by 768x50257 product) adds 8 s.
- ViT-Base/16, 224x224: 29.7 (28.7) / 52.8 (42.8) s, 4.66 / 7.57 GB, 3037 / 3353 rounds, 7.2 / 9.9 GB,
  6.7e-4 / 7.0e-4.

Sharing the weights varies most between runs (1.3 to 21 s): it writes GBs of memory the process has not touched
yet. GPT-2's error is 4x the others': with random weights its pre-norm residual stream has a standard deviation
near 0.02, and each LayerNorm scales the stream's fixed-point error by 1/std (the first one turns the embeddings'
1.5e-5, a unit of 2^-16, into 5.8e-4).

PyTorch and transformers are optional: without them the group is one skipped row. Nothing here imports torch or
transformers before a row is made.
"""

from __future__ import annotations

import dataclasses
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
SETUPS = (("additive", 2),)  # the default setups of the rows; ("aby3", 3) works too
RUN_TIMEOUT = 3000.0  # seconds per receive: the embedding's product alone moves ~200 MiB at once
TOKENS = 128  # token ids of the token families' input unless told


@dataclasses.dataclass(frozen=True)
class Family:
    """A transformers model family of the bench: its config and model classes, the config's arguments for the
    sizes (``layers``, ``hidden``, ...), the model's input (token ids or an image) and the output compared."""

    key: str  # its sizes' key in the bench's SIZES
    title: str
    default_title: str  # the title when the config is the config class's default
    config_class: str
    model_class: str
    sizes: dict  # size name -> the config's argument
    input_name: str  # the model's keyword argument: "input_ids" (token ids) or "pixel_values" (an image)
    output: str  # the field of the model's output compared: "last_hidden_state" or "logits"
    model_options: dict = dataclasses.field(default_factory=dict)
    call_options: dict = dataclasses.field(default_factory=dict)
    note: str = ""  # said after the input in the row's name

    @property
    def tokens(self) -> bool:
        return self.input_name == "input_ids"


_TEXT_SIZES = {"layers": "num_hidden_layers", "hidden": "hidden_size", "heads": "num_attention_heads",
               "intermediate": "intermediate_size", "vocabulary": "vocab_size",
               "positions": "max_position_embeddings"}
BERT = Family("bert", "BERT", "BERT-base", "BertConfig", "BertModel", _TEXT_SIZES, "input_ids", "last_hidden_state")
# the language-model head: measured, its logits over 50257 words cost 10% more bytes and 8 s more than GPT2Model's
# hidden state (2-party additive, 128 tokens), and the aby3 run peaks at 14.3 GB: it fits, so the rows show it
GPT2 = Family("gpt2", "GPT-2", "GPT-2 small", "GPT2Config", "GPT2LMHeadModel",
              {"layers": "n_layer", "hidden": "n_embd", "heads": "n_head", "intermediate": "n_inner",
               "vocabulary": "vocab_size", "positions": "n_positions"},
              "input_ids", "logits", call_options={"use_cache": False}, note="causal mask")
VIT = Family("vit", "ViT", "ViT-Base/16", "ViTConfig", "ViTModel",
             {"layers": "num_hidden_layers", "hidden": "hidden_size", "heads": "num_attention_heads",
              "intermediate": "intermediate_size", "image": "image_size", "patch": "patch_size"},
             "pixel_values", "last_hidden_state", model_options={"add_pooling_layer": False})
FAMILIES = (BERT, GPT2, VIT)


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


def make_config(family: Family, **sizes):
    """The family's transformers config with these sizes (those not given keep the config class's defaults)."""
    import transformers

    unknown = set(sizes) - set(family.sizes)
    if unknown:
        raise ValueError(f"{family.title} has no size {', '.join(sorted(unknown))}; its sizes: "
                         f"{', '.join(family.sizes)}")
    config_class = getattr(transformers, family.config_class)
    arguments = {family.sizes[name]: value for name, value in sizes.items()}
    defaults = config_class()
    for special in ("bos_token_id", "eos_token_id"):  # GPT-2's end of text is its last word: so in a smaller one
        if "vocabulary" in sizes and (getattr(defaults, special, None) or 0) >= sizes["vocabulary"]:
            arguments[special] = sizes["vocabulary"] - 1
    return config_class(**arguments)


def bert_config(layers: int = 12, hidden: int = 768, heads: int = 12, intermediate: int = 3072,
                vocabulary: int = 30522, positions: int = 512):
    """``transformers.BertConfig`` with these sizes (the defaults are BERT-base's, ``BertConfig()``)."""
    return make_config(BERT, layers=layers, hidden=hidden, heads=heads, intermediate=intermediate,
                       vocabulary=vocabulary, positions=positions)


def is_default(config) -> bool:
    """Whether ``config`` is its class's default config (BERT-base, GPT-2 small, ViT-Base/16)."""
    return config.to_dict() == type(config)().to_dict()


@functools.cache
def _output_class():
    """A torch module returning one field of a transformers model's output (defined on first use: torch imported
    lazily)."""
    import torch

    class Output(torch.nn.Module):
        def __init__(self, model, input_name: str, output: str, options: dict):
            super().__init__()
            self.model, self.input_name, self.output, self.options = model, input_name, output, dict(options)

        def forward(self, inputs):
            return getattr(self.model(**{self.input_name: inputs}, **self.options), self.output)

    return Output


def make_model(family: Family, config, seed: int = 0):
    """The family's model with transformers' random initialisation under ``seed``, eval mode, wrapped to take
    its input as one tensor and return the compared output."""
    import torch
    import transformers

    torch.manual_seed(seed)
    model = getattr(transformers, family.model_class)(config, **family.model_options).eval()
    return _output_class()(model, family.input_name, family.output, family.call_options).eval()


def token_ids(config, tokens: int, seed: int = 1) -> np.ndarray:
    """(1, tokens) random token ids in [0, vocabulary)."""
    if not 1 <= tokens <= config.max_position_embeddings:
        raise ValueError(f"tokens must lie in [1, {config.max_position_embeddings}], got {tokens}")
    return np.random.default_rng(seed).integers(0, config.vocab_size, size=(1, tokens), dtype=np.int64)


def image(config, seed: int = 1) -> np.ndarray:
    """(1, channels, side, side) standard normal pixels, float32."""
    side = config.image_size
    return np.random.default_rng(seed).standard_normal((1, config.num_channels, side, side)).astype(np.float32)


def _relative_error(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.max(np.abs(got - want)) / np.max(np.abs(want)))


def _torch_forward(torch_model, inputs: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return torch_model(torch.from_numpy(inputs)).numpy().astype(np.float64)


def _share_input(party, inputs, vocabulary: int | None):
    """Party 1's input: token ids shared as integers (``share_tokens``) when there is a vocabulary, else pixels."""
    mine = inputs if party.rank == 1 else None
    if vocabulary is None:
        return party.share(None if mine is None else mine.astype(np.float64), src=1)
    return smpc.nn.share_tokens(party, mine, 1, vocabulary)


def private_program(converted, inputs: np.ndarray, vocabulary: int | None):
    """Party 0 shares the weights, party 1 its input (token ids of ``vocabulary``, or an image where it is None);
    the output is revealed to party 1. Each party returns (output or None, stats with ``share``, ``forward`` and
    ``wall`` seconds)."""

    def program(party):
        start = time.perf_counter()
        shared_model = converted.share(party, src=0)
        shared_input = _share_input(party, inputs, vocabulary)
        shared = time.perf_counter() - start
        party.reset_stats()
        begin = time.perf_counter()
        output = shared_model(shared_input)
        stats = party.stats
        stats["forward"] = time.perf_counter() - begin
        out = output.reveal(to=1)
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

    def output(self) -> np.ndarray:
        return self.last.results[1][0]


def theory(converted, input_shape: tuple, protocol: str, parties: int, integer: bool = True) -> dict:
    """Bytes (busiest party) and rounds of the forward pass on cost tensors: the weights and the input (an integer
    tensor for token ids, as share_tokens makes it; fixed point for an image) are zeros whose protocol steps only
    add up their theoretical cost."""
    run = CostRun(protocol, parties)
    model = converted.copy()
    for _, parameter in model.named_parameters():
        parameter.data = run.tensor(parameter.shape)
    model(run.tensor(input_shape, integer=integer))
    return run.result()


@dataclasses.dataclass
class Prepared:
    """One family's model, converted once for every setup: torch's model and timing, the input, torch's output."""

    family: Family
    config: object
    torch_model: object
    converted: object
    inputs: np.ndarray
    conversion: dict
    torch_seconds: dict
    reference: np.ndarray

    @property
    def vocabulary(self) -> int | None:
        return self.config.vocab_size if self.family.tokens else None

    @property
    def tokens(self) -> int:
        """Positions of the sequence: the token ids, or the image's patches and the class token."""
        if self.family.tokens:
            return self.inputs.shape[1]
        return (self.config.image_size // self.config.patch_size) ** 2 + 1


def prepare(family: Family, config, repeat: int, tokens: int = TOKENS, seed: int = 0) -> Prepared:
    """The torch model, its conversion (timed once: the base sizes take seconds), the input, torch's timing and
    output."""
    import torch

    torch_model = make_model(family, config, seed)
    inputs = token_ids(config, tokens, seed + 1) if family.tokens else image(config, seed + 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FixedPointPrecisionWarning)
        start = time.perf_counter()
        converted = smpc.nn.from_torch(torch_model, (torch.from_numpy(inputs),))
        conversion = spread([time.perf_counter() - start])
    reference = _torch_forward(torch_model, inputs)
    seconds = []
    for _ in range(max(1, repeat)):
        begin = time.perf_counter()
        _torch_forward(torch_model, inputs)
        seconds.append(time.perf_counter() - begin)
    return Prepared(family, config, torch_model, converted, inputs, conversion, spread(seconds), reference)


def _setup_text(protocol: str, parties: int) -> str:
    return f"{parties}-party {registry.get(protocol).label}"


def _name(prepared: Prepared, parameters: int, setup: str) -> str:
    family, config = prepared.family, prepared.config
    title = family.default_title if is_default(config) else family.title
    model = family.model_class + (f": logits over {config.vocab_size} words" if family.output == "logits" else "")
    if family.tokens:
        source = f"{prepared.tokens} private token ids"
    else:
        source = f"a private {config.image_size}x{config.image_size} image ({prepared.tokens} tokens)"
    note = f", {family.note}" if family.note else ""
    return (f"{title} ({model}, {config.num_hidden_layers} layers, hidden {config.hidden_size}, "
            f"{parameters / 1e6:.1f} M parameters) via from_torch, {source}{note}, {setup}")


def row(prepared: Prepared, repeat: int = 1, protocol: str = "additive", parties: int = 2) -> dict:
    """One row: the prepared model run privately ``repeat`` times by ``parties`` parties of ``protocol``."""
    family, converted = prepared.family, prepared.converted
    runs = _Runs()
    with warnings.catch_warnings():
        # layer_norm_eps = 1e-12 (BERT's, ViT's) encodes to 0 in fixed point; inv_sqrt clamps var + eps at 2^-16
        warnings.simplefilter("ignore", FixedPointPrecisionWarning)
        with PeakMemory() as memory:
            for _ in range(repeat):
                runs.add(private_program(converted, prepared.inputs, prepared.vocabulary), protocol, parties)
        cost = theory(converted, prepared.inputs.shape, protocol, parties, integer=family.tokens)
    fields = runs.fields()
    output, reference = runs.output(), prepared.reference
    error = _relative_error(output, reference)
    parameters = sum(p.numel() for p in prepared.torch_model.parameters())
    extra = {}
    if family.output == "logits":  # the most likely next word at each position, as torch's
        extra["top1_agreement"] = float(np.mean(output.argmax(axis=-1) == reference.argmax(axis=-1)))
    return {"group": GROUP,
            "name": _name(prepared, parameters, _setup_text(protocol, parties)),
            **fields, "ratio": fields["seconds"]["median"] / prepared.torch_seconds["median"],
            "ratio_to": "PyTorch float32",
            "torch_seconds": prepared.torch_seconds, "conversion_seconds": prepared.conversion,
            "bytes_theory": cost["bytes"], "rounds_theory": cost["rounds"],
            "peak_rss_bytes": memory.peak, "rss_before_bytes": memory.before,
            "memory_kind": "resident memory of the whole process (all parties and the dealer are its threads)",
            "family": family.key, "model": family.model_class,
            "layers": prepared.config.num_hidden_layers, "tokens": prepared.tokens,
            "hidden": prepared.config.hidden_size, "parameters": parameters,
            **({} if family.tokens else {"image": prepared.config.image_size}),
            "protocol": protocol, "parties": parties,
            "max_error": error, "error_bound": RELATIVE_ERROR_BOUND,
            "error_kind": f"max |smpc - torch| / max |torch| ({family.output.replace('_', ' ')})",
            "within_bound": error <= RELATIVE_ERROR_BOUND, **extra}


def skipped_row(reason: str) -> dict:
    return {"group": GROUP, "name": f"imported transformers: skipped ({reason})", "skipped": reason,
            "seconds": {"median": 0.0, "min": 0.0, "max": 0.0}, "ratio": 0.0, "ratio_to": "skipped"}


def family_rows(family: Family, repeat: int = 1, setups=SETUPS, tokens: int | None = None, seed: int = 0,
                **sizes) -> list[dict]:
    """A row per (protocol, parties) of ``setups`` for one model of ``family`` (converted once; ``sizes`` as
    :func:`make_config` takes them; ``tokens``, for the token families, defaults to :data:`TOKENS`), or one
    skipped row."""
    reason = available()
    if reason is not None:
        return [skipped_row(reason)]
    if not family.tokens and tokens is not None:
        raise ValueError(f"{family.title} takes an image, not token ids: its tokens follow its image and patch sizes")
    prepared = prepare(family, make_config(family, **sizes), repeat, tokens or TOKENS, seed)
    return [row(prepared, repeat, protocol, parties) for protocol, parties in setups]


def bert_rows(layers: int = 12, tokens: int = TOKENS, repeat: int = 1, setups=SETUPS, **sizes) -> list[dict]:
    """A row per (protocol, parties) of ``setups`` for one BertModel (converted once), or one skipped row."""
    return family_rows(BERT, repeat, setups, tokens, layers=layers, **sizes)


def gpt2_rows(layers: int = 12, tokens: int = TOKENS, repeat: int = 1, setups=SETUPS, **sizes) -> list[dict]:
    """A row per (protocol, parties) of ``setups`` for one GPT2LMHeadModel (converted once), or one skipped row."""
    return family_rows(GPT2, repeat, setups, tokens, layers=layers, **sizes)


def vit_rows(layers: int = 12, repeat: int = 1, setups=SETUPS, **sizes) -> list[dict]:
    """A row per (protocol, parties) of ``setups`` for one ViTModel (converted once), or one skipped row."""
    return family_rows(VIT, repeat, setups, layers=layers, **sizes)


def transformer_rows(sizes: dict, repeat: int = 1, setups=SETUPS) -> list[dict]:
    """The rows of every family with sizes in ``sizes`` (its keys: the families' ``key``, e.g. ``{"bert":
    {"layers": 12, "tokens": 128}, "vit": {}}``), one family after another, or one skipped row."""
    reason = available()
    if reason is not None:
        return [skipped_row(reason)]
    return [r for family in FAMILIES if family.key in sizes
            for r in family_rows(family, repeat, setups, **sizes[family.key])]
