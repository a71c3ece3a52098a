"""``POST /v1/chat/completions`` as OpenAI's clients read it: the fields of a
completion and of each chunk, what the gateway fills in when the upstream
says nothing (finish reason, tool-call type, usage), and its 400s for
``stream_options``.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from chatproviders.testing import EmulatorServer, serve
from tests.gateway.support import (
    WAIT,
    Running,
    chat_body,
    gateway,
    parse_reply,
    post,
    raw_exchange,
    sse_data,
)
from tests.loopback import Conn, LoopbackServer

MODEL = "openai/gpt-4o-mini"


@pytest.fixture
def upstream() -> Iterator[EmulatorServer]:
    with serve("openai", chunk_size=4) as server:
        yield server


@pytest.fixture
def running(upstream: EmulatorServer) -> Iterator[Running]:
    config = {"routes": ["openai"], "base_urls": {"openai": upstream.url}}
    with gateway({**config, "max_retries": 0}) as running:
        yield running


def exchange(running: Running, body: bytes) -> Any:
    return raw_exchange(running.url, post("/v1/chat/completions", body))


def chunks(reply: Any) -> list[dict[str, Any]]:
    """The JSON chunks of a streamed reply, which must end in [DONE]."""
    events = sse_data(reply.body)
    assert events[-1] == "[DONE]", reply.body
    return [json.loads(event) for event in events[:-1]]


def test_a_completion_has_every_field_of_openais(
    running: Running, upstream: EmulatorServer
) -> None:
    """A non-streamed reply is a chat.completion with OpenAI's fields: its
    id, the model asked for, one choice at index 0, and the upstream's usage."""
    upstream.queue_reply(
        text="Four.", usage={"prompt_tokens": 11, "completion_tokens": 2}
    )
    reply = exchange(running, chat_body(MODEL))
    assert reply.status == 200, reply.raw
    data = reply.json()
    assert set(data) == {"id", "object", "created", "model", "choices", "usage"}
    assert data["id"].startswith("chatcmpl-") and data["object"] == "chat.completion"
    assert data["model"] == MODEL
    assert data["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Four."},
            "finish_reason": "stop",
            "logprobs": None,
        }
    ]
    assert data["usage"] == {
        "prompt_tokens": 11,
        "completion_tokens": 2,
        "total_tokens": 13,
    }
    assert reply.headers["x-chatproviders-provider"] == "openai"


def test_text_said_beside_tool_calls_is_kept(
    running: Running, upstream: EmulatorServer
) -> None:
    """A reply with text and a tool call keeps both in the message."""
    call = {"name": "get_time", "arguments": {"tz": "CET"}, "id": "call_a"}
    upstream.queue_reply(text="Let me look.", tool_calls=[call])
    message = exchange(running, chat_body(MODEL)).json()["choices"][0]["message"]
    assert message["content"] == "Let me look."
    assert [c["id"] for c in message["tool_calls"]] == ["call_a"]


def test_a_stream_opens_with_the_role_and_ends_with_the_finish(
    running: Running, upstream: EmulatorServer
) -> None:
    """Each chunk carries the completion's id and model; the first says the
    role, the text follows, the last has the finish reason and no delta."""
    upstream.queue_reply(text="Four.")
    reply = exchange(running, chat_body(MODEL, stream=True))
    assert reply.headers["content-type"] == "text/event-stream; charset=utf-8"
    data = chunks(reply)
    assert {(c["id"], c["object"], c["model"]) for c in data} == {
        (data[0]["id"], "chat.completion.chunk", MODEL)
    }
    choices = [c["choices"][0] for c in data]
    assert choices[0]["delta"] == {"role": "assistant", "content": ""}
    assert "".join(c["delta"].get("content", "") for c in choices) == "Four."
    assert (choices[-1]["delta"], choices[-1]["finish_reason"]) == ({}, "stop")
    assert [c["index"] for c in choices] == [0] * len(choices)


def bare_upstream(*events: bytes) -> LoopbackServer:
    """An OpenAI-style upstream that streams ``events`` then [DONE] and says
    nothing else: no finish reason, no usage, unless the events do."""

    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.send_head(headers=[("Content-Type", "text/event-stream")])
        for event in events:
            conn.send(b"data: " + event + b"\n\n")
        conn.send(b"data: [DONE]\n\n")
        conn.end()

    return LoopbackServer(handler)


def delta_event(delta: dict[str, Any]) -> bytes:
    return json.dumps({"choices": [{"index": 0, "delta": delta}]}).encode()


