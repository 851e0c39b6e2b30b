"""Paillier throughput next to python-paillier (``phe``), on one key, in one run.

:func:`measure` times, per value, ``phe`` encryption and decryption and ours (unpacked and packed)
with the same modulus and the same float data, and returns throughputs, ratios and the worst
decryption error, on a warm key: the key first encrypts the same batch twice (its comb is then
built, see :mod:`smpc.he.randomness`) and the kernels are compiled or loaded from numba's cache,
reported apart as ``warmup_seconds``. :func:`measure_fresh` times what a fresh key costs: encrypting
a few values right after key generation, against phe on the same number of values.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from smpc.he import paillier


def measure(bits: int = 2048, count: int = 2000, repeat: int = 1, *, insecure: bool = False,
            phe_count: int | None = None, workers: int | None = None, additions: int = 15) -> dict:
    """Per-value throughputs (values per second, median of ``repeat`` runs) of phe and smpc.he.paillier.

    Keys: ``phe_encrypt``, ``phe_decrypt``, ``ours_encrypt``, ``ours_decrypt``, ``ours_encrypt_packed``,
    ``ours_decrypt_packed`` (values/s); ``encrypt_ratio``, ``decrypt_ratio``, ``encrypt_packed_ratio``,
    ``decrypt_packed_ratio`` (ours / phe per value); ``keygen_seconds``, ``warmup_seconds``, ``slots``
    (values per packed ciphertext), ``max_error`` (worst decryption error, all three ways), and the
    parameters. ``phe_count`` (default ``count``) values go through phe, whose encryption is slow.
    Keys below 2048 bits need ``insecure=True`` (quick runs in tests).
    """
    start = time.perf_counter()
    pk, sk = paillier.keygen(bits, insecure=insecure)
    keygen_seconds = time.perf_counter() - start
    parallelism = paillier.Parallelism(workers=workers)
    sk = sk.with_parallelism(parallelism)
    pk = sk.public_key
    phe_pk, phe_sk = pk.to_phe(), sk.to_phe()
    values = np.random.default_rng(0).normal(0, 100, count)
    phe_values = [float(v) for v in values[: phe_count or count]]
    try:
        start = time.perf_counter()
        for _ in range(2):  # the key's comb for batches of this size (smpc.he.randomness)
            warm = pk.encrypt(values)
        sk.decrypt(warm)  # compiles the decryption kernel (smpc.he.montgomery) or loads it from the cache
        warmup_seconds = time.perf_counter() - start
        rows = [_one_run(pk, sk, phe_pk, phe_sk, values, phe_values, additions) for _ in range(repeat)]
    finally:
        parallelism.close()
    result = {name: statistics.median(row[name] for row in rows) for name in rows[0]}
    result.update(
        bits=bits, count=count, phe_count=len(phe_values), workers=parallelism.workers, repeat=repeat,
        keygen_seconds=keygen_seconds, warmup_seconds=warmup_seconds,
        slots=rows[-1]["slots"], max_error=max(row["max_error"] for row in rows),
    )
    for name in ("encrypt", "decrypt"):
        result[f"{name}_ratio"] = result[f"ours_{name}"] / result[f"phe_{name}"]
        result[f"{name}_packed_ratio"] = result[f"ours_{name}_packed"] / result[f"phe_{name}"]
    return result


def _one_run(pk, sk, phe_pk, phe_sk, values, phe_values, additions) -> dict:
    rate = {}
    start = time.perf_counter()
    phe_cts = [phe_pk.encrypt(v) for v in phe_values]
    rate["phe_encrypt"] = len(phe_values) / (time.perf_counter() - start)
    start = time.perf_counter()
    encrypted = pk.encrypt(values)
    rate["ours_encrypt"] = len(values) / (time.perf_counter() - start)

    # phe decrypts half its values before ours and half after, so both see the machine's load alike
    half = len(phe_cts) // 2
    start = time.perf_counter()
    phe_plain = [phe_sk.decrypt(c) for c in phe_cts[:half]]
    phe_seconds = time.perf_counter() - start
    start = time.perf_counter()
    plain = sk.decrypt(encrypted)
    rate["ours_decrypt"] = len(values) / (time.perf_counter() - start)
    start = time.perf_counter()
    phe_plain += [phe_sk.decrypt(c) for c in phe_cts[half:]]
    rate["phe_decrypt"] = len(phe_values) / (phe_seconds + time.perf_counter() - start)

    start = time.perf_counter()
    packed = pk.encrypt_packed(values, additions=additions)
    rate["ours_encrypt_packed"] = len(values) / (time.perf_counter() - start)
    start = time.perf_counter()
    packed_plain = sk.decrypt(packed)
    rate["ours_decrypt_packed"] = len(values) / (time.perf_counter() - start)

    errors = [np.max(np.abs(plain - values)), np.max(np.abs(packed_plain - values)),
              np.max(np.abs(np.array(phe_plain) - values[: len(phe_plain)]))]
    rate["max_error"] = float(max(errors))
    rate["slots"] = packed.slots
    return rate


def measure_fresh(counts, bits: int = 2048, repeat: int = 1, *, insecure: bool = False, phe_values: int = 100,
                  workers: int | None = None) -> list[dict]:
    """Encryption of ``count`` values on a key fresh from ``keygen``, and phe's on the same number, per count.

    Each run generates a new key (not timed) and times its first ``encrypt``; the median over
    ``repeat`` runs is reported with every run's seconds. phe keeps no state per key, so its time per
    value is measured once on ``min(count, phe_values)`` values and scaled. The process has loaded our
    kernels before (a one-time cost per process, as numba's cache makes it).
    """
    import phe

    values = np.random.default_rng(1).normal(0, 100, max(counts))
    parallelism = paillier.Parallelism(workers=workers)
    rows = []
    try:
        pk, _ = paillier.keygen(bits, insecure=insecure, parallelism=parallelism)
        pk.encrypt(np.resize(values, 300))  # loads the comb kernels
        phe_pk, _ = phe.generate_paillier_keypair(n_length=bits)
        for count in counts:
            seconds = []
            for _ in range(repeat):
                pk, _ = paillier.keygen(bits, insecure=insecure, parallelism=parallelism)
                start = time.perf_counter()
                pk.encrypt(values[:count])
                seconds.append(time.perf_counter() - start)
            sample = [float(v) for v in values[: min(count, phe_values)]]
            start = time.perf_counter()
            for v in sample:
                phe_pk.encrypt(v)
            phe_seconds = (time.perf_counter() - start) / len(sample) * count
            median = statistics.median(seconds)
            rows.append({"count": count, "seconds": seconds, "median": median, "phe_seconds": phe_seconds,
                         "speedup": phe_seconds / median})
    finally:
        parallelism.close()
    return rows
