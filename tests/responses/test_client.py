"""``OpenAICompatible(...).responses`` against the emulator: the three calls,
chat's guarantees, the OpenAI SDK against the same emulator, and as_input().
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from chatproviders import (
    APITimeoutError,
    BadRequestError,
    FallbackProvider,
    IncompleteStreamError,
    InternalServerError,
    InvalidMessagesError,
    OpenAICompatible,
    ReasoningDelta,
    ResponseEvent,
    ResponsesReply,
    ResponsesStream,
    TextDelta,
    ToolCallDelta,
    UnsupportedParameterError,
)
from chatproviders.testing import EmulatorServer, serve

MODEL = "gpt-4o-mini"
CALL = {"name": "get_weather", "arguments": {"city": "Zürich"}, "id": "call_w"}


@pytest.fixture
def server() -> Iterator[EmulatorServer]:
    with serve("openai") as running:
        yield running


@pytest.fixture
def client(server: EmulatorServer) -> Iterator[OpenAICompatible]:
    with OpenAICompatible(server.url, model=MODEL, max_retries=1) as made:
        yield made


def sdk(server: EmulatorServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url, api_key="x", max_retries=0)


def test_stream_iterates_text_and_knows_the_reply(
    server: EmulatorServer, client: OpenAICompatible
) -> None:
    """stream() yields the text pieces; the stream then holds id, usage, finish."""
    server.set_reply(text="Grüß dich \U0001f600", chunk_size=3)
    with client.responses.stream("hi") as stream:
        assert isinstance(stream, ResponsesStream)
        pieces = list(stream)
    assert pieces == ["Grü", "ß d", "ich", " \U0001f600"]
    assert stream.status == "completed" and stream.id.startswith("resp_")
    assert stream.finish_reason == "stop"
    assert stream.usage is not None and stream.usage.output_tokens == 3  # words
    body = server.requests[-1].json
    assert body == {"model": MODEL, "input": "hi", "stream": True}
    assert server.requests[-1].route == "/v1/responses"


def test_complete_sends_stream_false_and_returns_the_reply(
    server: EmulatorServer, client: OpenAICompatible
) -> None:
    """complete() sends "stream": false and gives every field of the reply."""
    server.set_reply(text="Yes.", reasoning="why not", tool_calls=[CALL])
    reply = client.responses.complete(
        [{"role": "user", "content": "weather?"}],
        instructions="be brief",
        tools=[{"type": "function", "name": "get_weather", "parameters": {}}],
        max_output_tokens=64,
        extra_body={"seed": 1},
    )
    assert isinstance(reply, ResponsesReply)
    body = server.requests[-1].json
    assert body["stream"] is False and body["seed"] == 1
    assert body["instructions"] == "be brief" and body["max_output_tokens"] == 64
    assert (str(reply), reply.reasoning, reply.status) == (
        "Yes.",
        "why not",
        "completed",
    )
    assert [
        (c.id, c.function.name, json.loads(c.function.arguments))
        for c in reply.tool_calls
    ] == [("call_w", "get_weather", {"city": "Zürich"})]
    assert reply.finish_reason == "tool_calls"
    assert [item["type"] for item in reply.output] == [
        "reasoning",
        "message",
        "function_call",
    ]
    assert reply.model == MODEL
    assert (reply.usage.input_tokens, reply.usage.reasoning_tokens) == (0, 2)


@pytest.mark.parametrize("stream", [True, False])
@pytest.mark.parametrize(
    "fields",
    [
        {"text": "plain text"},
        {"tool_calls": [CALL, {**CALL, "id": "call_2"}], "tool_call_fragments": 4},
        {"text": "so", "reasoning": "a summary"},
        {"text": "counted", "usage": {"input_tokens": 9, "output_tokens": 2}},
        {"text": "cut", "finish_reason": "length"},
    ],
)
def test_the_openai_sdk_parses_the_emulator(
    server: EmulatorServer,
    client: OpenAICompatible,
    stream: bool,
    fields: dict[str, Any],
) -> None:
    """The SDK's create() and stream() read every kind; ours reads the same."""
    server.set_reply(**fields)
    theirs = sdk(server)
    if stream:
        with theirs.responses.stream(model=MODEL, input="hi") as events:
            final = None
            for event in events:
                if event.type == "response.incomplete":
                    final = event.response
            final = final or events.get_final_response()
        ours = client.responses.stream("hi").until_done()
    else:
        final = theirs.responses.create(model=MODEL, input="hi")
        ours = client.responses.complete("hi")
    assert ours.text == final.output_text
    assert [(c.id, c.function.name, c.function.arguments) for c in ours.tool_calls] == [
        (i.call_id, i.name, i.arguments)
        for i in final.output
        if i.type == "function_call"
    ]
    assert ours.reasoning == "".join(
        s.text for i in final.output if i.type == "reasoning" for s in i.summary
    )
    assert (
        ours.usage.input_tokens,
        ours.usage.output_tokens,
        ours.usage.total_tokens,
    ) == (final.usage.input_tokens, final.usage.output_tokens, final.usage.total_tokens)
    assert ours.status == final.status and ours.id is not None