def test_what_the_upstream_leaves_out_is_filled_in() -> None:
    """An upstream that sends no finish reason, no usage and tool calls
    without a type: the client still gets type "function", finish_reason
    "tool_calls", and usage estimated at a token per four characters."""
    call = {"index": 0, "id": "call_a", "function": {"name": "f", "arguments": "{}"}}
    upstream = bare_upstream(delta_event({"tool_calls": [call]}))
    config = {"routes": ["openai"], "max_retries": 0}
    with upstream, gateway({**config, "base_urls": {"openai": upstream.url}}) as gw:
        body = chat_body(MODEL, stream=True, stream_options={"include_usage": True})
        data = chunks(exchange(gw, body))
    fragment = data[1]["choices"][0]["delta"]["tool_calls"][0]
    assert (fragment["id"], fragment["type"]) == ("call_a", "function")
    assert data[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert data[-1]["choices"] == []
    prompt = len(json.dumps([{"role": "user", "content": "hello"}]))
    assert data[-1]["usage"] == {
        "prompt_tokens": -(-prompt // 4),
        "completion_tokens": 0,
        "total_tokens": -(-prompt // 4),
    }


def test_text_without_a_finish_reason_ends_with_stop() -> None:
    """Text from an upstream that sends no finish reason ends with "stop",
    and its estimated usage counts the text."""
    upstream = bare_upstream(delta_event({"content": "abcdefghi"}))
    config = {"routes": ["openai"], "max_retries": 0}
    with upstream, gateway({**config, "base_urls": {"openai": upstream.url}}) as gw:
        body = chat_body(MODEL, stream=True, stream_options={"include_usage": True})
        data = chunks(exchange(gw, body))
    assert data[-2]["choices"][0]["finish_reason"] == "stop"
    usage = data[-1]["usage"]
    assert usage["completion_tokens"] == 3  # nine characters
    assert usage["total_tokens"] == usage["prompt_tokens"] + 3


def test_usage_the_upstream_reports_is_passed_on(
    running: Running, upstream: EmulatorServer
) -> None:
    """With include_usage, the last chunk has the upstream's own counts."""
    upstream.queue_reply(text="hi", usage={"prompt_tokens": 5, "completion_tokens": 1})
    body = chat_body(MODEL, stream=True, stream_options={"include_usage": True})
    usage = chunks(exchange(running, body))[-1]["usage"]
    assert usage == {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"include_usage": True, "x": 1}, "stream_options must be an object"),
        ([True], "stream_options must be an object"),
        ({"include_usage": "yes"}, "include_usage must be true or false"),
    ],
)
def test_bad_stream_options_are_400_naming_them(
    running: Running, options: Any, words: str
) -> None:
    """stream_options other than {"include_usage": bool} are refused with
    a 400 that says what is wrong."""
    reply = exchange(running, chat_body(MODEL, stream=True, stream_options=options))
    assert reply.status == 400, reply.raw
    assert words in reply.json()["error"]["message"]


def test_stream_options_without_a_stream_name_the_parameter(running: Running) -> None:
    """stream_options on a request that does not stream: a 400 whose param
    is stream_options, as OpenAI's."""
    body = chat_body(MODEL, stream_options={"include_usage": True})
    error = exchange(running, body).json()["error"]
    assert error["param"] == "stream_options"


def test_a_stream_the_gateway_closes_ends_without_done() -> None:
    """Streams the gateway ends itself (closing, after its grace period) stop
    without a finish or [DONE], so the client cannot take them for whole,
    and the access log says closed."""

    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.send_head(headers=[("Content-Type", "text/event-stream")])
        conn.send(b"data: " + delta_event({"content": "forever"}) + b"\n\n")
        conn.wait_closed_by_client(WAIT)

    config = {"routes": ["openai"], "max_retries": 0}
    with LoopbackServer(handler) as upstream:
        with gateway({**config, "base_urls": {"openai": upstream.url}}) as running:
            parts = urlsplit(running.url)
            with socket.create_connection((parts.hostname, parts.port), WAIT) as sock:
                sock.sendall(
                    post("/v1/chat/completions", chat_body(MODEL, stream=True))
                )
                received = b""
                while b"forever" not in received:
                    received += sock.recv(65536)
                running.app.close()
                while data := sock.recv(65536):
                    received += data
            assert running.app.wait_idle(WAIT)
    reply = parse_reply(received)
    assert reply.status == 200
    finishes = [
        json.loads(e)["choices"][0]["finish_reason"] for e in sse_data(reply.body)
    ]
    assert finishes == [None, None]  # the role, the text: no finish, no [DONE]
    assert "outcome=closed" in running.log.getvalue()
