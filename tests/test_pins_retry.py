"""The retry helpers' own promises, pinned: the one sleep really waits, and
backoff is jittered down to three quarters of itself."""

from __future__ import annotations

import random
import threading
import time

import pytest

from chatproviders._wire.retry import backoff_delay
from chatproviders._wire.retry import (
    sleep as real_sleep,  # conftest patches the module's
)


@pytest.mark.parametrize("cancel", [None, threading.Event()])
def test_the_retry_sleep_waits_its_time(cancel: threading.Event | None) -> None:
    """sleep() waits at least the seconds asked, with or without a cancel event."""
    began = time.monotonic()
    real_sleep(0.05, cancel)
    assert time.monotonic() - began >= 0.05


def test_backoff_is_jittered_by_up_to_a_quarter() -> None:
    """The first backoff lies in [0.375, 0.5] and varies: jitter is on by default."""
    random.seed(1)
    delays = [backoff_delay(1) for _ in range(20)]
    assert all(0.375 <= delay <= 0.5 for delay in delays)
    assert min(delays) < 0.45
    assert len(set(delays)) > 1
    assert backoff_delay(1, jitter=0) == 0.5
