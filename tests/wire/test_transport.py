"""Streaming at the byte level, against a socket server on 127.0.0.1."""

from __future__ import annotations

import contextlib
import gc
import gzip
import socket
import threading
import time
from collections.abc import Iterator
from typing import Optional

import pytest
import requests
import responses
import urllib3.exceptions

from chatproviders import (
    Acytoo,
    APIConnectionError,
    APIError,
    APITimeoutError,
    BadRequestError,
    CodeLinkAva,
    Cromicle,
    IncompleteStreamError,
    ResponseFormatError,
)
from chatproviders._constants import (
    ERROR_BODY_EXCERPT,
    ERROR_BODY_LIMIT,
    FINISH_LIMIT,
)
from chatproviders._wire import exchange as _exchange
from chatproviders._wire import transport as _transport
from tests.constants import HI
from tests.loopback import WAIT, Conn, LoopbackServer

FRAMINGS = ["chunked", "length", "close"]


def sse(*texts: str) -> bytes:
    events = [
        b'data: {"choices": [{"delta": {"content": %s}}]}\n\n'
        % (b'"' + t.encode() + b'"')
        for t in texts
    ]
    return b"".join(events) + b"data: [DONE]\n\n"


@pytest.mark.parametrize("framing", FRAMINGS)
def test_each_token_arrives_before_the_next_is_sent(framing: str) -> None:
    """Under every framing a token reaches the caller while the server waits."""
    tokens = [b"one ", b"two ", b"three"]
    received = [threading.Event() for _ in tokens]
    late: list[int] = []

    def handler(conn: Conn) -> None:
        conn.read_request()
        length = sum(map(len, tokens))
        conn.send_head(framing=framing, length=length)
        for index, token in enumerate(tokens):
            conn.send(token)
            if not received[index].wait(WAIT):
                late.append(index)
        conn.end()

    with LoopbackServer(handler) as server, Cromicle(base_url=server.url) as client:
        with client.stream(HI) as stream:
            for index, chunk in enumerate(stream):
                assert chunk == tokens[index].decode()
                received[index].set()
        assert stream.text == "one two three"
    assert late == []


@pytest.mark.parametrize("framing", FRAMINGS)
def test_sse_events_arrive_before_the_next_is_sent(framing: str) -> None:
    """CodeLinkAva hands each event over while the server waits for it."""
    events = [sse("a")[: -len(b"data: [DONE]\n\n")], sse("b")]
    received = [threading.Event() for _ in events]
    late: list[int] = []

    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.send_head(framing=framing, length=sum(map(len, events)))
        for index, event in enumerate(events):
            conn.send(event)
            if not received[index].wait(WAIT):
                late.append(index)
        with contextlib.suppress(OSError):  # the client may hang up after [DONE]
            conn.end()

    with LoopbackServer(handler) as server:
        with CodeLinkAva(base_url=server.url).stream(HI) as stream:
            for index, chunk in enumerate(stream):
                assert chunk == "ab"[index]
                received[index].set()
    assert late == []


CHARS = "é€😀"  # two, three and four bytes in UTF-8
BODY = ("ok " + CHARS + " done").encode()


@pytest.mark.parametrize("split", range(1, len(BODY)))
def test_a_character_split_at_any_byte_comes_out_whole(split: int) -> None:
    """A UTF-8 character cut across two network writes is decoded whole."""
    sent = threading.Event()

    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.send_head(framing="close")
        conn.send(BODY[:split])
        sent.wait(WAIT)
        conn.send(BODY[split:])
        conn.end()

    with LoopbackServer(handler) as server, Cromicle(base_url=server.url) as client:
        with client.stream(HI) as stream:
            first = next(stream)
            sent.set()
            rest = "".join(stream)
    assert first + rest == BODY.decode()
    assert "\ufffd" not in first + rest


def test_invalid_bytes_become_replacement_characters() -> None:
    """Bytes that are not UTF-8 turn into U+FFFD instead of an exception."""

    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.respond(200, b"a\xffb")

    with LoopbackServer(handler) as server:
        assert Cromicle(base_url=server.url).complete(HI).text == "a\ufffdb"


