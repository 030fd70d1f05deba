"""Progress of a long transfer in the task log: bytes, rate and ETA, at most every ``interval`` seconds.

Used by uploads (boto3 calls it from its worker threads), downloads and export verification.
"""

from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger(__name__)
MiB = 1024 * 1024


class ProgressLogger:
    """Thread-safe byte counter (boto3 calls it from several threads); logs at most every ``interval`` s."""

    def __init__(self, total: int, label: str, interval: float = 10.0) -> None:
        self.total = total
        self.label = label
        self.interval = interval
        self.done = 0
        self.started = time.monotonic()
        self._last = self.started
        self._lock = threading.Lock()

    def __call__(self, amount: int) -> None:
        with self._lock:
            self.done += amount
            now = time.monotonic()
            if now - self._last < self.interval and self.done < self.total:
                return
            self._last = now
            done, elapsed = self.done, now - self.started
        rate = done / max(elapsed, 1e-9)
        eta = (self.total - done) / rate if rate > 0 else float("inf")
        log.info(
            "%s: %.1f of %.1f MiB (%.0f%%), %.1f MiB/s, ETA %s",
            self.label,
            done / MiB,
            self.total / MiB,
            100.0 * done / max(self.total, 1),
            rate / MiB,
            "now" if done >= self.total else f"{eta:.0f} s",
        )
