"""BackgroundStream: a worker thread reads, the caller never blocks, close() cancels."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any, Optional

import pytest

from chatproviders import (
    BackgroundStream,
    ChatStream,
    Cromicle,
    IncompleteStreamError,
    InternalServerError,
    ModelNotSupportedError,
    UnsupportedParameterError,
)
from chatproviders._streams import background as _background
from chatproviders._wire import retry as _retry
from tests.constants import HI, WORKER
from tests.loopback import WAIT, Conn, LoopbackServer


def workers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(WORKER)]


@pytest.fixture(autouse=True)
def no_worker_left() -> Iterator[None]:
    """Every test starts and ends with no worker thread alive."""
    assert workers() == []
    yield
    for launcher in threading.enumerate():  # workers still queued for a start
        if launcher.name == "chatproviders-launcher":
            launcher.join(WAIT)
    for thread in workers():
        thread.join(WAIT)
    assert workers() == [], "a worker thread outlived its test"


def open_sockets() -> Optional[int]:
    """How many sockets this process holds (Linux), else None."""
    if not os.path.isdir("/proc/self/fd"):
        return None
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # closed since the listing
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
    return count


def stall_handler(conn: Conn, framing: str = "chunked") -> None:
    """Send one piece, then nothing until the client hangs up."""
    conn.read_request()
    conn.send_head(framing=framing, length=100)
    conn.send(b"first")
    assert conn.wait_closed_by_client(), "the client never closed the connection"


# -- ordering, and what the call does on the caller's thread ---------------------


def test_tokens_arrive_in_order_while_the_server_waits() -> None:
    """Each token reaches the consumer through the worker before the next is sent."""
    tokens = [b"one ", b"two ", b"three"]
    received = [threading.Event() for _ in tokens]
    late: list[int] = []

    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.send_head(framing="chunked")
        for index, token in enumerate(tokens):
            conn.send(token)
            if not received[index].wait(WAIT):
                late.append(index)
        conn.end()

    with LoopbackServer(handler) as server, Cromicle(base_url=server.url) as client:
        with client.stream_in_background(HI) as stream:
            for index, chunk in enumerate(stream):
                assert chunk == tokens[index].decode()
                received[index].set()
            assert stream.result() == "one two three"
    assert late == []


def test_many_chunks_through_a_tiny_queue_keep_their_order() -> None:
    """10,000 chunks through a queue of 3 come out complete and in order."""
    chunks = [str(n) for n in range(10_000)]
    assert list(BackgroundStream(chunks, maxsize=3)) == chunks


def test_the_call_returns_before_the_server_answers() -> None:
    """stream_in_background() returns at once; the request goes from the worker."""
    released = threading.Event()

    def handler(conn: Conn) -> None:
        conn.read_request()
        assert released.wait(WAIT), "the call blocked until the server answered"
        conn.respond(200, b"late hello")

    with LoopbackServer(handler) as server, Cromicle(base_url=server.url) as client:
        stream = client.stream_in_background(HI)
        released.set()
        assert stream.result(timeout=WAIT) == "late hello"


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"temperature": 1}, UnsupportedParameterError),
        ({"model": "gpt-5"}, ModelNotSupportedError),
    ],
)
def test_bad_arguments_raise_from_the_call_without_a_thread(
    kwargs: dict[str, object], error: type[Exception]
) -> None:
    """Arguments are checked on the caller's thread: no worker, no request."""
    with LoopbackServer(stall_handler) as server, Cromicle(base_url=server.url) as c:
        with pytest.raises(error):
            c.stream_in_background(HI, **kwargs)  # type: ignore[arg-type]
        assert workers() == []
    assert server.accepted == 0


@pytest.mark.parametrize("maxsize", [0, -1, 1.5, True])
def test_maxsize_must_be_a_positive_int(maxsize: object) -> None:
    """A queue bound that is not an int >= 1 is refused."""
    with pytest.raises(ValueError, match="maxsize"):
        BackgroundStream(["a"], maxsize=maxsize)  # type: ignore[arg-type]


@pytest.mark.parametrize("source", ["text", b"bytes", 42])
def test_a_source_must_be_an_iterable_of_chunks_or_a_callable(source: object) -> None:
    """A string (iterable by character) or a number is refused at once."""
    with pytest.raises(TypeError, match="source"):
        BackgroundStream(source)  # type: ignore[arg-type]


