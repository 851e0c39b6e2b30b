"""What the importer tests share: comparing outputs with a relative bound and the private-inference program."""

import numpy as np


def as_list(out) -> list:
    """A model's output(s) as a list."""
    return list(out) if isinstance(out, tuple) else [out]


def assert_relative(got, want, rel: float) -> None:
    """max |got - want| <= rel * max |want| (float64 against float32: the error scales with the outputs)."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, (got.shape, want.shape)
    error, scale = float(np.max(np.abs(got - want))), float(np.max(np.abs(want)))
    assert error <= rel * scale, f"max error {error:.3g} > {rel} * {scale:.3g}"


def private_program(owner_model, other_model, x, party):
    """Party 0 owns the weights, party 1 the input; the others hold the same architecture with other weights."""
    model = owner_model if party.rank == 0 else other_model
    shared_model = model.share(party, src=0)
    shared_x = party.share(x if party.rank == 1 else None, src=1)
    return [out.reveal(to=1) for out in as_list(shared_model(shared_x))]
