"""smpc.he.paillier: keys, encrypted and packed arrays against numpy, formats, phe interop, raw layer, bad input."""

import json
import pickle

import gmpy2
import numpy as np
import phe
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from smpc.exceptions import SmpcError
from smpc.he import djn, montgomery, paillier
from smpc.he.multiexp import multiexp

FLOAT_ERROR = 2.0**-16  # two operands rounded at 16 fraction bits


def pinned_bytes(seed):
    """Deterministic stand-in for os.urandom (tests only)."""
    rng = np.random.default_rng(seed)
    return lambda k: rng.integers(0, 256, k, dtype=np.uint8).tobytes()


@pytest.fixture(scope="module")
def keys():
    pk, sk = paillier.keygen(1024, insecure=True, parallelism=paillier.Parallelism(workers=1))
    return pk, sk


@pytest.fixture(scope="module")
def other_keys():
    return paillier.keygen(1024, insecure=True, parallelism=paillier.Parallelism(workers=1))


@pytest.fixture(scope="module")
def parallel_keys(keys):
    parallelism = paillier.Parallelism(workers=2, threshold=2)
    yield keys[1].with_parallelism(parallelism).public_key, keys[1].with_parallelism(parallelism)
    parallelism.close()


@pytest.fixture(scope="module")
def phe_keys():
    return phe.generate_paillier_keypair(n_length=1024)


floats = st.floats(-1e6, 1e6, allow_nan=False)
shapes = hnp.array_shapes(min_dims=0, max_dims=3, max_side=4)


# ---- keys ----

def test_keygen_2048_round_trip():
    pk, sk = paillier.keygen(2048)
    assert pk.bits == 2048 and pk.n.bit_length() == 2048 and pk.g == pk.n + 1
    x = np.array([1.25, -3.5, 1e6])
    assert np.array_equal(sk.decrypt(pk.encrypt(x)), x)
    assert repr(sk) == f"PrivateKey(bits=2048, fingerprint={pk.fingerprint!r})"


def test_small_keys_need_insecure(phe_keys):
    with pytest.raises(paillier.InsecureKeyError, match="insecure"):
        paillier.keygen(1024)
    with pytest.raises(paillier.InsecureKeyError):
        paillier.PublicKey.from_phe(phe_keys[0])
    with pytest.raises(TypeError):
        paillier.keygen(2048.0)
    with pytest.raises(ValueError, match="bits must be in"):
        paillier.keygen(128, insecure=True)


def test_secrets_stay_out_of_repr_and_pickle(keys):
    pk, sk = keys
    text = repr(sk) + str(sk) + repr(pk)
    for secret in (sk._p, sk._q):
        assert str(int(secret)) not in text and format(int(secret), "x") not in text
    with pytest.raises(TypeError, match="not pickled"):
        pickle.dumps(sk)
    assert pickle.loads(pickle.dumps(pk)) == pk


def test_key_json_round_trip(keys):
    pk, sk = keys
    pk2 = paillier.PublicKey.from_json(pk.to_json(), insecure=True)
    sk2 = paillier.PrivateKey.from_json(sk.to_json(), insecure=True)
    assert pk2 == pk and sk2 == sk and pk2.fingerprint == pk.fingerprint
    assert json.loads(pk.to_json()) == {"format": "smpc.paillier.PublicKey", "version": 1, "n": format(int(pk.n), "x")}
    a = pk2.encrypt(np.arange(5))
    assert np.array_equal(sk2.decrypt(a), np.arange(5))


def _edit(text, **changes):
    doc = json.loads(text)
    doc.update(changes)
    return json.dumps(doc)


def test_malformed_keys_are_rejected(keys):
    pk, sk = keys
    n_hex = format(int(pk.n), "x")
    bad_public = [pk.to_json()[:-5], "[]", _edit(pk.to_json(), n=int(pk.n)), _edit(pk.to_json(), n="0x" + n_hex),
                  _edit(pk.to_json(), n=format(int(pk.n) * 2, "x")), _edit(pk.to_json(), version=2),
                  _edit(pk.to_json(), format="smpc.paillier.PrivateKey"), _edit(pk.to_json(), extra=1),
                  _edit(pk.to_json(), n=format(int(sk._p) ** 2, "x"))]
    for text in bad_public:
        with pytest.raises(paillier.SerializationError):
            paillier.PublicKey.from_json(text, insecure=True)
    with pytest.raises(paillier.InsecureKeyError):
        paillier.PublicKey.from_json(pk.to_json())
    wrong_q = _edit(sk.to_json(), q=format(int(sk._q) + 2, "x"))
    swapped = _edit(sk.to_json(), p=format(1, "x"), q=n_hex)
    for text in (wrong_q, swapped, sk.to_json()[:40]):
        with pytest.raises(paillier.SerializationError) as info:
            paillier.PrivateKey.from_json(text, insecure=True)
        assert format(int(sk._q), "x") not in str(info.value) and str(int(sk._q)) not in str(info.value)


