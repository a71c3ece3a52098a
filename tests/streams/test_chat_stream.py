"""ChatStream and ChatResponse, pinned on a stream of plain strings: closing at
the end and on errors, what an error is given, the times reported, defaults
and repr."""

from __future__ import annotations

import gc
import inspect
import time
from collections.abc import Iterator
from typing import Any

import pytest

from chatproviders import APIError, ChatResponse, ChatStream


class Response:
    """What ChatStream needs of a response: close()."""

    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


class Chunks:
    """An iterator of str chunks that may fail at its end; records close()."""

    def __init__(self, chunks: list[str], error: BaseException | None = None) -> None:
        self.chunks = iter(chunks)
        self.error = error
        self.closed = False
        self.response: Response | None = None

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        for chunk in self.chunks:
            return chunk
        if self.error is not None:
            raise self.error
        raise StopIteration

    def close(self) -> None:
        self.closed = True
        if self.response is not None:
            self.response.close()


def stream_of(chunks: Chunks, **options: Any) -> tuple[ChatStream, Response]:
    """A ChatStream over ``chunks``. The clients build them, so the constructor
    follows the core: the response apart, or the source that holds it."""
    response = Response()
    names = {"provider": "Echo", "model": "m1", "host": "echo.invalid", **options}
    if "response" in inspect.signature(ChatStream).parameters:
        return ChatStream(response, chunks, **names), response  # type: ignore[arg-type]
    chunks.response = response  # the source: its close() closes the response
    return ChatStream(chunks, **names), response  # type: ignore[call-arg]


@pytest.mark.parametrize(
    "error", [None, APIError("in-band"), ConnectionResetError("reset")]
)
def test_the_end_or_a_failure_closes_the_chunks_and_the_response(
    error: BaseException | None,
) -> None:
    """Reaching the end, our error or a network error: all close both at once."""
    chunks = Chunks(["a", "b"], error)
    stream, response = stream_of(chunks)
    assert next(stream) == "a"
    assert next(stream) == "b"
    assert not stream.closed
    with pytest.raises(StopIteration if error is None else Exception):
        next(stream)
    assert stream.closed and response.closed and chunks.closed
    assert repr(stream) == "<ChatStream Echo 'm1' closed, 2 chunks>"


def test_close_closes_the_chunk_source_first() -> None:
    """close() closes the chunk iterator (the decoding chain) and the response."""
    chunks = Chunks(["a", "b"])
    stream, response = stream_of(chunks)
    assert repr(stream) == "<ChatStream Echo 'm1' open, 0 chunks>"
    next(stream)
    stream.close()
    assert chunks.closed and response.closed
    assert list(stream) == []


def test_an_error_keeps_its_own_partial_text() -> None:
    """An error raised with partial text keeps it (the stream's is filled in only
    where an error has none: see the in-band error tests through a client)."""
    stream, _ = stream_of(Chunks(["a"], APIError("x", partial_text="own")))
    with pytest.raises(APIError) as caught:
        list(stream)
    assert caught.value.partial_text == "own"


def test_times_are_measured_from_the_start_given() -> None:
    """time_to_first_chunk and elapsed count from ``started``, and the first
    chunk's time stays what it was when later chunks come."""
    began = time.monotonic()
    stream, _ = stream_of(Chunks(["a", "b"]), started=began - 100)
    next(stream)
    first = stream.time_to_first_chunk
    assert first is not None
    assert 100 <= first <= 100 + time.monotonic() - began
    reply = stream.until_done()
    assert stream.time_to_first_chunk == first == reply.time_to_first_chunk
    assert 100 <= reply.elapsed <= 100 + time.monotonic() - began
    assert reply.elapsed >= first


def test_times_without_a_start_count_from_the_stream() -> None:
    """Without ``started``, the times count from the stream's creation."""
    began = time.monotonic()
    stream, _ = stream_of(Chunks(["a"]))
    reply = stream.until_done()
    took = time.monotonic() - began
    assert reply.time_to_first_chunk is not None
    assert 0 <= reply.time_to_first_chunk <= reply.elapsed <= took
    assert (reply.attempts, stream.attempts) == (1, 1)


def test_a_response_has_defaults_and_is_its_text() -> None:
    """ChatResponse: one attempt, no first-chunk time, zero elapsed; str is text."""
    reply = ChatResponse("hello", "Echo", "m1")
    assert (reply.attempts, reply.time_to_first_chunk, reply.elapsed) == (1, None, 0.0)
    assert str(reply) == "hello"


def test_a_stream_whose_construction_failed_is_finalized_quietly() -> None:
    """A ChatStream whose __init__ never ran has nothing to close at collection."""
    with pytest.raises(TypeError):
        ChatStream(Response(), iter([]))  # type: ignore[arg-type, call-arg]
    gc.collect()


