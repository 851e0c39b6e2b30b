"""smpc.he.paillier hardening: malformed input raises PaillierError, key primes are checked on load,
encryption's methods agree, scripts need no main guard, phe keeps shapes. No timings here (benchmarks)."""

import json
import multiprocessing
import subprocess
import sys
import textwrap
import threading

import gmpy2
import numpy as np
import phe
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smpc.he import comb, djn, multiexp, paillier, randomness, serialization

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def keys():
    return paillier.keygen(512, insecure=True, parallelism=paillier.Parallelism(workers=1))


@pytest.fixture(scope="module")
def documents(keys):
    """Valid documents of every format, with the loader of each."""
    pk, sk = keys
    arr = pk.encrypt(np.array([[1.5, -2.0], [3.0, 4.0]]))
    packed = pk.encrypt_packed(np.arange(5.0))
    return {
        "public": (pk.to_json(), lambda t: paillier.PublicKey.from_json(t, insecure=True)),
        "private": (sk.to_json(), lambda t: paillier.PrivateKey.from_json(t, insecure=True)),
        "array": (arr.to_json(), lambda t: paillier.EncryptedArray.from_json(t, pk)),
        "packed": (packed.to_json(), lambda t: paillier.PackedEncryptedArray.from_json(t, pk)),
        "array bytes": (arr.to_bytes(), lambda t: paillier.EncryptedArray.from_bytes(t, pk)),
        "packed bytes": (packed.to_bytes(), lambda t: paillier.PackedEncryptedArray.from_bytes(t, pk)),
    }


def _edit(text, **changes):
    return json.dumps({**json.loads(text), **changes})


def _with_header(blob: bytes, header: bytes) -> bytes:
    """A bytes form with its JSON header replaced."""
    length = int.from_bytes(blob[8:12], "big")
    return blob[:8] + len(header).to_bytes(4, "big") + header + blob[12 + length :]


def _header(blob: bytes) -> dict:
    return json.loads(blob[12 : 12 + int.from_bytes(blob[8:12], "big")])


def _rejects(load, data, match=None):
    with pytest.raises(paillier.PaillierError, match=match) as info:
        load(data)
    assert len(str(info.value)) < 400  # messages name the problem, never echo a huge input
    return info.value


# ---- 1. malformed input: always a PaillierError with a clear message ----

@pytest.mark.parametrize("name", ["public", "private", "array", "packed"])
def test_deep_nesting_is_refused_before_parsing(documents, name):
    text, load = documents[name]
    for deep in ("[" * 100_000 + "]" * 100_000, '{"format": ' + "[" * 5000 + "]" * 5000 + "}",
                 _edit(text, shape=[[1], [2]]), text[:-1] + ', "x": [[[]]]}'):
        _rejects(load, deep, "brackets|nested deeper|characters")


@pytest.mark.parametrize("name", ["public", "private", "array", "packed"])
def test_huge_integer_literals_and_non_integers_are_refused(documents, name):
    text, load = documents[name]
    _rejects(load, text.replace('"version":1', '"version":' + "9" * 5000, 1), "integer literal")
    _rejects(load, text.replace('"version":1', '"version":-' + "9" * 25, 1), "integer literal")
    _rejects(load, "1" * 5000, "integer literal")
    for literal in ("1.0", "1e400", "NaN", "Infinity", "-Infinity"):
        _rejects(load, text.replace('"version":1', '"version":' + literal, 1), "fraction|not a number")


@pytest.mark.parametrize("name", ["array", "packed"])
def test_shapes_are_counted_in_python_integers_and_bounded(documents, name):
    text, load = documents[name]
    for shape in ([2**32, 2**32], [2**62, 2**62, 4], [2**64], [2**16] * 4):  # int64 products wrap to 0
        _rejects(load, _edit(text, shape=shape, ciphertexts=[]), "shape")
    for shape in ([0, 2**62, 2**62], [0, 2**33]):  # no elements, dimensions beyond any array
        _rejects(load, _edit(text, shape=shape, ciphertexts=[]), "shape")
    _rejects(load, _edit(text, shape=[2**32, 0, 2]), "shape|ciphertexts")
    _rejects(load, _edit(text, shape=[-1]), "shape")


