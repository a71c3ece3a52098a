"""Every error status of the gateway, seen as the raw bytes on the wire."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from chatproviders.testing import serve
from tests.gateway.support import (
    WAIT,
    Running,
    chat_body,
    gateway,
    post,
    raw_exchange,
    sse_data,
)
from tests.loopback import Conn, LoopbackServer

KEYS = [
    {"name": "alice", "key": "sk-alice-0123456789", "models": ["cromicle"]},
    {"name": "bob", "key": "sk-bob-0123456789", "requests_per_minute": 2},
]


@pytest.fixture
def upstream() -> Iterator[Any]:
    with serve("cromicle", chunk_size=4) as server:
        yield server


@pytest.fixture
def running(upstream: Any) -> Iterator[Running]:
    config = {
        "routes": ["cromicle", "down=acytoo", "fast=acytoo,cromicle"],
        "base_urls": {"cromicle": upstream.url, "acytoo": "http://127.0.0.1:9"},
        "max_retries": 0,
        "max_body": 4096,
        "max_messages": 10,
    }
    with gateway(config) as running:
        yield running


@pytest.fixture
def keyed(upstream: Any) -> Iterator[Running]:
    config = {
        "routes": ["cromicle", "fast=cromicle"],
        "base_urls": {"cromicle": upstream.url},
        "keys": KEYS,
    }
    with gateway(config) as running:
        yield running


def assert_openai_error(reply: Any, status: int, words: str) -> dict[str, Any]:
    assert reply.status == status, reply.raw
    assert reply.headers["content-type"] == "application/json"
    assert int(reply.headers["content-length"]) == len(reply.body)
    error = reply.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert words in error["message"], error["message"]
    assert b"Traceback" not in reply.raw
    return error  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("body", "content_type", "words"),
    [
        (b'{"model": "cromicle", "messages": [', "application/json", "not valid JSON"),
        (b"[1, 2]", "application/json", "must be a JSON object, got an array"),
        (b'"hi"', "application/json", "got a string"),
        (b'{"model": NaN}', "application/json", "not valid JSON"),
        (b'{"model": "\xff\xfe"}', "application/json", "not valid UTF-8: byte 0xff"),
        (chat_body(), "text/plain", "Content-Type: application/json"),
        (chat_body(), None, "no Content-Type"),
        (b"", "application/json", "empty"),
        (b"[" * 1500 + b"]" * 1500, "application/json", "valid JSON"),
        (chat_body(temperature=1, foo=2), "application/json", "Unrecognized request"),
        (chat_body(extra_body={}), "application/json", "Unrecognized request"),
        (chat_body(tools=[]), "application/json", "unsupported parameter(s) tools"),
        (chat_body(logprobs=True), "application/json", "logprobs are not passed"),
        (chat_body(top_logprobs=2), "application/json", "logprobs are not passed"),
        (chat_body(audio={"voice": "x"}), "application/json", "audio is not passed"),
        (chat_body(stream="yes"), "application/json", "stream must be"),
        (
            chat_body(stream_options={"include_usage": True}),
            "application/json",
            "only allowed when 'stream' is enabled",
        ),
        (
            json.dumps({"model": "cromicle", "messages": [{"role": "user"}] * 11}),
            "application/json",
            "messages has 11 items; at most 10",
        ),
        (
            json.dumps({"model": "cromicle", "messages": []}),
            "application/json",
            "empty",
        ),
        (json.dumps({"messages": []}), "application/json", "must provide a model"),
        (json.dumps({"model": 3, "messages": []}), "application/json", "a model"),
    ],
)
def test_bad_requests_are_400_with_a_clear_message(
    running: Running, body: Any, content_type: Any, words: str
) -> None:
    """Malformed JSON, non-objects, bad types, wrong content types, invalid
    UTF-8, unknown parameters and huge message lists are each a 400.
    """
    data = body if isinstance(body, bytes) else body.encode()
    reply = raw_exchange(running.url, post("/v1/chat/completions", data, content_type))
    error = assert_openai_error(reply, 400, words)
    assert error["type"] == "invalid_request_error"
    assert "status=400" in running.log.getvalue()


def test_a_body_over_the_limit_is_413_before_it_is_read(running: Running) -> None:
    """A Content-Length over max_body is refused without reading the body."""
    request = post("/v1/chat/completions", b"x" * 4097)
    assert_openai_error(raw_exchange(running.url, request), 413, "larger than 4096")


def test_a_chunked_body_over_the_limit_is_413(running: Running) -> None:
    """A chunked body has no Content-Length: it is counted as it is read."""
    head = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: g\r\nConnection: close\r\n"
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    body = b"".join(b"400\r\n" + b"x" * 1024 + b"\r\n" for _ in range(5)) + b"0\r\n\r\n"
    assert_openai_error(raw_exchange(running.url, head + body), 413, "larger than")


def test_an_unknown_path_is_404_and_a_wrong_method_405(running: Running) -> None:
    """Unknown URLs and methods get OpenAI's shape, and 405 says what is allowed."""
    reply = raw_exchange(running.url, post("/v1/engines", b"{}"))
    assert_openai_error(reply, 404, "Invalid URL (POST /v1/engines)")
    reply = raw_exchange(
        running.url, post("/v1/chat/completions", b"", None, [], "GET")
    )
    assert_openai_error(reply, 405, "GET is not allowed")
    assert reply.headers["allow"] == "POST"


