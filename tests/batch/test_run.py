"""batch()'s loop in the small: the pacer's window, what is refused before
any I/O, the checkpoint released on every way out, and a failed request
counted as arrived so the rate never stalls the rest."""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import pytest

from chatproviders import Cromicle, batch
from chatproviders._batch import run as _run
from chatproviders._batch.checkpoint import Checkpoint
from chatproviders.testing import serve


def test_a_rate_under_one_still_waits_for_the_last_request_to_arrive() -> None:
    """rate=0.5: one request a 2 s window; the next may start only 2 s after
    the last one arrived, however long ago it started."""
    pacer = _run._Pacer(0.5)
    assert pacer.wait(0.0) == 0.0
    start = pacer.started(0.0)
    assert pacer.wait(2.0) == math.inf  # not arrived: it may still land in a window
    start.ack = 1.0
    assert pacer.wait(2.0) == 1.0


def test_a_bad_schema_is_refused_before_the_checkpoint_is_touched(
    tmp_path: Path,
) -> None:
    """A schema that cannot be used fails first: no request, no checkpoint file."""
    path = tmp_path / "c.jsonl"
    with serve("cromicle") as server:
        with pytest.raises(TypeError):
            batch(Cromicle(base_url=server.url), ["a"], checkpoint=path, schema=3)
        assert server.requests == []
    assert not path.exists()


def test_a_progress_that_cannot_start_releases_the_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bar fails to start: the error propagates and the checkpoint is unlocked."""

    def broken(*args: Any) -> None:
        raise RuntimeError("no bar")

    monkeypatch.setattr(_run, "Progress", broken)
    path = tmp_path / "c.jsonl"
    with serve("cromicle") as server:
        with pytest.raises(RuntimeError, match="no bar"):
            batch(Cromicle(base_url=server.url), ["a"], checkpoint=path)
        assert server.requests == []
    book = Checkpoint(path, [])
    book.open()  # not "in use by another process"
    book.close()


def test_failed_requests_count_as_arrived_for_the_rate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A request refused before any text still arrived: with one request a
    window, the next starts a window after it, and every item fails rather
    than hangs. (The loop's clock jumps 10 s a reading: no real waiting.)"""
    monkeypatch.setattr(_run, "monotonic", itertools.count(0.0, 10.0).__next__)
    with serve("cromicle", status=400, body="bad") as server:
        result = batch(
            Cromicle(base_url=server.url, max_retries=0),
            ["a", "b", "c"],
            concurrency=1,
            rate=1,
        )
        assert len(server.requests) == 3
    assert [item.ok for item in result] == [False, False, False]
