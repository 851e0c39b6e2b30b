"""The trusted dealer serves only what every party asked for: forged, missing and extra requests stop the run."""

import functools
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import smpc
from conftest import assert_close, frame, only
from smpc.exceptions import PeerError
from smpc.mpc.bilinear import MATMUL, MUL, Bilinear

F_ENC = 2.0**-16


def request_frame(values: int) -> int:
    """Bytes a party sends the dealer for one request of ``values`` int64s (header, one dim, payload)."""
    return frame((values,))


# request lengths in int64 values: kind, then the op (code, 0 params) and both shapes as
# (ndim, *dims) for a triple; kind, bits, (ndim, *dims) for a truncation pair; kind,
# count, with_product for sign-bit material
def triple_values(shape_x, shape_y):
    return 3 + (1 + len(shape_x)) + (1 + len(shape_y))


def trunc_values(shape):
    return 2 + (1 + len(shape))


SIGN_VALUES = 3


# --- forged requests -------------------------------------------------------------------------
# each asks for material and completes it (the last party waits for the dealer's correction), as a protocol
# step would: material is completed in request order, so none can be left behind
def ask_triple(party):
    party.dealer.complete(party.dealer.triple(Bilinear(MATMUL), (3, 4), (4, 5)))


def ask_other_shapes(party):
    party.dealer.complete(party.dealer.triple(Bilinear(MATMUL), (3, 4), (4, 6)))


def ask_trunc(party, bits=16):
    party.dealer.complete(party.dealer.trunc_pair((3, 5), bits))


def forged(deviant, honest_ask, forged_ask, party):
    """Every party makes one request (``deviant`` a different one), then a product that needs everyone."""
    (forged_ask if party.rank == deviant else honest_ask)(party)
    x = party.share(only(np.arange(4.0), party, 0), src=0)
    return (x * x).reveal()


CASES = {
    "kind": (ask_triple, ask_trunc, "triple(matmul, (3, 4), (4, 5))", "truncation pair (16 bits, (3, 5))"),
    "shapes": (ask_triple, ask_other_shapes, "triple(matmul, (3, 4), (4, 5))", "triple(matmul, (3, 4), (4, 6))"),
    "bits": (ask_trunc, functools.partial(ask_trunc, bits=20), "truncation pair (16 bits, (3, 5))",
             "truncation pair (20 bits, (3, 5))"),
}


def _dealer_failure(program, parties, timeout=10):
    with pytest.raises(smpc.PartyFailedError) as info:
        smpc.run(program, parties=parties, timeout=timeout)
    error = info.value
    assert error.rank == -1, error  # the dealer found it; the parties only react
    return error


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("parties", [2, 3])
def test_a_forged_request_from_the_last_party_stops_everyone(parties, case):
    honest_ask, forged_ask, honest_text, forged_text = CASES[case]
    last = parties - 1
    error = _dealer_failure(functools.partial(forged, last, honest_ask, forged_ask), parties)
    honest_ranks = ", ".join(f"party {r}" for r in range(last))
    dealer = error.failures[-1]
    assert dealer.startswith("ProtocolError: dealer request 1 differs between parties")
    assert f"{honest_ranks} asked for {honest_text}" in dealer
    assert f"party {last} asked for {forged_text}" in dealer
    # no party returns a result: each fails on hearing of the dealer's failure
    assert set(error.failures) == {-1, *range(parties)}
    assert all("the dealer failed (ProtocolError)" in error.failures[r] for r in range(parties))


def test_a_forged_request_from_another_party_is_named_too():
    honest_ask, forged_ask, honest_text, forged_text = CASES["kind"]
    error = _dealer_failure(functools.partial(forged, 1, honest_ask, forged_ask), parties=3)
    assert (f"party 0, party 2 asked for {honest_text}; party 1 asked for {forged_text}"
            in error.failures[-1])


def test_a_malformed_request_from_another_party_is_a_disagreement():
    def program(party):
        if party.rank == 0:
            party.send(party.dealer_endpoint, np.zeros(3))
        else:
            ask_triple(party)
        x = party.share(only(np.arange(4.0), party, 0), src=0)
        return (x * x).reveal()

    error = _dealer_failure(program, parties=2)
    assert "party 0 asked for a malformed request (float64[3])" in error.failures[-1]


# --- silent, missing and extra requests ------------------------------------------------------
def test_a_silent_party_times_out_at_the_dealer_naming_it():
    failed_at = {}

    def program(party):
        if party.rank == 0:
            time.sleep(4)  # connected, but never asks the dealer
            return None
        triple = party.dealer.triple(Bilinear(MUL), (4,), (4,))
        try:
            return party.dealer.complete(triple).c
        except PeerError:
            failed_at[party.rank] = time.monotonic()
            raise

    start = time.monotonic()
    error = _dealer_failure(program, parties=3, timeout=2)
    assert error.failures[-1] == ("PeerTimeoutError: no message from party 0 within 2 s of party 2's "
                                  "dealer request 1, which it must make too")
    assert failed_at[2] - start < 2 + 2  # the last party hears of it when the dealer gives up
    assert time.monotonic() - start < 10


