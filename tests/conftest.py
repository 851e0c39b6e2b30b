"""Shared test settings: hypothesis profiles and helpers to run party programs."""

import os

import numpy as np
from hypothesis import HealthCheck, Phase, settings

settings.register_profile(
    "default",
    deadline=None,
    max_examples=int(os.environ.get("SMPC_HYPOTHESIS_EXAMPLES", "25")),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=False,
)
settings.load_profile("default")

# a TCP example launches processes: on failure, report it rather than spend minutes shrinking
TCP_PHASES = (Phase.explicit, Phase.reuse, Phase.generate)


def only(rank_value, party, src):
    """``value`` on the source party, None elsewhere (what share() expects)."""
    return rank_value if party.rank == src else None


def assert_close(actual, expected, atol):
    """Element-wise |actual - expected| <= atol, with a readable failure."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    if actual.size:
        worst = float(np.max(np.abs(actual - expected)))
        assert worst <= atol, f"max abs error {worst} > {atol}"


def frame(shape):
    """Bytes on the wire for one uint64 array of ``shape``: 20-byte header, dims, payload."""
    return 20 + 8 * len(shape) + 8 * int(np.prod(shape))
