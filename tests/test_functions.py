"""smpc.mpc.functions against numpy on every protocol: the documented errors and rounds, clamps, bad input."""

import functools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import programs
from protocol_matrix import one_per_protocol, one_per_protocol_pairs, protocol_parties, skip_without_rounds
import smpc
from conftest import TCP_PHASES, only
from smpc.mpc import functions
from smpc.mpc.bit_length import leading_one
from smpc.mpc.functions import ERRORS, ROUNDS

SETUPS = protocol_parties("functions")
ULP = 2.0**-16
NAMES = ["exp", "sigmoid", "tanh", "log", "reciprocal", "sqrt", "inv_sqrt", "divide", "softmax", "log_softmax"]


def fixed(values):
    """Values as the fixed-point grid holds them: errors are measured against f of these."""
    return np.rint(np.asarray(values, dtype=np.float64) * 2**16) / 2**16


def exact_softmax(z, axis):
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


EXACT = {
    "exp": np.exp,
    "sigmoid": lambda x: 0.5 + 0.5 * np.tanh(x / 2),
    "tanh": np.tanh,
    "log": np.log,
    "reciprocal": lambda x: 1 / x,
    "sqrt": np.sqrt,
    "inv_sqrt": lambda x: 1 / np.sqrt(x),
}


def exact_values(inputs: dict) -> dict:
    """The exact function of every (fixed-point) input in ``inputs``."""
    want = {name: EXACT[name](inputs[name]) for name in EXACT}
    x, y = inputs["divide"]
    want["divide"] = x / y
    z, axis = inputs["softmax"]
    want["softmax"] = exact_softmax(z, axis)
    want["log_softmax"] = np.log(exact_softmax(z, axis))
    return want


def check_errors(got: dict, want: dict) -> None:
    for name in NAMES:
        value, exact = np.asarray(got[name]), np.asarray(want[name])
        assert value.shape == exact.shape, (name, value.shape, exact.shape)
        error, allowed = np.abs(value - exact), ERRORS[name].allowed(exact)
        worst = np.unravel_index(np.argmax(error - allowed), error.shape) if error.size else ()
        assert np.all(error <= allowed), f"{name}: error {error[worst]:.3g} > {allowed[worst]:.3g} at {exact[worst]!r}"


def all_functions(inputs: dict, party) -> dict:
    """Every function on its input (shared by party 0), through the tensor methods, in one run."""
    def shared(value):
        return party.share(only(value, party, 0), src=0)

    out = {name: getattr(shared(inputs[name]), name)().reveal() for name in EXACT}
    x, y = inputs["divide"]
    out["divide"] = (shared(x) / party.share(only(y, party, party.world_size - 1), src=party.world_size - 1)).reveal()
    z, axis = inputs["softmax"]
    logits = shared(z)
    out["softmax"] = logits.softmax(axis=axis).reveal()
    out["log_softmax"] = logits.log_softmax(axis=axis).reveal()
    return out


# --- inputs: hypothesis strategies over each documented range, ends and special points included ---------------
def arrays(elements, edges):
    return hnp.arrays(np.float64, st.integers(1, 6), elements=st.one_of(st.sampled_from(edges), elements)).map(fixed)


OCTAVES = [ULP, 2 * ULP, 3 * ULP, 0.5, 1.0, 1.0 - ULP, 2.0, 3.0, 2.0**31, 2.0**32 - ULP]
POSITIVE = arrays(st.floats(-16, 31.99).map(lambda e: 2.0**e), OCTAVES)
NONZERO = arrays(st.floats(-16, 15.99).map(lambda e: 2.0**e), [ULP, 2 * ULP, 1.0, 1.5, 2.0**16 - ULP]).flatmap(
    lambda v: hnp.arrays(np.float64, v.shape, elements=st.sampled_from([-1.0, 1.0])).map(lambda s: s * v))
