"""A warning when private data given to ``party.share`` mostly vanishes in fixed point (encodes to 0).

Raised at the source party only (the others never see the data), naming counts and the resolution, never a value.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import numpy as np

from smpc.exceptions import FixedPointPrecisionWarning

_PACKAGE = str(Path(__file__).resolve().parents[1]) + os.sep  # the smpc package folder


def warn_if_shared_data_vanishes(values, ring: np.ndarray, frac_bits: int) -> None:
    """Warn with :class:`FixedPointPrecisionWarning` when at least half of the nonzero elements of ``values``
    encode to 0 (|v| <= 2^-(frac_bits+1)): the data sits at or below the resolution, so most of it is lost.

    A few tiny elements among larger ones (a weight matrix has some) lose no more than any element's rounding
    (2^-(frac_bits+1)), so they do not warn; neither do exact zeros.
    """
    warn_if_vanished(*vanished_counts(values, ring), frac_bits)


def vanished_counts(values, ring: np.ndarray) -> tuple[int, int]:
    """(nonzero elements of ``values`` that encode to 0 in ``ring``, nonzero elements of ``values``): parts of a
    large value may be counted one at a time and summed."""
    vanished = int(np.count_nonzero(ring == 0))
    nonzero = int(np.count_nonzero(values))
    return nonzero - (ring.size - vanished), nonzero


def warn_if_vanished(lost: int, nonzero: int, frac_bits: int) -> None:
    """:func:`warn_if_shared_data_vanishes` from the (summed) counts of :func:`vanished_counts`."""
    if lost == 0 or 2 * lost < nonzero:
        return
    warnings.warn(
        f"share(): {lost} of the {nonzero} nonzero elements are below the fixed-point resolution 2^-{frac_bits} "
        f"(about {2.0**-frac_bits:.2g}) and encode to 0; rescale the data or raise frac_bits",
        FixedPointPrecisionWarning,
        stacklevel=_caller_level(),
    )


def _caller_level() -> int:
    """The warnings stacklevel of the first frame outside smpc: the program line that called share()."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    return level