@pytest.mark.parametrize("name", ["public", "private", "array", "packed"])
def test_other_malformed_documents(documents, name):
    text, load = documents[name]
    doc = json.loads(text)
    _rejects(load, text.replace('"version":1', '"version":1,"version":1', 1), "more than once")
    _rejects(load, _edit(text, format="x" * 60_000), "expected a smpc.paillier")
    _rejects(load, _edit(text, **{"y" * 10_000: 1}), "unknown fields")
    _rejects(load, _edit(text, version=True), "version")
    _rejects(load, "\ufeff" + text, "not valid JSON")
    _rejects(load, text.encode("utf-16"), "UTF-8")
    for field in doc:
        if field not in ("format", "version"):
            _rejects(load, _edit(text, **{field: None}))
            _rejects(load, json.dumps({k: v for k, v in doc.items() if k != field}), "missing")


@pytest.mark.parametrize("name", ["public", "private"])
def test_key_documents_are_bounded_in_length(documents, name):
    text, load = documents[name]
    _rejects(load, text[:-1] + "," + " " * serialization.MAX_KEY_CHARS + "}", "characters")
    _rejects(load, _edit(text, n="f" * 3000), "hex integer")


@pytest.mark.parametrize("name", ["array bytes", "packed bytes"])
def test_malformed_bytes_forms(documents, name):
    blob, load = documents[name]
    header = _header(blob)
    _rejects(load, blob[:8] + (2**31).to_bytes(4, "big") + blob[12:], "header of")
    _rejects(load, _with_header(blob, b"[" * 3000 + b"]" * 3000), "brackets")
    huge = json.dumps({**header, "width": 7}).replace('"width": 7', '"width": ' + "9" * 5000)
    _rejects(load, _with_header(blob, huge.encode()), "integer literal")
    _rejects(load, _with_header(blob, json.dumps({**header, "shape": [2**32, 2**32]}).encode()), "shape")
    _rejects(load, _with_header(blob, json.dumps({**header, "width": 2.0}).encode()), "fraction")
    _rejects(load, _with_header(blob, b"\xff" + json.dumps(header).encode()), "UTF-8")
    _rejects(load, _with_header(blob, json.dumps({**header, "width": True}).encode()), "width")
    _rejects(load, blob + b"\x01" * 3, "whole number")
    _rejects(load, blob[: len(blob) - 64], "whole number|ciphertexts")


def test_wrong_python_types_are_paillier_and_type_errors(keys):
    pk, _ = keys
    calls = [lambda: paillier.PublicKey.from_json(12345), lambda: paillier.PrivateKey.from_json(None),
             lambda: paillier.EncryptedArray.from_json(3.5, pk), lambda: paillier.EncryptedArray.from_bytes("text", pk),
             lambda: paillier.PackedEncryptedArray.from_bytes(["x"], pk), lambda: paillier.PublicKey(2.0**600),
             lambda: paillier.PublicKey.from_phe("key"), lambda: paillier.EncryptedArray.from_phe([1.0], pk),
             lambda: paillier.EncryptedArray.from_json(pk.encrypt([1]).to_json(), pk.to_json()),
             lambda: paillier.EncryptedArray.from_bytes(pk.encrypt([1]).to_bytes(), None),
             lambda: paillier.EncryptedArray.from_phe(pk.encrypt([1]).to_phe(), pk.to_phe())]
    for call in calls:
        with pytest.raises(paillier.InputTypeError) as info:
            call()
        assert isinstance(info.value, TypeError) and isinstance(info.value, paillier.PaillierError)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**80), 2**80) | st.floats() | st.text(max_size=12)
    | st.sampled_from(["0", "1", "ff", "zz", "-1", "0x1f", "smpc.paillier.EncryptedArray"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=3),
    max_leaves=10)


