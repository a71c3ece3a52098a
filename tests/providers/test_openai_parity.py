"""Tool calls, usage, reasoning and finish reasons, checked against the OpenAI SDK.

``tests/data/openai_chat_streams.json`` holds chat-completion event sequences
in the shapes servers send (OpenAI, DeepSeek, Ollama, vLLM, and llama.cpp's
Python server, which repeats a tool call's id and name in every fragment).
Each goes through our client, over a loopback socket with every event split
across two writes, and through the OpenAI SDK's accumulator
(``ChatCompletionStreamState``); the content, tool calls, finish reason,
usage and reasoning must agree, except where a server strays from OpenAI's
shape and ours does better.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Optional

import pytest

from chatproviders import (
    APIError,
    FinishReported,
    ModelReported,
    OpenAICompatible,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
    UsageReported,
)
from chatproviders._streams.events import ReplyState
from chatproviders._streams.openai_chunks import iter_chat_events
from tests.constants import HELLO
from tests.loopback import WAIT, Conn, LoopbackServer

STREAMS: dict[str, list[Any]] = json.loads(
    (Path(__file__).parent.parent / "data" / "openai_chat_streams.json").read_text(
        "utf-8"
    )
)
#: Where a server strays from OpenAI's stream shape and ours does better.
BETTER_THAN_THE_SDK = {"llamacpp_repeated_name"}
#: openai's SDK (in the [test] extra) supports Python 3.10 and later only.
needs_sdk = pytest.mark.skipif(
    sys.version_info < (3, 10), reason="openai's SDK needs Python 3.10+"
)


def event_bytes(event: Any) -> bytes:
    data = event if event == "[DONE]" else json.dumps(event, ensure_ascii=False)
    return f"data: {data}\n\n".encode()


def send_events(conn: Conn, events: list[Any]) -> None:
    """``events`` as chunks, each event cut in two inside its JSON; the last
    piece goes with the body's end in one write, since a client that has
    read ``[DONE]`` waits only briefly for the end before closing."""
    pieces: list[bytes] = []
    for event in events:
        data = event_bytes(event)
        pieces += [data[: len(data) // 2], data[len(data) // 2 :]]
    for piece in pieces[:-1]:
        conn.send(piece)
    last = pieces[-1]
    conn.sock.sendall(b"%x\r\n%s\r\n0\r\n\r\n" % (len(last), last))


def serve_events(events: list[Any]) -> LoopbackServer:
    """A loopback server answering one request with ``events`` (chunked)."""

    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.send_head(200, [("Content-Type", "text/event-stream")])
        send_events(conn, events)

    return LoopbackServer(handler)


def summary(
    content: Optional[str],
    calls: list[tuple[str, str, str, str]],
    finish: Optional[str],
    usage: Optional[tuple[int, int, int]],
    reasoning: Optional[str],
    model: Optional[str],
) -> dict[str, Any]:
    return {
        "content": content or "",
        "tool_calls": calls,
        "finish_reason": finish,
        "usage": usage,
        "reasoning": reasoning or "",
        "model": model,
    }


def ours_of(stream: Any) -> dict[str, Any]:
    """The summary of a ChatStream or ChatResponse."""
    usage = stream.usage
    return summary(
        stream.text,
        [
            (c.id, c.type, c.function.name, c.function.arguments)
            for c in stream.tool_calls
        ],
        stream.finish_reason,
        None
        if usage is None
        else (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens),
        stream.reasoning,
        stream.model,
    )


def ours(events: list[Any]) -> dict[str, Any]:
    """Our client's reading of ``events``, streamed over loopback."""
    with serve_events(events) as loop:
        client = OpenAICompatible(loop.url + "/v1", model="requested", max_retries=0)
        with client.stream(HELLO) as stream:
            try:
                for _ in stream:
                    pass
            except APIError as error:
                assert error.partial_text == stream.text
        return ours_of(stream)


