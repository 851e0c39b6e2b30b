"""Correlated-randomness sources: the trusted dealer (:mod:`.trusted`) and two-party Paillier preprocessing
(:mod:`.paillier`), both behind :class:`smpc.mpc.interfaces.CorrelatedSource`."""
