"""Faults found by trying the client as an adversary would: connection reuse,
deadlines in every phase, closing from another thread, statuses that are not
replies, redirects, credentials in text, HTML sniffing, and small ones."""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import threading
import zlib
from pathlib import Path
from typing import Any, Callable, Optional

import pytest

import chatproviders
from chatproviders import (
    Acytoo,
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    CodeLinkAva,
    Cromicle,
    FallbackProvider,
    IncompleteStreamError,
    OpenAICompatible,
    ResponseFormatError,
)
from chatproviders._streams import chat_stream as _streaming
from chatproviders._wire.retry import is_retryable
from chatproviders.testing import serve
from tests.constants import HI
from tests.loopback import WAIT, Conn, LoopbackServer

#: The folder of the chatproviders under test, for subprocesses.
ROOT = str(Path(chatproviders.__file__).resolve().parent.parent)
TRICKLE = 0.05  # the pace of a trickling server, not a synchronization
EMPTY_DEFLATE_BLOCK = b"\x00\x00\x00\xff\xff"  # stored, not final, no bytes


# -- 1. streamed replies give their connection back, whatever the read split --


@pytest.mark.parametrize("chunk_size", [None, 1, 3])
@pytest.mark.parametrize("provider", ["openai", "codelinkava"])
def test_sequential_sse_streams_reuse_one_connection(
    provider: str, chunk_size: Optional[int]
) -> None:
    """20 streamed SSE replies, chunked, one event per write, travel over one
    keep-alive connection; background streams too."""
    with serve(provider, text="Hello there, friend", chunk_size=chunk_size) as server:
        if provider == "openai":
            client: Any = OpenAICompatible(server.url, model="gpt-4o-mini")
        else:
            client = CodeLinkAva(server.url)
        for _ in range(20):
            with client.stream(HI) as stream:
                assert "".join(stream) == "Hello there, friend"
        for _ in range(3):
            with client.stream_in_background(HI) as background:
                assert "".join(background) == "Hello there, friend"
        assert server.connections == 1


# -- 2. total_timeout bounds every phase of the exchange ----------------------


def _trickle(conn: Conn, data: bytes, hung_up: threading.Event) -> None:
    """Send ``data`` a byte at a time until the client hangs up (or WAIT*2)."""
    for index in range(len(data)):
        if hung_up.wait(TRICKLE) or index * TRICKLE > 2 * WAIT:
            return
        conn.sock.sendall(data[index : index + 1])


def _head(*lines: str) -> bytes:
    return ("\r\n".join(["HTTP/1.1 200 OK", *lines]) + "\r\n\r\n").encode()


def _deflate_trickle(conn: Conn, hung_up: threading.Event) -> None:
    """A gzip body that sends an empty deflate block at a time: bytes that
    decode to nothing."""
    conn.sock.sendall(_head("Content-Encoding: gzip", "Transfer-Encoding: chunked"))
    start = zlib.compressobj(wbits=31).compress(b"")  # the gzip header
    while not hung_up.wait(TRICKLE):
        piece, start = start + EMPTY_DEFLATE_BLOCK, b""
        conn.sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))


TRICKLES: dict[str, Callable[[Conn, threading.Event], None]] = {
    "status line": lambda c, h: _trickle(c, _head("Content-Length: 2") + b"ok", h),
    "header value": lambda c, h: (
        c.sock.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: "),
        _trickle(c, b"a" * 400 + b"\r\nContent-Length: 2\r\n\r\nok", h),
    ),
    "header lines": lambda c, h: (
        c.sock.sendall(b"HTTP/1.1 200 OK\r\n"),
        _trickle(c, b"".join(b"X-%d: 1\r\n" % i for i in range(80)), h),
    ),
    "chunk-size line": lambda c, h: (
        c.sock.sendall(_head("Transfer-Encoding: chunked") + b"2\r\nok\r\n"),
        _trickle(c, b"0" * 400 + b"2\r\nok\r\n0\r\n\r\n", h),
    ),
    "trailer": lambda c, h: (
        c.sock.sendall(_head("Transfer-Encoding: chunked") + b"2\r\nok\r\n0\r\n"),
        _trickle(c, b"".join(b"X-T%d: 1\r\n" % i for i in range(80)) + b"\r\n", h),
    ),
    "gzip empty blocks": _deflate_trickle,
}