@FUZZ
@given(st.data())
def test_fuzzed_json_documents_raise_only_paillier_errors(documents, data):
    name = data.draw(st.sampled_from(["public", "private", "array", "packed"]))
    text, load = documents[name]
    doc = json.loads(text)
    how = data.draw(st.integers(0, 3))
    if how == 0:  # one field replaced (or added) by any JSON value
        field = data.draw(st.sampled_from(sorted(doc) + ["extra"]))
        candidate = json.dumps({**doc, field: data.draw(json_values)})
    elif how == 1:  # characters inserted or cut somewhere
        cut = data.draw(st.integers(0, len(text)))
        candidate = text[:cut] + data.draw(st.text(max_size=8)) + text[cut + data.draw(st.integers(0, 8)):]
    elif how == 2:  # any JSON document
        candidate = json.dumps(data.draw(json_values))
    else:  # any text
        candidate = data.draw(st.text(max_size=200))
    try:
        load(candidate)
    except paillier.PaillierError:
        pass


@FUZZ
@given(st.data())
def test_fuzzed_bytes_forms_raise_only_paillier_errors(documents, data):
    blob, load = documents[data.draw(st.sampled_from(["array bytes", "packed bytes"]))]
    how = data.draw(st.integers(0, 3))
    if how == 0:  # a header field replaced
        header = _header(blob)
        field = data.draw(st.sampled_from(sorted(header) + ["extra"]))
        candidate = _with_header(blob, json.dumps({**header, field: data.draw(json_values)}).encode())
    elif how == 1:  # the length prefix replaced
        candidate = blob[:8] + data.draw(st.binary(min_size=4, max_size=4)) + blob[12:]
    elif how == 2:  # bytes flipped, inserted or cut
        cut = data.draw(st.integers(0, len(blob)))
        candidate = blob[:cut] + data.draw(st.binary(max_size=16)) + blob[cut + data.draw(st.integers(0, 16)):]
    else:
        candidate = data.draw(st.binary(max_size=300))
    try:
        load(candidate)
    except paillier.PaillierError:
        pass


def test_decoding_takes_fraction_bits_beyond_floats_range(keys):
    pk, sk = keys
    arr = paillier.EncryptedArray.from_raw(pk, pk.raw_encrypt_ints([3, pk.n - 5]), frac_bits=2000, bound_bits=8)
    assert sk.decrypt(arr).tolist() == [0.0, -0.0]
    loaded = paillier.EncryptedArray.from_json(_edit(arr.to_json(), frac_bits=60000), pk)
    assert sk.decrypt(loaded).tolist() == [0.0, -0.0]


# ---- 2. private keys: primes checked on every load ----