INPUTS = {
    "exp": arrays(st.floats(-12, 16), [-12.0, -11.5, -ULP, 0.0, ULP, 1.0, 15.0, 16.0]),
    "sigmoid": arrays(st.floats(-2.0**40, 2.0**40) | st.floats(-14, 14), [0.0, ULP, -ULP, 12.0, -12.0, 2.0**40]),
    "tanh": arrays(st.floats(-2.0**40, 2.0**40) | st.floats(-8, 8), [0.0, ULP, -ULP, 7.0, -7.0, -(2.0**40)]),
    "log": POSITIVE,
    "reciprocal": NONZERO,
    "sqrt": POSITIVE | arrays(st.floats(0, 1), [0.0, ULP]),
    "inv_sqrt": POSITIVE,
}


@st.composite
def function_inputs(draw):
    inputs = {name: draw(strategy) for name, strategy in INPUTS.items()}
    y = draw(NONZERO)
    x = draw(hnp.arrays(np.float64, y.shape, elements=st.floats(-1000, 1000) | st.sampled_from([0.0, ULP, -ULP])))
    inputs["divide"] = (fixed(x), y)  # |x / y| <= 1000 / 2^-16 < 2^30
    shape = draw(st.tuples(st.integers(1, 4), st.integers(1, 6)))
    logits = st.floats(-30, 30) | st.sampled_from([0.0, ULP, 20.0, -20.0])
    inputs["softmax"] = (fixed(draw(hnp.arrays(np.float64, shape, elements=logits))), draw(st.sampled_from([0, 1, -1])))
    return inputs


@pytest.mark.parametrize("protocol, parties", SETUPS)
@settings(max_examples=8)
@given(inputs=function_inputs())
def test_functions_match_numpy_within_the_documented_errors(protocol, parties, inputs):
    got = smpc.run(lambda party: all_functions(inputs, party), parties=parties, protocol=protocol)
    want = exact_values(inputs)
    for result in got:
        check_errors(result, want)


def dense_inputs() -> dict:
    """Dense grids over every documented range: what the ERRORS constants were measured on."""
    rng = np.random.default_rng(1)
    log_spaced = fixed(np.concatenate([np.linspace(ULP, 4, 1500), 2.0 ** rng.uniform(-16, 32, 1500)]))
    inverse = fixed(np.concatenate([np.linspace(ULP, 4, 1000), 2.0 ** rng.uniform(-16, 16, 1000)]))
    inverse = np.concatenate([inverse, -inverse])
    numerator = fixed(rng.uniform(-1, 1, inverse.size) * 2.0 ** rng.uniform(-16, 13, inverse.size))
    logits = fixed(rng.normal(0, 1, (300, 10)) * rng.choice([0.5, 3.0, 30.0], (300, 1)))
    return {
        "exp": fixed(np.linspace(-12, 16, 3000)),
        "sigmoid": fixed(np.linspace(-16, 16, 3000)),
        "tanh": fixed(np.linspace(-8, 8, 3000)),
        "log": log_spaced,
        "reciprocal": inverse,
        "sqrt": np.concatenate([[0.0], log_spaced]),
        "inv_sqrt": log_spaced,
        "divide": (numerator, inverse),
        "softmax": (logits, -1),
    }


@pytest.mark.parametrize("protocol, parties", protocol_parties("functions", heavy=True))  # spdz2k's: extended
def test_documented_errors_hold_on_dense_grids(protocol, parties):
    inputs = dense_inputs()
    got = smpc.run(lambda party: all_functions(inputs, party), parties=parties, protocol=protocol)
    check_errors(got[0], exact_values(inputs))