def test_a_party_that_finished_without_asking_is_a_disagreement():
    def program(party):
        if party.rank != 0:
            party.dealer.complete(party.dealer.triple(Bilinear(MUL), (4,), (4,)))  # waits for the delivery

    error = _dealer_failure(program, parties=3)
    assert ("party 0 asked for nothing more (it finished); party 1, party 2 asked for triple(mul, (4,), (4,))"
            in error.failures[-1])


@pytest.mark.parametrize("parties", [2, 3])
def test_an_extra_request_after_the_last_party_finished_fails_the_run(parties):
    def program(party):
        x = party.share(only(np.arange(4.0), party, 0), src=0)
        result = (x * x).reveal()
        if party.rank == 0:
            party.dealer.trunc_pair((2,), 16)
        return result

    error = _dealer_failure(program, parties)
    others = ", ".join(f"party {r}" for r in range(1, parties))
    assert (f"dealer request 3 differs between parties: party 0 asked for truncation pair (16 bits, (2,)); "
            f"{others} asked for nothing more (it finished)") in error.failures[-1]


# --- honest runs: parties finish in any order ------------------------------------------------
def reveal_then_work(to, party):
    x = party.share(only(np.arange(3.0), party, 0), src=0)
    y = (x * x).reveal(to=to)
    if party.rank == to:
        time.sleep(1.5)  # local work past the run's timeout, after every message of the run
    return y


@pytest.mark.parametrize("parties", [2, 3])
@pytest.mark.parametrize("to", ["first", "last"])
def test_parties_may_finish_in_any_order(parties, to):
    # to the first party: the last party finishes first and the dealer waits untimed for the
    # others to finish; to the last: the others finish first, their requests still queued
    rank = 0 if to == "first" else parties - 1
    results = smpc.run(functools.partial(reveal_then_work, rank), parties=parties, timeout=1)
    assert_close(results[rank], np.arange(3.0) ** 2, 20 * F_ENC + F_ENC)
    assert all(results[r] is None for r in range(parties) if r != rank)


# --- honest runs: results and the parties' request traffic -------------------------------------
def honest_suite(x, y, party):
    a = party.share(only(x, party, 0), src=0)
    b = party.share(only(y, party, 0), src=0)
    party.reset_stats()
    out = {
        "mul": (a * a).reveal(),  # triple, then truncation pair
        "matmul": (a @ b).reveal(),  # triple, then truncation pair
        "scaled": (a * 0.25).reveal(),  # truncation pair
        "less": (a < 0).reveal(),  # sign-bit material
    }
    return out, party.stats, party.dealer.requests


@pytest.mark.filterwarnings("ignore::smpc.FixedPointPrecisionWarning")  # arbitrary floats: tiny ones are drawn
@pytest.mark.parametrize("parties", [2, 3])
@settings(max_examples=5)
@given(data=st.data())
def test_honest_runs_match_numpy_and_request_traffic_matches_theory(parties, data):
    m, k, n = data.draw(st.tuples(st.integers(1, 5), st.integers(1, 5), st.integers(1, 5)))
    values = st.floats(-10, 10, allow_nan=False, width=32)
    x = data.draw(hnp.arrays(np.float64, (m, k), elements=values))
    y = data.draw(hnp.arrays(np.float64, (k, n), elements=values))
    report = smpc.launch(functools.partial(honest_suite, x, y), parties=parties)

    # every party announces every request: 4 truncation pairs or triples of 2-d shapes and one
    # sign request, 100 + 68 + 100 + 68 + 68 + 52 = 456 bytes whatever m, k, n
    sent = (request_frame(triple_values((m, k), (m, k))) + request_frame(trunc_values((m, k)))
            + request_frame(triple_values((m, k), (k, n))) + request_frame(trunc_values((m, n)))
            + request_frame(trunc_values((m, k))) + request_frame(SIGN_VALUES))
    assert sent == 456
    last = parties - 1
    for rank, (out, stats, requests) in enumerate(report.results):
        assert_close(out["mul"], x * x, 20 * F_ENC + F_ENC)
        assert_close(out["matmul"], x @ y, k * (20 * F_ENC + F_ENC**2) + F_ENC)
        assert_close(out["scaled"], x * 0.25, 2 * F_ENC)
        assert np.array_equal(out["less"], (np.rint(x * 2**16) < 0).astype(np.int64))
        assert requests == 6
        assert stats["offline_bytes_sent"] == sent
        if rank != last:
            assert stats["offline_bytes_received"] == 0 and stats["offline_messages"] == requests
    assert report.dealer_stats["offline_bytes_received"] == parties * sent
