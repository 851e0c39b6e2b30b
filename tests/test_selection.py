"""max, argmax, one-hot argmax and max_pool2d on shared tensors against numpy, ties and edge values included."""

import functools
import math
import re

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from protocol_matrix import one_per_protocol, protocol_parties
import smpc
from smpc.mpc.cost import CostRun
from conftest import TCP_PHASES, only
from smpc.mpc import selection, stack
from smpc.nn import functional

ULP = 2.0**-16
BIG = 2.0**40
EDGES = [0.0, ULP, -ULP, 2 * ULP, 1.0, -1.0, BIG, -BIG, BIG - ULP, 0.5]


SETUPS = protocol_parties("comparison")


def fixed(values):
    """Values as the fixed-point grid holds them (selection is exact on that grid)."""
    return np.rint(np.asarray(values) * 2**16) / 2**16


def values_of(shape):
    """Arrays with many ties: sometimes from a pool of four values, otherwise edges mixed with any reals."""
    ties = st.sampled_from([0.0, ULP, -ULP, BIG])
    spread = st.one_of(st.sampled_from(EDGES), st.floats(-4, 4), st.floats(-BIG, BIG))
    return st.one_of(hnp.arrays(np.float64, shape, elements=ties), hnp.arrays(np.float64, shape, elements=spread))


def selection_suite(x, axis, keepdims, axes, party):
    """Every selection of x (shared by party 0) in one run; module level so TCP processes can load it."""
    a = party.share(only(x, party, 0), src=0)
    return {
        "max": a.max(axis=axis, keepdims=keepdims).reveal(),
        "argmax": a.argmax(axis=axis, keepdims=keepdims).reveal(),
        "onehot": selection.argmax_onehot(a, axis=axis).reveal(),
        "max_axes": selection.max(a, axis=axes).reveal(),
    }


def check_selection(result, x, axis, keepdims, axes):
    x = fixed(x)
    assert np.array_equal(result["max"], np.max(x, axis=axis, keepdims=keepdims))  # exact: bits times values
    want = np.argmax(x, axis=axis, keepdims=keepdims)
    assert result["argmax"].dtype == np.int64 and np.array_equal(result["argmax"], want)
    assert np.array_equal(result["onehot"], selection.argmax_onehot(x, axis=axis))
    assert np.array_equal(result["max_axes"], np.max(x, axis=axes))


def draw_case(data):
    shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=6))
    x = data.draw(values_of(shape))
    ndim = len(shape)
    sides = max(ndim, 1)  # numpy lets a 0-d array take axis 0 or -1
    axis = data.draw(st.none() | st.integers(-sides, sides - 1))
    axes = data.draw(hnp.valid_tuple_axes(ndim, min_size=1)) if ndim else None
    return x, axis, data.draw(st.booleans()), axes


@pytest.mark.parametrize("protocol, parties", SETUPS)
@settings(max_examples=20)
@given(data=st.data())
def test_selections_match_numpy(protocol, parties, data):
    x, axis, keepdims, axes = draw_case(data)
    program = functools.partial(selection_suite, x, axis, keepdims, axes)
    for result in smpc.run(program, parties=parties, protocol=protocol):
        check_selection(result, x, axis, keepdims, axes)


def test_argmax_keeps_the_first_maximum_for_every_length():
    # one maximum value everywhere it can be, across tree shapes with and without carried elements
    cases = [np.array([5.0, 5.0, 5.0]), np.array([1.0, 3.0, 3.0, 3.0, 3.0]), np.array([0.0, 0, 0, 0, 0, 7, 7]),
             np.array([2.0, 1, 1, 1, 2, 2, 2, 2]), np.array([0.0, 1, 0, 0, 1, 1, 0, 1, 0, 1, 1])]
    for n in range(1, 12):  # the last two elements tie for the maximum
        cases.append(np.concatenate([np.zeros(n - 1), [1.0]]) if n < 2 else np.r_[np.zeros(n - 2), 1.0, 1.0])

    def program(party):
        return [party.share(only(c, party, 0), src=0).argmax().reveal() for c in cases]

    assert smpc.run(program, parties=2)[0] == [int(np.argmax(c)) for c in cases]


@pytest.mark.parametrize("setup", one_per_protocol("comparison", transport="tcp"))
@settings(max_examples=2, phases=TCP_PHASES)
@given(data=st.data())
def test_selections_over_tcp(setup, data):
    x, axis, keepdims, axes = draw_case(data)
    program = functools.partial(selection_suite, x, axis, keepdims, axes)
    for result in setup.run(program):
        check_selection(result, x, axis, keepdims, axes)