@pytest.mark.parametrize("phase", sorted(TRICKLES))
def test_total_timeout_bounds_a_trickle_in_every_phase(phase: str) -> None:
    """A server trickling a byte at a time, in any phase of the reply, is cut
    off at total_timeout, named as such; each read alone would have waited on."""
    hung_up = threading.Event()

    def handler(conn: Conn) -> None:
        conn.read_request()
        with contextlib.suppress(OSError):  # cut off: what the test expects
            TRICKLES[phase](conn, hung_up)

    with LoopbackServer(handler) as server:
        client = Cromicle(server.url, timeout=WAIT, total_timeout=0.3, max_retries=0)
        with pytest.raises(APITimeoutError) as caught:
            client.complete(HI)
        hung_up.set()
    assert caught.value.limit == "total"


def test_list_models_keeps_total_timeout() -> None:
    """list_models() is bounded by total_timeout too."""
    hung_up = threading.Event()

    def handler(conn: Conn) -> None:
        conn.read_request()
        with contextlib.suppress(OSError):
            _trickle(
                conn, _head("Content-Length: 20") + b'{"data": [], "x": 1}', hung_up
            )

    with LoopbackServer(handler) as server:
        client = OpenAICompatible(server.url + "/v1", timeout=WAIT, total_timeout=0.3)
        with pytest.raises(APITimeoutError) as caught:
            client.list_models()
        hung_up.set()
    assert caught.value.limit == "total"


# -- 3. close() from another thread -------------------------------------------


def _stalling(first: bytes, release: threading.Event) -> Callable[[Conn], None]:
    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.send_head(framing="chunked")
        conn.send(first)
        release.wait(4 * WAIT)  # stalled until the test ends

    return handler


def _read_in_thread(stream: Any) -> tuple[threading.Thread, list[Any], threading.Event]:
    """Iterate ``stream`` on a thread; its outcome lands in the list."""
    outcome: list[Any] = []
    first = threading.Event()

    def read() -> None:
        try:
            for chunk in stream:
                outcome.append(chunk)
                first.set()
            outcome.append("ended")
        except BaseException as exc:
            outcome.append(exc)
        first.set()

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread, outcome, first


@pytest.mark.parametrize("closer", ["stream", "client"])
def test_close_from_another_thread_wakes_a_stalled_reader(closer: str) -> None:
    """stream.close() or client.close() from another thread, while the reader
    waits on a stalled server: the read returns at once, the reader's loop ends
    quietly, and the server sees the connection close."""
    release = threading.Event()
    conns: list[Conn] = []
    handler = _stalling(b"first ", release)

    def recording(conn: Conn) -> None:
        conns.append(conn)
        handler(conn)

    with LoopbackServer(recording) as server:
        client = Cromicle(server.url, timeout=4 * WAIT)  # a read would wait 20 s
        stream = client.stream(HI)
        thread, outcome, first = _read_in_thread(stream)
        assert first.wait(WAIT)
        closing = threading.Thread(
            target=(stream.close if closer == "stream" else client.close), daemon=True
        )
        closing.start()
        closing.join(WAIT)
        thread.join(WAIT)
        assert not closing.is_alive() and not thread.is_alive()
        assert outcome == ["first ", "ended"]
        assert conns[0].wait_closed_by_client()
        release.set()
    with pytest.raises(IncompleteStreamError):
        stream.until_done()  # closed early: the rest cannot be read


# -- 4. statuses that are not a reply -------------------------------------------


@pytest.mark.parametrize("status", [201, 204, 205, 226, 300, 302, 304])
def test_a_status_that_is_not_the_protocols_reply_is_an_error(status: int) -> None:
    """Anything but 200 is an APIStatusError, never an empty answer."""
    with serve("cromicle") as server:
        server.queue_reply(status=status)
        with pytest.raises(APIStatusError) as caught:
            Cromicle(server.url).complete(HI)
    assert caught.value.status_code == status
    assert caught.value.tries == 1