def sdk(events: list[Any]) -> dict[str, Any]:
    """The OpenAI SDK's reading of ``events``, as its Stream and accumulator
    do it: chunks up to ``[DONE]`` or an ``{"error": ...}`` event."""
    from openai._models import construct_type
    from openai.lib.streaming.chat import ChatCompletionStreamState
    from openai.types.chat import ChatCompletionChunk

    state = ChatCompletionStreamState()
    for event in events:
        if event == "[DONE]" or "error" in event:
            break
        state.handle_chunk(construct_type(type_=ChatCompletionChunk, value=event))
    # The snapshot, as get_final_completion() would give it without parsing
    # (which refuses a reply cut by length).
    completion = state.current_completion_snapshot
    message = completion.choices[0].message
    extra = message.model_extra or {}
    usage = completion.usage
    return summary(
        message.content,
        [
            (c.id, c.type, c.function.name, c.function.arguments)
            for c in message.tool_calls or []
        ],
        completion.choices[0].finish_reason,
        None
        if usage is None
        else (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens),
        extra.get("reasoning_content") or extra.get("reasoning"),
        completion.model,
    )


def test_there_are_a_dozen_sequences() -> None:
    """The data file holds the sequences the differential tests promise."""
    assert len(STREAMS) >= 12
    for name in (
        "text_only",
        "text_with_usage",
        "two_parallel_tool_calls_interleaved",
        "one_tool_call_in_ten_fragments",
        "repeated_index_in_one_chunk",
        "reasoning_then_text",
        "ollama_reasoning_field",
        "error_mid_stream",
        "llamacpp_repeated_name",
    ):
        assert name in STREAMS


@pytest.mark.slow
@needs_sdk
@pytest.mark.parametrize("name", sorted(set(STREAMS) - BETTER_THAN_THE_SDK))
def test_streams_read_as_the_openai_sdk_reads_them(name: str) -> None:
    """Content, tool calls, finish reason, usage, reasoning and model agree
    with the SDK's ChatCompletionStreamState on the same events."""
    expected = sdk(STREAMS[name])
    assert ours(STREAMS[name]) == expected
    assert expected != summary("", [], None, None, None, None)  # not vacuous


@needs_sdk
def test_a_llamacpp_stream_keeps_one_name_and_one_id() -> None:
    """llama.cpp repeats id and name in every fragment: the SDK glues them 18
    times over (198-character name, 1,098-character id); ours keeps one."""
    events = STREAMS["llamacpp_repeated_name"]
    theirs, mine = sdk(events), ours(events)
    [(their_id, _, their_name, their_arguments)] = theirs["tool_calls"]
    assert their_name == "get_weather" * 18 and len(their_name) == 198
    assert len(their_id) == 1098
    call_id = "call__0_get_weather_cmpl-8f0c2f5e-4b8a-4d0e-9a57-3c1f2b6d7e90"
    arguments = '{"location": "Paris, France", "unit": "celsius"}'
    assert their_arguments == arguments
    assert mine["tool_calls"] == [(call_id, "function", "get_weather", arguments)]
    assert mine["finish_reason"] == theirs["finish_reason"] == "tool_calls"


@needs_sdk
def test_an_error_event_keeps_the_partial_text_and_state() -> None:
    """A mid-stream {"error": ...} raises APIError with the text received; the
    stream keeps it too, as the SDK's snapshot does."""
    with serve_events(STREAMS["error_mid_stream"]) as loop:
        client = OpenAICompatible(loop.url + "/v1", model="m", max_retries=0)
        with client.stream(HELLO) as stream:
            with pytest.raises(APIError, match="server had an error") as caught:
                list(stream)
    assert caught.value.partial_text == stream.text == "The answer is"
    assert stream.finish_reason is None and stream.usage is None
    assert sdk(STREAMS["error_mid_stream"])["content"] == "The answer is"