def _prime(bits, seed):
    rng = np.random.default_rng(seed)
    value = int.from_bytes(rng.bytes(bits // 8), "big") | (3 << (bits - 2)) | 1
    return gmpy2.next_prime(gmpy2.mpz(value) >> (8 * (bits // 8) - bits))


def _weak_keys(bits=1024):
    """(name, p, q) with n = p q: each must be refused by the private-key checks."""
    half = bits // 2
    p = _prime(half, 1)
    close = gmpy2.next_prime(p + (1 << (half - 120)))  # |p - q| ~ 2^(bits/2 - 120)
    tiny = _prime(64, 2)
    big = gmpy2.next_prime(_prime(bits - 64, 3))
    a, b = _prime(half // 2, 4), _prime(half - half // 2, 5)  # q composite: n has three primes
    return [("close", p, close, "too close"), ("64-bit factor", tiny, big, "balanced"),
            ("three primes", p, a * b, "must be primes")]


@pytest.mark.parametrize("bits", [1024, 2048])
def test_weak_private_keys_are_refused_on_every_path(bits):
    for _, p, q, message in _weak_keys(bits):
        n = p * q
        public = paillier.PublicKey(n, insecure=True)  # n alone does not reveal the weakness
        with pytest.raises(paillier.InvalidKeyError, match=message):
            paillier.PrivateKey(public, p, q)
        doc = json.dumps({"format": "smpc.paillier.PrivateKey", "version": 1,
                          "n": format(int(n), "x"), "p": format(int(p), "x"), "q": format(int(q), "x")})
        with pytest.raises(paillier.SerializationError, match=message) as info:
            paillier.PrivateKey.from_json(doc, insecure=True)
        for secret in (p, q):
            assert format(int(secret), "x") not in str(info.value) and str(int(secret)) not in str(info.value)
        phe_public = phe.PaillierPublicKey(int(n))
        with pytest.raises(paillier.InvalidKeyError, match=message):
            paillier.PrivateKey.from_phe(phe_public, phe.PaillierPrivateKey(phe_public, int(p), int(q)), insecure=True)


def test_other_factor_failures(keys):
    pk, sk = keys
    p, q = sk._p, sk._q
    for bad_p, bad_q, message in [(p, p, "distinct"), (1, pk.n, "distinct"), (p, q + 2, "distinct"),
                                  (-p, -q, "distinct")]:
        with pytest.raises(paillier.InvalidKeyError, match=message):
            paillier.PrivateKey(pk, bad_p, bad_q)
    with pytest.raises(paillier.InvalidKeyError, match="Paillier modulus"):
        paillier.PublicKey(p * p, insecure=True)
    with pytest.raises(paillier.InvalidKeyError, match="bits"):
        paillier.PublicKey(gmpy2.mpz(2) ** 9000 + 1, insecure=True)
    with pytest.raises(paillier.InputTypeError):
        paillier.PrivateKey(pk, float(p), q)


def test_small_insecure_keys_still_load_and_work():
    pk, sk = paillier.keygen(256, insecure=True)
    sk2 = paillier.PrivateKey.from_json(sk.to_json(), insecure=True)
    assert sk2 == sk and sk2.decrypt(pk.encrypt(np.arange(3))).tolist() == [0, 1, 2]
    with pytest.raises(paillier.InsecureKeyError):
        paillier.PrivateKey.from_json(sk.to_json())


def test_phe_key_problems_are_paillier_errors(keys):
    pk, sk = keys
    odd = phe.PaillierPublicKey(int(pk.n))
    odd.g = odd.n + 2
    with pytest.raises(paillier.InvalidKeyError, match="g = n"):
        paillier.PublicKey.from_phe(odd, insecure=True)
    with pytest.raises(paillier.InvalidKeyError):
        paillier.PublicKey.from_phe(phe.PaillierPublicKey(int(pk.n) * 4), insecure=True)
    other_pk, other_sk = paillier.keygen(512, insecure=True)
    with pytest.raises(paillier.KeyMismatchError):
        paillier.PrivateKey.from_phe(pk.to_phe(), other_sk.to_phe(), insecure=True)


# ---- 3 and 4. encryption: every method gives the same numbers; no worker processes ----

@pytest.mark.parametrize("bits", [1024, 2048])
def test_comb_gmp_and_reference_powers_agree(bits):
    pk, sk = paillier.keygen(bits, insecure=True, parallelism=paillier.Parallelism(workers=2, threshold=2))
    rnd = pk.randomness
    base, n2 = rnd.base, pk.nsquare
    assert base == djn.derive_base(pk.n) == djn.derive_base_crt(pk.n, sk._p, sk._q)
    rng = np.random.default_rng(bits)
    for count in (1, comb.LANES - 1, comb.LANES + 3):
        exponents = rng.bytes(rnd.exponent_bytes * count)
        expected = [gmpy2.powmod(base, int.from_bytes(exponents[i * rnd.exponent_bytes:(i + 1) * rnd.exponent_bytes],
                                                      "little"), n2) for i in range(count)]
        assert rnd.gmp_powers(exponents, count, pk.parallelism) == expected
        for rows, blocks in ((1, 1), (5, 3), (9, 6)):
            assert rnd.comb(rows, blocks, pk.parallelism)(exponents, count, pk.parallelism) == expected
    assert rnd.comb(4, 2)(bytes(rnd.exponent_bytes * 2), 2) == [1, 1]  # a = 0


def test_encryption_method_follows_the_cost_model_and_decrypts():
    pk, sk = paillier.keygen(1024, insecure=True, parallelism=paillier.Parallelism(workers=2, threshold=2))
    public = paillier.PublicKey.from_json(pk.to_json(), insecure=True, parallelism=pk.parallelism)
    rnd = public.randomness
    x = np.random.default_rng(1).normal(0, 100, 300)
    assert np.allclose(sk.decrypt(public.encrypt(x[:1])), x[:1], atol=2**-16)
    assert rnd._base is None  # one value from a bare public key: r^n, as phe
    assert np.allclose(sk.decrypt(public.encrypt(x[:8])), x[:8], atol=2**-16)
    assert rnd._base == djn.derive_base(pk.n) and rnd._comb is None  # a few values: base derived, GMP
    assert np.allclose(sk.decrypt(public.encrypt(x)), x, atol=2**-16)
    assert rnd._comb is not None  # hundreds: a comb
    first = rnd._comb
    assert np.allclose(sk.decrypt(public.encrypt(x)), x, atol=2**-16)
    assert pk.randomness._base is not None  # keygen handed the base over (CRT)
    shared = public.with_parallelism(paillier.Parallelism(workers=1))
    assert shared.randomness is rnd and rnd._comb.nbytes <= randomness.MAX_TABLE_BYTES and first.nbytes > 0


def test_pinned_randomness_gives_the_same_ciphertexts_whatever_the_method():
    pk, sk = paillier.keygen(1024, insecure=True, parallelism=paillier.Parallelism(workers=2, threshold=2))
    rnd = pk.randomness
    exponents = np.random.default_rng(3).bytes(rnd.exponent_bytes * 40)
    by_gmp = rnd.gmp_powers(exponents, 40)
    assert rnd.factors(40, lambda k: exponents[:k], pk.parallelism) == by_gmp  # 40 values: whatever it chose
    assert rnd.comb(7, 3)(exponents, 40) == by_gmp


def test_concurrent_encryption_with_one_key():
    pk, sk = paillier.keygen(1024, insecure=True, parallelism=paillier.Parallelism(workers=2, threshold=2))
    x = np.arange(200.0)
    results, errors = [None] * 4, []

    def work(k):
        try:
            results[k] = sk.decrypt(pk.encrypt(x + k))
        except Exception as error:  # noqa: BLE001 (reported below)
            errors.append(error)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and all(np.array_equal(results[k], x + k) for k in range(4))


@pytest.mark.parametrize("bits", [1024, 2048])
def test_multiexp_in_lanes_equals_gmpy2s(bits, monkeypatch):
    pk, _ = paillier.keygen(bits, insecure=True, parallelism=paillier.Parallelism(workers=2, threshold=2))
    rng = np.random.default_rng(bits)
    cts = pk.raw_encrypt_ints([int(v) for v in rng.integers(0, 2**40, 12)])
    tasks = [(cts[:3], rng.integers(-(2**40), 2**40, (3, 7)).tolist()),  # mixed signs
             (cts[3:8], rng.integers(0, 2**20, (5, 40)).tolist()),  # more bases, non-negative
             (cts[8:9], [[0, 0, 0]]),  # zero exponents
             (cts[9:12], [[-(2**61), 2**61 - 1], [1, -1], [0, 5]])]  # the largest magnitudes taken
    expected = [multiexp.multiexp(b, e, pk.nsquare) for b, e in tasks]
    assert multiexp.multiexp_lanes(tasks, pk.nsquare, pk.parallelism) == expected
    monkeypatch.setattr(multiexp, "MAX_LANE_TABLE_BYTES", 1)  # one task per batch
    assert multiexp.multiexp_lanes(tasks, pk.nsquare) == expected
    with pytest.raises(ValueError, match="at most 62"):
        multiexp.multiexp_lanes([(cts[:1], [[2**62]])], pk.nsquare)


def test_large_matrix_products_take_the_lanes_and_match_the_serial_path():
    pk, sk = paillier.keygen(1024, insecure=True, parallelism=paillier.Parallelism(workers=1))
    threaded = pk.with_parallelism(paillier.Parallelism(workers=2, threshold=2))
    rng = np.random.default_rng(8)
    x, w = rng.normal(0, 10, (12, 5)), rng.normal(0, 1, (5, 9))  # 108 outputs: enough for two workers' lanes
    enc = pk.encrypt(x)
    moved = paillier.EncryptedArray.from_raw(threaded, enc.raw_ciphertexts(), frac_bits=enc.frac_bits,
                                             bound_bits=enc.bound_bits)
    for op in (lambda e: e @ w, lambda e: w.T @ e.T):
        assert np.array_equal(op(moved).raw_ciphertexts(), op(enc).raw_ciphertexts())
    assert np.allclose(sk.decrypt(moved @ w), x @ w, atol=1e-3)
    threaded.parallelism.close()


SCRIPT = """
import multiprocessing
import numpy as np
from smpc.he import paillier

for count in (1, 8, 100, 2000):
    pk, sk = paillier.keygen(2048)
    x = np.arange(float(count))
    enc = pk.encrypt(x)
    assert np.array_equal(sk.decrypt(enc), x), count
    assert np.array_equal(sk.decrypt(enc @ np.ones((count, 2)) + 1.0), [x.sum() + 1.0] * 2), count
assert not multiprocessing.active_children()
print("done without a main guard")
"""


def test_a_script_without_main_guard_encrypts_and_decrypts(tmp_path):
    script = tmp_path / "no_guard.py"
    script.write_text(textwrap.dedent(SCRIPT))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600,
                          cwd=str(tmp_path), env=_env_with_repo())
    assert done.returncode == 0, done.stderr[-3000:]
    assert "done without a main guard" in done.stdout


def _env_with_repo():
    import os

    import smpc

    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(smpc.__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_no_worker_processes_in_process():
    pk, sk = paillier.keygen(1024, insecure=True, parallelism=paillier.Parallelism(workers=2, threshold=2))
    x = np.random.default_rng(5).normal(0, 10, (40, 6))
    enc = pk.encrypt(x)
    assert np.allclose(sk.decrypt(enc @ np.ones((6, 3)) + enc[:, :3] * x[:, :3]), x @ np.ones((6, 3)) + x[:, :3] ** 2,
                       atol=1e-3)
    assert not multiprocessing.active_children()
    pk.parallelism.close()


# ---- 5. phe round trips keep the shape ----

@pytest.mark.parametrize("shape", [(), (3,), (2, 3), (2, 0), (1, 2, 2)])
def test_phe_round_trip_keeps_the_shape(keys, shape):
    pk, sk = keys
    x = np.arange(float(np.prod(shape, dtype=int))).reshape(shape) - 1.25
    numbers = pk.encrypt(x).to_phe()
    assert np.shape(numbers) == shape
    back = paillier.EncryptedArray.from_phe(numbers, pk)
    assert back.shape == shape and np.array_equal(sk.decrypt(back), x)
    phe_sk = sk.to_phe()
    flat = [numbers] if shape == () else np.array(numbers, dtype=object).reshape(-1).tolist()
    assert [phe_sk.decrypt(z) for z in flat] == x.reshape(-1).tolist()


def test_phe_input_problems(keys):
    pk, sk = keys
    phe_pk = pk.to_phe()
    a, b = phe_pk.encrypt(1.5), phe_pk.encrypt(2.0)
    with pytest.raises(paillier.SerializationError, match="nested"):
        paillier.EncryptedArray.from_phe([[a, b], [a]], pk)
    with pytest.raises(paillier.SerializationError, match="do not fill"):
        paillier.EncryptedArray.from_phe([a, b, a], pk, shape=(2, 2))
    assert paillier.EncryptedArray.from_phe([a, b, a, b], pk, shape=(2, 2)).shape == (2, 2)
    far = phe.EncryptedNumber(phe_pk, a.ciphertext(), -10**6)
    with pytest.raises(paillier.SerializationError, match="fraction bits"):
        paillier.EncryptedArray.from_phe([far], pk)
    spread = [phe.EncryptedNumber(phe_pk, a.ciphertext(), -200), b]
    with pytest.raises(paillier.PlaintextOverflowError):
        paillier.EncryptedArray.from_phe(spread, pk)
    with pytest.raises(paillier.EncodingError):
        paillier.EncryptedArray.from_phe([a], pk, bound_bits=0)
    with pytest.raises(paillier.SerializationError):
        paillier.EncryptedArray.from_phe([phe.EncryptedNumber(phe_pk, int(pk.nsquare) + 1, 0)], pk)
