"""A clock for the batch's pacing that moves only when the batch sleeps."""

from __future__ import annotations


class FakeClock:
    """The batch's clock: time moves only when the batch sleeps."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
