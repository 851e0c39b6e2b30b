"""Module-level data a party program reads, fingerprinted so spawned parties can prove they see the same.

With ``transport="tcp"`` every party is a fresh process that imports the program's module again, so
``x = np.random.randn(3)`` at module level gives each party different data and the run would answer
for data nobody saw. The launcher fingerprints the module-level values the program can read (the
globals its function and the same module's functions it calls name); each party fingerprints its own
copies and refuses to run if any differs.
"""

from __future__ import annotations

import functools
import hashlib
import types
from typing import Any, Callable

import numpy as np

_MAX_DEPTH = 4
_MAX_ITEMS = 10_000


def program_function(fn: Callable) -> Callable | None:
    """The plain function behind ``fn`` (through ``functools.partial`` and bound methods)."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    fn = getattr(fn, "__func__", fn)
    return fn if isinstance(fn, types.FunctionType) else None


def _names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names(const)
    return names


def _read_globals(fn: types.FunctionType) -> dict[str, Any]:
    """Module-level names ``fn`` reads, following the functions of its own module it calls."""
    module_globals = fn.__globals__
    seen: dict[str, Any] = {}
    todo = [fn]
    visited: set[int] = set()
    while todo:
        current = todo.pop()
        if id(current) in visited:
            continue
        visited.add(id(current))
        for name in _names(current.__code__):
            if name not in module_globals or name in seen:
                continue
            value = module_globals[name]
            seen[name] = value
            if isinstance(value, types.FunctionType) and value.__globals__ is module_globals:
                todo.append(value)
    return seen


def _digest(value: Any, depth: int = 0) -> bytes | None:
    """A fingerprint of plain data (arrays, numbers, text and containers of them); None for anything else."""
    h = hashlib.sha256()
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            return None
        h.update(f"ndarray {value.dtype.str} {value.shape}".encode())
        h.update(np.ascontiguousarray(value).view(np.uint8).reshape(-1).data if value.size else b"")
    elif isinstance(value, (bool, int, float, complex, str, bytes, np.generic)) or value is None:
        h.update(type(value).__name__.encode() + repr(value).encode())
    elif isinstance(value, (list, tuple, dict)) and depth < _MAX_DEPTH and len(value) <= _MAX_ITEMS:
        items = value.items() if isinstance(value, dict) else enumerate(value)
        h.update(type(value).__name__.encode())
        for key, item in items:
            inner = _digest(item, depth + 1)
            if inner is None:
                return None
            h.update(repr(key).encode() + inner)
    else:
        return None
    return h.digest()


def fingerprints(fn: Callable) -> dict[str, bytes]:
    """``{global name: digest}`` of the plain data ``fn`` can read at its module's level."""
    plain = program_function(fn)
    if plain is None:
        return {}
    out = {}
    for name, value in _read_globals(plain).items():
        digest = _digest(value)
        if digest is not None:
            out[name] = digest
    return out


def check_same_data(fn: Callable, launcher: dict[str, bytes], who: str) -> None:
    """Refuse to run ``fn`` if module-level data it reads differs from what the launcher saw."""
    ours = fingerprints(fn)
    differing = sorted(name for name, digest in launcher.items() if ours.get(name) != digest)
    if differing:
        module = getattr(program_function(fn), "__module__", "?")
        module = "the script" if module in ("__main__", "__mp_main__") else f"module {module}"
        raise RuntimeError(
            f"{who} sees different module-level data than the launcher: {', '.join(differing)} (in {module}). "
            "With transport='tcp' every party is a new process that runs the module's top level again, so "
            "random or changing values there differ between parties. Pass the data to the program instead "
            "(smpc.run(functools.partial(main, x), ...)), draw it under `if __name__ == '__main__':`, use a "
            "fixed seed, or load it from a file."
        )