class Paused:
    """A source whose second chunk waits for ``go``: the reading thread is then
    inside next() while the test acts; records its own end and close."""

    def __init__(self) -> None:
        import threading

        self.go = threading.Event()
        self.waiting = threading.Event()
        self.finished = False
        self.closed = False
        self.gen = self._chunks()

    def _chunks(self) -> Iterator[str]:
        try:
            yield "a"
            self.waiting.set()
            self.go.wait(5.0)
            yield "b"
            self.go.wait(5.0)
        finally:
            self.finished = True

    def __iter__(self) -> Iterator[str]:
        return self.gen

    def abort(self) -> None:
        self.go.set()  # what shutting the socket down does to a blocked read

    def close(self) -> None:
        self.closed = True


def test_a_chunk_read_while_another_thread_closes_is_kept_and_all_is_released() -> None:
    """close() from another thread while this one reads: the chunk that was
    arriving is kept in .text, the loop ends quietly, and the reading thread
    then closes the source (its generator and the source itself)."""
    import threading

    source = Paused()
    stream = ChatStream(source, provider="P", model="m", host="h")
    assert next(stream) == "a"
    rest: list[Any] = []
    reader = threading.Thread(target=lambda: rest.extend(stream))
    reader.start()
    assert source.waiting.wait(5.0)
    stream.close()  # the generator is executing: close() wakes it instead
    reader.join(5.0)
    assert rest == [] and stream.text == "ab"
    assert source.finished and source.closed


def test_an_error_while_closed_from_another_thread_ends_quietly() -> None:
    """A read that fails because another thread closed the stream ends the
    loop quietly and releases the source, whatever the error's kind."""
    import threading

    for error in (ConnectionResetError("reset"), APIError("cut")):
        source = Paused()

        def failing(source: Paused = source, error: Exception = error) -> Iterator[str]:
            yield "a"
            source.waiting.set()
            source.go.wait(5.0)
            raise error

        source.gen = failing()
        stream = ChatStream(source, provider="P", model="m", host="h")
        assert next(stream) == "a"
        outcome: list[Any] = []

        def read(stream: ChatStream = stream, outcome: list[Any] = outcome) -> None:
            try:
                outcome.extend(stream)
            except BaseException as exc:
                outcome.append(exc)

        reader = threading.Thread(target=read)
        reader.start()
        assert source.waiting.wait(5.0)
        stream.close()
        reader.join(5.0)
        assert outcome == [] and source.closed


def test_a_decoder_failure_is_cut_to_300_characters() -> None:
    """A decoder's own failure becomes a format error whose text is bounded."""
    chunks = Chunks(["a"], error=ValueError("x" * 1000))
    stream, _ = stream_of(chunks)
    with pytest.raises(APIError) as caught:
        list(stream)
    assert len(caught.value.message) == 300


def test_an_interrupt_while_reading_closes_the_stream() -> None:
    """Ctrl-C inside a read closes the stream and goes on up as it is."""
    chunks = Chunks(["a"], error=KeyboardInterrupt())
    stream, response = stream_of(chunks)
    with pytest.raises(KeyboardInterrupt):
        list(stream)
    assert stream.closed and response.closed


def test_a_str_subclass_from_a_decoder_is_text() -> None:
    """A decoder may yield a str subclass; it is the answer's text, as str."""

    class Piece(str):
        pass

    stream, _ = stream_of(Chunks([Piece("he"), "llo"]))
    assert list(stream) == ["he", "llo"] and stream.text == "hello"
    assert type(stream.text) is str


def test_a_chunk_that_is_neither_text_nor_an_event_is_a_type_error_that_closes() -> (
    None
):
    """A provider's decoder yielding something else is the provider's bug: a
    TypeError naming it, and the stream and its response closed."""
    stream, response = stream_of(Chunks(["a", 3]))  # type: ignore[list-item]
    assert next(stream) == "a"
    with pytest.raises(TypeError, match=r"Echo\.iter_text yielded int, not str"):
        next(stream)
    assert stream.closed and response.closed


def test_the_end_hook_runs_once_when_the_reply_is_read_to_its_end() -> None:
    """when_ended()'s callback runs as the loop over the stream ends, once,
    and never for a stream closed early."""
    from chatproviders._streams.chat_stream import when_ended

    ended: list[str] = []
    stream, _ = stream_of(Chunks(["a", "b"]))
    when_ended(stream, lambda s: ended.append(s.text))
    assert list(stream) == ["a", "b"]
    assert ended == ["ab"]
    assert list(stream) == [] and ended == ["ab"]

    early, _ = stream_of(Chunks(["a", "b"]))
    when_ended(early, lambda s: ended.append("early"))
    assert next(early) == "a"
    early.close()
    assert list(early) == [] and ended == ["ab"]
