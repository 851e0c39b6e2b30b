"""Neural networks on shared tensors: autodiff, layers, models and losses come in a later issue.

For now the package offers :mod:`smpc.nn.functional` (relu, max and average pooling), written
against the shared-tensor interface only, so it runs under every protocol and on numpy arrays.
"""

from smpc.nn import functional

__all__ = ["functional"]
