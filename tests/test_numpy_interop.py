"""numpy's ufuncs and functions on shared tensors (smpc.mpc.numpy_interop): the supported ones against numpy on the
plain values, for both protocols; the others raise a TypeError naming the function, never a silent object array."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import smpc
from conftest import assert_close, only

SETUPS = [("additive", 2), ("aby3", 3)]
ENC = 2.0**-17  # encoding error bound per fixed-point input (16 fraction bits)


def grid(shape, bound=8):
    """Floats on the fixed-point grid (multiples of 1/4): encoding is exact, so comparisons are exact too."""
    return hnp.arrays(np.float64, shape, elements=st.integers(-4 * bound, 4 * bound).map(lambda v: v / 4))


def run_shared(program, x, protocol, parties):
    """Run ``program(x_shared)`` with x from party 0; the results every party got."""
    return smpc.run(lambda party: program(party.share(only(x, party, 0), src=0)), parties=parties, protocol=protocol)


def check(cases: dict, x, protocol, parties, exact: bool, bound: float = 0.0):
    """Each case (a function of one array) on the shared x, revealed, against the same call on x itself."""

    def program(s):
        results = {name: case(s) for name, case in cases.items()}
        return {name: r.reveal() if isinstance(r, smpc.mpc.SharedTensor) else r for name, r in results.items()}

    for got in run_shared(program, x, protocol, parties):
        for name, case in cases.items():
            want = case(x)
            assert np.shape(got[name]) == np.shape(want), name
            if exact:
                assert np.array_equal(got[name], want), (name, got[name], want)
            else:
                assert_close(got[name], want, bound * (1 + np.max(np.abs(want), initial=0))), name


@pytest.mark.parametrize("protocol, parties", SETUPS)
@settings(max_examples=8)
@given(data=st.data())
def test_linear_ufuncs_and_the_ndarray_op_tensor_forms(protocol, parties, data):
    shape_x, shape_a = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=4)).input_shapes
    x, a = data.draw(grid(shape_x)), data.draw(grid(shape_a))
    divisor = data.draw(st.sampled_from([3.0, -0.5, 8.0]))
    cases = {
        "add": lambda v: np.add(v, a), "radd": lambda v: np.add(a, v), "a + v": lambda v: a + v,
        "subtract": lambda v: np.subtract(v, a), "rsubtract": lambda v: np.subtract(a, v), "a - v": lambda v: a - v,
        "multiply": lambda v: np.multiply(v, a), "rmultiply": lambda v: np.multiply(a, v), "a * v": lambda v: a * v,
        "float64 * v": lambda v: np.float64(2.5) * v, "int64 * v": lambda v: np.int64(-3) * v,
        "divide": lambda v: np.true_divide(v, divisor), "v / divisor": lambda v: v / divisor,
        "negative": np.negative, "positive": np.positive, "square": np.square,
    }
    check(cases, x, protocol, parties, exact=False, bound=2.0**-15)  # one truncation, scaled by the value


@pytest.mark.parametrize("protocol, parties", SETUPS)
@settings(max_examples=5)
@given(data=st.data())
def test_matmul_with_a_public_matrix_on_either_side(protocol, parties, data):
    n, k, m = data.draw(st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(1, 4)))
    x, left, right = data.draw(grid((n, k))), data.draw(grid((m, n))), data.draw(grid((k, m)))
    cases = {"matmul": lambda v: np.matmul(v, right), "rmatmul": lambda v: np.matmul(left, v),
             "left @ v": lambda v: left @ v}
    check(cases, x, protocol, parties, exact=False, bound=2.0**-15)


COMPARISONS = [np.less, np.greater, np.less_equal, np.greater_equal, np.equal, np.not_equal]


@pytest.mark.parametrize("protocol, parties", SETUPS)
@settings(max_examples=4)
@given(data=st.data())
def test_comparisons_maximum_minimum_absolute_sign_are_exact(protocol, parties, data):
    shape_x, shape_a = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=2, max_side=4)).input_shapes
    x, a = data.draw(grid(shape_x, bound=3)), data.draw(grid(shape_a, bound=3))
    cases = {f.__name__: (lambda v, f=f: f(v, a)) for f in COMPARISONS}
    cases.update({f"r{f.__name__}": (lambda v, f=f: f(a, v)) for f in COMPARISONS})
    cases.update({
        "a < v": lambda v: a < v, "a >= v": lambda v: a >= v, "a == v": lambda v: a == v,
        "maximum": lambda v: np.maximum(v, a), "rmaximum": lambda v: np.maximum(a, v),
        "minimum": lambda v: np.minimum(v, a), "rminimum": lambda v: np.minimum(a, v),
        "maximum of two shared": lambda v: np.maximum(v, -v), "absolute": np.absolute, "abs": np.abs, "sign": np.sign,
    })
    check(cases, x, protocol, parties, exact=True)


@pytest.mark.parametrize("protocol, parties", SETUPS)
def test_exp_log_sqrt_tanh_reciprocal_as_smpc_functions_computes_them(protocol, parties):
    x = np.array([[0.5, 1.0, 2.5], [3.0, 0.125, 7.0]])
    cases = {"exp": np.exp, "log": np.log, "sqrt": np.sqrt, "tanh": lambda v: np.tanh(-v), "reciprocal": np.reciprocal}
    check(cases, x, protocol, parties, exact=False, bound=1e-4)  # smpc.mpc.functions documents the exact bounds


@pytest.mark.parametrize("protocol, parties", SETUPS)
@settings(max_examples=6)
@given(data=st.data())
def test_numpy_functions_match_numpy(protocol, parties, data):
    shape = data.draw(hnp.array_shapes(min_dims=2, max_dims=3, min_side=1, max_side=4))
    x, public = data.draw(grid(shape)), data.draw(grid(shape))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    swapped = (1, 0, *range(2, len(shape)))
    cases = {
        "sum": np.sum, "sum axis": lambda v: np.sum(v, axis=axis),
        "sum keepdims": lambda v: np.sum(v, axis, keepdims=True),
        "reshape": lambda v: np.reshape(v, (-1,)), "reshape shape=": lambda v: np.reshape(v, shape=(shape[0], -1)),
        "ravel": np.ravel, "transpose": np.transpose, "transpose axes": lambda v: np.transpose(v, swapped),
        "concatenate": lambda v: np.concatenate([v, v * 2], axis=axis),
        "concatenate None": lambda v: np.concatenate((v, v), axis=None), "stack": lambda v: np.stack([v, -v], axis=1),
        "where": lambda v: np.where(v > 0, v, public), "where public condition": lambda v: np.where(public > 0, v, 1.5),
        "clip": lambda v: np.clip(v, -0.5, 0.75), "clip low": lambda v: np.clip(v, -0.25, None),
        "clip high": lambda v: np.clip(v, None, 0.5), "clip min= max=": lambda v: np.clip(v, min=-1.0, max=1.0),
        "max": lambda v: np.max(v, axis=axis), "amax": np.amax, "min": lambda v: np.min(v, axis, keepdims=True),
        "amin": np.amin, "argmax": lambda v: np.argmax(v, axis=axis),
        "shape": np.shape, "ndim": np.ndim, "size": np.size, "size axis": lambda v: np.size(v, axis),
    }
    check(cases, x, protocol, parties, exact=True)
    means = {"mean": np.mean, "mean axis": lambda v: np.mean(v, axis=axis, keepdims=True)}
    check(means, x, protocol, parties, exact=False, bound=2.0**-15)


UNSUPPORTED_UFUNCS = [np.power, np.floor_divide, np.sin, np.log1p, np.expm1, np.remainder, np.arctan2, np.floor,
                      np.isnan, np.bitwise_and]
UNSUPPORTED_FUNCTIONS = [
    (np.dot, lambda s: np.dot(s, s)), (np.cumsum, np.cumsum), (np.prod, np.prod), (np.sort, np.sort),
    (np.linalg.norm, np.linalg.norm), (np.allclose, lambda s: np.allclose(s, 0)),
    (np.median, np.median), (np.fft.fft, np.fft.fft), (np.unique, np.unique), (np.nonzero, np.nonzero),
]


def _error(call) -> str:
    """The TypeError's message (a party program cannot let it escape: the others would wait for it)."""
    try:
        call()
    except TypeError as error:
        return str(error)
    return "no TypeError"