@pytest.mark.parametrize("name", sorted(set(STREAMS) - {"error_mid_stream"}))
def test_a_whole_chat_completion_gives_the_same_fields(name: str) -> None:
    """complete() on one chat.completion object (built from the stream's
    result) fills the same fields as the stream."""
    streamed = ours(STREAMS[name])
    message: dict[str, Any] = {"role": "assistant", "content": streamed["content"]}
    if streamed["tool_calls"]:
        message["tool_calls"] = [
            {"id": i, "type": t, "function": {"name": n, "arguments": a}}
            for i, t, n, a in streamed["tool_calls"]
        ]
    if streamed["reasoning"]:
        message["reasoning_content"] = streamed["reasoning"]
    reply: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": streamed["model"],
        "choices": [
            {"index": 0, "message": message, "finish_reason": streamed["finish_reason"]}
        ],
    }
    if streamed["usage"]:
        keys = ("prompt_tokens", "completion_tokens", "total_tokens")
        reply["usage"] = dict(zip(keys, streamed["usage"]))

    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.respond(200, json.dumps(reply).encode(), "application/json")

    with LoopbackServer(handler) as loop:
        client = OpenAICompatible(loop.url + "/v1", model="requested")
        assert ours_of(client.complete(HELLO)) == streamed


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_the_decoder_gives_the_same_events_for_any_split(name: str) -> None:
    """Fed one byte at a time, the decoder yields what it yields for the whole
    body: events never depend on where reads end."""
    body = b"".join(event_bytes(event) for event in STREAMS[name])

    def pieces(chunks: list[bytes]) -> list[Any]:
        got: list[Any] = []
        try:
            got.extend(iter_chat_events(chunks))
        except APIError as error:
            got.append(str(error))
        return got

    whole = pieces([body])
    assert pieces([body[i : i + 1] for i in range(len(body))]) == whole
    assert any(not isinstance(item, str) for item in whole)


def test_events_show_every_delta_in_order_and_iteration_only_text() -> None:
    """events() yields typed deltas in stream order; plain iteration of the
    same reply yields the answer text only; both fill the same fields."""
    events = STREAMS["reasoning_then_text"]
    with serve_events(events) as loop:
        client = OpenAICompatible(loop.url + "/v1", model="m")
        with client.stream(HELLO) as stream:
            seen = list(stream.events())
        with client.stream(HELLO) as plain:
            assert list(plain) == ["Hello", "!"]
    assert seen == [
        ModelReported("deepseek-reasoner"),
        ReasoningDelta("The user greets; "),
        ReasoningDelta("answer briefly."),
        TextDelta("Hello"),
        TextDelta("!"),
        FinishReported("stop"),
        UsageReported(seen[-1].usage),  # type: ignore[attr-defined]
    ]
    assert ours_of(stream) == ours_of(plain)
    assert stream.reasoning == "The user greets; answer briefly."


def test_events_after_some_iteration_give_the_rest() -> None:
    """Each delta goes once, to whichever asks first: events() after a plain
    next() carries on from there, and the fields see every delta."""
    events = STREAMS["text_then_tool_call"]
    with serve_events(events) as loop:
        client = OpenAICompatible(loop.url + "/v1", model="m")
        with client.stream(HELLO) as stream:
            assert next(stream) == "Let me check."
            rest = list(stream.events())
    assert [type(event) for event in rest] == [
        ToolCallDelta,
        ToolCallDelta,
        FinishReported,
        UsageReported,
    ]
    assert stream.text == "Let me check."
    assert stream.tool_calls[0].function.arguments == '{"query": "news"}'


def test_stream_returns_at_the_first_tool_call_fragment() -> None:
    """A reply of tool calls only is not read whole before stream() returns:
    the first fragment is enough, and the rest arrives while iterating."""
    proceed = threading.Event()
    events = STREAMS["one_tool_call_in_ten_fragments"]

    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.send_head(200, [("Content-Type", "text/event-stream")])
        conn.send(event_bytes(events[0]))
        assert proceed.wait(WAIT), "stream() waited for the whole reply"
        send_events(conn, events[1:])

    with LoopbackServer(handler) as loop:
        client = OpenAICompatible(loop.url + "/v1", model="m")
        with client.stream(HELLO) as stream:
            assert stream.tool_calls[0].function.name == "get_forecast"
            assert stream.tool_calls[0].function.arguments == ""
            proceed.set()
            assert list(stream) == []
    assert stream.tool_calls[0].function.arguments.endswith('"days": 3}')
    assert stream.finish_reason == "tool_calls"