def test_phe_key_conversion(phe_keys):
    phe_pk, phe_sk = phe_keys
    pk = paillier.PublicKey.from_phe(phe_pk, insecure=True)
    sk = paillier.PrivateKey.from_phe(phe_pk, phe_sk, insecure=True)
    assert pk.n == phe_pk.n and pk.to_phe() == phe_pk
    back = sk.to_phe()
    assert back.p * back.q == phe_pk.n and back.public_key == phe_pk


# ---- encryption and decryption ----

@given(hnp.arrays(np.float64, shapes, elements=floats))
def test_float_round_trip(keys, x):
    pk, sk = keys
    out = sk.decrypt(pk.encrypt(x))
    assert out.shape == x.shape and out.dtype == np.float64
    assert np.all(np.abs(out - x) <= 2.0**-17)


@given(hnp.arrays(np.int64, shapes))
def test_int_round_trip_is_exact(keys, x):
    pk, sk = keys
    out = sk.decrypt(pk.encrypt(x))
    assert out.dtype == np.int64 and np.array_equal(out, x)


def test_big_integers_and_options(keys):
    pk, sk = keys
    big = np.array([2**200, -(2**300), 7], dtype=object)
    assert sk.decrypt(pk.encrypt(big)).tolist() == big.tolist()
    x = np.array([0.3, -1.7])
    assert np.array_equal(sk.decrypt(pk.encrypt(x, frac_bits=0)), [0.0, -2.0])
    assert np.allclose(sk.decrypt(pk.encrypt(x, frac_bits=30)), x, atol=2.0**-30)
    assert pk.encrypt(x, bound_bits=20).bound_bits == 20
    assert np.array_equal(sk.decrypt(pk.encrypt(np.array([True, False]))), [1, 0])


@pytest.mark.parametrize("bad, error", [(np.nan, paillier.EncodingError), (np.inf, paillier.EncodingError),
                                        (2.0**46, paillier.PlaintextOverflowError)])
def test_bad_plaintexts_name_the_index_not_the_value(keys, bad, error):
    pk, _ = keys
    with pytest.raises(error, match=r"index \(1, 0\)") as info:
        pk.encrypt(np.array([[0.0, 1.0], [bad, 3.0]]))
    assert repr(bad) not in str(info.value) and str(bad) not in str(info.value)
    assert isinstance(info.value, SmpcError) and isinstance(info.value, ValueError)


def test_other_bad_inputs(keys):
    pk, _ = keys
    with pytest.raises(paillier.PlaintextOverflowError, match="bound_bits"):
        pk.encrypt(np.array([1.0, 5.0]), bound_bits=18)
    with pytest.raises(paillier.EncodingError):
        pk.encrypt(np.array(["a"]))
    with pytest.raises(paillier.PlaintextOverflowError, match="plaintext space"):
        pk.encrypt(np.array([2**1100], dtype=object))
    with pytest.raises(ValueError, match="frac_bits"):
        pk.encrypt(np.ones(2), frac_bits=31)


# ---- operations against numpy ----

@given(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3), st.data())
def test_additions_with_broadcasting(keys, shapes_, data):
    pk, sk = keys
    x = data.draw(hnp.arrays(np.float64, shapes_.input_shapes[0], elements=floats))
    y = data.draw(hnp.arrays(np.float64, shapes_.input_shapes[1], elements=floats))
    a, b = pk.encrypt(x), pk.encrypt(y, frac_bits=8)  # mixed scales
    close = lambda enc, expected: np.max(np.abs(sk.decrypt(enc) - expected), initial=0) <= 2.0**-7  # noqa: E731
    assert close(a + b, x + y) and close(a - b, x - y) and close(b - a, y - x)
    assert close(a + y, x + y) and close(y + a, x + y) and close(a - y, x - y) and close(y - a, y - x)
    assert close(-a, -x) and close(a + 2, x + 2) and close(3 - b, 3 - y)


@given(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3), st.data())
def test_products_with_plain(keys, shapes_, data):
    pk, sk = keys
    x = data.draw(hnp.arrays(np.float64, shapes_.input_shapes[0], elements=st.floats(-1e3, 1e3)))
    y = data.draw(hnp.arrays(np.float64, shapes_.input_shapes[1], elements=st.floats(-1e3, 1e3)))
    k = data.draw(hnp.arrays(np.int64, shapes_.input_shapes[1], elements=st.integers(-1000, 1000)))
    a = pk.encrypt(x)
    assert np.allclose(sk.decrypt(a * y), x * y, atol=2e-2)
    assert np.allclose(sk.decrypt(y * a), x * y, atol=2e-2)
    assert np.allclose(sk.decrypt(a * k), x * k, atol=2e-2)
    assert (a * y).frac_bits == 32 and (a * k).frac_bits == 16