# -- errors ----------------------------------------------------------------------


class Boom(Exception):
    pass


def test_result_takes_seconds_or_none() -> None:
    """NaN or a negative timeout is a ValueError (NaN used to spin the CPU);
    infinity waits like None."""
    stream = BackgroundStream(["a", "b"])
    for bad in (float("nan"), -1.0):
        with pytest.raises(ValueError, match="timeout"):
            stream.result(timeout=bad)
    assert stream.result(timeout=float("inf")) == "ab"


@pytest.mark.parametrize("how", ["iterate", "poll", "result"])
def test_a_source_error_arrives_as_the_same_object_after_its_chunks(
    how: str, capfd: pytest.CaptureFixture[str]
) -> None:
    """A user iterable's exception is raised as is, after the chunks before it."""
    boom = Boom("from the source")

    def source() -> Iterator[str]:
        yield "a"
        yield "b"
        raise boom

    stream = BackgroundStream(source)
    got: list[str] = []
    with pytest.raises(Boom) as caught:
        if how == "iterate":
            for chunk in stream:
                got.append(chunk)
        elif how == "poll":
            deadline = time.monotonic() + WAIT
            while time.monotonic() < deadline:
                got += stream.poll()
        else:
            stream.result()
    assert caught.value is boom
    assert got == ([] if how == "result" else ["a", "b"])
    assert stream.done
    with pytest.raises(Boom) as again:
        stream.result()  # the outcome stays
    assert again.value is boom
    assert capfd.readouterr().err == ""


def test_an_error_status_is_raised_by_the_consumer() -> None:
    """A 500 answered to the worker's request reaches the consumer, not stderr."""

    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.respond(500, b'{"detail": "down"}', "application/json")

    with LoopbackServer(handler) as server:
        client = Cromicle(base_url=server.url, max_retries=0)
        with client, client.stream_in_background(HI) as stream:
            with pytest.raises(InternalServerError) as caught:
                list(stream)
            with pytest.raises(InternalServerError) as again:
                stream.result()
    assert again.value is caught.value
    assert caught.value.status_code == 500


def test_a_reset_mid_body_comes_after_the_text_before_it() -> None:
    """IncompleteStreamError follows the chunk that arrived, and keeps it."""
    got_first = threading.Event()

    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.send_head(framing="chunked")
        conn.send(b"partial ")
        assert got_first.wait(WAIT)
        conn.reset()

    with LoopbackServer(handler) as server, Cromicle(base_url=server.url) as client:
        with client.stream_in_background(HI) as stream:
            assert next(stream) == "partial "
            got_first.set()
            with pytest.raises(IncompleteStreamError) as caught:
                next(stream)
    assert caught.value.partial_text == "partial "


# -- poll, done, result ------------------------------------------------------------


def test_poll_done_and_result_after_partial_polls() -> None:
    """poll() never blocks, done waits for the last chunk, result() has them all."""
    started, asked_for_c, release = (threading.Event() for _ in range(3))

    def source() -> Iterator[str]:
        assert started.wait(WAIT)
        yield "a"
        yield "b"
        asked_for_c.set()  # "a" and "b" are queued now
        assert release.wait(WAIT)
        yield "c"

    with BackgroundStream(source) as stream:
        assert stream.poll() == []  # nothing yet, and no waiting
        assert not stream.done
        started.set()
        assert asked_for_c.wait(WAIT)
        assert stream.poll() == ["a", "b"]
        assert stream.poll() == []
        assert not stream.done
        with pytest.raises(TimeoutError):
            stream.result(timeout=0.01)
        release.set()
        assert stream.result(timeout=WAIT) == "abc"  # polled chunks included
        assert stream.done
        assert stream.poll() == []
        assert stream.result() == "abc"


def test_a_result_timeout_loses_nothing() -> None:
    """Chunks that arrived while result() timed out are still handed out."""
    queued, release = threading.Event(), threading.Event()

    def source() -> Iterator[str]:
        yield "x"
        queued.set()
        assert release.wait(WAIT)
        yield "y"

    with BackgroundStream(source) as stream:
        assert queued.wait(WAIT)
        with pytest.raises(TimeoutError):
            stream.result(timeout=0.01)
        assert stream.poll() == ["x"]
        release.set()
        assert list(stream) == ["y"]
        assert stream.result() == "xy"


