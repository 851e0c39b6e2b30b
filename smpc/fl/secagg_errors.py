"""Errors of secure aggregation: too few survivors to unmask, and malformed messages."""

from __future__ import annotations

from smpc.exceptions import PeerError, SmpcError


class SecAggError(SmpcError):
    """Secure aggregation could not produce the sum (the message says why, with counts)."""


class TooFewSurvivorsError(SecAggError):
    """Fewer than the threshold of clients remained at some round, so the run was aborted.

    ``stage`` names the round, ``available`` and ``threshold`` the counts that fell short.
    """

    def __init__(self, message: str, stage: str = "", available: int = -1, threshold: int = -1):
        super().__init__(message)
        self.stage = stage
        self.available = available
        self.threshold = threshold


class MalformedMessageError(PeerError):
    """A peer's message has the wrong dtype, shape or content; ``rank`` is the sender's endpoint."""