@given(hnp.arrays(np.int64, shapes, elements=st.integers(-(2**40), 2**40)), st.data())
def test_integer_operations_are_exact(keys, x, data):
    pk, sk = keys
    k = data.draw(hnp.arrays(np.int64, x.shape, elements=st.integers(-(2**20), 2**20)))
    a = pk.encrypt(x)
    assert np.array_equal(sk.decrypt(a * k + x - 5), x * k + x - 5)
    assert sk.decrypt(a * k).dtype == np.int64
    assert np.array_equal(sk.decrypt(a.sum()), x.sum())


@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, max_side=4), elements=floats), st.data())
def test_sums_on_each_axis(keys, x, data):
    pk, sk = keys
    a = pk.encrypt(x)
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    assert np.allclose(sk.decrypt(a.sum(axis)), x.sum(axis), atol=1e-3)
    assert np.allclose(sk.decrypt(a.sum()), x.sum(), atol=1e-3)
    if x.ndim > 1:
        assert np.allclose(sk.decrypt(a.sum(axis=(0, -1))), x.sum(axis=(0, -1)), atol=1e-3)
    assert a.sum(axis).bound_bits == a.bound_bits + max(0, (x.shape[axis] - 1).bit_length())


@pytest.mark.parametrize("left, right", [((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 4)), ((2, 3), (3, 4)),
                                         ((1, 5), (5, 1))])
def test_matmul_both_directions(keys, left, right):
    pk, sk = keys
    rng = np.random.default_rng(7)
    x, w = rng.normal(0, 10, left), rng.normal(0, 10, right)
    assert np.allclose(sk.decrypt(pk.encrypt(x) @ w), x @ w, atol=1e-2)
    assert np.allclose(sk.decrypt(x @ pk.encrypt(w)), x @ w, atol=1e-2)
    xi, wi = rng.integers(-1000, 1000, left), rng.integers(-1000, 1000, right)
    assert np.array_equal(sk.decrypt(pk.encrypt(xi) @ wi), xi @ wi)
    assert np.array_equal(sk.decrypt(xi @ pk.encrypt(wi)), xi @ wi)


def test_matmul_and_product_errors(keys):
    pk, _ = keys
    a = pk.encrypt(np.ones((2, 3)))
    with pytest.raises(ValueError, match="do not align"):
        a @ np.ones((2, 2))
    with pytest.raises(TypeError, match="interactive protocol"):
        a * a
    with pytest.raises(TypeError, match="interactive protocol"):
        a @ a.T
    with pytest.raises(TypeError, match="truth value"):
        bool(a)
    with pytest.raises(TypeError):
        a + "x"


def test_overflowing_the_plaintext_space_raises(keys):
    pk, _ = keys
    a = pk.encrypt(np.array([1.5]))
    with pytest.raises(paillier.PlaintextOverflowError, match="plaintext space"):
        for _ in range(40):
            a = a * np.array([1.5])


def test_shape_operations(keys):
    pk, sk = keys
    x = np.arange(24.0).reshape(2, 3, 4) - 10
    a = pk.encrypt(x)
    assert a.shape == (2, 3, 4) and a.ndim == 3 and a.size == 24 and len(a) == 2
    cases = [(a[1, :, 2], x[1, :, 2]), (a[0, 1, 1], x[0, 1, 1]), (a.T, x.T), (a.reshape(4, -1), x.reshape(4, -1)),
             (a.transpose(1, 0, 2), x.transpose(1, 0, 2)), (a[..., ::-2], x[..., ::-2])]
    for got, expected in cases:
        assert np.array_equal(sk.decrypt(got), expected)
    assert [sk.decrypt(row).tolist() for row in a] == x.tolist()


def test_rerandomize_changes_ciphertexts_not_plaintexts(keys):
    pk, sk = keys
    x = np.array([1.5, -2.0, 0.0])
    a = pk.encrypt(x)
    for full in (True, False):
        b = a.rerandomize(full=full)
        assert not np.any(a.raw_ciphertexts() == b.raw_ciphertexts())
        assert np.array_equal(sk.decrypt(b), x)


# ---- bad input: keys, garbage ----

def test_key_mismatch_is_named(keys, other_keys):
    pk, sk = keys
    pk2, sk2 = other_keys
    a, b = pk.encrypt(np.ones(2)), pk2.encrypt(np.ones(2))
    with pytest.raises(paillier.KeyMismatchError, match="different keys") as info:
        a + b
    assert pk.fingerprint in str(info.value) and pk2.fingerprint in str(info.value)
    with pytest.raises(paillier.KeyMismatchError):
        sk.decrypt(b)
    with pytest.raises(paillier.KeyMismatchError):
        paillier.EncryptedArray.from_json(a.to_json(), pk2)
    with pytest.raises(paillier.KeyMismatchError):
        pk.encrypt_packed(np.ones(2)) + pk2.encrypt_packed(np.ones(2))


