"""Secret-sharing protocols and their correlated-randomness sources."""

from smpc.mpc.additive import AdditiveProtocol, AdditiveTensor, concatenate, stack

__all__ = ["AdditiveProtocol", "AdditiveTensor", "concatenate", "stack"]