# -- 5. redirects are not followed ----------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirects_are_named_not_followed(status: int) -> None:
    """A redirect never takes the prompt or a custom key header elsewhere: the
    error names the Location, and the other host hears nothing."""
    with serve("cromicle") as elsewhere, serve("cromicle") as server:
        target = elsewhere.url + "/chat"
        server.queue_reply(status=status, headers={"Location": target})
        client = Cromicle(server.url, headers={"X-Api-Key": "secret-key-123"})
        with pytest.raises(APIStatusError) as caught:
            client.complete(HI)
        assert elsewhere.requests == []
        assert len(server.requests) == 1
    assert target in str(caught.value) and "not followed" in str(caught.value)


def test_a_tls_failure_is_not_retried(sleeps: list[float]) -> None:
    """A TLS handshake that fails (here: TLS spoken to a plain HTTP server)
    is raised at once, marked permanent, not retried as a connection error."""

    def handler(conn: Conn) -> None:
        conn.sock.recv(65536)
        conn.sock.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    with LoopbackServer(handler) as server:
        client = Cromicle(server.url.replace("http://", "https://"))
        with pytest.raises(APIConnectionError) as caught:
            client.complete(HI)
        assert server.accepted == 1
    assert caught.value.permanent and not is_retryable(caught.value)
    assert sleeps == []
    assert isinstance(ssl.SSLError(), OSError)  # what urllib3 wraps


# -- 6. credentials never show ----------------------------------------------------


SECRET = "sk-abcdefghijklmnopqrstuvwxyz0123456789"


@pytest.mark.parametrize(
    "make",
    [
        lambda: OpenAICompatible("http://user:PASSWORD-LONG@127.0.0.1:9/v1"),
        lambda: OpenAICompatible("http://user:PASS@WORD-LONG@127.0.0.1:9/v1"),
        lambda: Cromicle("http://user:PASS@WORD-LONG@127.0.0.1:9"),
    ],
)
def test_reprs_never_show_a_password(make: Callable[[], Any]) -> None:
    """repr() hides user:password@ whole, an @ in the password included."""
    shown = repr(make())
    assert "PASS" not in shown and "WORD" not in shown
    assert "***@127.0.0.1:9" in shown


@pytest.mark.parametrize(
    "call",
    [
        lambda: Cromicle("http://user:PASS@WORD-LONG@[::1"),
        lambda: Cromicle("http://user:PASS@WORD-LONG@host:99999"),
        lambda: Cromicle(proxy="ftp://user:PASS@WORD-LONG@proxy"),
        lambda: Cromicle(proxy="user:PASS@WORD-LONG@proxy"),
    ],
)
def test_configuration_errors_never_show_a_password(call: Callable[[], Any]) -> None:
    """A bad base_url or proxy is refused without quoting its password."""
    with pytest.raises(ValueError) as caught:
        call()
    assert "PASS" not in str(caught.value) and "WORD" not in str(caught.value)


@pytest.mark.parametrize("cut", [0, 3, 8, 20, len(SECRET) - 1])
def test_an_echoed_key_is_hidden_even_when_the_excerpt_cuts_it(cut: int) -> None:
    """A server that echoes the API key: neither the key nor a start of it of
    8 characters or more shows in str(), .body or .message."""
    filler = "x" * (500 - cut)  # the excerpt keeps 500 characters
    with serve("openai", api_key=SECRET) as server:
        server.queue_reply(status=400, body=f"{filler}{SECRET} is not allowed")
        client = OpenAICompatible(server.url, SECRET, model="gpt-4o-mini")
        with pytest.raises(APIStatusError) as caught:
            client.complete(HI)
    for text in (str(caught.value), caught.value.body, repr(caught.value)):
        for size in range(8, len(SECRET) + 1):
            assert SECRET[:size] not in text


def test_a_short_placeholder_key_is_not_hidden() -> None:
    """api_key="ollama" (what local servers document) is not a secret: text
    that contains the word stays readable."""
    with serve("openai", api_key="ollama") as server:
        server.queue_reply(status=404, body='{"error": {"message": "ollama pull x"}}')
        client = OpenAICompatible(server.url, "ollama", model="gpt-4o-mini")
        with pytest.raises(APIStatusError, match="ollama pull x"):
            client.complete(HI)


def test_a_base_url_password_echoed_by_the_server_is_hidden() -> None:
    """The password of base_url is a secret like an API key."""
    with serve("cromicle") as server:
        url = server.url.replace("http://", "http://user:hunter2-long@")
        server.queue_reply(status=400, body="bad auth user:hunter2-long")
        with pytest.raises(APIStatusError) as caught:
            Cromicle(url).complete(HI)
    assert "hunter2" not in str(caught.value) + caught.value.body