# -- cancelling --------------------------------------------------------------------


@pytest.mark.parametrize("framing", ["chunked", "length", "close"])
@pytest.mark.parametrize("source", ["client", "chatstream"])
def test_close_during_a_stalled_read_returns_at_once(
    framing: str, source: str, capfd: pytest.CaptureFixture[str]
) -> None:
    """close() wakes a worker stuck in recv, which closes the socket and exits."""

    def handler(conn: Conn) -> None:
        stall_handler(conn, framing)

    with LoopbackServer(handler) as server, Cromicle(base_url=server.url) as client:
        if source == "client":
            stream = client.stream_in_background(HI)
        else:
            stream = BackgroundStream(client.stream(HI))
        assert next(stream) == "first"
        stream.close()
        assert workers() == []  # exited within close()'s wait, not abandoned
        stream.close()  # idempotent
        assert stream.done
        assert stream.result() == "first"  # what came before; the cut is no error
        assert stream.poll() == []
        assert list(stream) == []
    assert server.errors == []  # the handler saw the connection close
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize("how", ["with", "break", "gc"])
def test_leaving_breaking_or_dropping_closes_the_connection(how: str) -> None:
    """Leaving with, break and garbage collection all cancel the worker."""
    with (
        LoopbackServer(stall_handler) as server,
        Cromicle(base_url=server.url) as client,
    ):
        if how == "with":
            with client.stream_in_background(HI) as stream:
                assert next(stream) == "first"
        elif how == "break":
            stream = client.stream_in_background(HI)
            for _ in stream:
                break
        else:
            stream = client.stream_in_background(HI)
            assert next(stream) == "first"
            del stream  # dropped, not closed
            gc.collect()
        for thread in workers():
            thread.join(WAIT)
        assert workers() == []
    assert server.errors == []


class Endless:
    """An endless source with a close(), kept alive by the test."""

    def __init__(self) -> None:
        self.pulled = 0
        self.full = threading.Event()
        self.closed_on = ""

    def __iter__(self) -> Endless:
        return self

    def __next__(self) -> str:
        self.pulled += 1
        if self.pulled == 3:  # two queued, the third waits for room
            self.full.set()
        return "x"

    def close(self) -> None:
        self.closed_on = threading.current_thread().name


def test_close_wakes_a_worker_waiting_for_room() -> None:
    """A stopped consumer stops the reads; close() wakes the blocked worker."""
    source = Endless()
    stream = BackgroundStream(source, maxsize=2)
    assert source.full.wait(WAIT)
    stream.close()
    assert workers() == []  # exited within close()'s wait, not abandoned
    assert source.pulled == 3  # nothing read past the bound
    assert source.closed_on.startswith(WORKER)  # closed by the worker, its owner


def test_close_before_the_response_drops_it_when_it_comes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A worker waiting for headers cannot be woken; it hangs up once they come."""
    monkeypatch.setattr(_background, "_CLOSE_WAIT", 0.01)
    requested, release = threading.Event(), threading.Event()

    def handler(conn: Conn) -> None:
        conn.read_request()
        requested.set()
        assert release.wait(WAIT)
        conn.send_head(framing="chunked")
        assert conn.wait_closed_by_client()  # at the headers: no chunk awaited

    with LoopbackServer(handler) as server, Cromicle(base_url=server.url) as client:
        stream = client.stream_in_background(HI)
        assert requested.wait(WAIT)
        stream.close()
        assert stream.poll() == []
        release.set()
        for thread in workers():
            thread.join(WAIT)
    assert server.errors == []
    assert server.accepted == 1


def close_while_awaiting_the_first_chunk(monkeypatch: pytest.MonkeyPatch) -> int:
    """Close once the worker has the response's headers; return the connections."""
    watching = threading.Event()
    watch = _background._Channel.watch

    def watch_and_tell(channel: _background._Channel, response: Any) -> None:
        watch(channel, response)
        watching.set()

    monkeypatch.setattr(_background._Channel, "watch", watch_and_tell)

    def handler(conn: Conn) -> None:
        if conn.read_request() is None:
            return
        conn.send_head(framing="chunked")
        conn.wait_closed_by_client()

    with LoopbackServer(handler) as server, Cromicle(base_url=server.url) as client:
        stream = client.stream_in_background(HI)
        assert watching.wait(WAIT)  # the worker now waits for the first chunk
        stream.close()
        assert workers() == []  # exited within close()'s wait, not abandoned
        assert stream.result() == ""
    return server.accepted


