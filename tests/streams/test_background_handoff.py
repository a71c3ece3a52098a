"""How chunks cross from the workers to asyncio consumers, and how workers start.

The hand-off is counted, never timed: the loop's ``call_soon_threadsafe`` is
wrapped to count the wake-ups the workers ask for, and the loop is held still
(blocked on purpose) while the workers queue their chunks.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator
from typing import Any, Callable

import pytest

from chatproviders import BackgroundStream
from chatproviders._streams import background as _background
from tests.constants import WORKER
from tests.loopback import WAIT


def workers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(WORKER)]


def join_workers() -> None:
    """Join every worker, including one the launcher is starting right now
    (listed already, but join() refuses a thread not yet started)."""
    deadline = time.monotonic() + WAIT
    for launcher in threading.enumerate():  # workers still queued for a start
        if launcher.name == "chatproviders-launcher":
            launcher.join(WAIT)
    for thread in workers():
        while True:
            try:
                thread.join(max(0.0, deadline - time.monotonic()))
                break
            except RuntimeError:  # "cannot join thread before it is started"
                assert time.monotonic() < deadline, "a worker never started"
                time.sleep(0.001)


@pytest.fixture(autouse=True)
def no_worker_left() -> Iterator[None]:
    assert workers() == []
    yield
    join_workers()
    assert workers() == [], "a worker thread outlived its test"


def count_wake_ups(loop: asyncio.AbstractEventLoop) -> list[object]:
    """Record each wake-up the workers ask of ``loop`` (not the loop's own calls)."""
    calls: list[object] = []
    original = loop.call_soon_threadsafe

    def counting(callback: Callable[..., object], *args: Any, **kwargs: Any) -> Any:
        if getattr(callback, "__func__", None) is _background._Waker.flush:
            calls.append(callback)
        return original(callback, *args, **kwargs)

    loop.call_soon_threadsafe = counting  # type: ignore[method-assign]
    return calls


def wait_for(predicate: Callable[[], bool]) -> None:
    """Poll ``predicate`` until it holds (bounded by WAIT); a step, not a timing."""
    deadline = time.monotonic() + WAIT
    while not predicate():
        assert time.monotonic() < deadline, "the condition never came true"
        time.sleep(0.001)


# -- coalescing ----------------------------------------------------------------


def test_chunks_queued_while_the_loop_is_busy_cost_one_wake_up() -> None:
    """Twenty streams queue two chunks each while the loop is held: the loop is
    woken once for all forty, and each consumer takes both chunks from it."""
    streams = 20
    go, release = threading.Event(), threading.Event()
    queued = [threading.Event() for _ in range(streams)]

    def source(k: int) -> Callable[[], Iterator[str]]:
        def chunks() -> Iterator[str]:
            assert go.wait(WAIT)
            yield f"{k}a"
            yield f"{k}b"
            queued[k].set()  # both are in the queue now
            assert release.wait(WAIT)

        return chunks

    async def first_two(stream: BackgroundStream) -> list[str]:
        chunks = stream.__aiter__()
        return [await chunks.__anext__(), await chunks.__anext__()]

    async def main() -> None:
        wake_ups = count_wake_ups(asyncio.get_running_loop())
        opened = [BackgroundStream(source(k)) for k in range(streams)]
        tasks = [asyncio.create_task(first_two(stream)) for stream in opened]
        await asyncio.sleep(0)  # each task runs up to its wait for a chunk
        assert all(stream._channel.waiters for stream in opened)
        go.set()
        for event in queued:  # blocks the loop while the workers queue
            assert event.wait(WAIT)
        assert len(wake_ups) == 1
        got = await asyncio.gather(*tasks)
        assert got == [[f"{k}a", f"{k}b"] for k in range(streams)]
        assert len(wake_ups) == 1  # the second chunks needed no wake-up
        release.set()
        for stream in opened:
            await stream.aclose()

    asyncio.run(main())


def test_a_consumer_that_keeps_up_is_woken_once_per_chunk() -> None:
    """When the consumer waits before each chunk, each chunk wakes it once:
    batching adds no call and skips none."""
    count = 50
    stream_box: list[BackgroundStream] = []

    def chunks() -> Iterator[str]:
        for n in range(count):
            # Wait until the consumer awaits, so this chunk has to wake it.
            wait_for(lambda: bool(stream_box and stream_box[0]._channel.waiters))
            yield str(n)

    async def main() -> list[str]:
        wake_ups = count_wake_ups(asyncio.get_running_loop())
        stream = BackgroundStream(chunks)
        stream_box.append(stream)
        got = []
        async with stream:
            async for chunk in stream:
                got.append(chunk)
                if len(got) == count:
                    assert len(wake_ups) == count
        return got

    assert asyncio.run(main()) == [str(n) for n in range(count)]


def test_order_and_the_bound_hold_across_batched_wake_ups() -> None:
    """10,000 chunks through a queue of 3 reach async for complete, in order."""
    chunks = [str(n) for n in range(10_000)]

    async def main() -> list[str]:
        return [chunk async for chunk in BackgroundStream(chunks, maxsize=3)]

    assert asyncio.run(main()) == chunks


def test_many_consumers_on_one_loop_each_get_their_own_chunks() -> None:
    """Fifty streams on one loop share its wake-ups, never each other's chunks."""

    async def main() -> list[list[str]]:
        opened = [
            BackgroundStream([f"{k}:{n}" for n in range(200)], maxsize=4)
            for k in range(50)
        ]

        async def read(stream: BackgroundStream) -> list[str]:
            return [chunk async for chunk in stream]

        return list(await asyncio.gather(*(read(stream) for stream in opened)))

    got = asyncio.run(main())
    assert got == [[f"{k}:{n}" for n in range(200)] for k in range(50)]


class FakeLoop:
    """What a _Waker uses of a loop: call_soon_threadsafe (refused once closed)."""

    def __init__(self) -> None:
        self.callbacks: list[Callable[[], object]] = []
        self.closed = False

    def call_soon_threadsafe(self, callback: Callable[[], object]) -> None:
        if self.closed:
            raise RuntimeError("Event loop is closed")
        self.callbacks.append(callback)

    def run_ready(self) -> None:
        ready, self.callbacks = self.callbacks, []
        for callback in ready:
            callback()


class FakeFuture:
    def __init__(self, done: bool = False) -> None:
        self.resolved = 0
        self._done = done

    def done(self) -> bool:
        return self._done

    def set_result(self, result: None) -> None:
        assert not self._done, "a done future was resolved again"
        self._done = True
        self.resolved += 1


def test_the_waker_asks_once_per_batch_from_any_number_of_threads() -> None:
    """Futures added by eight threads before the loop runs cost one call; the
    next batch asks again; a future already done (cancelled) is skipped."""
    loop = FakeLoop()
    waker = _background._Waker(loop)  # type: ignore[arg-type]
    futures = [FakeFuture() for _ in range(800)]
    together = threading.Barrier(8, timeout=WAIT)

    def add(part: list[FakeFuture]) -> None:
        together.wait()
        for future in part:
            waker.add(future)  # type: ignore[arg-type]

    adders = [threading.Thread(target=add, args=(futures[i::8],)) for i in range(8)]
    for adder in adders:
        adder.start()
    for adder in adders:
        adder.join(WAIT)
    assert len(loop.callbacks) == 1 and waker.calls == 1
    loop.run_ready()
    assert [future.resolved for future in futures] == [1] * 800

    cancelled, later = FakeFuture(done=True), FakeFuture()
    waker.add(cancelled)  # type: ignore[arg-type]
    waker.add(later)  # type: ignore[arg-type]
    assert len(loop.callbacks) == 1 and waker.calls == 2
    loop.run_ready()
    assert (cancelled.resolved, later.resolved) == (0, 1)


def test_the_waker_of_a_closed_loop_raises_nothing() -> None:
    """A worker finishing after its consumer's loop closed wakes nobody, quietly."""
    loop = FakeLoop()
    loop.closed = True
    waker = _background._Waker(loop)  # type: ignore[arg-type]
    waker.add(FakeFuture())  # type: ignore[arg-type]
    waker.add(FakeFuture())  # type: ignore[arg-type]
    assert loop.callbacks == []


def test_one_waker_per_loop() -> None:
    """Streams awaited on one loop share its waker; another loop has its own."""

    def awaited(text: str) -> BackgroundStream:
        """A stream whose one chunk comes once its consumer waits for it."""
        box: list[BackgroundStream] = []

        def chunks() -> Iterator[str]:
            wait_for(lambda: bool(box and box[0]._channel.waiters))
            yield text

        box.append(BackgroundStream(chunks))
        return box[0]

    async def waker_of_this_loop() -> object:
        stream, other = awaited("x"), awaited("y")
        assert [chunk async for chunk in stream] == ["x"]
        assert [chunk async for chunk in other] == ["y"]
        assert stream._waker is other._waker is not None
        assert stream._waker.loop is asyncio.get_running_loop()
        return stream._waker

    first = asyncio.run(waker_of_this_loop())
    assert asyncio.run(waker_of_this_loop()) is not first


# -- starting workers from an event loop ------------------------------------------


@pytest.fixture
def held_launcher(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """The launcher waits for the returned event before it starts any worker."""
    release = threading.Event()
    launcher = _background._launcher

    def held() -> None:
        assert release.wait(WAIT)
        launcher()

    monkeypatch.setattr(_background, "_launcher", held)
    return release


def test_on_a_loop_the_call_returns_before_its_worker_starts(
    held_launcher: threading.Event,
) -> None:
    """Made on a running loop, a stream is started by the launcher thread, so
    the loop never waits for a thread to start."""

    async def main() -> list[str]:
        stream = BackgroundStream(["a", "b"])
        assert workers() == []  # not started: the launcher is held
        assert stream.poll() == []
        held_launcher.set()
        return [chunk async for chunk in stream]

    assert asyncio.run(main()) == ["a", "b"]


def test_off_a_loop_the_worker_starts_within_the_call(
    held_launcher: threading.Event,
) -> None:
    """Plain threads start their worker themselves, as before: no launcher."""
    stream = BackgroundStream(["a", "b"])
    assert stream.result(timeout=WAIT) == "ab"  # the held launcher is not involved
    held_launcher.set()


def test_closing_a_stream_whose_worker_has_not_started(
    held_launcher: threading.Event, monkeypatch: pytest.MonkeyPatch
) -> None:
    """close() before the launcher got to the worker: it waits its half second
    (here shortened), returns, and the worker, once started, sends nothing."""
    monkeypatch.setattr(_background, "_CLOSE_WAIT", 0.01)
    opened: list[str] = []

    def source() -> Iterator[str]:
        opened.append("opened")
        yield "never"

    async def main() -> BackgroundStream:
        stream = BackgroundStream(source)
        stream.close()
        await stream.aclose()  # idempotent, and never waits for an unstarted worker
        return stream

    stream = asyncio.run(main())
    held_launcher.set()
    join_workers()
    assert stream.result(timeout=WAIT) == ""
    assert stream.done
    assert opened == []  # the worker saw the cancel before opening the source


def test_a_worker_that_cannot_start_fails_its_consumer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No thread to be had: on a loop, async for raises the error; off a loop,
    the call raises it, as Thread.start() does."""
    start = threading.Thread.start

    def refuse_workers(thread: threading.Thread) -> None:
        if thread.name.startswith(WORKER):
            raise RuntimeError("can't start new thread")
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", refuse_workers)

    async def main() -> None:
        stream = BackgroundStream(["a"])
        with pytest.raises(RuntimeError, match="can't start new thread"):
            async for _ in stream:
                pass
        stream.close()  # the thread never started: nothing to join
        assert stream.done

    asyncio.run(main())
    with pytest.raises(RuntimeError, match="can't start new thread"):
        BackgroundStream(["a"])


def test_the_launcher_leaves_no_thread_behind() -> None:
    """The launcher exits once every queued worker is started."""

    async def main() -> list[list[str]]:
        opened = [BackgroundStream([str(k)]) for k in range(30)]

        async def read(stream: BackgroundStream) -> list[str]:
            return [chunk async for chunk in stream]

        return list(await asyncio.gather(*(read(stream) for stream in opened)))

    assert asyncio.run(main()) == [[str(k)] for k in range(30)]
    wait_for(
        lambda: (
            not any(t.name == "chatproviders-launcher" for t in threading.enumerate())
        )
    )


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_starts_its_own_workers(held_launcher: threading.Event) -> None:
    """A fork while workers wait for the launcher: the child does not inherit
    the parent's busy launcher, so its own streams start."""

    async def read(chunks: list[str]) -> list[str]:
        return [chunk async for chunk in BackgroundStream(chunks)]

    async def parent() -> list[str]:
        stream = BackgroundStream(["in the parent"])  # queued: the launcher is held
        pid = os.fork()
        if pid == 0:  # the child: exit with 0 if its own stream came through
            code = 2
            try:
                held_launcher.set()  # the child's copy of the event
                got = asyncio.run(asyncio.wait_for(read(["in the child"]), WAIT))
                code = 0 if got == ["in the child"] else 1
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        held_launcher.set()
        return [chunk async for chunk in stream]

    assert asyncio.run(parent()) == ["in the parent"]


def test_no_launcher_to_be_had_fails_the_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """If even the launcher thread cannot start, the call raises, as it did when
    it started the worker itself, and leaves nothing queued."""
    for thread in threading.enumerate():  # a launcher of an earlier test ends
        if thread.name == "chatproviders-launcher":  # once its queue is empty
            thread.join(5.0)
    assert not _background._launching
    start = threading.Thread.start

    def refuse_the_launcher(thread: threading.Thread) -> None:
        if thread.name == "chatproviders-launcher":
            raise RuntimeError("can't start new thread")
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", refuse_the_launcher)

    async def main() -> None:
        with pytest.raises(RuntimeError, match="can't start new thread"):
            BackgroundStream(["a"])
        assert not _background._to_launch
        monkeypatch.setattr(threading.Thread, "start", start)
        assert [chunk async for chunk in BackgroundStream(["b"])] == ["b"]

    asyncio.run(main())
