"""Arrays in Flower messages as smpc wire frames: the same validated encoding as smpc's own channels.

A list of numpy arrays travels as one ConfigRecord field holding a list of byte strings, each an smpc
frame (:mod:`smpc.net.wire`: magic, version, an allow-listed dtype, shape, payload). Decoding checks every
header before it allocates anything and never unpickles; a malformed frame raises
:class:`smpc.net.wire.WireFormatError`.
"""

from __future__ import annotations

import numpy as np
from flwr.app import ConfigRecord

from smpc.net import wire

FIELD = "frames"
#: frames one message may carry, and bytes per frame (a 10^8-parameter model in one frame still fits)
MAX_FRAMES = 1024
MAX_FRAME_BYTES = wire.DEFAULT_MAX_PAYLOAD


def encode(arrays: list[np.ndarray]) -> ConfigRecord:
    """The arrays as a record of frames."""
    frames = []
    for array in arrays:
        header, payload = wire.encode_frame(wire.Kind.DATA, np.asarray(array))
        frames.append(header + payload.tobytes())
    return ConfigRecord({FIELD: frames})


def decode(record) -> list[np.ndarray]:
    """The arrays of a record made by :func:`encode` (``WireFormatError`` naming what is wrong)."""
    if record is None or FIELD not in record:
        raise wire.WireFormatError("a message without smpc frames")
    frames = record[FIELD]
    if not isinstance(frames, list) or len(frames) > MAX_FRAMES or not all(isinstance(f, bytes) for f in frames):
        raise wire.WireFormatError(f"the frames must be a list of at most {MAX_FRAMES} byte strings")
    arrays = []
    for frame in frames:
        if len(frame) < wire.FIXED_HEADER_BYTES:
            raise wire.WireFormatError(f"truncated header ({len(frame)} bytes)")
        kind, _, ndim, _, payload = wire.decode_fixed_header(frame[: wire.FIXED_HEADER_BYTES], MAX_FRAME_BYTES)
        header_bytes = wire.FIXED_HEADER_BYTES + 8 * ndim
        if kind != wire.Kind.DATA or len(frame) != header_bytes + payload:
            raise wire.WireFormatError(f"a frame of {len(frame)} bytes announces {header_bytes + payload}")
        _, array = wire.decode_frame(frame[:header_bytes], memoryview(frame)[header_bytes:], MAX_FRAME_BYTES)
        arrays.append(array)
    return arrays