def test_plain_numpy_path_is_the_same_approximation():
    inputs = dense_inputs()
    got = {name: getattr(functions, name)(inputs[name]) for name in EXACT}
    got["divide"] = functions.divide(*inputs["divide"])
    z, axis = inputs["softmax"]
    got["softmax"], got["log_softmax"] = functions.softmax(z, axis), functions.log_softmax(z, axis)
    check_errors(got, exact_values(inputs))
    assert all(isinstance(value, np.ndarray) and value.dtype == np.float64 for value in got.values())
    assert functions.exp(0.0) == pytest.approx(1.0, abs=ULP) and np.ndim(functions.sigmoid(3)) == 0
    assert np.allclose(functions.log([1.0, 2.0]), [0.0, np.log(2)], atol=ERRORS["log"].absolute)


@given(x=hnp.arrays(np.float64, st.integers(1, 8), elements=st.floats(-64, 64)))
def test_plain_path_matches_the_documented_errors_on_any_values(x):
    want = {"sigmoid": EXACT["sigmoid"](x), "tanh": np.tanh(x), "exp": np.exp(np.clip(x, -12, 16))}
    for name, exact in want.items():
        got = getattr(functions, name)(x)
        assert np.all(np.abs(got - exact) <= ERRORS[name].allowed(exact) + (np.exp(-12) if name == "exp" else 0))


def test_outside_the_ranges_values_are_clamped_as_documented():
    cases = {
        "exp": ([-100.0, -12.5, 17.0, 2.0**40], [0.0, 0.0, np.exp(16), np.exp(16)]),
        "sigmoid": ([-(2.0**40), 2.0**40, -13.0, 13.0], [0.0, 1.0, 0.0, 1.0]),
        "tanh": ([-(2.0**40), 2.0**40, -7.5], [-1.0, 1.0, -1.0]),
        "log": ([0.0, -3.0, 2.0**33], [-16 * np.log(2), -16 * np.log(2), 32 * np.log(2)]),
        "reciprocal": ([0.0, 2.0**20, -(2.0**20)], [2.0**16, 2.0**-16, -(2.0**-16)]),
        "sqrt": ([0.0, -4.0, 2.0**40], [0.0, 0.0, 2.0**16]),
        "inv_sqrt": ([0.0, -4.0, 2.0**40], [256.0, 256.0, 2.0**-16]),
    }

    def program(party):
        out = {}
        for name, (x, _) in cases.items():
            shared = party.share(only(np.array(x), party, 0), src=0)
            out[name] = getattr(functions, name)(shared).reveal()
        bits = party.share(only(np.array([0.0, 3.0]), party, 0), src=0) > 1.0  # an integer tensor
        out["exp of bits"] = bits.exp().reveal()
        big = party.share(only(np.array([2.0**19, 3 * 2.0**19]), party, 0), src=0)
        out["wider range"] = functions.divide(big[1:], big[:1], high=20).reveal()
        out["public numerator"] = functions.divide(np.array([3.0, -1.5]), big / 2**18).reveal()
        out["broadcast"] = (big.reshape(2, 1) / (big / 2**19)).reveal()
        return out

    computed = smpc.run(program, parties=2)[0]
    plain = {name: getattr(functions, name)(np.array(x)) for name, (x, _) in cases.items()}
    for result in (computed, plain):
        for name, (_, want) in cases.items():
            np.testing.assert_allclose(result[name], want, rtol=1e-4, atol=2 * ULP, err_msg=name)
    np.testing.assert_allclose(computed["exp of bits"], [1.0, np.e], rtol=ERRORS["exp"].relative)
    np.testing.assert_allclose(computed["wider range"], [3.0], rtol=ERRORS["divide"].relative)
    np.testing.assert_allclose(computed["public numerator"], [1.5, -0.25], rtol=ERRORS["divide"].relative)
    np.testing.assert_allclose(computed["broadcast"], [[2.0**19, 2.0**19 / 3], [3 * 2.0**19, 2.0**19]],
                               rtol=ERRORS["divide"].relative)