def reference_max_pool2d(x, kernel, stride, padding, dilation):
    """torch.nn.functional.max_pool2d by loops (ceil_mode False)."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    n, c, h, w = x.shape
    ho, wo = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1, (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    out = np.full((n, c, ho, wo), -np.inf)
    for i in range(ho):
        for j in range(wo):
            for u in range(kh):
                for v in range(kw):
                    r, s = i * sh - ph + u * dh, j * sw - pw + v * dw
                    if 0 <= r < h and 0 <= s < w:
                        out[:, :, i, j] = np.maximum(out[:, :, i, j], x[:, :, r, s])
    return out


@st.composite
def pool_cases(draw):
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    stride = draw(st.none() | st.tuples(st.integers(1, 3), st.integers(1, 3)))
    low = [max(1, d * (k - 1) + 1 - 2 * p) for k, p, d in zip(kernel, padding, dilation)]
    batch, channels = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    shape = (batch, channels, draw(st.integers(low[0], 6)), draw(st.integers(low[1], 6)))
    x = draw(values_of(shape))
    case = x, kernel, stride, padding, dilation
    assume(not np.isinf(reference_pool(case, grid=False)).any())  # no window wholly in the padding
    return case


def pool(x, case):
    _, kernel, stride, padding, dilation = case
    return functional.max_pool2d(x, kernel, stride=stride, padding=padding, dilation=dilation)


def reference_pool(case, grid=True):
    x, kernel, stride, padding, dilation = case
    return reference_max_pool2d(fixed(x) if grid else x, kernel, stride or kernel, padding, dilation)


@given(case=pool_cases())
def test_max_pool2d_on_numpy_matches_the_loop_reference(case):
    assert np.array_equal(pool(case[0], case), reference_pool(case, grid=False))
    x = case[0][0]  # CHW in, CHW out
    assert np.array_equal(pool(x, case), reference_pool((x[None], *case[1:]), grid=False)[0])


@pytest.mark.parametrize("protocol, parties", SETUPS)
@settings(max_examples=5)
@given(cases=st.lists(pool_cases(), min_size=3, max_size=3))
def test_max_pool2d_matches_the_loop_reference(protocol, parties, cases):
    def program(party):
        return [pool(party.share(only(case[0], party, 0), src=0), case).reveal() for case in cases]

    for results in smpc.run(program, parties=parties, protocol=protocol):
        for got, case in zip(results, cases):
            assert np.array_equal(got, reference_pool(case))


def test_relu_and_avg_pool2d_wrappers():
    x = np.arange(-8.0, 10.0).reshape(1, 2, 3, 3)

    def program(party):
        a = party.share(only(x, party, 0), src=0)
        return functional.relu(a).reveal(), functional.avg_pool2d(a, 2, stride=1).reveal()

    relu, average = smpc.run(program, parties=2)[0]
    assert np.array_equal(relu, functional.relu(x)) and np.array_equal(relu, np.maximum(x, 0))
    assert np.allclose(average, functional.avg_pool2d(x, 2, stride=1), atol=2 * ULP)
    assert np.allclose(functional.avg_pool2d(x, 3, padding=1)[0, 0, 0, 0], x[0, 0, :2, :2].sum() / 9)


def test_bad_inputs_are_refused_before_any_traffic():
    bad_calls = {
        "empty axis": (lambda a, e: selection.max(e, axis=1), ValueError, r"empty axis: shape \(2, 0\)"),
        "empty argmax": (lambda a, e: selection.argmax(e), ValueError, r"shape \(2, 0\)"),
        "empty onehot": (lambda a, e: selection.argmax_onehot(e), ValueError, r"shape \(2, 0\)"),
        "bad axis": (lambda a, e: a.max(axis=2), np.exceptions.AxisError, "axis 2 is out of bounds"),
        "bad argmax axis": (lambda a, e: a.argmax(axis=-3), np.exceptions.AxisError, "out of bounds"),
        "tuple argmax axis": (lambda a, e: a.argmax(axis=(0, 1)), TypeError, "integer"),
        "repeated axes": (lambda a, e: a.max(axis=(0, 0)), ValueError, "repeated axis"),
        "bad onehot axis": (lambda a, e: selection.argmax_onehot(a, axis=5), np.exceptions.AxisError, "axis 5"),
        "pool of 2-D": (lambda a, e: functional.max_pool2d(a, 2), ValueError, "4-D"),
        "kernel too large": (lambda a, e: functional.max_pool2d(a.reshape(1, 1, 2, 3), (3, 1)), ValueError,
                             "larger than the padded input"),
        "dilated too large": (lambda a, e: functional.max_pool2d(a.reshape(1, 1, 2, 3), 2, dilation=3), ValueError,
                              "larger than the padded input"),
        "padding too large": (lambda a, e: functional.max_pool2d(a.reshape(1, 1, 2, 3), 2, padding=2), ValueError,
                              "at most half"),
        "window in padding": (lambda a, e: functional.max_pool2d(a.reshape(1, 1, 6, 1), (1, 2), padding=(0, 1),
                                                                 dilation=2), ValueError, "wholly in the padding"),
        "bad stride": (lambda a, e: functional.max_pool2d(a.reshape(1, 1, 2, 3), 1, stride=0), ValueError,
                       "positive"),
        "float kernel": (lambda a, e: functional.max_pool2d(a.reshape(1, 1, 2, 3), 1.5), TypeError, "pair of ints"),
    }

    def program(party):
        a = party.share(only(np.arange(6.0).reshape(2, 3), party, 0), src=0)
        empty = a[:, :0]
        caught = {}
        for name, (call, _, _) in bad_calls.items():
            try:
                call(a, empty)
            except Exception as exc:  # noqa: BLE001 - each is checked below
                caught[name] = exc
        return caught, a

    (caught, stale), _ = smpc.run(program, parties=2)
    for name, (_, kind, message) in bad_calls.items():
        assert isinstance(caught.get(name), kind), (name, caught.get(name))
        assert re.search(message, str(caught[name])), (name, str(caught[name]))
    for name in ("empty axis", "bad axis", "kernel too large"):  # numpy inputs fail the same way
        with pytest.raises(bad_calls[name][1]):
            bad_calls[name][0](np.arange(6.0).reshape(2, 3), np.zeros((2, 0)))

    def mixing(party):
        fresh = party.share(only(np.arange(6.0).reshape(2, 3), party, 0), src=0)
        return stack([fresh, stale]).max()

    with pytest.raises(smpc.PartyFailedError, match="different parties or runs"):
        smpc.run(mixing, parties=2)


@pytest.mark.parametrize("protocol, parties", SETUPS)
@pytest.mark.parametrize("n", [1, 2, 7, 16, 37])
def test_rounds_match_the_tree_depth(protocol, parties, n):
    def online_rounds(program) -> int:
        return max(stats["rounds"] for stats in smpc.launch(program, parties=parties, protocol=protocol).stats)

    def theory_rounds(fn) -> int:  # fn of a shared integer bit and a shared fixed-point value
        run = CostRun(protocol, parties)
        fn(run.tensor((1,), integer=True), run.tensor((1,)))
        return run.result()["rounds"]

    x = np.linspace(-3, 3, n)
    levels = math.ceil(math.log2(n)) if n > 1 else 0

    def shared(party):
        return party.share(only(x, party, 0), src=0)

    def baseline(party):  # sharing and reveal only
        return shared(party).reveal()

    def pair(party):
        a = party.share(only(np.array([[0.5, -0.5]]), party, 0), src=0)
        return a[:, :1], a[:, 1:]

    def comparison(party):  # one batched comparison: C
        left, right = pair(party)
        return (left >= right).reveal()

    def level(party):  # one batched comparison, then one selection: C + M
        left, right = pair(party)
        return smpc.where(left >= right, left, right).reveal()

    # a reveal after a comparison may check more (spdz2k's FSS comparisons log bit-domain openings: 4 rounds)
    tail = (theory_rounds(lambda bit, t: (t < 0).reveal_ring()) - theory_rounds(lambda bit, t: t < 0)
            - theory_rounds(lambda bit, t: t.reveal_ring()))
    base = online_rounds(baseline) + (tail if levels else 0)  # (no comparison at all for one element)
    compare = online_rounds(comparison) - online_rounds(baseline) - tail
    one_level = online_rounds(level) - online_rounds(baseline) - tail
    multiply = one_level - compare
    # a comparison's rounds and one product's (an integer bit times a value: no truncation), as the theory says
    want = (theory_rounds(lambda bit, t: t < 0), theory_rounds(lambda bit, t: bit * t))
    if smpc.protocols()[protocol].rounds_add_up:
        assert (compare, multiply) == want
    else:  # aby3: after the sharing, the comparison's first receive continues its receive phase (one round fewer)
        assert (compare, multiply) == (want[0] - 1, want[1])
    max_level = one_level
    if CostRun(protocol, parties).ledger.theory.max_by_relu:  # a level is other + relu(self - other)
        max_level = theory_rounds(lambda bit, t: t.relu())
    assert online_rounds(lambda p: shared(p).max().reveal()) - base == levels * max_level
    onehot_products = math.ceil(math.log2(levels)) if levels > 1 else 0
    argmax_theory = levels * compare + max(levels - 1, 0) * multiply + onehot_products * multiply
    assert online_rounds(lambda p: shared(p).argmax().reveal()) - base == argmax_theory
    if n == 16:  # 2 x 2 windows: every window reduces in the same two levels
        pooled = online_rounds(lambda p: functional.max_pool2d(shared(p).reshape(1, 1, 4, 4), 2).reveal())
        assert pooled - base == 2 * max_level
