"""Bench rows for comparisons and non-linear functions on n shared elements, both protocols.

Each row times the operation alone (inputs already shared, no reveal), takes the busiest
party's bytes and rounds, and sets them next to the theory (:mod:`smpc.mpc.cost`:
the protocol's cost formulas composed over the steps the operation takes); the error is
the maximum absolute error against numpy on the fixed-point inputs, checked against the
documented bound (``smpc.mpc.functions.ERRORS``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

import smpc
from smpc.mpc import functions, transformer_functions
from smpc.mpc.cost import cost
from smpc_bench.timing import spread


@dataclass(frozen=True)
class Operation:
    """One benchmarked operation: shared function, numpy reference, inputs, error bound."""

    name: str
    shared: Callable
    plain: Callable
    inputs: Callable[[np.random.Generator, int], tuple[np.ndarray, np.ndarray]]
    bound: str  # "exact", a key of functions.ERRORS, or "transformer:<key of transformer_functions.ERRORS>"
    two_operands: bool = False

    def on_tensors(self, *tensors):
        """The shared function on one tensor (both operands) or two."""
        return self.shared(tensors[0], tensors[-1])


def _normal(rng, n):
    return rng.normal(0, 10, n), rng.normal(0, 10, n)


def _exp_inputs(rng, n):
    return rng.uniform(-8, 8, n), None


def _reciprocal_inputs(rng, n):
    return rng.choice([-1.0, 1.0], n) * np.exp(rng.uniform(np.log(0.01), np.log(100), n)), None


def _positive_inputs(rng, n):
    return np.exp(rng.uniform(np.log(0.01), np.log(1000), n)), None


def _rows_of_768(rng, n):
    return rng.normal(0, 2, (max(n // 768, 1), 768)), None


def _layer_norm(x):
    centred = x - x.mean(axis=-1, keepdims=True)
    return centred / np.sqrt((centred * centred).mean(axis=-1, keepdims=True) + 1e-5)


def _softmax_inputs(rng, n):
    side = min(n, 1000)
    return rng.normal(0, 3, (n // side, side)), None


def _softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


OPERATIONS = [
    Operation("relu", lambda x, y: x.relu(), lambda x, y: np.maximum(x, 0), _normal, "exact"),
    Operation("x < y", lambda x, y: x < y, lambda x, y: (x < y).astype(np.float64), _normal, "exact", True),
    Operation("exp", lambda x, y: x.exp(), lambda x, y: np.exp(x), _exp_inputs, "exp"),
    Operation("sigmoid", lambda x, y: functions.sigmoid(x), lambda x, y: 1 / (1 + np.exp(-x)), _normal, "sigmoid"),
    Operation("tanh", lambda x, y: functions.tanh(x), lambda x, y: np.tanh(x), _normal, "tanh"),
    Operation("GELU", lambda x, y: transformer_functions.gelu(x), lambda x, y: transformer_functions.gelu(x),
              _normal, "transformer:gelu"),
    Operation("reciprocal", lambda x, y: x.reciprocal(), lambda x, y: 1 / x, _reciprocal_inputs, "reciprocal"),
    Operation("log", lambda x, y: functions.log(x), lambda x, y: np.log(x), _positive_inputs, "log"),
    Operation("inv_sqrt", lambda x, y: functions.inv_sqrt(x), lambda x, y: 1 / np.sqrt(x), _positive_inputs,
              "inv_sqrt"),
    Operation("layer norm (rows of 768)", lambda x, y: transformer_functions.layer_norm(x),
              lambda x, y: _layer_norm(x), _rows_of_768, "transformer:layer_norm"),
    Operation("softmax (rows of 1000)", lambda x, y: x.softmax(axis=-1), lambda x, y: _softmax(x),
              _softmax_inputs, "softmax"),
]


def _program(operation: Operation, x: np.ndarray, y: np.ndarray | None):
    def program(party):
        xs = party.share(x if party.rank == 0 else None, src=0)
        ys = xs
        if operation.two_operands:
            ys = party.share(y if party.rank == party.world_size - 1 else None, src=party.world_size - 1)
        party.reset_stats()
        start = time.perf_counter()
        out = operation.shared(xs, ys)
        seconds = time.perf_counter() - start
        stats = party.stats
        return out.reveal(), seconds, stats

    return program


def _plain_time(operation: Operation, x, y, repeat: int) -> tuple[float, np.ndarray]:
    """Median seconds of the numpy reference (at least 1 microsecond) and its result."""
    seconds, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = operation.plain(x, y)
        seconds.append(time.perf_counter() - start)
    return max(float(np.median(seconds)), 1e-6), result


def _within(bound: str, got: np.ndarray, expected: np.ndarray, x: np.ndarray) -> bool:
    if bound == "exact":
        return bool(np.array_equal(got, expected))
    if bound.startswith("transformer:"):
        error = transformer_functions.ERRORS[bound.split(":", 1)[1]]
        return bool(np.all(np.abs(got - expected) <= error.allowed(expected if error.of == "f" else x)))
    return bool(np.all(np.abs(got - expected) <= functions.ERRORS[bound].allowed(expected)))


def _bound_text(bound: str) -> str:
    if bound == "exact":
        return "exact"
    if bound.startswith("transformer:"):
        return transformer_functions.ERRORS[bound.split(":", 1)[1]].describe()
    return functions.ERRORS[bound].describe()


def _fixed(values):
    return None if values is None else np.rint(values * 2**16) / 2**16


def nonlinear_rows(n: int, setups: list[tuple[str, int]], repeat: int,
                   operations: list[Operation] | None = None) -> list[dict]:
    """One row per (operation, setup) on n elements."""
    rng = np.random.default_rng(3)
    rows = []
    for operation in operations or OPERATIONS:
        x, y = operation.inputs(rng, n)
        plain, expected = _plain_time(operation, _fixed(x), _fixed(y), repeat)
        program = _program(operation, x, y)
        small = _program(operation, x[..., :8], None if y is None else y[:8])
        shapes = [x.shape, y.shape] if operation.two_operands else [x.shape]
        for protocol, parties in setups:
            smpc.run(small, parties=parties, protocol=protocol)  # compile and warm up
            seconds, last = [], None
            for _ in range(repeat):
                last = smpc.run(program, parties=parties, protocol=protocol)
                seconds.append(max(result[1] for result in last))
            theory = cost(operation.on_tensors, shapes, protocol, parties)
            time_spread = spread(seconds)
            rows.append({
                "group": "comparisons and non-linear functions",
                "name": f"{operation.name}, {x.size:.0e} elements, {parties}-party {protocol}",
                "seconds": time_spread,
                "ratio": time_spread["median"] / plain,
                "ratio_to": "numpy",
                "bytes_per_party": max(result[2]["bytes_sent"] for result in last),
                "bytes_theory": theory["bytes"],
                "rounds": max(result[2]["rounds"] for result in last),
                "rounds_theory": theory["rounds"],
                "max_error": float(np.max(np.abs(last[0][0] - expected))),
                "error_bound": _bound_text(operation.bound),
                "within_bound": _within(operation.bound, last[0][0], expected, _fixed(x)),
            })
    return rows
