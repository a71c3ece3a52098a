"""BackgroundStream's promises, pinned through its public calls: errors from
closing the source, the smallest queue, ``done``, ``result(timeout)``,
waking a consumer on close, the async iterator, ``repr`` and the worker thread.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from chatproviders import BackgroundStream
from tests.constants import WORKER
from tests.loopback import WAIT


def workers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(WORKER)]


@pytest.fixture(autouse=True)
def no_worker_left() -> Iterator[None]:
    """Every test ends with no worker thread alive."""
    yield
    for thread in workers():
        thread.join(WAIT)
    assert workers() == [], "a worker thread outlived its test"


def parked(thread: threading.Thread, within: str) -> bool:
    """Wait (bounded) until ``thread`` blocks in a threading wait called from a
    function named ``within``; True if it did.

    A poll of the thread's own stack, so that a test acts once the other
    thread is really waiting rather than after a guessed pause.
    """
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        frame = sys._current_frames().get(thread.ident or -1)
        names = []
        while frame is not None:
            names.append(frame.f_code.co_name)
            frame = frame.f_back
        if names[:1] == ["wait"] and within in names:
            return True
        time.sleep(0.001)  # a poll interval, not a synchronisation
    return False


class Source:
    """Chunks from a list, then an optional error; its close() may fail."""

    def __init__(
        self,
        chunks: list[str],
        error: BaseException | None = None,
        close_error: BaseException | None = None,
        release: threading.Event | None = None,
        close_pause: float = 0.0,
    ) -> None:
        self.chunks = list(chunks)
        self.error = error
        self.close_error = close_error
        self.release = release
        self.closed = threading.Event()
        self.close_pause = close_pause

    def __iter__(self) -> Source:
        return self

    def __next__(self) -> str:
        if self.chunks:
            return self.chunks.pop(0)
        if self.release is not None:
            # Longer than any wait of a test, so that a test's bound ends first.
            assert self.release.wait(4 * WAIT)
            self.release = None
        if self.error is not None:
            raise self.error
        raise StopIteration

    def close(self) -> None:
        if self.close_pause:  # a slow close, to be waited for
            threading.Event().wait(self.close_pause)
        self.closed.set()
        if self.close_error is not None:
            raise self.close_error


def test_an_error_closing_the_source_reaches_the_consumer() -> None:
    """A source that ends well but fails to close: result() raises that failure."""
    failure = RuntimeError("close failed")
    stream = BackgroundStream(Source(["a"], close_error=failure))
    with pytest.raises(RuntimeError) as caught:
        stream.result(WAIT)
    assert caught.value is failure


def test_the_reading_error_wins_over_an_error_closing_the_source() -> None:
    """The first failure is the one raised, not the later one from close()."""
    first = ValueError("read failed")
    source = Source(["a"], error=first, close_error=RuntimeError("close failed"))
    stream = BackgroundStream(source)
    with pytest.raises(ValueError) as caught:
        stream.result(WAIT)
    assert caught.value is first
    assert source.closed.is_set()


def test_a_queue_of_one_chunk_is_allowed_and_works() -> None:
    """maxsize=1 is the smallest queue, not an error; every chunk still arrives."""
    stream = BackgroundStream(Source(list("abcdef")), maxsize=1)
    assert list(stream) == list("abcdef")
    with pytest.raises(ValueError, match="maxsize"):
        BackgroundStream(Source([]), maxsize=0)


def test_done_waits_for_the_error_to_be_handed_out() -> None:
    """A failed stream is not done until its error was raised to the consumer."""
    failure = ValueError("broken")
    stream = BackgroundStream(Source(["a"], error=failure))
    for thread in workers():
        thread.join(WAIT)
    assert not stream.done
    assert stream.poll() == ["a"]
    assert not stream.done
    with pytest.raises(ValueError):
        stream.poll()
    assert stream.done


def test_result_with_no_time_left_raises_timeout_error_not_value_error() -> None:
    """result(0) on a running stream is a TimeoutError; on an ended one, the text."""
    release = threading.Event()
    stream = BackgroundStream(Source(["a"], release=release))
    with pytest.raises(TimeoutError):
        stream.result(0)
    release.set()
    assert stream.result(WAIT) == "a"
    assert stream.result(0) == "a"


def test_result_waits_out_its_timeout_for_the_end() -> None:
    """A stream ending while result(timeout) waits is returned, not timed out,
    however short the timeout."""
    release = threading.Event()
    stream = BackgroundStream(Source(["a", "b"], release=release))
    main = threading.current_thread()
    waiter = threading.Thread(target=lambda: parked(main, "result") and release.set())
    waiter.start()
    assert stream.result(0.9) == "ab"
    waiter.join(WAIT)


def test_close_from_another_thread_wakes_a_waiting_consumer() -> None:
    """A consumer blocked waiting for a chunk returns at once when another thread
    closes the stream, even while the worker is stuck in the source."""
    release = threading.Event()
    stream = BackgroundStream(Source(["a"], release=release))
    got: list[str] = []
    first = threading.Event()

    def consume() -> None:
        for chunk in stream:
            got.append(chunk)
            first.set()

    consumer = threading.Thread(target=consume)
    consumer.start()
    try:
        assert first.wait(WAIT)
        assert parked(consumer, "consume")
        stream.close()  # the worker is stuck in next(): close() gives up waiting
        consumer.join(WAIT)
        assert not consumer.is_alive()
        assert got == ["a"]
    finally:
        release.set()


def test_the_worker_is_a_daemon_thread() -> None:
    """A stream stuck in its source never keeps the interpreter from exiting."""
    release = threading.Event()
    stream = BackgroundStream(Source([], release=release))
    assert [t.daemon for t in workers()] == [True]
    release.set()
    assert stream.result(WAIT) == ""


def test_repr_says_running_ended_or_closed_and_counts_chunks() -> None:
    """repr shows the state and the chunks received."""
    release = threading.Event()
    stream = BackgroundStream(Source(["a", "b"], release=release))
    assert repr(stream).startswith("<BackgroundStream running, ")
    release.set()
    stream.result(WAIT)
    assert repr(stream) == "<BackgroundStream ended, 2 chunks received>"
    stream.close()
    assert repr(stream) == "<BackgroundStream closed, 2 chunks received>"


def test_the_async_iterator_is_its_own_iterator_and_closes_the_stream() -> None:
    """__aiter__ of the async iterator returns it; its aclose() cancels the stream."""
    release = threading.Event()
    stream = BackgroundStream(Source(["a", "b"], release=release))

    async def main() -> str:
        chunks = stream.__aiter__()
        assert chunks.__aiter__() is chunks
        first = await chunks.__anext__()
        await chunks.aclose()
        with pytest.raises(StopAsyncIteration):
            await chunks.__anext__()
        return first

    assert asyncio.run(main()) == "a"
    assert repr(stream).startswith("<BackgroundStream closed")
    release.set()


def test_aclose_returns_once_the_worker_has_ended() -> None:
    """await aclose() on a stream whose worker can end: the worker is gone after."""
    stream = BackgroundStream(Source(list("abc")))

    async def main() -> None:
        async for _ in stream:
            break  # cancels; the worker ends on its own
        await stream.aclose()

    asyncio.run(main())
    assert workers() == []


def test_the_end_wakes_an_async_consumer_awaiting_a_chunk() -> None:
    """An ``async for`` waiting for the next chunk ends when the source ends."""
    release = threading.Event()
    stream = BackgroundStream(Source(["a"], release=release))

    async def main() -> list[str]:
        chunks = stream.__aiter__()
        got = [await chunks.__anext__()]
        waiting = asyncio.ensure_future(chunks.__anext__())
        await asyncio.sleep(0)  # one step: the task now awaits the next chunk
        assert not waiting.done()
        release.set()  # the source ends, on the worker
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(waiting, WAIT)
        return got

    try:
        assert asyncio.run(main()) == ["a"]
    finally:
        release.set()


def test_aclose_waits_for_a_slow_close_of_the_source() -> None:
    """aclose() returns once the worker has closed the source and ended, even
    when closing takes a moment."""
    source = Source(list("abc"), close_pause=0.05)
    stream = BackgroundStream(source)

    async def main() -> None:
        async for _ in stream:
            break
        await stream.aclose()
        assert source.closed.is_set()
        assert workers() == []

    asyncio.run(main())


def test_a_forked_child_forgets_the_workers_queued_for_launch() -> None:
    """After a fork the launcher queue is empty and no launcher is running:
    the parent's queued workers are not the child's to start."""
    from chatproviders._streams import background as _background

    saved = (list(_background._to_launch), _background._launching)
    try:
        _background._to_launch.append(("thread", "channel", "event"))  # type: ignore[arg-type]
        _background._launching = True
        _background._forget_launches()
        assert not _background._to_launch and _background._launching is False
    finally:
        _background._to_launch.clear()
        _background._to_launch.extend(saved[0])
        _background._launching = saved[1]


def test_a_stream_read_from_one_loop_then_another_wakes_in_each() -> None:
    """A background stream consumed partly under one event loop, then under
    another, is woken in each through that loop's own waker: each loop waits
    for its chunk before the worker sends it."""
    go = [threading.Event(), threading.Event()]

    def source() -> Iterator[str]:
        for number, event in enumerate(go):
            event.wait(WAIT)
            yield str(number)

    async def waits_for(get: Any, event: threading.Event) -> Any:
        task = asyncio.ensure_future(get())
        await asyncio.sleep(0)  # the task runs until it waits for a chunk
        event.set()
        return await asyncio.wait_for(task, WAIT)

    with BackgroundStream(source()) as stream:
        chunks = stream.__aiter__()
        assert asyncio.run(waits_for(chunks.__anext__, go[0])) == "0"
        assert asyncio.run(waits_for(lambda: _collect(chunks), go[1])) == ["1"]


async def _collect(chunks: Any) -> list[str]:
    return [chunk async for chunk in chunks]


def test_a_wait_after_a_timed_out_result_is_still_woken() -> None:
    """result() that timed out leaves the count of waiting consumers right: a
    consumer that then waits for the next chunk is woken when it comes."""
    release, finish = threading.Event(), threading.Event()

    def source() -> Iterator[str]:
        release.wait(WAIT)
        yield "late"
        finish.wait(WAIT)  # no end yet: only the chunk itself may wake the consumer

    with BackgroundStream(source()) as stream:
        with pytest.raises(TimeoutError):
            stream.result(timeout=0.01)
        got: list[str] = []
        consumer = threading.Thread(target=lambda: got.append(next(stream)))
        consumer.start()
        assert parked(consumer, "_wait_next")
        release.set()
        consumer.join(WAIT)
        finish.set()
        assert got == ["late"]