# -- 7. one HTML verdict whatever the read split ------------------------------------


PAGE = (
    "<!DOCTYPE html>\n<html><head><title>Just a moment...</title></head>"
    "<body>" + "challenge " * 50 + "</body></html>"
)


def _untyped(body: bytes, size: int) -> Callable[[Conn], None]:
    """A server sending ``body`` with no Content-Type, ``size`` bytes a write."""

    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.send_head(headers=(), framing="chunked")
        with contextlib.suppress(OSError):  # a page: the client may hang up early
            for start in range(0, len(body), size):
                conn.send(body[start : start + size])
            conn.end()

    return handler


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 4096])
def test_an_untyped_html_page_is_refused_however_it_is_cut(size: int) -> None:
    """A page sent with no Content-Type is refused whatever the read split,
    and the error names its title, for a 200 page too."""
    with LoopbackServer(_untyped(PAGE.encode(), size)) as server:
        with pytest.raises(ResponseFormatError) as caught:
            Cromicle(server.url).complete(HI)
    assert caught.value.html
    assert "titled 'Just a moment...'" in str(caught.value)


@pytest.mark.parametrize("chunk_size", [None, 1, 7])
def test_a_page_declared_text_html_is_refused(chunk_size: Optional[int]) -> None:
    """A 200 reply declared text/html is a page, however it starts."""
    headers = {"Content-Type": "text/html; charset=utf-8"}
    with serve("cromicle", text="Hi", chunk_size=chunk_size, headers=headers) as s:
        with pytest.raises(ResponseFormatError, match="an HTML page") as caught:
            Cromicle(s.url).complete(HI)
    assert caught.value.html


@pytest.mark.parametrize("chunk_size", [None, 1, 3])
def test_html_declared_as_text_is_the_answer(chunk_size: Optional[int]) -> None:
    """A model asked to write a page answers with HTML as text/plain: that is
    the reply, whole, not a bot wall."""
    with serve("cromicle", text=PAGE, chunk_size=chunk_size) as server:
        assert Cromicle(server.url).complete(HI).text == PAGE


@pytest.mark.slow
@pytest.mark.parametrize(
    "body",
    [
        b"<!DOCTYPE   html><title>t</title>",
        b" " * 600 + b"<html>",
        b" " * 500 + b"<html><title>t</title>",
        b"<!doctypehtml>",
        b"<b>bold</b> answer",
        b"  \n Hello",
        b"<",
    ],
)
def test_the_html_verdict_does_not_depend_on_the_read_split(body: bytes) -> None:
    """Every way of cutting a body into reads gives the same verdict."""
    from chatproviders._wire.transport import refuse_html

    verdicts = set()
    for cut in range(len(body) + 1):
        for size in (1, 3, 1000):
            rest = body[cut:]
            parts = [
                body[:cut],
                *(rest[i : i + size] for i in range(0, len(rest), size)),
            ]
            try:
                verdicts.add(b"".join(refuse_html(parts, "")) == body)
            except ResponseFormatError:
                verdicts.add("page")
    assert len(verdicts) == 1 and False not in verdicts


@pytest.mark.parametrize("text", ["<b>bold</b> answer", "  \n Hello", "<3 you", "<"])
@pytest.mark.parametrize("size", [1, 2, 4096])
def test_untyped_text_that_only_starts_like_html_is_a_reply(
    text: str, size: int
) -> None:
    """Replies starting with white space or < that are not pages arrive whole."""
    with LoopbackServer(_untyped(text.encode(), size)) as server:
        assert Cromicle(server.url).complete(HI).text == text


@pytest.mark.parametrize("typed", [False, True])
def test_the_first_chunk_is_not_held_back_by_the_html_check(typed: bool) -> None:
    """A reply whose first byte cannot start a page is handed over at once,
    while the server still waits for the client: with no Content-Type (the
    sniffed case) and with one."""
    got_first = threading.Event()
    headers = [("Content-Type", "text/plain")] if typed else []

    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.send_head(headers=headers, framing="chunked")
        conn.send(b"H")
        assert got_first.wait(WAIT), "the first chunk was held back"
        conn.send(b"ello")
        conn.end()

    with LoopbackServer(handler) as server:
        with Cromicle(server.url).stream(HI) as stream:
            assert next(stream) == "H"
            got_first.set()
            assert "".join(stream) == "ello"