def test_garbage_never_decrypts_silently(keys, other_keys):
    pk, sk = keys
    rng = np.random.default_rng(3)
    garbage = [gmpy2.mpz(int(rng.integers(2, 2**62))) ** 40 % pk.nsquare for _ in range(4)]
    with pytest.raises(paillier.DecryptionError, match="bound"):
        sk.decrypt(paillier.EncryptedArray.from_raw(pk, garbage, frac_bits=16, bound_bits=62))
    foreign = other_keys[0].encrypt(np.ones(3)).raw_ciphertexts()
    with pytest.raises(paillier.DecryptionError):
        sk.decrypt(paillier.EncryptedArray.from_raw(pk, foreign % pk.nsquare, bound_bits=64))
    packed = pk.encrypt_packed(np.ones(5))
    forged = paillier.PackedEncryptedArray(pk, garbage[:1], (5,), 16, False, packed.layout, 1)
    with pytest.raises(paillier.DecryptionError):
        sk.decrypt(forged)
    with pytest.raises(paillier.DecryptionError, match="coprime"):
        sk.raw_decrypt_ints([sk._p])


# ---- serialization ----

def test_array_formats_round_trip(keys):
    pk, sk = keys
    for x in (np.array([[1.5, -2.0], [0.25, 8.0]]), np.arange(-3, 3), np.float64(2.5)):
        a = pk.encrypt(x)
        for dumped, load in ((a.to_json(), paillier.EncryptedArray.from_json),
                             (a.to_bytes(), paillier.EncryptedArray.from_bytes)):
            b = load(dumped, pk)
            assert b.shape == a.shape and b.frac_bits == a.frac_bits and b.bound_bits == a.bound_bits
            assert np.array_equal(sk.decrypt(b), sk.decrypt(a))
    doc = json.loads(pk.encrypt(np.ones((2, 1))).to_json())
    assert doc["format"] == "smpc.paillier.EncryptedArray" and doc["shape"] == [2, 1] and len(doc["ciphertexts"]) == 2


def test_computed_results_are_rerandomized_when_serialized(keys):
    pk, sk = keys
    a = pk.encrypt(np.array([1.0, 2.0]))
    assert json.loads(a.to_json())["ciphertexts"] == [format(int(c), "x") for c in a.raw_ciphertexts()]
    b = a * 3
    cts = [format(int(c), "x") for c in b.raw_ciphertexts()]
    assert json.loads(b.to_json(rerandomize=False))["ciphertexts"] == cts
    published = json.loads(b.to_json())["ciphertexts"]
    assert not set(published) & set(cts)
    assert np.array_equal(sk.decrypt(paillier.EncryptedArray.from_json(b.to_json(), pk)), [3.0, 6.0])


def test_malformed_arrays_are_rejected(keys):
    pk, sk = keys
    text = pk.encrypt(np.array([1.0, 2.0])).to_json()
    n2 = int(pk.nsquare)
    bad = [text[:-10], "{}", "[1]", _edit(text, shape=[3]), _edit(text, shape="x"), _edit(text, shape=[-2]),
           _edit(text, frac_bits="16"), _edit(text, bound_bits=True), _edit(text, bound_bits=5000),
           _edit(text, integer=True), _edit(text, ciphertexts="00"), _edit(text, ciphertexts=[1, 2]),
           _edit(text, ciphertexts=["0", "1"]), _edit(text, ciphertexts=[format(n2, "x"), "1"]),
           _edit(text, ciphertexts=[format(n2 + 5, "x"), "1"]), _edit(text, ciphertexts=["zz", "1"]),
           _edit(text, ciphertexts=[format(int(sk._q) * 3, "x"), "1"]), _edit(text, version=0)]
    for item in bad:
        with pytest.raises(paillier.SerializationError):
            paillier.EncryptedArray.from_json(item, pk)
    with pytest.raises(paillier.KeyMismatchError):
        paillier.EncryptedArray.from_json(_edit(text, key="0" * 32), pk)
    data = pk.encrypt(np.array([1.0, 2.0])).to_bytes()
    for item in (data[:-1], b"XXXX" + data[4:], data[:10], data + b"\x00" * 5):
        with pytest.raises(paillier.SerializationError):
            paillier.EncryptedArray.from_bytes(item, pk)
    with pytest.raises(TypeError):
        paillier.EncryptedArray.from_bytes("text", pk)


# ---- phe interop ----