def test_the_reported_model_wins_over_the_requested_one() -> None:
    """stream.model is the name the server reported; requested_model stays."""
    with serve_events(STREAMS["ollama_reasoning_field"]) as loop:
        client = OpenAICompatible(loop.url + "/v1", model="qwen3")
        with client.stream(HELLO) as stream:
            assert stream.until_done().model == "qwen3:0.6b"
    assert stream.requested_model == "qwen3"


def test_a_tool_call_fragment_without_index_joins_the_last_call() -> None:
    """Servers that omit the index: a fragment joins the call before it, and
    a fragment with a new id opens the next call."""
    state = ReplyState()
    for delta in (
        ToolCallDelta(None, "call_a", "function", "f", '{"x"'),
        ToolCallDelta(None, None, None, None, ": 1}"),
        ToolCallDelta(None, "call_b", "function", "g", "{}"),
    ):
        delta.apply(state)
    assert [
        (c.id, c.function.name, c.function.arguments) for c in state.tool_calls
    ] == [
        ("call_a", "f", '{"x": 1}'),
        ("call_b", "g", "{}"),
    ]


@pytest.mark.parametrize(
    ("event", "problem"),
    [
        ({"choices": [{"delta": {"tool_calls": {"index": 0}}}]}, "is not a list"),
        (
            {"choices": [{"delta": {"tool_calls": [{"index": "0"}]}}]},
            "malformed tool call",
        ),
        (
            {"choices": [{"delta": {"tool_calls": [{"function": {"name": 1}}]}}]},
            "malformed tool call",
        ),
        ({"choices": [], "usage": {"prompt_tokens": "9"}}, "malformed usage"),
        ({"choices": [{"delta": "x"}]}, "without choices"),
    ],
)
def test_malformed_fields_are_our_errors(event: Any, problem: str) -> None:
    """A tool call or usage of the wrong shape is a ResponseFormatError naming
    it, not a TypeError from deep inside."""
    from chatproviders import ResponseFormatError

    with pytest.raises(ResponseFormatError, match=problem):
        list(iter_chat_events([event_bytes(event), event_bytes("[DONE]")]))


def test_a_null_delta_is_an_empty_one() -> None:
    """ "delta": null (seen with some proxies) reads as an empty delta."""
    events = [{"choices": [{"delta": None, "finish_reason": "stop"}]}, "[DONE]"]
    got = list(iter_chat_events([b"".join(event_bytes(e) for e in events)]))
    assert got == [FinishReported("stop")]


def test_the_fields_grow_with_the_stream() -> None:
    """Before the end the fields hold what has arrived: no tool call and no
    finish reason while the text comes, both once the loop has ended."""
    with serve_events(STREAMS["text_then_tool_call"]) as loop:
        client = OpenAICompatible(loop.url + "/v1", model="m")
        with client.stream(HELLO) as stream:
            assert next(stream) == "Let me check."
            assert (stream.tool_calls, stream.finish_reason, stream.usage) == (
                (),
                None,
                None,
            )
            assert list(stream) == []
    assert stream.tool_calls[0].function.name == "search"
    assert stream.finish_reason == "tool_calls"
    assert stream.usage is not None and stream.usage.total_tokens == 41


def test_a_decoder_yielding_something_else_is_a_clear_error() -> None:
    """A provider whose iter_text yields neither str nor an event gets a
    TypeError naming it, and the stream is closed."""

    class Odd(OpenAICompatible):
        def iter_text(self, chunks: Iterable[bytes]) -> Iterator[Any]:  # type: ignore[override]
            for _ in chunks:
                yield b"bytes"

    def handler(conn: Conn) -> None:
        conn.read_request()  # the body in one write, which the kernel takes
        body = b"".join(event_bytes(event) for event in STREAMS["text_only"])
        conn.respond(200, body, "text/event-stream")

    with LoopbackServer(handler) as loop:
        client = Odd(loop.url + "/v1", model="m")
        with pytest.raises(TypeError, match=r"Odd\.iter_text yielded bytes"):
            client.stream(HELLO)