# -- 8 and 9. small ones --------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["?", "#", "?#", "/?", "?a=1"])
def test_a_base_url_with_an_empty_query_or_fragment_is_refused(suffix: str) -> None:
    """A ? or # at the end of base_url would send requests to the wrong path."""
    with pytest.raises(ValueError, match="query or fragment"):
        Cromicle("http://127.0.0.1:9" + suffix)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://h/v1?key=SECRET", "'http://h/v1?...'"),
        ("http://u:pw@h/v1#SECRET", "'http://***@h/v1#...'"),
        ("htp://h/v1?key=SECRET", "'htp://h/v1?...'"),
        ("http://u:p?w@h/v1?key=SECRET", "'http://***@h/v1?...'"),
    ],
)
def test_a_base_url_error_shows_no_query_or_fragment(url: str, shown: str) -> None:
    """A query or fragment may carry a key: a refused base_url is shown up to
    where it starts, and never a password."""
    with pytest.raises(ValueError) as refused:
        OpenAICompatible(url, model="m")
    assert str(refused.value).endswith(shown)
    assert "SECRET" not in str(refused.value)
    assert "pw" not in str(refused.value)


def test_request_bodies_are_utf8_not_escaped() -> None:
    """A non-Latin prompt goes as UTF-8 bytes, not as \\u escapes thrice the size."""
    prepared = Acytoo().prepare([{"role": "user", "content": "привет"}], None, {})
    assert "привет".encode() in prepared.body
    assert b"\\u" not in prepared.body


def test_a_parameter_given_as_none_takes_its_default() -> None:
    """Acytoo(temperature=None) sends the default 0.5, never null."""
    with serve("acytoo") as server:
        Acytoo(server.url).complete(HI, temperature=None)
        assert server.requests[0].json["temperature"] == 0.5


@pytest.mark.parametrize("value", [True, False])
def test_a_bool_is_not_a_retry_count(value: bool) -> None:
    """max_retries=True is refused: a bool is not a count."""
    with pytest.raises(ValueError, match="max_retries"):
        Cromicle(max_retries=value)


def test_the_emulator_closes_an_idle_connection() -> None:
    """A connection that sends nothing is closed after the idle timeout, so
    idle or trickling clients cannot hold every thread of an emulator."""
    with serve("cromicle", idle_timeout=0.2) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=WAIT) as s:
            s.sendall(b"POST /chat HTTP/1.1\r\n")  # and never the rest
            assert s.recv(65536) == b""  # closed by the server
        assert Cromicle(server.url).complete(HI).text  # it still serves others


# -- the figures a reply reports, on a clock the test controls ------------------------


class FakeClock:
    """Each call moves the clock on by ``step`` seconds."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 100.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_time_to_first_chunk_and_elapsed_are_measured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ttft is first chunk minus start; elapsed is end minus start."""
    clock = FakeClock(step=1.0)
    monkeypatch.setattr(_streaming, "clock", clock)
    with serve("cromicle", text="abc", chunk_size=1) as server:
        reply = Cromicle(server.url).complete(HI)
    # start 101, first chunk 102, the end of until_done 103
    assert (reply.time_to_first_chunk, reply.elapsed) == (1.0, 2.0)