def test_phe_ciphertexts_decrypt_with_ours(phe_keys):
    phe_pk, phe_sk = phe_keys
    pk = paillier.PublicKey.from_phe(phe_pk, insecure=True)
    sk = paillier.PrivateKey.from_phe(phe_pk, phe_sk, insecure=True)
    values = [1.5, -2.0, 3, -7, 1e-5, 12345.678, -0.001, 0]
    numbers = [phe_pk.encrypt(v) for v in values]
    numbers.append(phe_pk.encrypt(2.5, precision=2**-8))  # another exponent
    assert len({x.exponent for x in numbers}) > 2
    arr = paillier.EncryptedArray.from_phe(numbers, pk)
    assert np.allclose(sk.decrypt(arr), values + [2.5], rtol=1e-12, atol=1e-12)
    ints = paillier.EncryptedArray.from_phe([[phe_pk.encrypt(4), phe_pk.encrypt(-9)]], pk)
    assert ints.shape == (1, 2) and sk.decrypt(ints).tolist() == [[4, -9]]
    summed = phe_pk.encrypt(1.25) + phe_pk.encrypt(-3)  # phe's own homomorphic result
    assert sk.decrypt(paillier.EncryptedArray.from_phe([summed], pk)).tolist() == [-1.75]
    reshaped = paillier.EncryptedArray.from_phe(numbers[:6], pk, shape=(2, 3))
    assert np.allclose(sk.decrypt(reshaped), np.reshape(values[:6], (2, 3)))


def test_ours_decrypt_and_compute_with_phe(phe_keys):
    phe_pk, phe_sk = phe_keys
    pk = paillier.PublicKey.from_phe(phe_pk, insecure=True)
    x = np.array([[1.5, -2.25], [3.0, -0.125]])
    for frac in (16, 10, 0):
        numbers = [z for row in pk.encrypt(x, frac_bits=frac).to_phe() for z in row]  # nested as x
        expected = np.round(x * 2**frac).reshape(-1) / 2**frac
        assert np.allclose([phe_sk.decrypt(z) for z in numbers], expected)
        assert np.allclose([phe_sk.decrypt(z * 3 + 1.5) for z in numbers], expected * 3 + 1.5)
    ints = pk.encrypt(np.array([4, -9])).to_phe()
    assert [phe_sk.decrypt(z) for z in ints] == [4, -9] and ints[0].exponent == 0
    total = ints[0] + ints[1]
    assert phe_sk.decrypt(total) == -5


def test_phe_bad_input(phe_keys, keys):
    phe_pk, phe_sk = phe_keys
    pk_ours, _ = keys
    with pytest.raises(paillier.KeyMismatchError):
        paillier.EncryptedArray.from_phe([phe_pk.encrypt(1.0)], pk_ours)
    with pytest.raises(TypeError):
        paillier.EncryptedArray.from_phe([1.0], pk_ours)
    pk = paillier.PublicKey.from_phe(phe_pk, insecure=True)
    sk = paillier.PrivateKey.from_phe(phe_pk, phe_sk, insecure=True)
    big = paillier.EncryptedArray.from_phe([phe_pk.encrypt(2**100)], pk)
    with pytest.raises(paillier.DecryptionError, match="bound"):
        sk.decrypt(big)
    wide = paillier.EncryptedArray.from_phe([phe_pk.encrypt(2**100)], pk, bound_bits=101)
    assert sk.decrypt(wide).tolist() == [2**100]


# ---- packing ----