@pytest.mark.parametrize("protocol, parties", SETUPS)
def test_what_is_not_supported_raises_a_type_error_naming_it(protocol, parties):
    def program(s):
        public = np.ones(s.shape)
        in_place = np.zeros(s.shape)

        def add_in_place():
            nonlocal in_place
            in_place += s

        calls = {f"numpy.{u.__name__}": (lambda u=u: u(s) if u.nin == 1 else u(s, s)) for u in UNSUPPORTED_UFUNCS}
        calls.update({f"{f.__module__}.{f.__name__}": (lambda call=call: call(s)) for f, call in UNSUPPORTED_FUNCTIONS})
        calls.update({
            "numpy.add.reduce": lambda: np.add.reduce(s), "numpy.add.accumulate": lambda: np.add.accumulate(s),
            "numpy.multiply.outer": lambda: np.multiply.outer(s, public),
        })
        named = {name: _error(call) for name, call in calls.items()}
        options = {  # what the message must say -> the call
            "numpy.add on a shared tensor takes no out=": lambda: np.add(s, public, out=public),
            "numpy.add on a shared tensor takes no out=\t": add_in_place,
            "numpy.add on a shared tensor takes no where=": lambda: np.add(s, public, where=public > 0),
            "numpy.multiply on a shared tensor takes no dtype=": lambda: np.multiply(s, 2, dtype=np.float32),
            "numpy.sum on a shared tensor takes no dtype=": lambda: np.sum(s, dtype=np.float32),
            "numpy.mean on a shared tensor takes no out=": lambda: np.mean(s, out=public),
            "numpy.reshape on a shared tensor takes order='C' only": lambda: np.reshape(s, (-1,), order="F"),
            "numpy.where(condition) with one argument": lambda: np.where(s > 0),
            "shared divisor and a public numerator": lambda: public / s,
            "numpy.concatenate joins shared tensors only": lambda: np.concatenate([s, public]),
            "numpy.clip on a shared tensor takes public bounds": lambda: np.clip(s, s, 1.0),
            "is not a numpy array": lambda: np.asarray(s),
            "is not a numpy array\t": lambda: np.array(s),
            "is not a numpy array\t\t": lambda: np.array([s, s]),
            "is not a numpy array\t\t\t": lambda: np.asarray(s, dtype=np.float64),
        }
        return named, {expected: _error(call) for expected, call in options.items()}

    for named, options in run_shared(program, np.arange(6.0).reshape(2, 3), protocol, parties):
        for name, message in named.items():
            assert message.startswith(f"{name} is not supported on a shared tensor; "), message
        assert "x @ y" in named["numpy.dot"] and "reveal it first" in named["numpy.linalg.norm"]
        for expected, message in options.items():
            assert expected.strip() in message, (expected, message)
        assert all("reveal it first" in options[k] for k in options if k.startswith("is not a numpy array"))


def test_the_reflected_operators_keep_their_results_shape_and_type():
    """`ndarray op tensor` goes through numpy's ufunc to the tensor's reflected method: a shared tensor, not an
    object array, for every operator numpy supports on both."""

    def program(party):
        s = party.share(only(np.arange(4.0).reshape(2, 2), party, 0), src=0)
        a = np.array([[1.0, -1.0], [2.0, 0.5]])
        results = [a + s, a - s, a * s, a @ s, a < s, a > s, a <= s, a >= s, a == s, a != s, a / 2 * s]
        return [type(r).__name__ for r in results], [r.shape for r in results]

    names, shapes = smpc.run(program, parties=2)[0]
    assert set(names) == {"AdditiveTensor"} and set(shapes) == {(2, 2)}
