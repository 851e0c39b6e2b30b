"""Checks for privacy parameters; each error names the parameter and the value it got."""

from __future__ import annotations

import math
from numbers import Integral, Real


def _real(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    return float(value)


def noise_multiplier(value: object) -> float:
    """A finite noise multiplier >= 0 (0 means no noise: infinite privacy loss)."""
    sigma = _real("noise_multiplier", value)
    if not (math.isfinite(sigma) and sigma >= 0):
        raise ValueError(f"noise_multiplier must be finite and >= 0, got {value!r}")
    return sigma


def sample_rate(value: object) -> float:
    """A sampling probability in [0, 1]."""
    q = _real("sample_rate", value)
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"sample_rate must be in [0, 1], got {value!r}")
    return q


def delta(value: object) -> float:
    """A delta in the open interval (0, 1)."""
    d = _real("delta", value)
    if not 0.0 < d < 1.0:
        raise ValueError(f"delta must be in (0, 1), got {value!r}")
    return d


def epsilon(value: object, allow_zero: bool = False) -> float:
    """A finite epsilon > 0 (>= 0 where ``allow_zero``)."""
    e = _real("epsilon", value)
    ok = e >= 0 if allow_zero else e > 0
    if not (math.isfinite(e) and ok):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"epsilon must be finite and {bound}, got {value!r}")
    return e


def steps(value: object) -> int:
    """A whole number of steps >= 0 (an integral float such as 1e4 is accepted; 2.5 is not)."""
    return whole("steps", value)


def whole(name: str, value: object) -> int:
    """A whole number >= 0; an integral float such as 1e4 is accepted, 2.5 or True is not."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if isinstance(value, Integral):
        count = int(value)
    elif isinstance(value, Real) and math.isfinite(float(value)) and float(value).is_integer():
        count = int(float(value))
    else:
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if count < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return count


def non_negative(name: str, value: object) -> float:
    """A finite real >= 0, for standard deviations."""
    x = _real(name, value)
    if not (math.isfinite(x) and x >= 0):
        raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
    return x


def positive(name: str, value: object) -> float:
    """A finite real > 0, for sensitivities, norms, scales."""
    x = _real(name, value)
    if not (math.isfinite(x) and x > 0):
        raise ValueError(f"{name} must be finite and > 0, got {value!r}")
    return x


def orders(values: object) -> tuple[float, ...]:
    """A non-empty sequence of finite Renyi orders, each > 1."""
    try:
        result = tuple(_real("orders", a) for a in values)  # type: ignore[union-attr]
    except TypeError:
        raise ValueError(f"orders must be a sequence of numbers, got {values!r}") from None
    if not result:
        raise ValueError("orders must not be empty")
    bad = [a for a in result if not (math.isfinite(a) and a > 1)]
    if bad:
        raise ValueError(f"every RDP order must be finite and > 1, got {bad[:3]}")
    return result