def test_an_unknown_model_is_404(running: Running) -> None:
    """A model that is no route is model_not_found, naming the routes."""
    reply = raw_exchange(running.url, post("/v1/chat/completions", chat_body("gpt-5")))
    error = assert_openai_error(reply, 404, "cromicle, down, fast")
    assert error["code"] == "model_not_found"
    reply = raw_exchange(
        running.url, post("/v1/chat/completions", chat_body("cromicle/gpt-9"))
    )
    assert_openai_error(reply, 404, "'gpt-9' is not supported")


def test_an_upstream_that_is_down_is_502(running: Running) -> None:
    """A connection refused upstream is a bad gateway, naming the provider."""
    reply = raw_exchange(running.url, post("/v1/chat/completions", chat_body("down")))
    error = assert_openai_error(reply, 502, "acytoo")
    assert error["type"] == "api_error"


def test_an_upstream_error_status_is_502(running: Running, upstream: Any) -> None:
    """An upstream 500 is a 502 here; its body's message is kept."""
    upstream.queue_reply(status=500, body="the model is on fire")
    reply = raw_exchange(running.url, post("/v1/chat/completions", chat_body()))
    assert_openai_error(reply, 502, "the model is on fire")


@pytest.mark.parametrize("status", [400, 422])
def test_an_upstream_refusing_the_request_is_the_same_status(
    running: Running, upstream: Any, status: int
) -> None:
    """An upstream 400 or 422 refuses the client's own request (a schema, a
    max_tokens past the context): the client gets that status, which its SDK
    does not retry and parse() steps down on, not a 502 it retries."""
    upstream.queue_reply(status=status, body="max_tokens is too large")
    reply = raw_exchange(running.url, post("/v1/chat/completions", chat_body()))
    error = assert_openai_error(reply, status, "max_tokens is too large")
    assert error["type"] == "invalid_request_error"


def test_an_upstream_429_keeps_its_retry_after(running: Running, upstream: Any) -> None:
    """The upstream's 429 and Retry-After reach the client."""
    upstream.queue_reply(status=429, body="slow down", headers={"Retry-After": "7"})
    reply = raw_exchange(running.url, post("/v1/chat/completions", chat_body()))
    error = assert_openai_error(reply, 429, "slow down")
    assert error["code"] == "rate_limit_exceeded"
    assert reply.headers["retry-after"] == "7"


