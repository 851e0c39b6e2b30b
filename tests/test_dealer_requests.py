"""The correlated-randomness layer's typed pieces: dealer requests on the wire, the source interface, explicit
completion in request order."""

import contextlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import smpc
from smpc.exceptions import PeerError, ProtocolError
from smpc.mpc.bilinear import CONV2D, MATMUL, MUL, Bilinear
from smpc.mpc.circuits import sign_bit
from smpc.mpc.circuits.masked_ands import AndLayout
from smpc.mpc.correlated import requests
from smpc.mpc.correlated.paillier import PaillierDealerClient
from smpc.mpc.correlated.requests import (MAX_ELEMENTS, MAX_NDIM, MAX_REQUEST_VALUES, AndTriplesRequest,
                                          DabitsRequest, FssSignRequest, OneHotRequest, SignRequest, TripleRequest,
                                          TruncRequest)
from smpc.mpc.correlated.source import (KINDS, CorrelatedSource, MaterialOrderError, Triple, UnsupportedMaterial)
from smpc.mpc.correlated.trusted import TrustedDealerClient
from smpc.mpc.fss import wire as fss_wire
from smpc.mpc.one_hot import MAX_ONE_HOT_BITS
from smpc.ring.prg import PRG, fresh_key

# --- round trips -----------------------------------------------------------------------------------------------
dims = st.integers(0, 6)
shapes = st.lists(dims, max_size=5).map(tuple)
big_shapes = st.one_of(shapes, st.integers(0, MAX_ELEMENTS).map(lambda n: (n,)),
                       st.integers(0, 1 << 15).map(lambda n: (n, n, 2)))


@st.composite
def triples(draw):
    kind = draw(st.sampled_from(["mul", "matmul", "conv2d"]))
    if kind == "mul":
        shape = draw(shapes)
        other = draw(st.sampled_from([shape, shape[1:], (1,) * len(shape)]))
        return TripleRequest(Bilinear(MUL), shape, other) if draw(st.booleans()) else TripleRequest(
            Bilinear(MUL), other, shape)
    if kind == "matmul":
        m, k, n = draw(st.tuples(st.integers(1, 6), st.integers(1, 6), st.integers(1, 6)))
        batch = draw(st.lists(st.integers(1, 3), max_size=2).map(tuple))
        x = draw(st.sampled_from([(k,), (*batch, m, k)]))
        y = draw(st.sampled_from([(k,), (*batch, k, n)]))
        return TripleRequest(Bilinear(MATMUL), x, y)
    groups = draw(st.integers(1, 2))
    stride, padding, dilation = draw(st.integers(1, 3)), draw(st.integers(0, 2)), draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    size = dilation * (max(kh, kw) - 1) + 1 + draw(st.integers(0, 4))
    x = (draw(st.integers(1, 3)), 2 * groups, size, size)
    w = (2 * groups, 2, kh, kw)
    return TripleRequest(Bilinear.conv2d(stride, padding, dilation, groups), x, w)


@st.composite
def and_layouts(draw):
    """AND layouts of one to three masks of one shape (some private to a party) and one to three products."""
    shape = draw(st.lists(st.integers(0, 1 << 10), max_size=3).map(tuple))
    masks = tuple((shape, owner) for owner in draw(st.lists(st.integers(-1, 2), min_size=1, max_size=3)))
    index, shift = st.integers(0, len(masks) - 1), st.integers(-63, 63)
    products = draw(st.lists(st.tuples(index, shift, index, shift), min_size=1, max_size=3))
    return AndLayout(masks, tuple(products))


def _arguments(kind: str) -> tuple:
    """Small valid arguments of a kind of material."""
    return {"and_triples": (AndLayout((((2,), -1),), ((0, 0, 0, 1),)),), "dabits": ((2,),)}.get(kind, (2, 3))


