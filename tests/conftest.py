from __future__ import annotations

import pytest

from chatproviders._wire import retry as _retry


@pytest.fixture(autouse=True)
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Retries record their backoff here instead of sleeping."""
    slept: list[float] = []
    monkeypatch.setattr(
        _retry, "sleep", lambda seconds, cancel=None: slept.append(seconds)
    )
    return slept
