"""Exception types raised by smpc; messages name the problem, never a secret value."""


class SmpcError(Exception):
    """Base class of every error smpc raises on purpose."""


class ProtocolError(SmpcError):
    """A protocol was used wrongly (mismatched parties, missing dealer, wrong shapes)."""


class WireFormatError(SmpcError):
    """A received frame is not a valid smpc frame (bad magic, dtype, shape or length)."""


class PeerError(SmpcError):
    """Another party failed, disconnected or sent something invalid.

    ``rank`` names the peer responsible (``-1`` for the dealer).
    """

    def __init__(self, rank: int, message: str):
        super().__init__(message)
        self.rank = rank


class PeerFinished(PeerError):
    """A peer finished normally, and a message from it was still expected."""


class PeerTimeoutError(PeerError, TimeoutError):
    """A peer did not send an expected message within the configured timeout."""


class MacCheckError(SmpcError):
    """spdz2k's MAC check failed: an opened value does not match its MACs, so some party deviated from the protocol
    (changed a share, a MAC or a message). Raised at every honest party before any value derived from the tampered
    openings is returned."""


class FixedPointPrecisionWarning(RuntimeWarning):
    """Nonzero data below the fixed-point resolution 2^-frac_bits encodes to 0: a public scalar operand, or most of
    the nonzero elements a source gives ``party.share`` (warned at that party only, with counts, never values)."""


class PartyFailedError(SmpcError):
    """Raised by :func:`smpc.run` when one or more parties raised.

    ``rank`` is the rank of the party whose failure came first (``-1``: the dealer);
    ``failures`` maps every failing rank to a one-line description.
    """

    def __init__(self, rank: int, failures: dict[int, str]):
        others = "; ".join(f"{_role(r)}: {msg}" for r, msg in sorted(failures.items()) if r != rank)
        message = f"{_role(rank)} failed: {failures.get(rank, 'unknown error')}"
        super().__init__(message + (f" [then {others}]" if others else ""))
        self.rank = rank
        self.failures = failures
        self.tracebacks: dict[int, str] = {}


def _role(rank: int) -> str:
    return "the dealer" if rank == -1 else f"party {rank}"
