"""batch()'s loop in the small: the pacer's window, what is refused before
any I/O, the checkpoint released on every way out, and a failed request
counted as arrived so the rate never stalls the rest."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any

import pytest

from chatproviders import Cromicle, OpenAICompatible, batch
from chatproviders._batch import run as _run
from chatproviders._batch.checkpoint import Checkpoint
from chatproviders.exceptions import CheckpointError
from chatproviders.testing import serve
from tests.structured.models import Person


def test_a_rate_under_one_still_waits_for_the_last_request_to_arrive() -> None:
    """rate=0.5: one request a 2 s window; the next may start only 2 s after
    the last one arrived, however long ago it started."""
    pacer = _run._Pacer(0.5)
    assert pacer.wait(0.0) == 0.0
    start = pacer.started(0.0)
    assert pacer.wait(2.0) == math.inf  # not arrived: it may still land in a window
    start.ack = 1.0
    assert pacer.wait(2.0) == 1.0


def test_a_rate_between_one_and_two_lets_one_request_arrive_a_second() -> None:
    """rate=1.5: never more than 1.5, so one, arrival in any one second: the
    next start waits a whole second after the last one arrived, not 1/1.5 s."""
    pacer = _run._Pacer(1.5)
    pacer.started(0.0).ack = 0.0
    assert pacer.wait(0.7) == pytest.approx(0.3)


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


def test_a_plain_rerun_sends_again_only_what_a_schema_batch_answered(
    tmp_path: Path,
) -> None:
    """A schema batch stopped by Ctrl-C after its first item, then the plain
    batch again: only that item is asked again (plainly); the next one's
    plain answer is read back."""
    path = tmp_path / "c.jsonl"

    def interrupt(item: Any) -> None:
        raise KeyboardInterrupt

    with serve("openai") as server:
        client = OpenAICompatible(server.url, model="gpt-4o-mini")
        batch(client, ["a", "b"], checkpoint=path)
        server.queue_reply(text=json.dumps({"name": "Ann", "age": 31, "member": True}))
        with pytest.raises(KeyboardInterrupt):
            batch(
                client,
                ["a", "b"],
                schema=Person,
                checkpoint=path,
                concurrency=1,
                progress=interrupt,
            )
        assert len(server.requests) == 3  # a, b, then a for the schema
        result = batch(client, ["a", "b"], checkpoint=path)
        assert len(server.requests) == 4
        assert "response_format" not in server.requests[-1].json
    assert result.parsed == [None, None]
    assert [item.tries for item in result] == [1, 0]


def test_a_final_rewrite_that_fails_raises_with_every_item_done(
    tmp_path: Path,
) -> None:
    """The folder removed as the last item finishes: the end's rewrite raises
    CheckpointError naming the file, and its ``partial`` holds every item."""
    folder = tmp_path / "sub"
    folder.mkdir()
    path = folder / "c.jsonl"
    finished: list[Any] = []

    def remove_the_folder(item: Any) -> None:
        finished.append(item)
        if len(finished) == 2:
            path.unlink()
            folder.rmdir()

    with serve("cromicle") as server:
        client = Cromicle(base_url=server.url)
        with pytest.raises(CheckpointError, match="cannot write") as caught:
            batch(client, ["a", "b"], checkpoint=path, progress=remove_the_folder)
    assert caught.value.path == str(path)
    assert [item.ok for item in caught.value.partial] == [True, True]
