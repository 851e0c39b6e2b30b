"""Before a model is shared: the owner checks in plaintext that its values stay in the fixed-point range.

Sharing itself is :meth:`smpc.nn.module.Module.share` (BatchNorm folded by :func:`smpc.nn.module.fold_batchnorm`).
"""

from __future__ import annotations

import numpy as np

from smpc.nn.module import Module


def check_fixed_point_range(model: Module, x: np.ndarray, frac_bits: int = 16) -> dict[str, float]:
    """Run ``model`` in plaintext on sample inputs ``x`` and check that a shared run would stay in range.

    Shared values cannot be inspected without revealing them, so the model owner checks beforehand: every
    layer's output must stay below 2^(62 - 2 frac_bits) in magnitude (2^30 with 16 fraction bits), the
    bound under which a fixed-point product keeps its 2 frac_bits-scaled value below 2^62 before truncation
    and every comparison is exact. Returns the largest magnitude per layer; raises ValueError naming the
    first layer that leaves the range. Inputs outside it never go through: encoding refuses them.
    """
    limit = 2.0 ** (62 - 2 * frac_bits)
    seen: dict[str, float] = {}
    leaves = [(name, m) for name, m in model.named_modules() if not m._modules]
    try:
        for name, module in leaves:
            object.__setattr__(module, "forward", _recording(module, name or type(module).__name__, seen))
        model(np.asarray(x, dtype=np.float64))
    finally:
        for _, module in leaves:
            module.__dict__.pop("forward", None)
    for name, magnitude in seen.items():
        if not magnitude < limit:
            raise ValueError(f"layer {name!r} produces values up to {magnitude:.3g}, beyond the fixed-point range "
                             f"|x| < 2^{62 - 2 * frac_bits} for frac_bits={frac_bits}; rescale its inputs or weights")
    return seen


def _recording(module: Module, name: str, seen: dict):
    forward = type(module).forward

    def record(x):
        out = forward(module, x)
        value = out.data if hasattr(out, "data") and not isinstance(out, np.ndarray) else out
        seen[name] = max(seen.get(name, 0.0), float(np.max(np.abs(value))) if np.size(value) else 0.0)
        return out

    return record