def test_an_upstream_that_times_out_is_504(upstream: Any) -> None:
    """An upstream that never answers within the timeout is a gateway timeout."""
    config = {
        "routes": ["cromicle"],
        "base_urls": {"cromicle": upstream.url},
        "max_retries": 0,
        "timeout": 0.2,
    }
    upstream.queue_reply(stall_after=0)
    with gateway(config) as running:
        reply = raw_exchange(running.url, post("/v1/chat/completions", chat_body()))
    assert_openai_error(reply, 504, "cromicle")


def test_a_fallback_route_skips_a_member_that_is_down(running: Running) -> None:
    """fast=acytoo,cromicle answers from cromicle, and says so."""
    reply = raw_exchange(running.url, post("/v1/chat/completions", chat_body("fast")))
    assert reply.status == 200
    assert reply.headers["x-chatproviders-provider"] == "cromicle"
    assert reply.json()["model"] == "cromicle"
    assert "Cromicle emulator" in reply.json()["choices"][0]["message"]["content"]


def test_a_fallback_of_two_members_of_one_class_names_the_one_that_answered() -> None:
    """fast=openai,openaicompatible (two OpenAI-compatible servers): when the
    first is down, the reply is said to come from the second, not the first."""
    with serve("openai") as second:
        config = {
            "routes": ["fast=openai,openaicompatible"],
            "base_urls": {
                "openai": "http://127.0.0.1:9",
                "openaicompatible": second.url,
            },
            "max_retries": 0,
        }
        with gateway(config) as running:
            body = chat_body("fast/gpt-4o-mini")
            reply = raw_exchange(running.url, post("/v1/chat/completions", body))
            log = running.log.getvalue()
    assert reply.status == 200, reply.raw
    assert reply.headers["x-chatproviders-provider"] == "openaicompatible"
    assert reply.json()["model"] == "openaicompatible/gpt-4o-mini"
    assert "provider=openaicompatible " in log


def test_no_key_and_a_wrong_key_are_401(keyed: Running) -> None:
    """Without a key, or with a wrong one: 401, and the key is never echoed."""
    reply = raw_exchange(keyed.url, post("/v1/chat/completions", chat_body()))
    assert_openai_error(reply, 401, "didn't provide an API key")
    wrong = ["Authorization: Bearer sk-alice-0123456780"]
    reply = raw_exchange(
        keyed.url, post("/v1/chat/completions", chat_body(), headers=wrong)
    )
    error = assert_openai_error(reply, 401, "Incorrect API key")
    assert error["code"] == "invalid_api_key"
    assert b"sk-alice" not in reply.raw
    assert "sk-" not in keyed.log.getvalue()


def test_a_model_the_key_may_not_use_is_403(keyed: Running) -> None:
    """alice may use cromicle, not fast; the log names her, never her key."""
    alice = ["Authorization: Bearer sk-alice-0123456789"]
    reply = raw_exchange(
        keyed.url, post("/v1/chat/completions", chat_body("fast"), headers=alice)
    )
    assert_openai_error(reply, 403, "'alice' may not use the model 'fast'")
    reply = raw_exchange(
        keyed.url, post("/v1/chat/completions", chat_body(), headers=alice)
    )
    assert reply.status == 200
    models = raw_exchange(keyed.url, post("/v1/models", b"", None, alice, "GET"))
    assert [m["id"] for m in models.json()["data"]] == [
        "cromicle",
        "cromicle/gpt-3.5-turbo",
    ]
    assert "key=alice" in keyed.log.getvalue()
    assert "sk-alice" not in keyed.log.getvalue()


def test_a_key_over_its_request_limit_is_429_with_retry_after(keyed: Running) -> None:
    """bob has 2 requests a minute: the third is refused with Retry-After."""
    bob = ["Authorization: Bearer sk-bob-0123456789"]
    for _ in range(2):
        reply = raw_exchange(
            keyed.url, post("/v1/chat/completions", chat_body(), headers=bob)
        )
        assert reply.status == 200
    reply = raw_exchange(
        keyed.url, post("/v1/chat/completions", chat_body(), headers=bob)
    )
    assert_openai_error(reply, 429, "2 requests per minute")
    assert 1 <= int(reply.headers["retry-after"]) <= 60


