"""Showing text that came from a peer: printable ASCII only, escaped, length-capped.

A peer's ABORT reason or REJECT message reaches the operator's terminal and logs; raw, it
could hold newlines or ANSI escape sequences that forge other lines (a fake "finished").
"""

from __future__ import annotations

MAX_PEER_TEXT = 200


def printable(data: bytes | bytearray | memoryview | str, limit: int = MAX_PEER_TEXT) -> str:
    """``data`` with every byte outside printable ASCII (0x20..0x7e) written as ``\\xNN``, cut to ``limit``.

    A cut text ends in ``...``; backslashes are escaped too, so the result reads back unambiguously.
    """
    raw = data.encode("utf-8", "replace") if isinstance(data, str) else bytes(data)
    out: list[str] = []
    length = 0
    for byte in raw:
        if byte == 0x5C:
            piece = "\\\\"
        elif 0x20 <= byte <= 0x7E:
            piece = chr(byte)
        else:
            piece = f"\\x{byte:02x}"
        if length + len(piece) > limit:
            out.append("...")
            break
        out.append(piece)
        length += len(piece)
    return "".join(out)
