"""Secret-sharing protocols and their correlated-randomness sources."""

from smpc.mpc.additive import AdditiveProtocol, AdditiveTensor
from smpc.mpc.binary import BinaryTensor
from smpc.mpc.replicated import ReplicatedTensor
from smpc.mpc.tensor import SharedTensor, concatenate, stack, where

__all__ = [
    "AdditiveProtocol",
    "AdditiveTensor",
    "BinaryTensor",
    "ReplicatedTensor",
    "SharedTensor",
    "concatenate",
    "stack",
    "where",
]