def test_close_before_the_first_chunk_sends_no_second_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Closing while the first chunk is awaited ends the worker, retrying nothing."""
    assert close_while_awaiting_the_first_chunk(monkeypatch) == 1


def test_close_during_a_backoff_wait_sends_no_second_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A close() that ends the wait between two tries ends the worker too, and
    leaves no socket waiting for the garbage collector."""
    gc.collect()
    sockets = open_sockets()
    waiting = threading.Event()

    def sleep(seconds: float, cancel: Optional[threading.Event] = None) -> None:
        waiting.set()  # as _retry.sleep does: return once cancelled
        assert cancel is not None and cancel.wait(WAIT)

    monkeypatch.setattr(_retry, "sleep", sleep)

    requests = []

    def handler(conn: Conn) -> None:
        while conn.read_request() is not None:
            requests.append(1)
            conn.respond(503, b"busy")

    with LoopbackServer(handler) as server, Cromicle(base_url=server.url) as client:
        stream = client.stream_in_background(HI)
        assert waiting.wait(WAIT)
        stream.close()
        assert stream.result() == ""
        assert workers() == []
    assert len(requests) == 1
    assert open_sockets() == sockets


# -- many streams, many threads ----------------------------------------------------


def mixed_handler(conn: Conn) -> None:
    """Complete, fail with a status, reset mid-body, or stall, as the prompt says."""
    request = conn.read_request()
    assert request is not None
    if b"complete" in request.body:
        conn.send_head(framing="close")
        conn.send(b"done")
        conn.end()
    elif b"status" in request.body:
        conn.respond(400, b"no")
    elif b"reset" in request.body:
        conn.send_head(framing="chunked")
        conn.send(b"some")
        conn.reset()
    else:
        conn.send_head(framing="chunked")
        conn.send(b"first")
        assert conn.wait_closed_by_client()


@pytest.mark.slow
def test_500_streams_leave_no_thread_and_no_socket() -> None:
    """Completed, failed and cancelled streams all give back threads and sockets."""
    gc.collect()  # what earlier tests left to the collector
    threads, sockets = threading.active_count(), open_sockets()
    kinds = ["complete", "status", "reset", "stall"]
    with LoopbackServer(mixed_handler) as server, Cromicle(base_url=server.url) as c:
        for n in range(500):
            kind = kinds[n % len(kinds)]
            stream = c.stream_in_background([{"role": "user", "content": kind}])
            if kind == "complete":
                assert stream.result(timeout=WAIT) == "done"
            elif kind == "stall":
                assert next(stream) == "first"
                stream.close()
            else:
                with stream, pytest.raises(Exception) as caught:
                    stream.result(timeout=WAIT)
                assert "400" in str(caught.value) or "broke" in str(caught.value)
        assert workers() == []
    assert server.errors == []
    gc.collect()
    assert threading.active_count() == threads
    assert open_sockets() == sockets