@pytest.mark.parametrize("protocol, parties", SETUPS)
def test_rounds_match_the_documented_formulas(protocol, parties):
    skip_without_rounds(protocol, parties)
    x = np.linspace(0.25, 4, 6).reshape(2, 3)

    def rounds_of(party, operation):
        party.reset_stats()
        operation()
        return party.stats["rounds"]

    def program(party):
        a = party.share(only(x, party, 0), src=0)
        measured = {
            "C": rounds_of(party, lambda: a < 1.0),
            "relu": rounds_of(party, a.relu),
            "M": rounds_of(party, lambda: a * a),
            "T": rounds_of(party, lambda: a.truncate(1)),
            "max": rounds_of(party, lambda: a.max(axis=-1, keepdims=True)),
            "B": rounds_of(party, lambda: leading_one(a, signed=True)),
        }
        for name in NAMES:
            call = (lambda: functions.divide(a, a)) if name == "divide" else (lambda n=name: getattr(functions, n)(a))
            measured[name] = rounds_of(party, call)
        return measured

    results = smpc.run(program, parties=parties, protocol=protocol)
    measured = {key: max(result[key] for result in results) for key in results[0]}  # a computation's rounds
    for name in NAMES:
        assert ROUNDS[name].describe() in getattr(functions, name).__doc__, name
        want = ROUNDS[name].count(measured["C"], measured["M"], measured["T"], measured["max"], measured["B"])
        extra = measured["relu"] - measured["C"]  # spdz2k: x msb(x) is one product after the sign bit
        if extra:  # the formula's C is a clamp (x msb(x)) in the functions that compare
            assert want <= measured[name] <= want + extra * ROUNDS[name].comparisons, (name, measured)
        elif smpc.protocols()[protocol].rounds_add_up:
            assert measured[name] == want, (name, measured)
        else:  # aby3: a sign bit after another step saves a round, so the parts measured alone bound the whole
            assert measured[name] <= want, (name, measured)


def test_docstrings_quote_the_asserted_errors():
    for name in NAMES:
        assert ERRORS[name].describe() in getattr(functions, name).__doc__, name


def test_bad_input_is_refused_with_a_clear_message():
    x = np.linspace(1, 2, 3)
    for call, message in [
        (lambda: functions.reciprocal(x, iterations=0), r"iterations must be an integer in \[1, 8\], got 0"),
        (lambda: functions.sqrt(x, iterations=-1), "iterations must be"),
        (lambda: functions.divide(x, x, iterations=True), "iterations must be"),
        (lambda: functions.exp(x, degree=0), "degree must be"),
        (lambda: functions.exp(x, high=21), "high must be"),
        (lambda: functions.exp(x, low=5, high=4), "low must be"),
        (lambda: functions.log(x, low=-17), "low must be"),
        (lambda: functions.log(x, low=3, high=3), "high must be"),
        (lambda: functions.sigmoid(x, limit=0), "limit must be"),
        (lambda: functions.divide(x, np.ones(2)), r"cannot divide a tensor of shape \(3,\) by one of shape \(2,\)"),
        (lambda: functions.softmax(x, axis=1), "axis 1 is out of bounds"),
    ]:
        with pytest.raises(ValueError, match=message):
            call()


def test_bad_input_is_refused_inside_a_run():
    def wrong_shape(party):
        a = party.share(only(np.ones(3), party, 0), src=0)
        return functions.divide(a, np.ones(2))

    def shared_wrong_shape(party):
        return party.share(only(np.ones(3), party, 0), src=0) / party.share(only(np.ones(2), party, 0), src=0)

    def no_iterations(party):
        return party.share(only(np.ones(3), party, 0), src=0).reciprocal(iterations=0)

    for program, message in [(wrong_shape, "cannot divide a tensor of shape"),
                             (shared_wrong_shape, "cannot divide a tensor of shape"),
                             (no_iterations, "iterations must be an integer")]:
        with pytest.raises(smpc.PartyFailedError, match=message):
            smpc.run(program, parties=2)