def test_a_key_over_its_token_limit_is_429(upstream: Any) -> None:
    """Tokens are counted after each reply; the next request past them waits."""
    keys = [{"name": "carol", "key": "sk-carol-0123456789", "tokens_per_minute": 5}]
    config = {"routes": ["cromicle"], "base_urls": {"cromicle": upstream.url}}
    carol = ["Authorization: Bearer sk-carol-0123456789"]
    with gateway({**config, "keys": keys}) as running:
        first = raw_exchange(
            running.url, post("/v1/chat/completions", chat_body(), headers=carol)
        )
        assert first.status == 200
        reply = raw_exchange(
            running.url, post("/v1/chat/completions", chat_body(), headers=carol)
        )
    assert_openai_error(reply, 429, "5 tokens per minute")
    assert "retry-after" in reply.headers


def test_health_needs_no_key(keyed: Running) -> None:
    """A load balancer's probe needs no key."""
    reply = raw_exchange(keyed.url, post("/health", b"", None, [], "GET"))
    assert reply.status == 200 and reply.json() == {"status": "ok"}


def test_ready_reports_each_route_from_live_checks(running: Running) -> None:
    """cromicle answers, acytoo is down: ready, with each member's status."""
    reply = raw_exchange(running.url, post("/ready", b"", None, [], "GET"))
    assert reply.status == 200
    routes = reply.json()["routes"]
    assert routes["cromicle"] == {"ready": True, "providers": {"cromicle": "ok"}}
    assert routes["down"] == {"ready": False, "providers": {"acytoo": "down"}}
    assert routes["fast"]["ready"] is True


def test_ready_is_503_when_no_route_answers() -> None:
    """Every route down: 503, saying why."""
    config = {"routes": ["acytoo"], "base_urls": {"acytoo": "http://127.0.0.1:9"}}
    with gateway(config) as running:
        reply = raw_exchange(running.url, post("/ready", b"", None, [], "GET"))
    assert reply.status == 503
    assert reply.json() == {
        "ready": False,
        "routes": {"acytoo": {"ready": False, "providers": {"acytoo": "down"}}},
    }


# -- in the stream ----------------------------------------------------------


def sse_head(status: int = 200) -> list[tuple[str, str]]:
    return [("Content-Type", "text/event-stream")]


def chunk(text: str) -> bytes:
    event = {"choices": [{"index": 0, "delta": {"content": text}}]}
    return b"data: " + json.dumps(event).encode() + b"\n\n"


def test_an_error_after_the_first_byte_is_one_error_event_and_no_done() -> None:
    """The upstream resets mid-stream: the client gets the text so far, one
    error event, and no [DONE], so it cannot take the answer for whole.
    """

    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.send_head(headers=sse_head())
        conn.send(chunk("Hello"))
        conn.reset()

    with LoopbackServer(handler) as server, gateway(_openai(server.url)) as running:
        reply = raw_exchange(
            running.url,
            post("/v1/chat/completions", chat_body("openai/m", stream=True)),
        )
    assert reply.status == 200
    events = sse_data(reply.body)
    assert json.loads(events[1])["choices"][0]["delta"] == {"content": "Hello"}
    error = json.loads(events[-1])["error"]
    assert error["type"] == "api_error" and "openai" in error["message"]
    assert "[DONE]" not in events
    assert reply.body.endswith(b"\n\n")  # a whole event: SSE drops one cut short
    assert "outcome=error" in running.log.getvalue()