@pytest.mark.parametrize("stream", [True, False])
def test_the_openai_sdk_reads_a_failed_response(
    server: EmulatorServer, stream: bool
) -> None:
    """A failed answer parses in the SDK too: stream() yields response.failed."""
    server.set_reply(text="part", failure={"code": "server_error", "message": "boom"})
    theirs = sdk(server)
    if stream:
        with theirs.responses.stream(model=MODEL, input="hi") as events:
            kinds = [event.type for event in events]
        assert kinds[-1] == "response.failed"
    else:
        final = theirs.responses.create(model=MODEL, input="hi")
        assert final.status == "failed" and final.error.code == "server_error"


def test_failed_after_text_raises_with_the_text(
    server: EmulatorServer, client: OpenAICompatible
) -> None:
    """response.failed after text: the code's class, the partial text, no retry."""
    server.set_reply(text="part", failure={"code": "server_error", "message": "boom"})
    with client.responses.stream("hi") as stream:
        assert next(stream) == "part"
        with pytest.raises(InternalServerError) as caught:
            list(stream)
    assert caught.value.code == "server_error" and "boom" in str(caught.value)
    assert caught.value.partial_text == "part"
    assert len(server.requests) == 1


def test_retried_before_the_first_content(
    server: EmulatorServer, client: OpenAICompatible, sleeps: list[float]
) -> None:
    """A 500, then a failure before any text, are retried; the third try answers."""
    server.queue_reply(status=500)
    server.queue_reply(text="", failure={"code": "server_error", "message": "x"})
    server.queue_reply(text="fine")
    reply = client.with_options(max_retries=2).responses.complete("hi")
    assert (reply.text, reply.attempts) == ("fine", 3)
    assert len(sleeps) == 2


def test_fallback_takes_the_next_provider_before_content(
    server: EmulatorServer,
) -> None:
    """Through a FallbackProvider, a provider failing before content gives way."""
    with serve("openai", status=503) as down:
        first = OpenAICompatible(down.url, model=MODEL, max_retries=0)
        second = OpenAICompatible(server.url, model=MODEL, max_retries=0)
        with FallbackProvider([first, second]) as both:
            reply = both.responses.complete("hi")
    assert reply.text == server.reply.text
    assert reply.attempts == 2


def test_incomplete_is_length(server: EmulatorServer, client: OpenAICompatible) -> None:
    """response.incomplete: finish_reason length, the reason kept, the text whole."""
    server.set_reply(text="half a", finish_reason="length")
    reply = client.responses.complete("hi", max_output_tokens=16)
    assert (reply.text, reply.finish_reason) == ("half a", "length")
    assert (reply.status, reply.incomplete_reason) == (
        "incomplete",
        "max_output_tokens",
    )
    reply = client.responses.stream("hi").until_done()
    assert (reply.finish_reason, reply.incomplete_reason) == (
        "length",
        "max_output_tokens",
    )


def test_a_stream_cut_short_is_incomplete(
    server: EmulatorServer, client: OpenAICompatible
) -> None:
    """The body ends before response.completed: IncompleteStreamError, text kept."""
    server.set_reply(text="abcdef", chunk_size=1)
    whole = b"".join(_bytes(server))
    cut = whole.index(b"\n\n", whole.index(b'"delta": "b"')) + 2
    server.set_reply(body=whole[:cut], headers={"Content-Type": "text/event-stream"})
    with (
        pytest.raises(IncompleteStreamError) as caught,
        client.responses.stream("hi") as stream,
    ):
        list(stream)
    assert caught.value.partial_text == "ab" == stream.text


def _bytes(server: EmulatorServer) -> list[bytes]:
    from chatproviders.testing import _responses

    body = {"model": MODEL, "input": "hi", "stream": True}
    return _responses.encode(server.reply, body).writes


def stall_after_first_text(server: EmulatorServer) -> None:
    server.set_reply(text="abc", chunk_size=1)
    whole = b"".join(_bytes(server))
    after = whole.index(b"\n\n", whole.index(b'"delta": "a"')) + 2
    server.set_reply(text="abc", chunk_size=1, stall_after=after)


def test_total_timeout_bounds_a_stalled_stream(server: EmulatorServer) -> None:
    """A stream that stalls after its first text ends at total_timeout."""
    stall_after_first_text(server)
    with OpenAICompatible(server.url, model=MODEL, total_timeout=0.5) as client:
        with (
            pytest.raises(APITimeoutError) as caught,
            client.responses.stream("hi") as stream,
        ):
            list(stream)
    assert caught.value.limit == "total"
    assert caught.value.partial_text == "a"