def test_one_client_serves_eight_threads_at_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Eight threads stream through one client together, pooled, with no warning."""
    together = threading.Barrier(8, timeout=WAIT)

    def handler(conn: Conn) -> None:
        while (request := conn.read_request()) is not None:
            together.wait()  # all eight requests are in flight at once
            conn.send_head(framing="chunked")
            conn.send(json.loads(request.body)["message"].encode())
            conn.end()

    texts: list[str] = []
    errors: list[BaseException] = []

    def consume(n: int) -> None:
        try:
            prompt = [{"role": "user", "content": f"thread{n:02d}"}]
            texts.append(client.stream_in_background(prompt).result(timeout=WAIT))
        except BaseException as exc:
            errors.append(exc)

    caplog.set_level(logging.WARNING)
    with LoopbackServer(handler) as server, Cromicle(base_url=server.url) as client:
        for _ in range(2):  # the second round reuses the pooled connections
            runners = [threading.Thread(target=consume, args=(n,)) for n in range(8)]
            for runner in runners:
                runner.start()
            for runner in runners:
                runner.join(WAIT)
        assert errors == []
        assert sorted(texts) == sorted([f"thread{n:02d}" for n in range(8)] * 2)
    assert server.accepted == 8
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


# -- asyncio -----------------------------------------------------------------------


def test_async_for_never_blocks_the_event_loop() -> None:
    """While the consumer awaits a chunk, other tasks on the loop run."""
    ticked = threading.Event()

    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.send_head(framing="chunked")
        conn.send(b"a")
        assert ticked.wait(WAIT), "the event loop was blocked"
        conn.send(b"b")
        conn.end()

    async def main(client: Cromicle) -> list[str]:
        got_a = asyncio.Event()

        async def ticker() -> None:
            await got_a.wait()
            ticked.set()  # runs only while the consumer awaits "b"

        tick = asyncio.create_task(ticker())
        chunks = []
        async with client.stream_in_background(HI) as stream:
            async for chunk in stream:
                chunks.append(chunk)
                got_a.set()
        await tick
        return chunks

    with LoopbackServer(handler) as server, Cromicle(base_url=server.url) as client:
        assert asyncio.run(main(client)) == ["a", "b"]
        assert workers() == []  # aclose() waited for the worker
    assert server.errors == []


def test_the_bridge_works_in_a_loop_that_is_already_running() -> None:
    """Like Jupyter: a loop runs on its own thread; the bridge and result() work."""

    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.respond(200, b"hello")

    async def use(client: Cromicle) -> tuple[list[str], str]:
        chunks = [chunk async for chunk in client.stream_in_background(HI)]
        blocking = client.stream_in_background(HI).result(timeout=WAIT)
        return chunks, blocking

    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=loop.run_forever)
    runner.start()
    try:
        with LoopbackServer(handler) as server, Cromicle(base_url=server.url) as c:
            future = asyncio.run_coroutine_threadsafe(use(c), loop)
            assert future.result(WAIT) == (["hello"], "hello")
    finally:
        loop.call_soon_threadsafe(loop.stop)
        runner.join(WAIT)
        loop.close()


@pytest.mark.parametrize("how", ["cancel", "break", "aclose"])
def test_cancelling_the_awaiting_task_closes_the_stream(how: str) -> None:
    """Cancelling the task, break and aclose() hang up and end the worker."""

    async def main(client: Cromicle) -> None:
        stream = client.stream_in_background(HI)
        first = asyncio.Event()

        async def consume() -> None:
            async for _ in stream:
                first.set()
                if how == "break":
                    break

        task = asyncio.create_task(consume())
        await first.wait()
        if how == "cancel":
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        elif how == "break":
            await task
        else:
            await stream.aclose()
            await task
        assert stream.done

    with LoopbackServer(stall_handler) as server, Cromicle(base_url=server.url) as c:
        asyncio.run(main(c))
        for thread in workers():
            thread.join(WAIT)
    assert server.errors == []


def test_an_error_reaches_async_for_as_the_same_object() -> None:
    """The worker's exception is raised by async for after the chunks before it."""
    boom = Boom("async")

    def source() -> Iterator[str]:
        yield "a"
        raise boom

    async def main() -> list[str]:
        got = []
        with pytest.raises(Boom) as caught:
            async for chunk in BackgroundStream(source):
                got.append(chunk)
        assert caught.value is boom
        return got

    assert asyncio.run(main()) == ["a"]


def test_a_chatstream_source_is_owned_and_closed_by_the_worker() -> None:
    """BackgroundStream(chat_stream) reads it on the worker and closes it there."""

    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.respond(200, b"owned")

    with LoopbackServer(handler) as server, Cromicle(base_url=server.url) as client:
        chat = client.stream(HI)
        assert isinstance(chat, ChatStream)
        with contextlib.closing(BackgroundStream(chat)) as stream:
            assert stream.result(timeout=WAIT) == "owned"
        assert chat.closed


# -- Promises pinned through the public calls: errors from closing the source,
# the smallest queue, done, result(timeout), waking a consumer on close, the
# async iterator, repr and the worker thread.


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
