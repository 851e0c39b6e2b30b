"""Bench rows for Paillier: throughput against python-paillier (phe) on a warm and on a fresh key, and the
offline cost of dealer-free two-party triples (``dealer="paillier"``) against the trusted dealer's."""

from __future__ import annotations

import functools

import smpc
from smpc.mpc.bilinear import MATMUL, MUL, Bilinear
from smpc_bench import paillier_bench
from smpc_bench.timing import spread

GROUP = "Paillier (2048-bit keys)"
FRESH_COUNTS = (1, 8, 100, 2000)  # values encrypted on a fresh key (those up to the mode's count)


def throughput_rows(count: int, repeat: int) -> list[dict]:
    """Encryption and decryption per value on a warm key, ours against phe, measured side by side in one
    run; then encryption of 1, 8, 100 and 2000 values (those up to ``count``, and ``count``) on a fresh key."""
    measured = paillier_bench.measure(bits=2048, count=count, repeat=repeat)
    rows = []
    for label, ours_key, phe_key in [("encrypt", "ours_encrypt", "phe_encrypt"),
                                     ("decrypt", "ours_decrypt", "phe_decrypt"),
                                     ("decrypt, packed", "ours_decrypt_packed", "phe_decrypt")]:
        ours, theirs = measured[ours_key], measured[phe_key]  # values per second
        rows.append({
            "group": GROUP,
            "name": f"{label}: {ours:,.0f} values/s (phe {theirs:,.0f}), {count} values",
            "seconds": spread([1.0 / ours]),
            "ratio": theirs / ours,
            "ratio_to": "phe per value",
            "speedup": ours / theirs,
        })
    return rows + fresh_key_rows(sorted({c for c in FRESH_COUNTS if c <= count} | {count}), repeat)


def fresh_key_rows(counts: list[int], repeat: int) -> list[dict]:
    """Seconds to encrypt ``count`` values with a key fresh from keygen, against phe (ratio: ours / phe)."""
    rows = []
    for measured in paillier_bench.measure_fresh(counts, bits=2048, repeat=repeat):
        ours, theirs = measured["median"], measured["phe_seconds"]
        rows.append({
            "group": GROUP,
            "name": (f"encrypt {measured['count']} value{'s' if measured['count'] > 1 else ''} on a fresh key: "
                     f"{ours * 1e3:.3g} ms (phe {theirs * 1e3:.3g} ms)"),
            "seconds": spread(measured["seconds"]),
            "ratio": ours / theirs,
            "ratio_to": "phe, fresh key",
            "speedup": theirs / ours,
            "values": measured["count"],
        })
    return rows


def _triples(requests: list[tuple[Bilinear, tuple, tuple]], party) -> dict:
    party.reset_stats()
    for op, shape_x, shape_y in requests:
        party.dealer.complete(party.dealer.triple(op, shape_x, shape_y))  # waits for a trusted dealer's delivery
    return party.stats


def triple_rows(elements: int, side: int, repeat: int) -> list[dict]:
    """Offline seconds per triple: ``elements`` element-wise and one side^3 matrix triple, both dealers."""
    cases = [(f"{elements} element-wise triples", [(Bilinear(MUL), (elements,), (elements,))], elements),
             (f"one {side}x{side} @ {side}x{side} matrix triple", [(Bilinear(MATMUL), (side, side), (side, side))],
              1)]
    rows = []
    for label, requests, triples in cases:
        program = functools.partial(_triples, requests)
        measured = {}
        for dealer in ("trusted", "paillier"):
            seconds, last = [], None
            for _ in range(repeat):
                last = smpc.launch(program, parties=2, protocol="additive", dealer=dealer)
                busiest = max(stats["offline_seconds"] for stats in last.results)
                if last.dealer_stats:
                    busiest = max(busiest, last.dealer_stats["offline_seconds"])
                seconds.append(busiest)
            offline_bytes = max(stats["offline_bytes_sent"] for stats in last.results)
            measured[dealer] = (spread(seconds), offline_bytes)
        (ours, ours_bytes), (trusted, _) = measured["paillier"], measured["trusted"]
        per = ours["median"] / triples
        rows.append({
            "group": GROUP,
            "name": (f"dealer-free triples (2 parties, offline): {label}, {per * 1e3:.3g} ms per "
                     f"{'triple' if triples > 1 else 'matrix triple'}, {ours_bytes / 2**20:.2f} MiB sent"),
            "seconds": ours,
            "ratio": ours["median"] / max(trusted["median"], 1e-6),
            "ratio_to": "trusted dealer",
            "seconds_per_triple": per,
            "offline_bytes": ours_bytes,
        })
    return rows