@pytest.mark.parametrize("setup", one_per_protocol("functions", transport="tcp"))
@settings(max_examples=1, phases=TCP_PHASES)
@given(data=st.data())
def test_every_function_over_tcp(setup, data):
    x = fixed(data.draw(hnp.arrays(np.float64, (2, 3), elements=st.floats(0.01, 12))))
    y = fixed(data.draw(hnp.arrays(np.float64, (2, 3), elements=st.floats(-10, 10))))
    program = functools.partial(programs.functions_suite, x, y)
    expected = {name: EXACT[name](x) for name in ("exp", "log", "reciprocal", "sqrt", "inv_sqrt")}
    expected.update(sigmoid=EXACT["sigmoid"](y), tanh=EXACT["tanh"](y), softmax=exact_softmax(y, -1),
                    log_softmax=np.log(exact_softmax(y, -1)), divide=y / x)
    for result in setup.run(program):
        for name, want in expected.items():
            allowed = ERRORS[name].allowed(want)
            assert np.all(np.abs(result[name] - want) <= allowed), name


@pytest.mark.parametrize("protocol, parties", one_per_protocol_pairs("functions"))
def test_softmax_on_long_rows_keeps_its_bound(protocol, parties):
    # 1000 terms: clamped terms (x - max below low) must not add up to a visible loss
    x = fixed(np.random.default_rng(5).normal(0, 3, (2, 1000)))

    def program(party):
        shared = party.share(only(x, party, 0), src=0)
        return shared.softmax().reveal(), shared.log_softmax().reveal()

    soft, log_soft = smpc.run(program, parties=parties, protocol=protocol)[0]
    want = exact_softmax(x, -1)
    assert np.all(np.abs(soft - want) <= ERRORS["softmax"].allowed(want))
    assert np.all(np.abs(log_soft - np.log(want)) <= ERRORS["log_softmax"].allowed(np.log(want)))


def test_sqrt_and_inv_sqrt_index_their_tables_by_pairs_of_positions_where_the_range_allows():
    step = functions._octave_step
    assert step(16, -16, 32) == 2  # the default: 49 positions, 25 pairs, so 32 one-hot rows rather than 64
    assert step(16, -15, 32) == 1 and step(16, -16, 31) == 1  # a pair would straddle an end of the range
    assert step(16, 0, 2) == 1  # layer_norm's [1, 4): 4 positions, 3 pairs, no shorter rows
    # the dealer's one-hot rows are 32 words per element by pairs (default range) and 64 by positions (odd end)
    paired = smpc.cost(functions.inv_sqrt, [(100,)], "additive", 2)["dealer_bytes"]
    single = smpc.cost(functools.partial(functions.inv_sqrt, low=-15), [(100,)], "additive", 2)["dealer_bytes"]
    assert single - paired >= 32 * 8 * 100


@pytest.mark.parametrize("low, high", [(-16, 32), (-15, 31), (-4, 6)])
def test_sqrt_and_inv_sqrt_keep_their_errors_by_pairs_and_by_positions(low, high):
    rng = np.random.default_rng(3)
    x = fixed(np.concatenate([2.0 ** rng.uniform(low, high, 600), 2.0 ** np.arange(low, high),
                              2.0 ** np.arange(low + 1, high) - ULP]))

    def program(party):
        shared = party.share(only(x, party, 0), src=0)
        return [functions.inv_sqrt(shared, low=low, high=high).reveal(), functions.sqrt(shared, low=low, high=high)
                .reveal()]

    for got in smpc.run(program, parties=2)[:1] + [[functions.inv_sqrt(x, low=low, high=high),
                                                   functions.sqrt(x, low=low, high=high)]]:
        for name, value, exact in zip(["inv_sqrt", "sqrt"], got, [1 / np.sqrt(x), np.sqrt(x)]):
            error, allowed = np.abs(value - exact), ERRORS[name].allowed(exact)
            assert np.all(error <= allowed), (name, low, high, float(np.max(error - allowed)))
