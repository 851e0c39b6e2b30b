"""Homomorphic encryption: Paillier on numpy arrays (:mod:`smpc.he.paillier`); integers in :mod:`smpc.he.raw`."""

from smpc.he import paillier

__all__ = ["paillier"]