def test_a_fallbacks_figures_count_the_providers_that_failed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Through a FallbackProvider, ttft and elapsed count from the call's
    start, failed providers included, and each Attempt says its own time."""
    clock = FakeClock(step=1.0)
    monkeypatch.setattr(_streaming, "clock", clock)
    with serve("cromicle", text="abc", chunk_size=3) as server:
        fallback = FallbackProvider(
            [Cromicle("http://127.0.0.1:9", max_retries=0), Cromicle(server.url)]
        )
        stream = fallback.stream(HI)
        reply = stream.until_done()
    # fallback start 101; first: begun 102, its own start 103, failed 104;
    # second: begun 105, its own start 106, first chunk 107; until_done 108
    assert reply.time_to_first_chunk == 6.0
    assert reply.elapsed == 7.0
    assert reply.attempts == 2


def test_attempt_elapsed_is_each_providers_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """AllProvidersFailedError lists each attempt with the time it took."""
    clock = FakeClock(step=0.5)  # each: begun, own start, failed: 1.0 s
    monkeypatch.setattr(_streaming, "clock", clock)
    fallback = FallbackProvider(
        [Cromicle("http://127.0.0.1:9", max_retries=0) for _ in range(2)]
    )
    with pytest.raises(chatproviders.AllProvidersFailedError) as caught:
        fallback.complete(HI)
    assert [a.elapsed for a in caught.value.attempts] == [1.0, 1.0]


def test_a_guard_never_shuts_a_socket_another_exchange_now_uses() -> None:
    """Once a pooled connection carries another request, the first exchange's
    guard (its deadline passing, or a close from another thread) leaves it be."""
    from chatproviders._wire.deadline import Guard

    ours, theirs = socket.socketpair()
    with ours, theirs:
        first, second = Guard(), Guard()
        first.add(ours)
        second.add(ours)  # the connection went back to the pool and was reused
        first.shut(expired=True)
        theirs.sendall(b"still open")
        assert ours.recv(64) == b"still open"
        second.shut()
        assert ours.recv(64) == b""  # shut down: reads end at once


# -- found by review: each failed before its fix ---------------------------------


def test_check_command_never_prints_a_base_url_password() -> None:
    """A refused --base-url is named without its password."""
    import io
    import sys

    from chatproviders._cli import main

    err = io.StringIO()
    real, sys.stderr = sys.stderr, err
    try:
        status = main(["check", "--base-url", "cromicle=http://u:hunter2pw@h:99999"])
    finally:
        sys.stderr = real
    assert status == 2
    assert "hunter2pw" not in err.getvalue() and "***@h:99999" in err.getvalue()


def test_a_connection_back_in_the_pool_leaves_its_guard() -> None:
    """Once the pool has a connection back, the guard of the exchange that
    read it can no longer shut it down, and that exchange's reply counts as
    whole even if its deadline passes afterwards."""
    from chatproviders._wire.deadline import Guard, _HTTPPool

    ours, theirs = socket.socketpair()
    with ours, theirs:
        guard = Guard()
        guard.add(ours)
        pool = _HTTPPool("127.0.0.1", 9, maxsize=1)

        class Connection:
            sock = ours

            def close(self) -> None:
                pass

        pool._put_conn(Connection())  # type: ignore[arg-type]
        guard.shut(expired=True)
        assert guard.complete
        theirs.sendall(b"still open")
        assert ours.recv(64) == b"still open"


def test_a_whole_reply_is_not_a_timeout_when_the_caller_dawdles(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A reply read whole before total_timeout, then iterated to its end after
    it, is a reply, not an APITimeoutError."""
    from chatproviders._wire import deadline as _guard

    fired = threading.Event()
    real_shut = _guard.Guard.shut

    def shut(self: Any, expired: bool = False) -> None:
        real_shut(self, expired)
        fired.set()

    monkeypatch.setattr(_guard.Guard, "shut", shut)

    def handler(conn: Conn) -> None:
        while conn.read_request() is not None:
            conn.respond(200, b"all of it")  # Content-Length: read whole at once

    with LoopbackServer(handler) as server:
        client = Cromicle(server.url, total_timeout=0.2)
        with client.stream(HI) as stream:
            assert next(stream) == "all of it"
            assert fired.wait(WAIT)  # the deadline passed meanwhile
            assert list(stream) == []
        assert stream.until_done().text == "all of it"


def test_total_timeout_bounds_a_proxy_that_trickles_its_connect_reply() -> None:
    """An https request through a proxy whose CONNECT reply trickles ends at
    total_timeout."""
    hung_up = threading.Event()

    def proxy(conn: Conn) -> None:
        conn.sock.recv(65536)  # CONNECT host:port
        with contextlib.suppress(OSError):
            _trickle(conn, b"HTTP/1.1 200 Connection established\r\n" * 20, hung_up)

    with LoopbackServer(proxy) as server:
        client = Cromicle(
            "https://127.0.0.1:9", proxy=server.url, timeout=WAIT, total_timeout=0.3
        )
        with pytest.raises(APITimeoutError) as caught:
            client.complete(HI)
        hung_up.set()
    assert caught.value.limit == "total"


