"""Fixtures of the batch tests: the pacing's clock, a Cromicle emulator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chatproviders._batch import run as _batch
from chatproviders.testing import EmulatorServer, serve
from tests.batch.clock import FakeClock


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """The batch's pacing runs on a clock the test controls."""
    fake = FakeClock()
    monkeypatch.setattr(_batch, "monotonic", fake.monotonic)
    monkeypatch.setattr(_batch, "sleep", fake.sleep)
    return fake


@pytest.fixture
def cromicle() -> Iterator[EmulatorServer]:
    with serve("cromicle") as server:
        yield server
