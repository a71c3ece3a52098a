"""Parallel tool calls that share an ``index`` stay separate calls.

Ollama streams every parallel call at ``index: 0``, each with its own id; a
new id at an index whose call already has a different id opens a new call.
In a whole (non-streamed) reply, ``message.tool_calls`` are separate calls by
their place in the list, whatever their ``index`` fields say.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest

from chatproviders import OpenAICompatible
from tests.loopback import Conn, LoopbackServer

HI = [{"role": "user", "content": "weather and time?"}]
needs_sdk = pytest.mark.skipif(
    sys.version_info < (3, 10), reason="openai's SDK needs Python 3.10+"
)


def call(index: int, call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {
        "index": index,
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }


def chunk(delta: dict[str, Any], finish: Any = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "llama3.2",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


#: What Ollama's /v1/chat/completions streams for two parallel calls: each
#: call whole, in a chunk of its own, both at index 0 with distinct ids.
OLLAMA_STREAM = [
    chunk({"role": "assistant", "content": ""}),
    chunk({"tool_calls": [call(0, "call_0", "get_weather", '{"city": "Paris"}')]}),
    chunk({"tool_calls": [call(0, "call_1", "get_time", '{"tz": "CET"}')]}),
    chunk({}, "tool_calls"),
]
EXPECTED = [
    ("call_0", "get_weather", '{"city": "Paris"}'),
    ("call_1", "get_time", '{"tz": "CET"}'),
]


def serve(body: bytes, content_type: str) -> LoopbackServer:
    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.respond(200, body, content_type)

    return LoopbackServer(handler)


def sse(events: list[Any]) -> bytes:
    lines = [f"data: {json.dumps(event)}\n\n" for event in events]
    return ("".join(lines) + "data: [DONE]\n\n").encode()


def triples(calls: Any) -> list[tuple[str, str, str]]:
    return [(c.id, c.function.name, c.function.arguments) for c in calls]


def test_ollama_streamed_parallel_calls_at_index_0_stay_apart() -> None:
    """Two calls streamed at index 0 with distinct ids are two calls, not
    'call_0call_1' named 'get_weatherget_time'."""
    with serve(sse(OLLAMA_STREAM), "text/event-stream") as loop:
        client = OpenAICompatible(loop.url + "/v1", model="llama3.2")
        with client.stream(HI) as stream:
            for _ in stream:
                pass
    assert triples(stream.tool_calls) == EXPECTED
    assert stream.finish_reason == "tool_calls"


def test_two_calls_at_one_index_in_one_chunk_stay_apart() -> None:
    """Both calls in one chunk, both at index 0, then a fragment without an
    id: it continues the call opened last at that index."""
    events = [
        chunk(
            {
                "tool_calls": [
                    call(0, "call_0", "get_weather", '{"city": '),
                    call(0, "call_1", "get_time", '{"tz": '),
                ]
            }
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"CET"}'}}]}),
    ]
    with serve(sse(events), "text/event-stream") as loop:
        client = OpenAICompatible(loop.url + "/v1", model="llama3.2")
        with client.stream(HI) as stream:
            for _ in stream:
                pass
    assert triples(stream.tool_calls) == [
        ("call_0", "get_weather", '{"city": '),
        ("call_1", "get_time", '{"tz": "CET"}'),
    ]


def test_fragments_repeating_their_id_still_join() -> None:
    """A fragment that repeats the id its index holds (llama.cpp does) is the
    same call: only a different id opens a new one."""
    events = [
        chunk({"tool_calls": [call(0, "call_0", "f", '{"a"')]}),
        chunk({"tool_calls": [call(0, "call_0", "f", ": 1}")]}),
    ]
    with serve(sse(events), "text/event-stream") as loop:
        client = OpenAICompatible(loop.url + "/v1", model="m")
        with client.stream(HI) as stream:
            for _ in stream:
                pass
    assert triples(stream.tool_calls) == [("call_0", "f", '{"a": 1}')]


WHOLE_REPLY = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "llama3.2",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    call(0, "call_0", "get_weather", '{"city": "Paris"}'),
                    call(0, "call_1", "get_time", '{"tz": "CET"}'),
                    call(0, "call_2", "get_weather", '{"city": "Oslo"}'),
                ],
            },
            "finish_reason": "tool_calls",
        }
    ],
}


def test_a_whole_reply_keeps_calls_apart_whatever_their_index() -> None:
    """complete(): three tool_calls all saying index 0 are three calls, in
    list order."""
    body = json.dumps(WHOLE_REPLY).encode()
    with serve(body, "application/json") as loop:
        client = OpenAICompatible(loop.url + "/v1", model="llama3.2")
        reply = client.complete(HI)
    assert triples(reply.tool_calls) == [
        *EXPECTED,
        ("call_2", "get_weather", '{"city": "Oslo"}'),
    ]


def test_a_whole_reply_ignores_a_bad_index_field() -> None:
    """In a whole reply the index field means nothing (the SDK's message type
    has none), so an odd one does not fail the reply."""
    reply = json.loads(json.dumps(WHOLE_REPLY))
    calls = reply["choices"][0]["message"]["tool_calls"]
    calls[0]["index"], calls[1]["index"] = 5, "x"
    with serve(json.dumps(reply).encode(), "application/json") as loop:
        client = OpenAICompatible(loop.url + "/v1", model="llama3.2")
        got = client.complete(HI)
    assert [c.id for c in got.tool_calls] == ["call_0", "call_1", "call_2"]


@needs_sdk
def test_the_sdk_agrees_on_a_whole_reply() -> None:
    """The OpenAI SDK's parsed ChatCompletion has the same three calls."""
    from openai._models import construct_type
    from openai.types.chat import ChatCompletion

    completion = construct_type(type_=ChatCompletion, value=WHOLE_REPLY)
    theirs = triples(completion.choices[0].message.tool_calls)
    body = json.dumps(WHOLE_REPLY).encode()
    with serve(body, "application/json") as loop:
        client = OpenAICompatible(loop.url + "/v1", model="llama3.2")
        assert triples(client.complete(HI).tool_calls) == theirs


@needs_sdk
def test_the_sdk_accumulator_glues_the_ollama_stream_ours_does_not() -> None:
    """The SDK's stream accumulator joins by index alone and glues Ollama's
    two calls into one; this is where ours deliberately differs."""
    from openai._models import construct_type
    from openai.lib.streaming.chat import ChatCompletionStreamState
    from openai.types.chat import ChatCompletionChunk

    state = ChatCompletionStreamState()
    for event in OLLAMA_STREAM:
        state.handle_chunk(construct_type(type_=ChatCompletionChunk, value=event))
    message = state.current_completion_snapshot.choices[0].message
    assert triples(message.tool_calls) == [
        ("call_0call_1", "get_weatherget_time", '{"city": "Paris"}{"tz": "CET"}')
    ]
