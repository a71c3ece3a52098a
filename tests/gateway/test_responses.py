"""``POST /v1/responses`` through a gateway on waitress, in front of the openai
emulator, as the OpenAI SDK's ``client.responses`` uses it: streamed and not,
text and a tool call, a seed route refused, a failure after the first byte.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from chatproviders.testing import EmulatorServer, serve
from tests.gateway.support import WAIT, Running, gateway, post
from tests.loopback import Conn, LoopbackServer

openai = pytest.importorskip("openai")  # the test extra has it (Python 3.10+)

TOOLS = [
    {
        "type": "function",
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
]
CALL = {"id": "call_1", "name": "get_weather", "arguments": '{"city": "Paris"}'}


@pytest.fixture
def upstream() -> Iterator[EmulatorServer]:
    with serve("openai", chunk_size=3) as server:
        yield server


@pytest.fixture
def running(upstream: EmulatorServer) -> Iterator[Running]:
    config = {
        "routes": ["openai", "cromicle", "fast=openaicompatible,openai"],
        "base_urls": {
            "openai": upstream.url,
            "cromicle": "http://127.0.0.1:9",
            "openaicompatible": "http://127.0.0.1:9/v1",  # nothing listens
        },
        "max_retries": 0,
    }
    with gateway(config) as running:
        yield running


@pytest.fixture
def client(running: Running) -> Iterator[Any]:
    sdk = openai.OpenAI(base_url=running.url + "/v1", api_key="unused", max_retries=0)
    yield sdk
    sdk.close()


def test_create_answers_the_whole_response(
    client: Any, upstream: EmulatorServer, running: Running
) -> None:
    raw = client.responses.with_raw_response.create(
        model="openai/gpt-4o-mini", input="hello"
    )
    assert raw.headers["x-chatproviders-provider"] == "openai"
    response = raw.parse()
    assert response.object == "response"
    assert response.status == "completed"
    assert response.model == "openai/gpt-4o-mini"
    assert response.id.startswith("resp_")
    assert response.output_text == upstream.reply.text
    assert response.usage.total_tokens == (
        response.usage.input_tokens + response.usage.output_tokens
    )
    assert response.usage.total_tokens > 0
    line = running.log.getvalue().splitlines()[-1]
    assert "POST /v1/responses status=200 route=openai provider=openai" in line
    assert f"tokens={response.usage.total_tokens} " in line


def test_stream_sends_the_text_in_pieces_then_completed(
    client: Any, upstream: EmulatorServer
) -> None:
    with client.responses.stream(model="openai/gpt-4o-mini", input="hi") as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [event.type for event in events]
    assert kinds[0] == "response.created"
    assert kinds[-1] == "response.completed"
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert len(deltas) > 1
    assert "".join(deltas) == upstream.reply.text
    assert "response.output_item.done" in kinds
    numbers = [event.sequence_number for event in events]
    assert numbers == list(range(len(events)))
    assert final.output_text == upstream.reply.text
    assert final.model == "openai/gpt-4o-mini"
    assert final.usage.total_tokens > 0


@pytest.mark.parametrize("streamed", [False, True])
def test_a_tool_call_passes_through(
    client: Any, upstream: EmulatorServer, streamed: bool
) -> None:
    upstream.set_reply(text="", tool_calls=[CALL], tool_call_fragments=3)
    if streamed:
        with client.responses.stream(
            model="openai/gpt-4o-mini", input="weather?", tools=TOOLS
        ) as stream:
            events = list(stream)
            response = stream.get_final_response()
        pieces = [
            e.delta
            for e in events
            if e.type == "response.function_call_arguments.delta"
        ]
        assert len(pieces) > 1
        assert "".join(pieces) == CALL["arguments"]
    else:
        response = client.responses.create(
            model="openai/gpt-4o-mini", input="weather?", tools=TOOLS
        )
    (item,) = [item for item in response.output if item.type == "function_call"]
    assert (item.call_id, item.name) == ("call_1", "get_weather")
    assert json.loads(item.arguments) == {"city": "Paris"}
    sent = json.loads(upstream.requests[-1].body)
    assert sent["tools"] == TOOLS


def test_a_fallback_route_names_the_member_that_answered(client: Any) -> None:
    raw = client.responses.with_raw_response.create(
        model="fast/gpt-4o-mini", input="hello"
    )
    assert raw.headers["x-chatproviders-provider"] == "openai"
    assert raw.parse().model == "openai/gpt-4o-mini"


def test_a_seed_route_is_400_saying_it_has_no_responses_api(client: Any) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="cromicle", input="hello")
    assert caught.value.status_code == 400
    assert "does not serve the Responses API" in caught.value.message
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model="cromicle", input="hello", stream=True)


def test_an_unknown_parameter_is_400_naming_it(client: Any) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(
            model="openai/gpt-4o-mini", input="hello", extra_body={"frobnicate": 1}
        )
    assert "frobnicate" in caught.value.message
    assert caught.value.code == "unknown_parameter"


def test_keys_and_their_routes_apply(upstream: EmulatorServer) -> None:
    keys = [{"name": "alice", "key": "sk-alice-0123456789", "models": ["cromicle"]}]
    config = {"routes": ["openai"], "base_urls": {"openai": upstream.url}}
    with gateway({**config, "keys": keys}) as running:
        for key, error in [
            ("wrong", openai.AuthenticationError),
            ("sk-alice-0123456789", openai.PermissionDeniedError),
        ]:
            sdk = openai.OpenAI(base_url=running.url + "/v1", api_key=key)
            with pytest.raises(error):
                sdk.responses.create(model="openai/gpt-4o-mini", input="hello")
            sdk.close()
    assert upstream.requests == []


def test_a_failure_after_the_first_byte_is_one_error_event(
    client: Any, upstream: EmulatorServer, running: Running
) -> None:
    upstream.set_reply(failure={"code": "server_error", "message": "it broke"})
    with client.responses.stream(model="openai/gpt-4o-mini", input="hi") as stream:
        events = list(stream)
    kinds = [event.type for event in events]
    assert "response.output_text.delta" in kinds
    assert kinds[-1] == "error"
    assert kinds.count("error") == 1
    assert "response.completed" not in kinds
    assert "it broke" in events[-1].message
    assert "outcome=error" in running.log.getvalue()


def test_a_client_that_hangs_up_closes_the_upstream() -> None:
    """The upstream sees its connection close while it is silent mid-stream."""
    closed = threading.Event()
    events = [
        {"type": "response.created", "response": {"id": "resp_1", "output": []}},
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {"id": "msg_1", "type": "message", "content": []},
        },
        {"type": "response.output_text.delta", "item_id": "msg_1", "delta": "thinking"},
    ]

    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.send_head(headers=[("Content-Type", "text/event-stream")])
        for event in events:
            conn.send(b"data: " + json.dumps(event).encode() + b"\n\n")
        if conn.wait_closed_by_client(WAIT):
            closed.set()

    with LoopbackServer(handler) as upstream:
        config = {"routes": ["openai"], "base_urls": {"openai": upstream.url}}
        with gateway(config) as running:
            parts = urlsplit(running.url)
            body = json.dumps({"model": "openai/m", "input": "hi", "stream": True})
            with socket.create_connection((parts.hostname, parts.port), WAIT) as sock:
                sock.sendall(post("/v1/responses", body.encode()))
                received = b""
                while b"thinking" not in received:
                    data = sock.recv(65536)
                    assert data, received
                    received += data
            assert closed.wait(WAIT), "the upstream connection stayed open"
