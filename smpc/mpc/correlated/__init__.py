"""Correlated-randomness sources: the trusted dealer (:mod:`.trusted`) and two-party Paillier preprocessing
(:mod:`.paillier`), both behind :class:`smpc.mpc.correlated.source.CorrelatedSource`;
requests to the trusted dealer are the typed messages of :mod:`.requests`."""
