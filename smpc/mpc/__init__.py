"""Secret-sharing protocols and their correlated-randomness sources."""

from smpc.mpc.additive import AdditiveProtocol, AdditiveTensor
from smpc.mpc.additive.binary import BinaryTensor
from smpc.mpc.aby3.tensor import ReplicatedTensor
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