@pytest.mark.parametrize("stream", [False, True])
def test_a_lone_surrogate_from_the_upstream_is_passed_on_escaped(stream: bool) -> None:
    """An upstream's "\\ud83d" (half an emoji) decodes to a str UTF-8 cannot
    hold: it goes on as the same JSON escape, not as a 500 or a stream cut
    off without a word."""

    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.send_head(headers=sse_head())
        conn.send(b'data: {"choices": [{"delta": {"content": "A \\ud83d B"}}]}\n\n')
        conn.send(b"data: [DONE]\n\n")
        conn.end()

    with LoopbackServer(handler) as server, gateway(_openai(server.url)) as running:
        body = chat_body("openai/m", stream=stream)
        reply = raw_exchange(running.url, post("/v1/chat/completions", body))
    assert reply.status == 200, reply.raw
    if stream:
        events = sse_data(reply.body)
        assert json.loads(events[1])["choices"][0]["delta"] == {"content": "A \ud83d B"}
        assert events[-1] == "[DONE]"
    else:
        message = reply.json()["choices"][0]["message"]
        assert message["content"] == "A \ud83d B"


@pytest.mark.parametrize("stream", [False, True])
def test_a_refusal_reaches_the_client(stream: bool) -> None:
    """The model's refusal (OpenAI's ``refusal`` field) is passed on, in the
    message or as refusal deltas: parse() behind the gateway sees a refusal,
    not an empty answer to ask again."""
    with serve("openai") as upstream:
        upstream.queue_reply(refusal="I can't help with that.")
        with gateway(_openai(upstream.url)) as running:
            body = chat_body("openai/gpt-4o-mini", stream=stream)
            reply = raw_exchange(running.url, post("/v1/chat/completions", body))
    assert reply.status == 200, reply.raw
    if stream:
        deltas = [json.loads(e)["choices"] for e in sse_data(reply.body)[:-1]]
        refusal = "".join(c[0]["delta"].get("refusal", "") for c in deltas if c)
    else:
        refusal = reply.json()["choices"][0]["message"]["refusal"]
    assert refusal == "I can't help with that."


def test_the_first_token_reaches_the_client_before_the_upstream_finishes() -> None:
    """Each event is flushed as it comes: the client reads the first token
    while the upstream still holds the rest back.
    """
    release = threading.Event()

    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.send_head(headers=sse_head())
        conn.send(chunk("first"))
        assert release.wait(WAIT)
        conn.send(chunk(" second"))
        conn.send(b"data: [DONE]\n\n")
        conn.end()

    with LoopbackServer(handler) as server, gateway(_openai(server.url)) as running:
        with _connected(running.url) as sock:
            sock.sendall(
                post("/v1/chat/completions", chat_body("openai/m", stream=True))
            )
            received = b""
            while b'"first"' not in received:
                data = sock.recv(65536)
                assert data, "the gateway closed before the first token"
                received += data
            release.set()
            while not received.endswith(b"0\r\n\r\n"):
                data = sock.recv(65536)
                if not data:
                    break
                received += data
    assert b'" second"' in received and b"data: [DONE]" in received


def test_a_client_that_hangs_up_closes_the_upstream() -> None:
    """The client leaves while the upstream is silent: the upstream sees its
    connection close (the watcher notices within a fraction of a second).
    """
    closed = threading.Event()

    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.send_head(headers=sse_head())
        conn.send(chunk("thinking"))
        if conn.wait_closed_by_client(WAIT):
            closed.set()

    with LoopbackServer(handler) as server, gateway(_openai(server.url)) as running:
        with _connected(running.url) as sock:
            sock.sendall(
                post("/v1/chat/completions", chat_body("openai/m", stream=True))
            )
            received = b""
            while b"thinking" not in received:
                received += sock.recv(65536)
        assert closed.wait(WAIT), "the upstream connection stayed open"
        assert running.app.wait_idle(WAIT)
    assert "outcome=hangup" in running.log.getvalue()


def _openai(url: str) -> dict[str, Any]:
    return {"routes": ["openai"], "base_urls": {"openai": url}, "max_retries": 0}


def _connected(url: str) -> Any:
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return socket.create_connection((parts.hostname, parts.port), WAIT)
