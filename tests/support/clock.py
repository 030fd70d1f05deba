"""A fake wall clock: token lifetimes without sleeping."""

from __future__ import annotations


class FakeClock:
    """Wall-clock seconds that stand still until a test moves them: token lifetimes without sleeping.

    Pass it as ``clock`` to what times tokens (``TokenCache``, ``PasswordLogin``, the sandbox state), then
    ``advance`` it past the moment under test: no test then depends on how fast the machine is.
    """

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