any_request = st.one_of(
    triples(),
    st.builds(TruncRequest, big_shapes, st.integers(1, 62)),
    and_layouts().map(AndTriplesRequest),
    st.builds(DabitsRequest, big_shapes),
    st.builds(SignRequest, st.integers(0, MAX_ELEMENTS), st.booleans()),
    st.builds(FssSignRequest, st.integers(0, MAX_ELEMENTS // 260), st.booleans()),
    st.integers(0, MAX_ONE_HOT_BITS).flatmap(
        lambda bits: st.builds(OneHotRequest, st.integers(0, MAX_ELEMENTS >> bits), st.just(bits))),
)


@settings(max_examples=300)
@given(request=any_request)
def test_every_request_type_survives_encode_and_decode(request):
    message = request.encode()
    assert message.dtype == np.int64 and message.ndim == 1 and message.size <= MAX_REQUEST_VALUES
    decoded = requests.decode(message)
    assert type(decoded) is type(request) and decoded == request
    assert decoded.describe() == request.describe()
    assert decoded.reply_shape == request.reply_shape
    assert np.array_equal(decoded.encode(), message)


def test_the_wire_format_is_the_same_as_before():
    assert TripleRequest(Bilinear(MATMUL), (3, 4), (4, 5)).encode().tolist() == [1, 2, 0, 2, 3, 4, 2, 4, 5]
    assert TruncRequest((3, 5), 16).encode().tolist() == [2, 16, 2, 3, 5]
    assert AndTriplesRequest(AndLayout((((4,), -1), ((4,), 1)), ((0, 0, 1, -3),))).encode().tolist() == [
        8, 2, -1, 1, 4, 1, 1, 4, 1, 0, 0, 1, -3]
    assert DabitsRequest((2, 3)).encode().tolist() == [4, 2, 2, 3]
    assert SignRequest(10, True).encode().tolist() == [5, 10, 1]
    assert OneHotRequest(12, 4).encode().tolist() == [6, 12, 4]
    assert FssSignRequest(9, False).encode().tolist() == [7, 9, 0]
    assert sorted(requests.REQUEST_TYPES) == [1, 2, 4, 5, 6, 7, 8]


def test_replies_and_descriptions():
    assert TripleRequest(Bilinear(MATMUL), (3, 4), (4, 5)).reply_shape == (3, 5)
    assert TripleRequest(Bilinear(MUL), (2, 3), (3,)).describe() == "triple(mul, (2, 3), (3,))"
    conv = TripleRequest(Bilinear.conv2d(2, 1), (1, 2, 5, 5), (4, 2, 3, 3))
    assert conv.reply_shape == (1, 4, 3, 3)
    assert conv.describe() == "triple(conv2d [2, 2, 1, 1, 1, 1, 1], (1, 2, 5, 5), (4, 2, 3, 3))"
    assert TruncRequest((3,), 20).reply_shape == (2, 3)
    assert DabitsRequest((3,)).reply_shape == (3,)  # the additive shares only: every XOR share is from a seed
    assert SignRequest(100, False).reply_shape == (sign_bit.correction_size(SignRequest(100).fields()),)
    assert SignRequest(7, True).describe() == "sign-bit material (7 elements, with product)"
    assert OneHotRequest(12, 4).reply_shape == (12, 16)
    # the one-bit DCF key: the seed and 62 seed corrections (126 words per element), 190 bit planes (a word each
    # for up to 64 elements); then party 1's shares of s (and of r s), which party 0 draws from its PRG
    assert FssSignRequest(10, False).reply_shape == FssSignRequest(10, False).reply_shape_for(1) == (1460,)
    assert FssSignRequest(10, True).reply_shape_for(0) == (1450,) and FssSignRequest(10, True).reply_shape == (1470,)
    assert TruncRequest((3,), 20).reply_shape_for(0) == (2, 3)  # a request answered to the last party only
    largest = FssSignRequest.max_count  # the most elements whose every reply fits MAX_ELEMENTS words
    assert FssSignRequest(largest, True).reply_shape[0] <= MAX_ELEMENTS < fss_wire.reply_words(1, largest + 1, True)
    with pytest.raises(ProtocolError, match="outside 0.."):
        FssSignRequest(largest + 1)
    assert FssSignRequest(3, True).describe() == "FSS sign keys (3 elements, with product)"
    assert FssSignRequest.reply_to_every_party and not SignRequest.reply_to_every_party
    with pytest.raises(ProtocolError, match="FSS sign keys are for two parties, this run has 3"):
        FssSignRequest(4).make([None, None, None], None)
    for values, message in (([7, -1, 0], "count -1 outside"), ([7, 3, 2], "not 0 or 1"), ([7, 3], "1 fields"),
                            ([7, MAX_ELEMENTS, 0], "outside 0..")):
        with pytest.raises(ProtocolError, match=message):
            requests.decode(np.array(values, dtype=np.int64))


@settings(max_examples=400)
@given(values=st.lists(st.one_of(st.integers(-3, 20), st.sampled_from([MAX_ELEMENTS, MAX_ELEMENTS + 1, -(1 << 63),
                                                                        (1 << 63) - 1, 1 << 40])),
                       min_size=1, max_size=MAX_REQUEST_VALUES))
def test_any_int64_vector_decodes_to_itself_or_is_refused_clearly(values):
    message = np.array(values, dtype=np.int64)
    try:
        request = requests.decode(message)
    except ProtocolError as exc:
        assert "request" in str(exc)
        return
    assert request.encode().tolist() == values


# --- malformed requests ------------------------------------------------------------------------------------------
T, TR, D, S, OH, A = 1, 2, 4, 5, 6, 8
MALFORMED = [
    ([99, 1, 2], "unknown dealer request type 99"),
    ([0], "unknown dealer request type 0"),
    ([-1, 1], "unknown dealer request type -1"),
    ([D, 2, 3, -1], "negative dimension"),
    ([TR, 16, 1, -4], "negative dimension"),
    ([D, 2, 1 << 16, 1 << 16], "exceeds the limit"),
    ([D, 1, MAX_ELEMENTS + 1], "exceeds the limit"),
    ([T, MATMUL, 0, 2, 1 << 20, 1, 2, 1, 1 << 20], "exceeds the limit"),  # small operands, huge product
    ([D, MAX_NDIM + 1, *[1] * (MAX_NDIM + 1)], "malformed shape"),
    ([D, 3, 1], "malformed shape"),
    ([D], "malformed shape"),
    ([TR, 0, 1, 3], "bits 0 outside 1..62"),
    ([TR, 63, 1, 3], "bits 63 outside 1..62"),
    ([TR, -5, 1, 3], "bits -5 outside"),
    ([TR], "no bits"),
    ([OH, 4, 25], "malformed one-hot request: bits 25"),
    ([OH, -1, 3], "malformed one-hot request: count -1"),
    ([OH, 1 << 20, 20], "exceeds the limit"),
    ([S, 10, 2], "with_product 2 is not 0 or 1"),
    ([S, -1, 0], "count -1"),
    ([S, MAX_ELEMENTS + 1, 0], "count"),
    ([S, 10], "1 fields, expected 2"),
    ([D, 1, 4, 7], "1 trailing values"),
    ([D, 0, 9, 9], "2 trailing values"),
    ([TR, 16, 1, 4, 0], "trailing values"),
    ([T, MUL, 0, 1, 4, 1, 4, 5], "trailing values"),
    ([S, 10, 0, 0], "3 fields"),
    ([T, 9, 0, 1, 4, 1, 4], "malformed bilinear op"),
    ([T, CONV2D, 3, 1, 1, 1], "malformed parameters for conv2d"),
    ([T, CONV2D, 7, 0, 1, 0, 0, 1, 1, 1, 4, 1, 1, 3, 3, 4, 1, 1, 1, 1], "stride must be positive"),
    ([T, MATMUL, 0, 2, 3, 4, 2, 5, 6], "do not align"),
    ([T, MUL, 0, 1, 3, 1, 4], "malformed triple request"),
    ([A], "no mask count"),
    ([A, 0, 1, 0, 0, 0, 0], "no mask count"),
    ([A, 2, -1, 1, 4], "a mask is missing"),
    ([A, 1, -1, 1, 4, 0], "products do not match"),
    ([A, 1, -1, 1, 4, 1, 0, 0, 0], "products do not match"),
    ([A, 1, -2, 1, 4, 1, 0, 0, 0, 1], "mask owner -2"),
    ([A, 1, -1, 1, 4, 1, 0, 0, 1, 1], "names mask 0 or 1 of 1"),
    ([A, 1, -1, 1, 4, 1, 0, 64, 0, 1], "shift 64 or 1 outside"),
    ([A, 1, -1, 1, 4, 1, 0, 0, 0, -64], "outside -63..63"),
    ([A, 2, -1, 1, 4, -1, 1, 3, 1, 0, 0, 1, 0], "masks 0 and 1 do not broadcast"),
    ([A, 1, -1, 1, -4, 1, 0, 0, 0, 1], "negative dimension"),
    ([A, 2, -1, 1, 1 << 31, 0, 2, 1 << 31, 2, 1, 0, 0, 1, 0], "exceeds the limit"),
    ([A, 3, *[-1, 3, 1, 1, 1] * 3, 11, *[0, 0, 1, 1] * 11, 0], "products do not match"),
]


def test_an_and_layout_too_long_to_describe_is_refused_before_it_is_sent():
    masks = tuple((((1, 1, 1), -1),) * 3)
    with pytest.raises(ProtocolError, match="65 values to describe, at most 63"):
        AndTriplesRequest(AndLayout(masks, ((0, 0, 1, 1),) * 12))
    with pytest.raises(ProtocolError, match="at least one mask and one product"):
        AndTriplesRequest(AndLayout(masks, ()))


@pytest.mark.parametrize("values, message", MALFORMED)
def test_malformed_requests_are_refused_naming_the_problem(values, message):
    with pytest.raises(ProtocolError, match=message):
        requests.decode(np.array(values, dtype=np.int64))


@pytest.mark.parametrize("message, text", [
    (np.zeros(3), r"malformed dealer request \(float64\[3\]\)"),
    (np.zeros(3, np.int32), r"malformed dealer request \(int32\[3\]\)"),
    (np.zeros((2, 3), np.int64), r"int64\[2, 3\]"),
    (np.zeros(0, np.int64), "0 values"),
    (np.ones(MAX_REQUEST_VALUES + 1, np.int64), f"{MAX_REQUEST_VALUES + 1} values"),
    ([3, 1, 4], r"\(list\)"),
])
def test_requests_of_the_wrong_dtype_or_size_are_refused(message, text):
    with pytest.raises(ProtocolError, match=text):
        requests.decode(message)


def test_parties_build_requests_with_the_same_checks():
    with pytest.raises(ProtocolError, match="bits 70"):
        TruncRequest((3,), 70)
    with pytest.raises(ProtocolError, match="negative dimension"):
        DabitsRequest((3, -1))
    with pytest.raises(ProtocolError, match="not an integer"):
        DabitsRequest((2.5,))
    assert TruncRequest((np.int64(3),), np.int64(8)) == TruncRequest((3,), 8)


# --- the source interface ------------------------------------------------------------------------------------------
class _Toy(CorrelatedSource):
    """A source that makes plain triples of zeros, nothing else."""

    name = "toy source"
    provides = frozenset({"triple"})

    def triple(self, op, shape_x, shape_y):
        shape_z = op.output_shape(shape_x, shape_y)
        return self._track(Triple(np.zeros(shape_x, np.uint64), np.zeros(shape_y, np.uint64),
                                  np.zeros(shape_z, np.uint64)), f"triple {shape_x} {shape_y}")


def test_material_is_completed_in_request_order():
    source = _Toy()
    first = source.triple(Bilinear(MUL), (2,), (2,))
    second = source.triple(Bilinear(MUL), (3,), (3,))
    with pytest.raises(MaterialOrderError, match=r"out of order: request 2 \(triple \(3,\) \(3,\)\) before "
                                                 r"request 1 \(triple \(2,\) \(2,\)\)"):
        source.complete(second)
    assert source.complete(first) is first
    assert source.complete(second) is second
    with pytest.raises(MaterialOrderError, match="completed twice"):
        source.complete(first)
    with pytest.raises(MaterialOrderError, match="not outstanding"):
        source.complete(Triple(None, None, None))
    assert source.requests == 2 and isinstance(MaterialOrderError("x"), ProtocolError)


def test_a_kind_the_source_does_not_provide_raises_naming_it():
    source = _Toy()
    for kind in sorted(set(KINDS) - source.provides):
        with pytest.raises(UnsupportedMaterial, match=f"toy source cannot make .*kind '{kind}'") as info:
            getattr(source, kind)(*_arguments(kind))
        assert info.value.kind == kind
        assert isinstance(info.value, NotImplementedError) and isinstance(info.value, ProtocolError)


def test_paillier_declares_what_it_provides():
    assert PaillierDealerClient.provides == {"triple", "trunc_pair"}
    assert TrustedDealerClient.provides == set(KINDS)
    client = PaillierDealerClient.__new__(PaillierDealerClient)
    calls = {kind: _arguments(kind) for kind in ("and_triples", "dabits", "sign_material", "random_one_hot")}
    for kind, args in calls.items():
        pattern = f"dealer='paillier' cannot make .*kind '{kind}'.*dealer='trusted'"
        with pytest.raises(UnsupportedMaterial, match=pattern):
            getattr(client, kind)(*args)
    with pytest.raises(UnsupportedMaterial, match="cannot make conv2d triples"):
        client.triple(Bilinear.conv2d(), (1, 1, 3, 3), (1, 1, 3, 3))


def test_a_source_must_declare_what_it_overrides():
    with pytest.raises(TypeError, match=r"does not override dabits\(\) but lists it"):
        type("Lazy", (CorrelatedSource,), {"name": "lazy", "provides": frozenset({"dabits"})})
    with pytest.raises(TypeError, match=r"Quiet overrides dabits\(\) but does not list it"):
        type("Quiet", (CorrelatedSource,), {"name": "quiet", "dabits": lambda self, shape: None})
    with pytest.raises(TypeError, match="unknown kinds"):
        type("Odd", (CorrelatedSource,), {"name": "odd", "provides": frozenset({"fss_keys"})})
    with pytest.raises(TypeError, match="abstract"):
        CorrelatedSource()


# --- the trusted dealer's party side, against a stand-in dealer ------------------------------------------------
class _Zeros:
    def random_ring(self, shape):
        return np.zeros(shape, np.uint64)

    random_bits = random_ring


class _LastParty:
    """The last of two parties; the dealer's replies are given in advance."""

    rank, world_size, dealer_endpoint, timeout = 1, 2, -1, 1.0

    def __init__(self, *replies):
        self.sent, self.replies = [], list(replies)

    def pair_prg(self, other):
        return _Zeros()

    def offline(self):
        return contextlib.nullcontext()

    def send(self, to, value):
        self.sent.append((to, value))

    def recv(self, source, timeout=None):
        return self.replies.pop(0)


def test_the_last_party_receives_only_when_it_completes_and_checks_the_reply():
    party = _LastParty(np.arange(3, dtype=np.uint64), np.zeros(3, np.int64), np.zeros((2, 4), np.uint64))
    client = TrustedDealerClient(party)
    triple = client.triple(Bilinear(MUL), (3,), (3,))
    bad_dtype = client.triple(Bilinear(MUL), (3,), (3,))
    bad_shape = client.trunc_pair((3,), 16)
    assert [to for to, _ in party.sent] == [-1, -1, -1] and len(party.replies) == 3  # nothing received yet
    assert np.array_equal(party.sent[2][1], TruncRequest((3,), 16).encode())
    assert triple.c is None  # plain data: no receive hides behind an attribute
    assert np.array_equal(client.complete(triple).c, np.arange(3))
    with pytest.raises(PeerError, match=r"the dealer sent int64\[3\], expected uint64\[3\]"):
        client.complete(bad_dtype)
    with pytest.raises(PeerError, match=r"the dealer sent uint64\[2, 4\], expected uint64\[2, 3\]"):
        client.complete(bad_shape)


def test_derived_sign_fields_are_refused_before_their_corrections():
    fields = sign_bit.layout(10, with_mask=True, with_arith_bit=True)
    material = sign_bit.expand(fields, _Zeros(), derived=False)
    assert material["r"].shape == (10,)
    with pytest.raises(ProtocolError, match="'planes' is derived"):
        material["planes"]
    material.add_corrections(np.zeros(sign_bit.correction_size(fields), np.uint64))
    assert material["planes"].shape == (64, 1)
    with pytest.raises(ProtocolError, match="sign-bit corrections of shape"):
        material.add_corrections(np.zeros(3, np.uint64))


# --- in a run ------------------------------------------------------------------------------------------------------
def _out_of_order(party):
    pair = party.dealer.trunc_pair((3,), 16)
    triple = party.dealer.triple(Bilinear(MUL), (3,), (3,))
    party.dealer.complete(triple)
    return pair


def test_completing_out_of_order_fails_the_run_clearly():
    with pytest.raises(smpc.PartyFailedError, match=r"material completed out of order: request 2 \(triple\(mul, "
                                                    r"\(3,\), \(3,\)\)\) before request 1 \(truncation pair"):
        smpc.run(_out_of_order, parties=2, timeout=10)


def test_the_dealer_refuses_an_and_mask_owned_by_a_party_the_run_does_not_have():
    request = AndTriplesRequest(AndLayout((((4,), 2),), ((0, 0, 0, 1),)))  # party 2's mask
    prgs = [PRG.fresh(), PRG.fresh()]
    with pytest.raises(ProtocolError, match="names party 2 of 2 as a mask's owner"):
        request.make(prgs, PRG.fresh())


def test_and_triples_made_by_the_dealer_and_drawn_by_the_parties_fit_together():
    # three parties: a shared mask, one owned by party 1, products of their shifts, broadcast shapes too
    layout = AndLayout((((3, 4), -1), ((4,), 1)), ((0, 5, 1, -2), (1, 0, 1, 3), (0, -60, 0, 1)))
    request = AndTriplesRequest(layout)
    keys = [fresh_key() for _ in range(3)]
    reply = request.make([PRG(key) for key in keys], PRG.fresh())
    shares = []
    for rank, key in enumerate(keys):
        prg = PRG(key)  # each party draws its masks (its own or shared), then its products (not the last party)
        masks = [prg.random_ring(shape) if owner in (-1, rank) else np.zeros(shape, np.uint64)
                 for shape, owner in layout.masks]
        products = [prg.random_ring(layout.product_shape(k)) for k in range(3)] if rank < 2 else None
        shares.append((masks, products))
    sizes = np.cumsum(request.product_sizes())[:-1]
    last = [part.reshape(layout.product_shape(k)) for k, part in enumerate(np.split(reply, sizes))]
    masks = [shares[0][0][i] ^ shares[1][0][i] ^ shares[2][0][i] for i in range(2)]

    def shifted(words, bits):
        return words << np.uint64(bits) if bits >= 0 else words >> np.uint64(-bits)

    for k, (i, si, j, sj) in enumerate(layout.products):
        product = shares[0][1][k] ^ shares[1][1][k] ^ last[k]
        assert np.array_equal(product, shifted(masks[i], si) & shifted(masks[j], sj))