@pytest.mark.parametrize("split", range(1, len(sse("x", "y"))))
def test_crlf_sse_split_anywhere_gives_the_same_text(
    split: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CRLF-delimited SSE cut across two reads anywhere decodes the same."""
    body = sse("x", "y").replace(b"\n", b"\r\n")
    first_read = threading.Event()

    class SignallingBody(_transport.Body):
        def _read(self) -> Iterator[bytes]:
            for data in super()._read():
                yield data
                first_read.set()

    monkeypatch.setattr(_exchange, "Body", SignallingBody)

    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.send_head(framing="chunked")
        conn.send(body[:split])
        assert first_read.wait(WAIT), "the client never read the first piece"
        conn.send(body[split:])
        with contextlib.suppress(OSError):  # the client may hang up after [DONE]
            conn.end()

    with LoopbackServer(handler) as server:
        with CodeLinkAva(base_url=server.url).stream(HI) as stream:
            assert "".join(stream) == "xy"


@pytest.mark.parametrize("total_timeout", [None, WAIT])  # read_chunked, then read1
def test_a_chunk_cut_short_keeps_its_bytes(total_timeout: Optional[float]) -> None:
    """The bytes of an HTTP chunk that never completes are part of the partial
    text, whichever way the body is read."""

    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.send_head(framing="chunked")
        conn.send(b"hello ")
        conn.sock.sendall(b"20\r\npartial")  # 7 of the 32 bytes announced
        conn.sock.shutdown(socket.SHUT_RDWR)

    with LoopbackServer(handler) as server:
        client = Cromicle(base_url=server.url, total_timeout=total_timeout)
        with pytest.raises(IncompleteStreamError) as caught:
            client.complete(HI)
    assert caught.value.partial_text == "hello partial"


def test_reset_mid_body_raises_incomplete_stream_with_partial_text() -> None:
    """A TCP reset after some text raises IncompleteStreamError keeping that text."""
    got_first = threading.Event()

    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.send_head(framing="chunked")
        conn.send(b"partial ")
        got_first.wait(WAIT)
        conn.reset()

    with LoopbackServer(handler) as server:
        with Acytoo(base_url=server.url).stream(HI) as stream:
            assert next(stream) == "partial "
            got_first.set()
            with pytest.raises(IncompleteStreamError) as caught:
                next(stream)
    assert caught.value.partial_text == "partial "
    assert caught.value.provider == "Acytoo"
    assert caught.value.host == server.host
    assert caught.value.__cause__ is not None


def test_content_length_body_cut_short_is_incomplete() -> None:
    """A body shorter than its Content-Length is an incomplete stream."""

    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.send_head(framing="length", length=100)
        conn.send(b"only this")

    with LoopbackServer(handler) as server:
        with pytest.raises(IncompleteStreamError) as caught:
            Cromicle(base_url=server.url).complete(HI)
    assert caught.value.partial_text == "only this"


def test_stall_after_headers_fires_the_read_timeout() -> None:
    """A server that goes quiet after its headers gives APITimeoutError('read')."""
    released = threading.Event()

    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.send_head(framing="chunked")
        released.wait(WAIT)

    with LoopbackServer(handler) as server:
        client = Cromicle(base_url=server.url, timeout=(WAIT, 0.2))
        with pytest.raises(APITimeoutError) as caught:
            client.stream(HI)
        released.set()
    assert caught.value.limit == "read"
    assert "read timeout" in str(caught.value)


def test_sse_stream_without_done_is_incomplete() -> None:
    """CodeLinkAva's stream closing before [DONE] raises with the partial text."""

    def handler(conn: Conn) -> None:
        conn.read_request()
        body = sse("par", "tial")[: -len(b"data: [DONE]\n\n")]
        conn.respond(200, body, "text/event-stream")

    with LoopbackServer(handler) as server:
        with pytest.raises(IncompleteStreamError) as caught:
            CodeLinkAva(base_url=server.url).complete(HI)
    assert caught.value.partial_text == "partial"
    assert "[DONE]" in str(caught.value)


@pytest.mark.parametrize(
    ("body", "error", "message"),
    [
        (b"data: not json\n\n", ResponseFormatError, "not JSON"),
        (b'data: {"error": {"message": "model overloaded"}}\n\n', APIError,
         "model overloaded"),
        (b"data: [1, 2]\n\n", ResponseFormatError, "not a JSON object"),
        (b"data: " + b"[" * 100_000 + b"\n\n", ResponseFormatError, "not JSON"),
    ],
)  # fmt: skip
def test_bad_sse_events_raise_clear_errors(
    body: bytes, error: type[APIError], message: str
) -> None:
    """A non-JSON event or an in-band error names the provider and the problem."""

    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.respond(200, body, "text/event-stream")

    with LoopbackServer(handler) as server, pytest.raises(APIError) as caught:
        CodeLinkAva(base_url=server.url).complete(HI)
    assert type(caught.value) is error
    assert message in str(caught.value)
    assert str(caught.value).startswith(f"CodeLinkAva at {server.host}: ")


def test_html_body_with_status_200_is_refused() -> None:
    """A bot-wall page sent as text/html with 200 is an error, not the reply."""

    def handler(conn: Conn) -> None:
        conn.read_request()
        page = b"<!DOCTYPE html><html><title>Just a moment</title></html>"
        conn.respond(200, page, content_type="text/html")

    with LoopbackServer(handler) as server:
        with pytest.raises(ResponseFormatError, match="HTML page"):
            Cromicle(base_url=server.url).complete(HI)


def keep_alive_handler(conn: Conn) -> None:
    """Answer requests on one connection until the client closes it."""
    while conn.read_request() is not None:
        conn.send_head(framing="chunked")
        conn.send(b"hello")
        conn.end()


def test_a_finished_stream_returns_its_connection_to_the_pool() -> None:
    """Two replies read to the end travel over one TCP connection."""
    with LoopbackServer(keep_alive_handler) as server:
        with Cromicle(base_url=server.url) as client:
            assert client.complete(HI).text == "hello"
            with client.stream(HI) as stream:
                assert "".join(stream) == "hello"
            assert client.complete(HI).text == "hello"
    assert server.accepted == 1


SSE = [("Content-Type", "text/event-stream")]


@pytest.mark.parametrize("framing", ["chunked", "length"])
def test_an_sse_reply_read_to_done_returns_its_connection_to_the_pool(
    framing: str,
) -> None:
    """After data: [DONE] the rest of the body (the chunked terminator) is read,
    so that the next request reuses the connection."""
    body = sse("hel", "lo")

    def handler(conn: Conn) -> None:
        while conn.read_request() is not None:
            conn.send_head(headers=SSE, framing=framing, length=len(body))
            if framing == "chunked":  # [DONE] and the terminator in one write
                body_and_end = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
                conn.sock.sendall(body_and_end)
            else:
                conn.send(body)

    with LoopbackServer(handler) as server:
        with CodeLinkAva(base_url=server.url) as client:
            assert client.complete(HI).text == "hello"
            with client.stream(HI) as stream:
                assert "".join(stream) == "hello"
            assert client.complete(HI).text == "hello"
    assert server.accepted == 1


@pytest.mark.parametrize("after_done", [b"", b": ping\n\n" * 10_000])
def test_a_body_going_on_after_done_is_given_up_soon(after_done: bytes) -> None:
    """A server that never ends the body after [DONE] (silent, or talking on)
    does not hold the stream open: it ends and hangs up long before the read
    timeout, which is longer than the server's wait here."""
    hung_up = threading.Event()

    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.send_head(headers=SSE, framing="chunked")
        conn.send(sse("hi"))
        if after_done:
            conn.send(after_done)
        if conn.wait_closed_by_client():
            hung_up.set()

    with LoopbackServer(handler) as server:
        client = CodeLinkAva(base_url=server.url, timeout=(WAIT, 10 * WAIT))
        with client, client.stream(HI) as stream:
            assert "".join(stream) == "hi"
        assert hung_up.wait(WAIT)


def hold_open_handler(conn: Conn) -> None:
    """Send one piece, then wait for the client to close the connection."""
    conn.read_request()
    conn.send_head(framing="chunked")
    conn.send(b"first")
    assert conn.wait_closed_by_client(), "the client never closed the connection"


def test_until_done_after_an_early_close_raises_with_the_text_so_far() -> None:
    """A stream closed before its end cannot be completed: no truncated reply
    comes back looking whole."""
    with LoopbackServer(hold_open_handler) as server:
        with Cromicle(base_url=server.url) as client:
            stream = client.stream(HI)
            stream.close()
            with pytest.raises(IncompleteStreamError, match="closed before") as caught:
                stream.until_done()
    assert caught.value.partial_text == "first"
    assert caught.value.provider == "Cromicle"


@pytest.mark.parametrize("how", ["break", "close", "with", "gc", "error"])
def test_stopping_early_closes_the_connection(how: str) -> None:
    """break, close(), leaving with, garbage collection and an error all hang up."""
    with LoopbackServer(hold_open_handler) as server:
        client = Cromicle(base_url=server.url)
        if how == "break":
            for _ in client.stream(HI):
                break
        elif how == "close":
            stream = client.stream(HI)
            next(stream)
            stream.close()
            stream.close()  # idempotent
        elif how == "with":
            with client.stream(HI) as stream:
                next(stream)
        elif how == "gc":
            next(client.stream(HI))
            gc.collect()
        else:
            with pytest.raises(RuntimeError), client.stream(HI) as stream:
                next(stream)
                raise RuntimeError("consumer failed")
        # the handler asserts that it saw the close; stop() joins it
    assert server.errors == []


@pytest.mark.parametrize("how", ["environment", "argument"])
def test_proxies_carry_the_request(how: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTP_PROXY works as in requests, and proxy= overrides it; both are used."""
    seen: list[str] = []

    def proxy(conn: Conn) -> None:
        request = conn.read_request()
        assert request is not None
        seen.append(request.path)
        conn.respond(200, b"via the proxy")

    for name in ("NO_PROXY", "no_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    with LoopbackServer(proxy) as server:
        if how == "environment":
            monkeypatch.setenv("HTTP_PROXY", server.url)
            client = Cromicle(base_url="http://chat.example.invalid")
        else:
            monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # would fail
            client = Cromicle(base_url="http://chat.example.invalid", proxy=server.url)
        assert client.complete(HI).text == "via the proxy"
    assert seen == ["http://chat.example.invalid/chat"]


# -- The limits of reading a body, from the wire: the caps on draining after
# [DONE] and on reading an error body, read versus total timeouts, and closing
# on a failure mid-stream.

SSE = [("Content-Type", "text/event-stream")]


def chunk(data: bytes) -> bytes:
    """``data`` as one HTTP chunk."""
    return b"%x\r\n%s\r\n" % (len(data), data)


def sse(*pieces: str) -> bytes:
    events = [b'data: {"choices": [{"delta": {"content": "%s"}}]}\n\n' % p.encode()
              for p in pieces]  # fmt: skip
    return b"".join(events) + b"data: [DONE]\n\n"


@pytest.fixture
def gc_off() -> Iterator[None]:
    """No garbage collection: a stream must close itself, not be collected closed."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@pytest.mark.parametrize(
    ("after_done", "connections"),
    [(b": ping\n\n", 1), (b":" + b"x" * FINISH_LIMIT + b"\n\n", 2)],
)
def test_draining_after_done_stops_at_its_byte_limit(
    after_done: bytes, connections: int
) -> None:
    """A little after [DONE] is read to the terminator and the connection reused;
    more than FINISH_LIMIT bytes is not read on, so the connection is dropped."""

    def handler(conn: Conn) -> None:
        while conn.read_request() is not None:
            conn.send_head(headers=SSE, framing="chunked")
            conn.sock.sendall(chunk(sse("hi")) + chunk(after_done) + b"0\r\n\r\n")

    with LoopbackServer(handler) as server:
        with CodeLinkAva(base_url=server.url) as client:
            assert client.complete(HI).text == "hi"
            assert client.complete(HI).text == "hi"
    assert server.accepted == connections


@pytest.mark.parametrize("framing", ["chunked", "length"])
def test_draining_after_done_gives_up_long_before_the_read_timeout(
    framing: str,
) -> None:
    """A server that says nothing after [DONE] does not hold complete() for the
    read timeout: it returns, and hangs up, within the short drain wait."""
    body = sse("hi")
    hung_up = threading.Event()

    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.send_head(headers=SSE, framing=framing, length=len(body) + 10)
        conn.send(body)  # a length body 10 bytes short: it never ends
        if conn.wait_closed_by_client():
            hung_up.set()

    with LoopbackServer(handler) as server:
        client = CodeLinkAva(base_url=server.url, timeout=(WAIT, 100 * WAIT))
        done = threading.Event()
        thread = threading.Thread(target=lambda: (client.complete(HI), done.set()))
        thread.start()
        assert hung_up.wait(WAIT)
        thread.join(WAIT)
        assert done.is_set()
        client.close()


@pytest.mark.parametrize("beyond", [b" try again in 7 s", b""])
def test_an_error_body_is_read_up_to_its_limit_and_no_further(beyond: bytes) -> None:
    """A huge error body that never ends: the error comes at once, from the first
    ERROR_BODY_LIMIT bytes only (a hint beyond them is not read)."""
    body = b"x" * ERROR_BODY_LIMIT + beyond
    hung_up = threading.Event()

    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.send_head(400, framing="chunked")
        conn.send(body)  # and no end
        if conn.wait_closed_by_client():
            hung_up.set()

    with LoopbackServer(handler) as server:
        client = Cromicle(base_url=server.url, timeout=(WAIT, 100 * WAIT))
        with client, pytest.raises(BadRequestError) as caught:
            client.complete(HI)
        assert hung_up.wait(WAIT)
    assert caught.value.retry_after is None
    assert caught.value.body == "x" * ERROR_BODY_EXCERPT


def test_an_error_body_within_the_limit_is_read_whole() -> None:
    """A hint at the end of an error body under the limit is found."""
    body = b"x" * (ERROR_BODY_LIMIT - 100) + b" try again in 7 s"

    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.send_head(400, framing="chunked")
        for start in range(0, len(body), 1000):
            conn.send(body[start : start + 1000])
        conn.end()

    with LoopbackServer(handler) as server:
        with Cromicle(base_url=server.url) as client:
            with pytest.raises(BadRequestError) as caught:
                client.complete(HI)
    assert caught.value.retry_after == 7.0


def stall_after_first(conn: Conn, framing: str) -> None:
    """Send one piece of the body, then nothing until the client hangs up."""
    conn.read_request()
    conn.send_head(framing=framing, length=100)
    conn.send(b"first")
    conn.wait_closed_by_client()


@pytest.mark.parametrize("framing", ["chunked", "length", "close"])
@pytest.mark.parametrize("total_timeout", [None, 100 * WAIT])
def test_a_stalled_body_without_a_binding_deadline_is_a_read_timeout(
    framing: str, total_timeout: float
) -> None:
    """With no total_timeout, or one far off, a stall is the read timeout's."""
    with LoopbackServer(lambda conn: stall_after_first(conn, framing)) as server:
        client = Cromicle(
            base_url=server.url, timeout=(WAIT, 0.2), total_timeout=total_timeout
        )
        with client, client.stream(HI) as stream:
            assert next(stream) == "first"
            with pytest.raises(APITimeoutError) as caught:
                next(stream)
    assert caught.value.limit == "read"
    assert caught.value.partial_text == "first"


@pytest.mark.parametrize("framing", ["chunked", "length", "close"])
def test_a_stalled_body_past_the_total_timeout_is_a_total_timeout(
    framing: str,
) -> None:
    """With total_timeout sooner than the read timeout, a stall is the total's."""
    with LoopbackServer(lambda conn: stall_after_first(conn, framing)) as server:
        client = Cromicle(base_url=server.url, timeout=WAIT * 100, total_timeout=0.3)
        with client, client.stream(HI) as stream:
            assert next(stream) == "first"
            with pytest.raises(APITimeoutError) as caught:
                next(stream)
    assert caught.value.limit == "total"


@pytest.mark.usefixtures("gc_off")
def test_an_error_event_mid_stream_hangs_up_at_once() -> None:
    """An error in the stream closes the connection before the stream is dropped."""
    hung_up = threading.Event()

    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.send_head(headers=SSE, framing="chunked")
        conn.send(b'data: {"choices": [{"delta": {"content": "par"}}]}\n\n')
        conn.send(b'data: {"error": {"message": "overloaded"}}\n\n')
        if conn.wait_closed_by_client():
            hung_up.set()

    with LoopbackServer(handler) as server:
        client = CodeLinkAva(base_url=server.url)
        stream = client.stream(HI)
        assert next(stream) == "par"
        with pytest.raises(APIError, match="overloaded") as caught:
            next(stream)
        assert hung_up.wait(WAIT)
        assert stream.closed
        assert list(stream) == []
        client.close()
    assert type(caught.value) is APIError
    assert caught.value.partial_text == "par"
    assert caught.value.provider == "CodeLinkAva"
    assert caught.value.host == server.host


@pytest.mark.usefixtures("gc_off")
def test_a_connection_broken_mid_stream_closes_the_stream() -> None:
    """A reset mid-body is an IncompleteStreamError and leaves the stream closed."""

    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.send_head(framing="chunked")
        conn.send(b"par")
        conn.sock.sendall(b"10\r\nonly")  # a chunk cut short
        conn.reset()

    with LoopbackServer(handler) as server:
        client = Cromicle(base_url=server.url)
        stream = client.stream(HI)
        assert next(stream) == "par"
        with pytest.raises(IncompleteStreamError) as caught:
            list(stream)
        assert stream.closed
        assert stream.response.raw.closed
        client.close()
    assert caught.value.partial_text.startswith("par")
    assert caught.value.provider == "Cromicle"


def test_draining_exactly_the_byte_limit_still_reuses_the_connection() -> None:
    """FINISH_LIMIT bytes after [DONE] are within the limit: read on to the end."""
    after_done = b":" + b"x" * (FINISH_LIMIT - 3) + b"\n\n"
    assert len(after_done) == FINISH_LIMIT

    def handler(conn: Conn) -> None:
        while conn.read_request() is not None:
            conn.send_head(headers=SSE, framing="chunked")
            conn.sock.sendall(chunk(sse("hi")) + chunk(after_done) + b"0\r\n\r\n")

    with LoopbackServer(handler) as server:
        with CodeLinkAva(base_url=server.url) as client:
            assert client.complete(HI).text == "hi"
            assert client.complete(HI).text == "hi"
    assert server.accepted == 1


@pytest.mark.parametrize("framing", ["chunked", "length"])
def test_a_gzip_body_is_decoded(framing: str) -> None:
    """A reply sent with Content-Encoding: gzip arrives as its text."""
    body = gzip.compress("héllo wörld".encode())

    def handler(conn: Conn) -> None:
        conn.read_request()
        head = [("Content-Type", "text/plain"), ("Content-Encoding", "gzip")]
        conn.send_head(200, head, framing=framing, length=len(body))
        conn.send(body)
        conn.end()

    with LoopbackServer(handler) as server, Cromicle(base_url=server.url) as client:
        assert client.complete(HI).text == "héllo wörld"


def test_a_body_that_cannot_be_decoded_is_a_format_error() -> None:
    """A body declared gzip that is not: ResponseFormatError, not a raw traceback."""

    def handler(conn: Conn) -> None:
        conn.read_request()
        head = [("Content-Type", "text/plain"), ("Content-Encoding", "gzip")]
        conn.send_head(200, head, framing="chunked")
        # with the end, in one write: the client hangs up at the bad bytes
        conn.sock.sendall(chunk(b"this is not gzip at all") + b"0\r\n\r\n")

    with LoopbackServer(handler) as server, Cromicle(base_url=server.url) as client:
        with pytest.raises(ResponseFormatError, match="could not decode the body"):
            client.complete(HI)


@pytest.mark.parametrize(
    ("body", "shown"),
    [(b"bad \xff byte", "bad \ufffd byte"), (b"y" * 1000, "y" * 200)],
)
def test_an_error_body_is_summed_up_as_text(body: bytes, shown: str) -> None:
    """An error body's bytes that are not UTF-8 are replaced; its summary in the
    message is cut at 200 characters."""

    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.respond(400, body)

    with LoopbackServer(handler) as server, Cromicle(base_url=server.url) as client:
        with pytest.raises(BadRequestError) as caught:
            client.complete(HI)
    assert str(caught.value).endswith(f"answered 400 Bad Request: {shown}")


@responses.activate
def test_a_connect_timeout_says_so() -> None:
    """A connect timeout is an APITimeoutError whose message names it."""
    responses.post("http://127.0.0.1:9/chat", body=requests.ConnectTimeout("slow"))
    with pytest.raises(APITimeoutError) as caught:
        Cromicle(base_url="http://127.0.0.1:9", max_retries=0).complete(HI)
    assert caught.value.limit == "connect"
    assert "connect timeout: no connection within the connect timeout" in str(
        caught.value
    )


@responses.activate
def test_a_connection_error_names_its_innermost_reason() -> None:
    """The message names the reason urllib3 wrapped (its ``reason``), and a
    cycle of causes does not hang the search for it."""
    inner = OSError("no route to the moon")
    wrapped = urllib3.exceptions.MaxRetryError(None, "/chat", reason=inner)  # type: ignore[arg-type]
    outer = requests.ConnectionError(wrapped)
    inner.__cause__ = outer  # a cycle
    responses.post("http://127.0.0.1:9/chat", body=outer)
    with pytest.raises(APIConnectionError) as caught:
        Cromicle(base_url="http://127.0.0.1:9", max_retries=0).complete(HI)
    assert str(caught.value).endswith(
        "connection failed (OSError: no route to the moon)"
    )


@pytest.mark.slow
def test_a_stall_after_a_trickle_still_ends_at_the_deadline() -> None:
    """Reads after a trickle wait only for what is left of total_timeout, not for
    a socket timeout set when the request went out: the call hangs up soon after
    the trickle stops, not a whole total_timeout later."""
    gaps: list[float] = []
    pace = threading.Event()  # never set: its wait is the trickle's pace

    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.send_head(framing="chunked")
        began = time.monotonic()
        while time.monotonic() - began < 0.8:
            conn.send(b".")
            pace.wait(0.02)
        stopped = time.monotonic()
        conn.wait_closed_by_client()
        gaps.append(time.monotonic() - stopped)

    with LoopbackServer(handler) as server:
        client = Cromicle(base_url=server.url, timeout=(WAIT, WAIT), total_timeout=1.0)
        with client, pytest.raises(APITimeoutError) as caught:
            client.complete(HI)
    assert caught.value.limit == "total"
    assert gaps[0] < 0.6  # about 0.2 s; a read waiting its first timeout: 1 s


def _status(status: int, headers: dict[str, str]) -> str:
    import requests

    from chatproviders._wire.transport import status_error

    response = requests.Response()
    response.status_code = status
    response.reason = "Why"
    response.headers.update(headers)
    return status_error(response, b"").message


def test_each_kind_of_status_gets_its_own_words() -> None:
    """A 3xx names its Location (or says it has none); a 2xx that is not the
    protocol's 200 is not a reply; a 4xx is its status."""
    assert (
        _status(300, {})
        == "answered 300 Why, a redirect without a Location (not followed)"
    )
    assert _status(399, {"Location": "/x"}) == (
        "answered 399 Why, a redirect to '/x' (not followed)"
    )
    assert _status(204, {}) == "answered 204 Why, not a reply"
    assert _status(299, {}) == "answered 299 Why, not a reply"
    assert _status(400, {}) == "answered 400 Why"


def test_a_page_is_refused_as_soon_as_its_title_is_in() -> None:
    """The client reads a page only up to its title: a server that then stalls
    does not hold the call until the read timeout."""
    release = threading.Event()

    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.send_head(headers=[("Content-Type", "text/html")], framing="chunked")
        conn.send(b"<html><head><title>Wall</title>")
        release.wait(WAIT)

    with LoopbackServer(handler) as server:
        client = Cromicle(base_url=server.url, timeout=(WAIT, 1.0))
        with pytest.raises(ResponseFormatError, match="titled 'Wall'"):
            client.complete(HI)
        release.set()
