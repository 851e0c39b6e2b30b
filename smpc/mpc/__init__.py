"""Secret-sharing protocols and their correlated-randomness sources."""

from smpc.mpc.additive import AdditiveProtocol, AdditiveTensor
from smpc.mpc.tensor import SharedTensor, concatenate, stack

__all__ = ["AdditiveProtocol", "AdditiveTensor", "SharedTensor", "concatenate", "stack"]