@given(hnp.arrays(np.float64, shapes, elements=floats))
def test_packed_round_trip(keys, x):
    pk, sk = keys
    p = pk.encrypt_packed(x, additions=3)
    out = sk.decrypt(p)
    assert out.shape == x.shape and np.all(np.abs(out - x) <= 2.0**-17)
    assert len(p.raw_ciphertexts()) == -(-x.size // p.slots)


def test_packed_operations_and_budget(keys):
    pk, sk = keys
    rng = np.random.default_rng(5)
    x, y = rng.normal(0, 100, (7, 5)), rng.normal(0, 100, (7, 5))
    p, q = pk.encrypt_packed(x, additions=3), pk.encrypt_packed(y, additions=3)
    assert p.slots == (1024 - 1) // (62 + 1 + 2)
    assert np.allclose(sk.decrypt(p + q), x + y, atol=1e-4)
    assert np.allclose(sk.decrypt(p - q), x - y, atol=1e-4)
    assert np.allclose(sk.decrypt(-p + y), y - x, atol=1e-4)
    assert np.allclose(sk.decrypt(2.5 - p), 2.5 - x, atol=1e-4)
    assert np.allclose(sk.decrypt(p * -3), -3 * x, atol=1e-4)
    assert np.allclose(sk.decrypt(2 * p + q), 2 * x + y, atol=1e-4)
    assert np.array_equal(sk.decrypt(p * 0), np.zeros_like(x))
    assert np.allclose(sk.decrypt(p.reshape(5, 7)), x.reshape(5, 7), atol=1e-4)
    with pytest.raises(paillier.PlaintextOverflowError, match="budget"):
        p + q + p + q + p
    with pytest.raises(paillier.PlaintextOverflowError, match="budget"):
        p * 5
    with pytest.raises(paillier.PlaintextOverflowError, match="slot"):
        pk.encrypt_packed(x, bound_bits=40) + np.full((7, 5), 2.0**30)
    with pytest.raises(TypeError, match="integer scalar"):
        p * 1.5
    with pytest.raises(ValueError, match="layout"):
        p + pk.encrypt_packed(y, additions=7)


def test_packed_integers_bounds_and_formats(keys):
    pk, sk = keys
    x = np.arange(-50, 50).reshape(10, 10)
    p = pk.encrypt_packed(x, additions=0, bound_bits=8)
    assert p.slots == (1024 - 1) // 9 and sk.decrypt(p).dtype == np.int64
    assert np.array_equal(sk.decrypt(p), x)
    with pytest.raises(paillier.PlaintextOverflowError):
        p + p
    with pytest.raises(paillier.EncodingError):
        p + 0.5
    with pytest.raises(paillier.PlaintextOverflowError):
        pk.encrypt_packed(x, bound_bits=5)
    q = pk.encrypt_packed(x, additions=1, bound_bits=8) + 1
    for dumped, load in ((q.to_json(), paillier.PackedEncryptedArray.from_json),
                         (q.to_bytes(), paillier.PackedEncryptedArray.from_bytes)):
        assert np.array_equal(sk.decrypt(load(dumped, pk)), x + 1)
    text = q.to_json()
    for bad in (_edit(text, summands=3), _edit(text, slot_bits=4), _edit(text, slots=1), text[:-3]):
        with pytest.raises(paillier.SerializationError):
            paillier.PackedEncryptedArray.from_json(bad, pk)


# ---- raw layer ----

def test_raw_layer(keys):
    pk, sk = keys
    n = int(pk.n)
    values = [0, 1, n - 1, 2**64 + 3, 12345]
    cts = pk.raw_encrypt_ints(values)
    assert all(isinstance(c, type(gmpy2.mpz(0))) for c in cts)
    assert sk.raw_decrypt_ints(cts) == values
    assert sk.raw_decrypt_ints(pk.raw_encrypt_ints(values, full=True)) == values
    assert sk.raw_decrypt_ints(pk.raw_encrypt_ints(np.array([5, 2**63], dtype=np.uint64))) == [5, 2**63]
    other = [7, 8, 9, 10, n - 2]
    summed = pk.raw_add(cts, pk.raw_encrypt_ints(other))
    assert sk.raw_decrypt_ints(summed) == [(a + b) % n for a, b in zip(values, other)]
    assert sk.raw_decrypt_ints(pk.raw_add_plain(cts, [-1] * 5)) == [(a - 1) % n for a in values]
    assert sk.raw_decrypt_ints(pk.raw_negate(cts)) == [-a % n for a in values]
    assert sk.raw_decrypt_ints(pk.raw_mul_plain(cts, -3)) == [-3 * a % n for a in values]
    assert sk.raw_decrypt_ints(pk.raw_mul_plain(cts, [2, -2, 3, 2**100, 0])) == [
        a * k % n for a, k in zip(values, [2, -2, 3, 2**100, 0])]
    assert sk.raw_decrypt_ints(pk.raw_rerandomize(cts)) == values
    assert sk.raw_decrypt_ints(pk.raw_rerandomize(cts, full=False)) == values
    with pytest.raises(paillier.PlaintextOverflowError, match="index 1"):
        pk.raw_encrypt_ints([1, n])
    with pytest.raises(TypeError):
        pk.raw_encrypt_ints([1.5])
    with pytest.raises(paillier.SerializationError, match="index 0"):
        pk.raw_validate([0])
    with pytest.raises(paillier.SerializationError, match="coprime"):
        pk.raw_validate([sk._q])


def test_raw_products(keys):
    pk, sk = keys
    n = int(pk.n)
    rng = np.random.default_rng(11)
    a = rng.integers(0, 2**62, (3, 4)).astype(object)
    b = rng.integers(-(2**62), 2**62, (4, 5)).astype(object)
    b[0, 0], b[1, 1] = 2**200, 0
    enc = np.array(pk.raw_encrypt_ints(a.reshape(-1)), dtype=object).reshape(3, 4)
    expected = (a @ b) % n
    got = pk.raw_matmul(enc, b)
    assert got.shape == (3, 5) and [sk.raw_decrypt_ints(row) for row in got] == expected.tolist()
    assert sk.raw_decrypt_ints(pk.raw_dot(enc[0], b)) == expected[0].tolist()
    enc_b = np.array(pk.raw_encrypt_ints((b % n).reshape(-1)), dtype=object).reshape(4, 5)
    got = pk.raw_rmatmul(a, enc_b)
    assert [sk.raw_decrypt_ints(row) for row in got] == ((a @ (b % n)) % n).tolist()
    arr = paillier.EncryptedArray.from_raw(pk, pk.raw_encrypt_ints([3 << 8, n - (5 << 8)]), frac_bits=8, bound_bits=20)
    assert sk.decrypt(arr).tolist() == [3.0, -5.0]


def test_multiexp_and_fixed_base_kernels(keys):
    pk, _ = keys
    n2 = pk.nsquare
    rng = np.random.default_rng(2)
    bases = [gmpy2.mpz(int(v)) for v in rng.integers(2, 2**62, 6)]
    exps = [[int(e) for e in row] for row in rng.integers(-(2**40), 2**40, (6, 3))]
    exps[2] = [0, 0, 0]
    expected = [gmpy2.mpz(1)] * 3
    for b, row in zip(bases, exps):
        expected = [acc * gmpy2.powmod(b, e, n2) % n2 for acc, e in zip(expected, row)]
    assert multiexp(bases, exps, n2) == expected
    exponent = bytes(range(1, djn.exponent_bytes(pk.n) + 1))
    a = int.from_bytes(exponent, "little")
    base = djn.derive_base(pk.n)
    assert pk.randomness.comb(4, 2)(exponent, 1) == [gmpy2.powmod(base, a, n2)]  # the fixed-base kernel
    assert djn.derive_base(pk.n) == base == pk.randomness.base


# ---- parallel path ----

def test_parallel_path_matches_serial(keys, parallel_keys):
    pk, sk = keys
    ppk, psk = parallel_keys
    assert ppk.parallelism.workers == 2 and ppk == pk
    x = np.random.default_rng(4).normal(0, 10, (6, 5))
    a = pk.encrypt(x, random_bytes=pinned_bytes(1))
    b = ppk.encrypt(x, random_bytes=pinned_bytes(1))
    assert np.array_equal(a.raw_ciphertexts(), b.raw_ciphertexts())
    assert np.array_equal(psk.decrypt(b), sk.decrypt(a))
    w = np.random.default_rng(5).normal(0, 10, (5, 4))
    for op in (lambda e: e @ w, lambda e: w.T @ e.T, lambda e: e * x, lambda e: e * 3, lambda e: e.sum(0)):
        assert np.array_equal(op(a).raw_ciphertexts(), op(b).raw_ciphertexts())
    assert np.array_equal(a.rerandomize(random_bytes=pinned_bytes(2)).raw_ciphertexts(),
                          b.rerandomize(random_bytes=pinned_bytes(2)).raw_ciphertexts())
    column = b.raw_ciphertexts()[:, :1].tolist()  # one output: split over bases
    assert ppk.raw_dot(column[0] * 6, [[3]] * 6) == pk.raw_dot(column[0] * 6, [[3]] * 6)
    packed = ppk.encrypt_packed(x)
    assert np.allclose(psk.decrypt(packed), x, atol=1e-4)


# ---- SIMD Montgomery exponentiation (decryption's kernel) ----

def _kernel_bases(modulus, count, seed):
    """Edge values (0, 1, around N and 2N, all-ones limbs, R - 1) then random ones up to 4x N's bits."""
    limbs = -(-(modulus.bit_length() + 2) // montgomery.LIMB_BITS)
    edges = [0, 1, 2, modulus - 1, modulus, modulus + 1, 2 * modulus - 1, 2 * modulus,
             (gmpy2.mpz(1) << (montgomery.LIMB_BITS * limbs)) - 1, (gmpy2.mpz(1) << (4 * modulus.bit_length())) - 1]
    rng = np.random.default_rng(seed)
    randoms = [gmpy2.mpz(int.from_bytes(rng.bytes(modulus.bit_length() // 2 + 1), "little")) for _ in range(count)]
    return (edges + randoms)[:count]


@pytest.mark.parametrize("modulus, long_exponent", [
    (gmpy2.mpz(3), 2),
    (gmpy2.mpz(2**61 - 1) ** 2, 2**61 - 2),  # decryption's p^2 and p - 1
    ((gmpy2.mpz(1) << 278) - 1, (gmpy2.mpz(1) << 277) - 3),  # 278 bits: 4 N just below R
    (gmpy2.next_prime(gmpy2.mpz(1) << 511) ** 2, gmpy2.next_prime(gmpy2.mpz(1) << 511) - 1),
    ((gmpy2.mpz(1) << 3358) - 1, (gmpy2.mpz(1) << 300) - 1),  # 120 limbs, the most the kernel takes
])
def test_fixed_power_matches_gmpy2(modulus, long_exponent):
    for exponent in (1, 2, 3, 31, 32, 33, 2**70 - 1, 2**70, long_exponent):
        power = montgomery.FixedPower(exponent, modulus, simd=True)
        assert power.simd
        lanes, fill = montgomery.LANES, montgomery.MIN_FILL
        for count in (0, 1, fill - 1, fill, lanes, lanes + 6, 2 * lanes + 2):
            bases = _kernel_bases(modulus, count, seed=count)
            assert power(bases) == [gmpy2.powmod(b, exponent, modulus) for b in bases], (exponent, count)
    assert montgomery.FixedPower(long_exponent, modulus, simd=False)(bases) == power(bases)


def test_fixed_power_limits_and_chunks():
    assert not montgomery.FixedPower(3, (gmpy2.mpz(1) << 3359) - 1, simd=True).simd  # 121 limbs: gmpy2
    for bad_modulus in (1, 2, 10**6):
        with pytest.raises(ValueError, match="odd"):
            montgomery.FixedPower(3, bad_modulus)
    with pytest.raises(ValueError, match="positive"):
        montgomery.FixedPower(0, 7)
    lanes, fill = montgomery.LANES, montgomery.MIN_FILL
    power = montgomery.FixedPower(5, 101, simd=True)
    counts = (0, fill - 1, fill, lanes, lanes + fill - 1, lanes + fill)
    assert [power.kernel_count(k) for k in counts] == [0, 0, fill, lanes, lanes, lanes + fill]
    assert montgomery.FixedPower(5, 101, simd=False).kernel_count(1000) == 0
    items = list(range(10 * lanes + 5))
    for parts in (1, 3, 16, 100):
        chunks = power.chunks(items, parts)
        assert sum(chunks, []) == items and len(chunks) <= max(parts, 1) + 1
        assert all(len(chunk) % lanes == 0 for chunk in chunks[:-1])
    size = -(-len(items) // 4)
    expected = [items[i:i + size] for i in range(0, len(items), size)]
    assert montgomery.FixedPower(5, 101, simd=False).chunks(items, 4) == expected
    assert power.chunks([], 4) == [[]]


@pytest.mark.parametrize("exponent", [1, 2, 6, 0b1011000001, 2**64 - 1, 2**200 + 2**100 + 1])
def test_window_schedule_rebuilds_the_exponent(exponent):
    first, steps = montgomery.window_schedule(exponent, montgomery.WINDOW)
    value = 2 * first + 1
    for squarings, index in steps.tolist():
        value = (value << squarings) + (2 * index + 1 if index >= 0 else 0)
        assert index < 1 << (montgomery.WINDOW - 1)
    assert value == exponent


@pytest.mark.parametrize("simd", [True, False])
def test_batch_decryption_matches_per_value(keys, monkeypatch, simd):
    monkeypatch.setattr(montgomery, "simd_supported", lambda: simd)
    pk, base_sk = keys
    parallelism = paillier.Parallelism(workers=2, threshold=2)
    try:
        serial_sk = paillier.PrivateKey(base_sk.public_key, base_sk._p, base_sk._q)
        threaded_sk = base_sk.with_parallelism(parallelism)
        assert serial_sk._powers[0].simd == simd == threaded_sk._powers[1].simd
        n, lanes, fill = int(pk.n), montgomery.LANES, montgomery.MIN_FILL
        values = [0, 1, n - 1, n // 2, 2**64] + [int(v) for v in np.random.default_rng(9).integers(0, 2**62, 2 * lanes)]
        cts = pk.raw_encrypt_ints(values) + pk.raw_encrypt_ints(values[:3], full=True)
        expected = values + values[:3]
        for count in (1, 3, fill - 1, fill, lanes, lanes + 1, 2 * lanes + 5, len(cts)):
            assert serial_sk.raw_decrypt_ints(cts[:count]) == expected[:count]
            assert threaded_sk.raw_decrypt_ints(cts[:count]) == expected[:count]
        phe_sk = serial_sk.to_phe()
        assert [phe_sk.raw_decrypt(int(c)) for c in cts[:40]] == expected[:40]
        for index in (lanes // 2, lanes + 7):  # in a kernel group, in the tail
            bad = list(cts[: lanes + 20])
            bad[index] = serial_sk._p * 5
            for sk in (serial_sk, threaded_sk):
                with pytest.raises(paillier.DecryptionError, match=f"index {index} is not coprime"):
                    sk.raw_decrypt_ints(bad)
            bad[index] = pk.nsquare
            for sk in (serial_sk, threaded_sk):
                with pytest.raises(paillier.DecryptionError, match=f"index {index} is not in \\[1, n\\^2\\)"):
                    sk.raw_decrypt_ints(bad)
        x = np.random.default_rng(10).normal(0, 1e3, (9, 11))
        assert np.allclose(threaded_sk.decrypt(pk.encrypt(x)), x, atol=2.0**-16)
    finally:
        parallelism.close()


def _encrypt_in_daemon(queue):
    pk, sk = paillier.keygen(512, insecure=True, parallelism=paillier.Parallelism(workers=2, threshold=2))
    queue.put(sk.decrypt(pk.encrypt(np.arange(8.0)) @ np.ones(8)).tolist())


def test_daemonic_processes_encrypt_serially():
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_encrypt_in_daemon, args=(queue,), daemon=True)
    process.start()
    assert queue.get(timeout=60) == 28.0
    process.join(timeout=30)


def test_bench_measure_smoke():
    from smpc_bench.paillier_bench import measure

    result = measure(bits=1024, count=40, phe_count=5, insecure=True, workers=1)
    for name in ("ours_encrypt", "ours_decrypt", "ours_encrypt_packed", "ours_decrypt_packed", "phe_encrypt",
                 "phe_decrypt", "decrypt_ratio", "decrypt_packed_ratio", "encrypt_packed_ratio"):
        assert result[name] > 0
    assert result["encrypt_ratio"] > 1 and result["max_error"] < 1e-4 and result["keygen_seconds"] > 0
