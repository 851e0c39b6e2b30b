"""A minimal progress bar on stderr (no dependency)."""

from __future__ import annotations

import sys
import time


class Progress:
    """``with Progress(total) as bar: bar.show("task"); ...; bar.step("task")``; drawn on a terminal unless forced."""

    def __init__(self, total: int, stream=None, enabled: bool | None = None):
        self.total = max(1, total)
        self.done = 0
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.start = time.perf_counter()

    def __enter__(self) -> "Progress":
        self._draw("starting")
        return self

    def show(self, label: str) -> None:
        """Show what runs now (nothing is marked done)."""
        self._draw(label)

    def step(self, label: str) -> None:
        """Mark one task done and show ``label``."""
        self.done = min(self.total, self.done + 1)
        self._draw(label)

    def _draw(self, label: str) -> None:
        width = 30
        filled = int(width * self.done / self.total)
        elapsed = time.perf_counter() - self.start
        line = f"[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} {elapsed:6.1f}s {label[:40]}"
        if self.enabled:
            self.stream.write("\r" + line.ljust(100))
            self.stream.flush()

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