def test_close_from_another_thread_ends_the_loop(server: EmulatorServer) -> None:
    """close() from another thread wakes a read blocked on a stalled stream."""
    stall_after_first_text(server)
    with OpenAICompatible(server.url, model=MODEL) as client:
        stream = client.responses.stream("hi")
        got: list[str] = []
        reading = threading.Event()

        def read() -> None:
            for piece in stream:
                got.append(piece)
                reading.set()

        worker = threading.Thread(target=read)
        worker.start()
        assert reading.wait(5)
        stream.close()
        worker.join(5)
        assert not worker.is_alive() and stream.closed
        assert got == ["a"] and stream.text == "a"
        with pytest.raises(IncompleteStreamError):
            stream.until_done()


def test_events_are_typed_and_unknown_ones_raw(
    server: EmulatorServer, client: OpenAICompatible
) -> None:
    """events() yields chat's typed events; an unknown type comes raw."""
    server.set_reply(text="ok", reasoning="r", tool_calls=[CALL])
    kinds = {type(event) for event in client.responses.stream("hi").events()}
    assert {TextDelta, ReasoningDelta, ToolCallDelta} <= kinds
    extra = b'data: {"type": "response.new_thing", "x": 1}\n\n'
    body = b"".join(_bytes(server))
    server.set_reply(body=extra + body, headers={"Content-Type": "text/event-stream"})
    with client.responses.stream("hi") as stream:
        events = list(stream.events())
    assert (
        ResponseEvent("response.new_thing", {"type": "response.new_thing", "x": 1})
        in events
    )


def test_in_background_threads_and_asyncio(
    server: EmulatorServer, client: OpenAICompatible
) -> None:
    """stream_in_background gives the text, then the whole reply; async for too."""
    server.set_reply(text="one two three", chunk_size=4)
    background = client.responses.stream_in_background("hi")
    assert background.result(timeout=10) == "one two three"
    reply = background.response()
    assert reply.usage.output_tokens == 3 and reply.finish_reason == "stop"

    async def gather() -> str:
        async with client.responses.stream_in_background("hi") as stream:
            return "".join([piece async for piece in stream])

    assert asyncio.run(gather()) == "one two three"


def test_previous_response_id_refused_then_as_input(
    server: EmulatorServer, client: OpenAICompatible
) -> None:
    """previous_response_id refused by a stateless server; as_input() instead."""
    server.set_reply(tool_calls=[CALL])
    first_input = [{"role": "user", "content": "Weather in Zürich?"}]
    first = client.responses.complete(first_input)
    with pytest.raises(BadRequestError, match="previous_response_id"):
        client.responses.complete("and now?", previous_response_id=first.id)
    server.set_reply(text="Sunny, 21 °C.")
    call = first.tool_calls[0]
    answer = {"type": "function_call_output", "call_id": call.id, "output": '{"c": 21}'}
    second = client.responses.complete(first_input + first.as_input() + [answer])
    assert second.text == "Sunny, 21 °C."
    sent = server.requests[-1].json["input"]
    assert sent[1] == {
        "type": "function_call",
        "call_id": "call_w",
        "name": "get_weather",
        "arguments": call.function.arguments,
    }
    assert sent[2]["call_id"] == sent[1]["call_id"]


def test_as_input_of_a_text_reply() -> None:
    """as_input() turns a message into an assistant message, drops plain reasoning."""
    reply = ResponsesReply(
        id="r",
        status="completed",
        model="m",
        text="hi",
        tool_calls=(),
        reasoning="x",
        usage=None,
        finish_reason="stop",
        incomplete_reason=None,
        provider="p",
        output=(
            {"type": "reasoning", "id": "rs", "summary": []},
            {"type": "message", "content": [{"type": "output_text", "text": "hi"}]},
        ),
    )
    assert reply.as_input() == [
        {"type": "message", "role": "assistant", "content": "hi"}
    ]


@pytest.mark.parametrize(
    ("args", "params", "error", "words"),
    [
        ("", {}, InvalidMessagesError, "empty"),
        ([], {}, InvalidMessagesError, "non-empty"),
        ([{"content": "x"}], {}, InvalidMessagesError, "'role'"),
        ([{"type": "function_call_output"}], {}, InvalidMessagesError, "call_id"),
        ("hi", {"max_tokens": 5}, UnsupportedParameterError, "max_tokens"),
        ("hi", {"max_output_tokens": "5"}, UnsupportedParameterError, "int"),
        ("hi", {"temperature": float("nan")}, UnsupportedParameterError, "JSON"),
        (
            "hi",
            {"tools": [{"type": "function", "function": {"name": "f"}}]},
            UnsupportedParameterError,
            "without the 'function' wrapper",
        ),
    ],
)
def test_bad_arguments_are_refused_before_sending(
    server: EmulatorServer,
    client: OpenAICompatible,
    args: Any,
    params: dict[str, Any],
    error: type[Exception],
    words: str,
) -> None:
    """Bad input or parameters raise a clear error and send nothing."""
    with pytest.raises(error, match=words):
        client.responses.complete(args, **params)
    assert server.requests == []