def test_a_huge_sse_retry_field_is_ignored() -> None:
    """retry: with thousands of digits is a bad field, ignored as the spec says."""
    from chatproviders.decoders import iter_sse

    body = b"retry: " + b"9" * 5000 + b"\ndata: x\n\n"
    assert [event.data for event in iter_sse([body])] == ["x"]


def test_a_chunk_size_beyond_any_int_is_our_error_with_the_text() -> None:
    """A chunk-size line too large for an int is a format error of ours that
    keeps the text before it, not a raw OverflowError."""

    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.send_head(framing="chunked")
        conn.send(b"Hello")
        conn.sock.sendall(b"f" * 40 + b"\r\n")

    with LoopbackServer(handler) as server:
        with pytest.raises(chatproviders.APIError) as caught:
            Cromicle(server.url).complete(HI)
    assert caught.value.partial_text == "Hello"


def test_an_abstract_base_cannot_be_registered() -> None:
    """register_provider refuses a class without its protocol table."""

    class Base(chatproviders.Provider, abstract=True):
        pass

    with pytest.raises(TypeError, match="url, path, default_model"):
        chatproviders.register_provider(Base)


@pytest.mark.parametrize("password", ["pa/ss-word", "pa#ss-word", "pa?ss-word"])
def test_a_password_with_a_slash_or_hash_is_hidden(password: str) -> None:
    """A base_url whose password holds / # or ? is refused without showing it."""
    with pytest.raises(ValueError) as caught:
        Cromicle(f"http://u:{password}@127.0.0.1:9")
    assert "ss-word" not in str(caught.value)


def test_options_and_prepared_requests_hide_the_password() -> None:
    """repr() of a client's options and of a prepared request hide it too."""
    client = Cromicle("http://u:secret-pw@127.0.0.1:9")
    for shown in (
        repr(client),
        repr(client.options),
        repr(client.prepare(HI, None, {})),
    ):
        assert "secret-pw" not in shown


def test_close_from_another_thread_wakes_a_reader_on_your_own_session() -> None:
    """With a session of your own (no GuardedAdapter), close() from another
    thread still wakes a read waiting on a stalled server."""
    import requests

    release = threading.Event()
    with LoopbackServer(_stalling(b"first ", release)) as server:
        client = Cromicle(server.url, timeout=4 * WAIT, session=requests.Session())
        stream = client.stream(HI)
        thread, outcome, first = _read_in_thread(stream)
        assert first.wait(WAIT)
        stream.close()
        thread.join(WAIT)
        assert not thread.is_alive() and outcome == ["first ", "ended"]
        release.set()


def test_close_during_a_retry_wait_sends_nothing_more(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """client.close() while a call waits to retry: it raises, never resends."""
    from chatproviders._wire import retry as _retry

    waiting, may_go = threading.Event(), threading.Event()

    def sleep(seconds: float, cancel: Optional[threading.Event] = None) -> None:
        waiting.set()
        assert cancel is not None and cancel.wait(WAIT)  # close() ends the wait

    monkeypatch.setattr(_retry, "sleep", sleep)
    with serve("cromicle") as server:
        server.queue_reply(status=503)
        client = Cromicle(server.url)
        outcome: list[Any] = []

        def call() -> None:
            try:
                outcome.append(client.complete(HI))
            except BaseException as exc:
                outcome.append(exc)

        thread = threading.Thread(target=call, daemon=True)
        thread.start()
        assert waiting.wait(WAIT)
        client.close()
        thread.join(WAIT)
        assert len(server.requests) == 1
    assert not may_go.is_set()
    assert isinstance(outcome[0], (RuntimeError, APIStatusError))


def test_a_background_stream_of_a_closed_client_sends_nothing() -> None:
    """stream_in_background() then client.close() at once: nothing is sent."""
    with serve("cromicle") as server:
        client = Cromicle(server.url)
        client.close()
        with pytest.raises(RuntimeError, match="closed"):
            client.stream_in_background(HI)
        assert server.requests == []


class Flavoured(Cromicle):
    """A subclass with a positional argument of its own before *args."""

    def __init__(self, flavor: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.flavor = flavor


def test_a_subclass_with_varargs_pickles_and_copies() -> None:
    """Positional arguments and *args survive pickling and with_options."""
    import pickle

    client = Flavoured("mint", "http://127.0.0.1:9", max_retries=1)
    for copy in (pickle.loads(pickle.dumps(client)), client.with_options(timeout=3)):
        assert (copy.flavor, copy.base_url, copy.max_retries) == (
            "mint",
            "http://127.0.0.1:9",
            1,
        )


def test_a_pickled_copy_of_a_copy_owns_its_session() -> None:
    """with_options shares the session; a pickled copy of that copy makes its own."""
    import pickle

    client = Cromicle("http://127.0.0.1:9")
    copy = pickle.loads(pickle.dumps(client.with_options(max_retries=0)))
    assert copy.session is not client.session and copy._owns_session


def test_a_cut_key_is_hidden_when_a_hint_follows() -> None:
    """A 404 (which adds the /v1 hint) echoing a cut API key shows none of it."""
    with serve("openai", api_key=SECRET) as server:
        filler = "x" * (500 - 15)
        server.queue_reply(status=404, body=filler + SECRET)
        base = server.url[: -len("/v1")] + "/v1/"  # rstrip'd: no hint
        client = OpenAICompatible(base.rstrip("/") + "x", SECRET, model="m")
        with pytest.raises(APIStatusError) as caught:
            client.complete(HI)
    assert "usually ends in /v1" in str(caught.value)
    assert SECRET[:8] not in str(caught.value)


def test_finished_guards_do_not_pile_up_behind_a_long_deadline() -> None:
    """Guards that finished are dropped from the watchdog's queue even while
    one with a far deadline is still open."""
    from chatproviders._wire.deadline import Guard, _watchdog

    far = Guard(deadline=1e9)
    for _ in range(2000):
        Guard(deadline=1e9).finish()
    assert len(_watchdog._heap) < 600
    far.finish()


def test_a_plugin_that_exits_at_import_is_recorded_and_the_rest_load(
    tmp_path: Any,
) -> None:
    """A plugin raising SystemExit at import is named; others still load."""
    import subprocess
    import sys

    from tests.plugins import install_plugin

    (tmp_path / "exits.py").write_text("raise SystemExit(3)\n")
    (tmp_path / "fine.py").write_text(
        "from chatproviders import Cromicle\nclass Fine(Cromicle):\n    pass\n"
    )
    install_plugin(tmp_path, "two_plugins", {"exits": "exits:X", "fine": "fine:Fine"})
    code = (
        "import chatproviders as c\n"
        "print(c.get_provider('fine').__name__, sorted(c._registry.plugin_errors()))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        # the plugins, then the chatproviders under test (not an installed one)
        env={"PYTHONPATH": os.pathsep.join([str(tmp_path), ROOT]), "PATH": ""},
        timeout=60,
        check=False,
    )
    assert done.stdout.strip() == "Fine ['exits']", done.stderr


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_fork_while_another_thread_holds_the_guard_lock() -> None:
    """A child forked while another thread holds the guards' lock still sends."""
    from chatproviders._wire import deadline as _guard

    with serve("cromicle", text="child") as server:
        client = Cromicle(server.url, total_timeout=WAIT)
        held, done = threading.Event(), threading.Event()

        def hold() -> None:
            with _guard._owners_lock:
                held.set()
                done.wait(WAIT)

        holder = threading.Thread(target=hold, daemon=True)
        holder.start()
        assert held.wait(WAIT)
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            status = b"0"
            try:
                status = b"1" if client.complete(HI).text == "child" else b"0"
            finally:
                os.write(write, status)
                os._exit(0)
        done.set()
        os.close(write)
        assert os.read(read, 1) == b"1"
        os.waitpid(pid, 0)
        os.close(read)


def test_client_close_while_stream_waits_raises() -> None:
    """client.close() while stream() waits for the first chunk: the call
    raises, it does not return an empty stream that looks like a reply."""
    release, arrived = threading.Event(), threading.Event()

    def handler(conn: Conn) -> None:
        conn.read_request()
        arrived.set()
        release.wait(4 * WAIT)

    with LoopbackServer(handler) as server:
        client = Cromicle(server.url, timeout=4 * WAIT)
        outcome: list[Any] = []

        def call() -> None:
            try:
                outcome.append(client.stream(HI))
            except BaseException as exc:
                outcome.append(exc)

        thread = threading.Thread(target=call, daemon=True)
        thread.start()
        assert arrived.wait(WAIT)
        client.close()
        thread.join(WAIT)
        release.set()
    assert isinstance(outcome[0], RuntimeError)
