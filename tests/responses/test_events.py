"""The Responses API's reply read from plain bytes: every event type, every
split point, llama.cpp's stream without indexes, and the OpenAI SDK's reading
of the same bytes as the reference.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from chatproviders import (
    APIError,
    AuthenticationError,
    BadRequestError,
    FinishReported,
    IncompleteStreamError,
    InternalServerError,
    ModelReported,
    RateLimitError,
    ReasoningDelta,
    ResponseFormatError,
    ToolCallDelta,
    UsageReported,
)
from chatproviders._responses import (
    OutputItemDone,
    ResponseEvent,
    ResponseReported,
    ResponseUsage,
    iter_response_events,
)
from chatproviders._responses._events import ResponsesState
from chatproviders.testing import Reply
from chatproviders.testing import _responses as emulator

DATA = Path(__file__).resolve().parent.parent / "data"
#: Written from llama.cpp's server source: reasoning, text and a tool call.
LLAMACPP = (DATA / "llamacpp_responses_stream.txt").read_bytes()
#: Recorded from a real llama-server (the tiny random model, greedy, 12 tokens).
LLAMA_SERVER = (DATA / "llama_server_responses_stream.txt").read_bytes()
BODY = {"model": "gpt-4o-mini", "input": "hi", "stream": True}

#: One Reply of each kind the emulator answers.
KINDS = {
    "text": Reply(text="Grüß dich \u2014 \U0001f600 ok", chunk_size=3),
    "tools": Reply(
        tool_calls=[
            {"name": "get_weather", "arguments": {"city": "Zürich", "q": 'a "b"'}},
            {"name": "get_time", "arguments": {"tz": "Europe/Zürich"}, "id": "c2"},
        ],
        tool_call_fragments=5,
    ),
    "reasoning": Reply(text="Yes.", reasoning="Think \u2014 then speak", chunk_size=4),
    "usage": Reply(text="counted", usage={"input_tokens": 7, "output_tokens": 3}),
    "incomplete": Reply(text="cut sho", finish_reason="length"),
}


def replay(chunks: list[bytes]) -> dict[str, Any]:
    """Read ``chunks`` as a stream does, into what the reply holds."""
    state = ResponsesState()
    text = []
    for piece in iter_response_events(chunks):
        if isinstance(piece, str):
            text.append(piece)
        else:
            piece.apply(state)
    return {
        "text": "".join(text),
        "calls": [
            (c.id, c.function.name, c.function.arguments) for c in state.tool_calls
        ],
        "reasoning": state.reasoning,
        "usage": state.usage,
        "finish": state.finish_reason,
        "id": state.id,
        "model": state.model,
        "output": state.output,
    }


def stream_bytes(reply: Reply, **body: Any) -> list[bytes]:
    return emulator.encode(reply, {**BODY, **body}).writes


def events(*objects: dict[str, Any]) -> list[bytes]:
    return [f"data: {json.dumps(data)}\n\n".encode() for data in objects]


def created() -> dict[str, Any]:
    return {
        "type": "response.created",
        "response": {"id": "r1", "status": "in_progress"},
    }


def completed(**response: Any) -> dict[str, Any]:
    return {
        "type": "response.completed",
        "response": {"id": "r1", "status": "completed", "output": [], **response},
    }


def sdk_final(chunks: list[bytes], *, stream: bool = True) -> Any:
    """What the OpenAI SDK builds from the same bytes."""
    body = b"".join(chunks)
    content_type = "text/event-stream" if stream else "application/json"

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"content-type": content_type})

    client = openai.OpenAI(
        api_key="x",
        base_url="http://test/v1",
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    if not stream:
        return client.responses.create(model="m", input="hi")
    with client.responses.stream(model="m", input="hi") as events:
        for event in events:
            if event.type == "response.incomplete":  # no final response then
                return event.response
        return events.get_final_response()


def sdk_view(final: Any) -> dict[str, Any]:
    calls = [
        (item.call_id, item.name, item.arguments)
        for item in final.output
        if item.type == "function_call"
    ]
    reasoning = "".join(
        part.text
        for item in final.output
        if item.type == "reasoning"
        for part in [*item.summary, *(item.content or [])]
    )
    usage = final.usage
    return {
        "text": final.output_text,
        "calls": calls,
        "reasoning": reasoning,
        "usage": None
        if usage is None
        else (usage.input_tokens, usage.output_tokens, usage.total_tokens),
    }


def our_view(result: dict[str, Any]) -> dict[str, Any]:
    usage = result["usage"]
    return {
        "text": result["text"],
        "calls": result["calls"],
        "reasoning": result["reasoning"],
        "usage": None
        if usage is None
        else (usage.input_tokens, usage.output_tokens, usage.total_tokens),
    }


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_streams_read_as_the_openai_sdk_reads_them(kind: str) -> None:
    """Text, calls, reasoning and usage equal the SDK's final response."""
    chunks = stream_bytes(KINDS[kind])
    assert our_view(replay(chunks)) == sdk_view(sdk_final(chunks))


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_whole_replies_read_as_the_openai_sdk_reads_them(kind: str) -> None:
    """A ``"stream": false`` object gives what the SDK's create() gives."""
    chunks = emulator.encode(KINDS[kind], {**BODY, "stream": False}).writes
    assert our_view(replay(chunks)) == sdk_view(sdk_final(chunks, stream=False))


def test_llamacpp_stream_without_indexes() -> None:
    """llama.cpp's events, without output_index, content_index or sequence_number."""
    result = replay([LLAMACPP])
    assert result["text"] == "Grüß dich \u2014 wie geht's? \U0001f600"
    assert result["reasoning"] == "The user greets; answer in kind."
    args = '{"city": "Zürich", "note": "say \\"hi\\" \\u00e9"}'
    assert result["calls"] == [("call_Zz9", "get_weather", args)]
    assert json.loads(args)["note"] == 'say "hi" é'
    assert result["usage"] == ResponseUsage(21, 30, 51)
    assert result["finish"] == "tool_calls"
    assert result["id"] == "resp_Ab12"
    assert [item["type"] for item in result["output"]] == [
        "reasoning",
        "message",
        "function_call",
    ]


def test_the_sdk_reads_llamacpp_text_and_usage_alike() -> None:
    """The SDK's create()-style reading of llama.cpp's final object agrees with ours."""
    final = LLAMACPP.split(b"event: response.completed\ndata: ")[1]
    response = json.loads(final)["response"]
    chunks = [json.dumps(response).encode()]
    assert our_view(replay(chunks)) == sdk_view(sdk_final(chunks, stream=False))


def test_a_recorded_llama_server_stream() -> None:
    """A real llama-server stream reads as its final response says; the SDK's
    stream() fails on it (no output_index), its create()-style reading agrees.
    """
    result = replay([LLAMA_SERVER])
    final = json.loads(LLAMA_SERVER.split(b"data: ")[-1])["response"]
    assert result["text"] == final["output"][0]["content"][0]["text"]
    assert len(result["text"]) == 12
    assert result["usage"] == ResponseUsage(6, 12, 18)
    whole = [json.dumps(final).encode()]
    assert our_view(result) == sdk_view(sdk_final(whole, stream=False))
    with pytest.raises(TypeError):
        sdk_final([LLAMA_SERVER])


@pytest.mark.slow
@pytest.mark.parametrize("name", ["llamacpp", "llama-server", "openai"])
def test_every_byte_boundary(name: str) -> None:
    """A recorded stream split at any byte (mid-UTF-8, -escape, -CRLF) reads alike."""
    if name == "llamacpp":
        body = LLAMACPP
    elif name == "llama-server":
        body = LLAMA_SERVER
    else:
        reply = Reply(
            text="Grüß \U0001f600",
            reasoning="é",
            tool_calls=[{"name": "f", "arguments": '{"a": "\\u00e9\\"ü"}'}],
            split_crlf=True,
        )
        body = b"".join(stream_bytes(reply))
    whole = replay([body])
    for cut in range(1, len(body)):
        assert replay([body[:cut], body[cut:]]) == whole, cut
    assert replay([body[i : i + 1] for i in range(len(body))]) == whole


def test_arguments_in_pieces_are_joined_exactly() -> None:
    """Argument deltas split mid-escape are joined as sent, parallel calls by item."""
    deltas = ['{"q": "a\\', 'u00e9 \\"', 'x\\"', '"}']
    chunks = events(
        created(),
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {
                "type": "function_call",
                "id": "fc_1",
                "call_id": "c1",
                "name": "f",
                "arguments": "",
            },
        },
        {
            "type": "response.output_item.added",
            "output_index": 1,
            "item": {
                "type": "function_call",
                "id": "fc_2",
                "call_id": "c2",
                "name": "g",
                "arguments": "",
            },
        },
        *[
            {
                "type": "response.function_call_arguments.delta",
                "output_index": i % 2,
                "item_id": f"fc_{i % 2 + 1}",
                "delta": delta,
            }
            for i, delta in enumerate(d for d in deltas for _ in (0, 1))
        ],
        completed(output=[{"type": "function_call"}]),
    )
    joined = "".join(deltas)
    assert json.loads(joined) == {"q": 'aé "x"'}
    assert replay(chunks)["calls"] == [("c1", "f", joined), ("c2", "g", joined)]


def test_parallel_calls_without_indexes_go_by_item_id() -> None:
    """Without output_index, interleaved argument deltas find their call by item_id."""
    chunks = events(
        created(),
        {
            "type": "response.output_item.added",
            "item": {
                "type": "function_call",
                "id": "fc_1",
                "call_id": "c1",
                "name": "f",
            },
        },
        {
            "type": "response.output_item.added",
            "item": {
                "type": "function_call",
                "id": "fc_2",
                "call_id": "c2",
                "name": "g",
            },
        },
        {
            "type": "response.function_call_arguments.delta",
            "item_id": "fc_1",
            "delta": "{",
        },
        {
            "type": "response.function_call_arguments.delta",
            "item_id": "fc_2",
            "delta": "[",
        },
        {
            "type": "response.function_call_arguments.delta",
            "item_id": "fc_1",
            "delta": "}",
        },
        {
            "type": "response.function_call_arguments.delta",
            "item_id": "fc_2",
            "delta": "]",
        },
        completed(),
    )
    assert replay(chunks)["calls"] == [("c1", "f", "{}"), ("c2", "g", "[]")]


def test_done_events_alone_carry_the_reply() -> None:
    """A server sending only .done events (whole text, arguments) is read."""
    chunks = events(
        created(),
        {"type": "response.output_text.done", "item_id": "m", "text": "whole"},
        {"type": "response.reasoning_summary_text.done", "item_id": "r", "text": "why"},
        {
            "type": "response.output_item.done",
            "item": {
                "type": "function_call",
                "id": "fc",
                "call_id": "c",
                "name": "f",
                "arguments": "{}",
            },
        },
        completed(),
    )
    result = replay(chunks)
    assert (result["text"], result["reasoning"]) == ("whole", "why")
    assert result["calls"] == [("c", "f", "{}")]


def test_the_final_output_alone_carries_the_reply() -> None:
    """A server sending only the lifecycle events, the answer in
    response.completed's output, is read as the OpenAI SDK reads it: the
    text and the call are there, not an empty reply ending in tool_calls."""
    message = {
        "type": "message",
        "id": "m1",
        "role": "assistant",
        "content": [
            {"type": "output_text", "text": "The answer is 4.", "annotations": []}
        ],
    }
    call = {
        "type": "function_call",
        "id": "fc1",
        "call_id": "c1",
        "name": "f",
        "arguments": "{}",
    }
    summary = [{"type": "summary_text", "text": "why"}]
    reasoning = {"type": "reasoning", "id": "rs1", "summary": summary}
    chunks = events(created(), completed(output=[reasoning, message, call]))
    result = replay(chunks)
    assert our_view(result) == sdk_view(sdk_final(chunks))
    assert result["text"] == "The answer is 4."
    assert result["calls"] == [("c1", "f", "{}")]
    assert result["reasoning"] == "why"


def test_the_final_output_does_not_repeat_what_was_streamed() -> None:
    """Items streamed by events are not read a second time from the final
    output, with or without output_index."""
    message = {
        "type": "message",
        "id": "m1",
        "content": [{"type": "output_text", "text": "hi"}],
    }
    chunks = events(
        created(),
        {"type": "response.output_item.added", "item": {**message, "content": []}},
        {"type": "response.output_text.delta", "item_id": "m1", "delta": "hi"},
        completed(output=[message]),
    )
    assert replay(chunks)["text"] == "hi"
    renamed = {**message, "id": "another-id"}  # final ids unlike the events'
    chunks = events(
        created(),
        {"type": "response.output_text.delta", "item_id": "m1", "delta": "hi"},
        completed(output=[renamed]),
    )
    assert replay(chunks)["text"] == "hi"


def test_done_events_do_not_repeat_deltas() -> None:
    """.done events after their deltas add nothing: the text is not doubled."""
    chunks = stream_bytes(KINDS["reasoning"])
    result = replay(chunks)
    assert (result["text"], result["reasoning"]) == ("Yes.", "Think \u2014 then speak")


def test_every_event_type_is_read() -> None:
    """Each event type the emulator sends is one this module reads: none comes raw."""
    from chatproviders._responses._events import _HANDLERS

    replies = [*KINDS.values(), Reply(text="x", failure={"code": "server_error"})]
    sent = set()
    for reply in replies:
        for chunk in stream_bytes(reply):
            sent.add(json.loads(chunk.split(b"data: ", 1)[1])["type"])
    assert len(sent) >= 17
    assert sent - {"response.output_text.delta"} <= set(_HANDLERS)
    pieces = list(iter_response_events(stream_bytes(KINDS["reasoning"])))
    assert not [p for p in pieces if isinstance(p, ResponseEvent)]
    assert any(isinstance(p, ResponseReported) for p in pieces)
    assert any(isinstance(p, OutputItemDone) for p in pieces)


def test_unknown_event_types_pass_raw() -> None:
    """A type this version does not know is a ResponseEvent, and the stream goes on."""
    extra = {"type": "response.web_search_call.searching", "item_id": "ws", "n": 1}
    chunks = events(
        created(),
        extra,
        {"type": "response.output_text.delta", "item_id": "m", "delta": "hi"},
        completed(),
    )
    for body in (chunks, [b"".join(chunks)]):  # an event a read, or all in one
        pieces = list(iter_response_events(body))
        assert ResponseEvent("response.web_search_call.searching", extra) in pieces
        assert "hi" in pieces


def test_the_sse_event_name_stands_in_for_a_missing_type() -> None:
    """An event whose JSON has no type is typed by its ``event:`` line."""
    body = (
        b'event: response.output_text.delta\ndata: {"delta": "x"}\n\n'
        b'event: response.completed\ndata: {"response": {"status": "completed"}}\n\n'
    )
    assert replay([body])["text"] == "x"


def test_incomplete_is_length() -> None:
    """response.incomplete for max_output_tokens: finish_reason length."""
    chunks = stream_bytes(KINDS["incomplete"])
    result = replay(chunks)
    assert result["text"] == "cut sho"
    assert result["finish"] == "length"
    chunks = events(
        created(),
        {
            "type": "response.incomplete",
            "response": {
                "status": "incomplete",
                "incomplete_details": {"reason": "content_filter"},
            },
        },
    )
    assert replay(chunks)["finish"] == "content_filter"


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        ("server_error", InternalServerError),
        ("rate_limit_exceeded", RateLimitError),
        ("invalid_prompt", BadRequestError),
        ("invalid_api_key", AuthenticationError),
        ("permission_denied", AuthenticationError),
        ("something_new", APIError),
        (None, APIError),
    ],
)
@pytest.mark.parametrize("shape", ["failed", "error", "nested error"])
def test_failures_raise_their_class_after_the_text(
    code: str | None, cls: type[APIError], shape: str
) -> None:
    """response.failed and error events raise the code's class, after the text."""
    error = {"message": "it broke", **({"code": code} if code else {})}
    if shape == "failed":
        last = {
            "type": "response.failed",
            "response": {"status": "failed", "error": error},
        }
    elif shape == "error":
        last = {"type": "error", **error}
    else:
        last = {"type": "error", "error": error}
    chunks = events(
        created(),
        {"type": "response.output_text.delta", "item_id": "m", "delta": "so far"},
        last,
    )
    pieces = iter_response_events(chunks)
    assert next(p for p in pieces if isinstance(p, str)) == "so far"
    with pytest.raises(APIError) as caught:
        next(pieces)
    assert type(caught.value) is cls
    assert caught.value.code == code
    assert "it broke" in str(caught.value)


def test_a_failed_whole_reply_raises() -> None:
    """A non-streamed reply with status failed raises with the server's code."""
    chunks = emulator.encode(
        Reply(text="x", failure={"code": "rate_limit_exceeded", "message": "slow"}),
        {**BODY, "stream": False},
    ).writes
    with pytest.raises(RateLimitError, match="slow"):
        replay(chunks)


@pytest.mark.parametrize("end", [b"", b"data: [DONE]\n\n"])
def test_a_stream_without_its_end_is_incomplete(end: bytes) -> None:
    """No response.completed: IncompleteStreamError, after the text."""
    chunks = events(
        created(),
        {"type": "response.output_text.delta", "item_id": "m", "delta": "half"},
    )
    pieces = iter_response_events([*chunks, end])
    assert "half" in [next(pieces), next(pieces)]
    with pytest.raises(
        IncompleteStreamError, match=r"ended before response\.completed"
    ):
        list(pieces)


@pytest.mark.parametrize(
    "data",
    [
        b"data: not json\n\n",
        b"data: [1]\n\n",
        b'data: {"type": "response.output_text.delta", "delta": 5}\n\n',
        b'data: {"type": "response.completed"}\n\n',
        b'data: {"type": "response.completed", "response": '
        b'{"usage": {"input_tokens": -1}}}\n\n',
        b'data: {"type": "response.completed", "response": {"usage": 7}}\n\n',
        b'data: {"type": "response.output_item.added", '
        b'"item": {"type": "function_call", "name": 3}}\n\n',
        b'data: {"type": ["response.completed"]}\n\n',
        b'data: {"type": {"a": 1}}\n\n',
        b'data: {"type": "response.output_text.delta", "item_id": ["m"], '
        b'"delta": "hi"}\n\n',
        b'data: {"type": "response.output_text.done", "item_id": {"m": 1}, '
        b'"text": "hi"}\n\n',
        b'data: {"type": "response.output_item.added", '
        b'"item": {"type": "message", "id": ["m"]}}\n\n',
        b'data: {"type": "response.output_item.done", '
        b'"item": {"type": "message", "id": {"m": 1}, "content": []}}\n\n',
        b'data: {"type": "response.output_text.delta", "item_id": "m", '
        b'"content_index": [0], "delta": "hi"}\n\n',
        b'data: {"type": "response.output_text.done", "item_id": "m", '
        b'"content_index": {"a": 0}, "text": "hi"}\n\n',
        b'data: {"type": "response.reasoning_summary_text.delta", "item_id": "r", '
        b'"summary_index": "0", "delta": "why"}\n\n',
    ],
)
def test_malformed_events_are_format_errors(data: bytes) -> None:
    """A broken event is a ResponseFormatError quoting it, never a deep traceback."""
    with pytest.raises(ResponseFormatError):
        list(iter_response_events([data]))


def test_whole_object_events() -> None:
    """A whole object: model, reasoning, text, calls, usage and finish, in order."""
    chunks = emulator.encode(KINDS["reasoning"], {**BODY, "stream": False}).writes
    pieces = list(iter_response_events(chunks))
    kinds = [type(p).__name__ for p in pieces]
    assert kinds == [
        "ModelReported",
        "ReasoningDelta",
        "str",
        "ResponseReported",
        "UsageReported",
        "FinishReported",
    ]
    assert isinstance(pieces[1], ReasoningDelta)
    assert isinstance(pieces[-2], UsageReported)
    assert pieces[-2].usage.reasoning_tokens == 4  # "Think — then speak"
    assert pieces[-1] == FinishReported("stop")


def test_tool_call_events_carry_the_call_id() -> None:
    """ToolCallDelta's id is the item's call_id, not its item id."""
    pieces = list(iter_response_events(stream_bytes(KINDS["tools"])))
    first = next(p for p in pieces if isinstance(p, ToolCallDelta))
    assert (first.id, first.name, first.index) == ("call_0", "get_weather", 0)
    assert first.type == "function"


def test_a_queued_response_is_a_lifecycle_event() -> None:
    """response.queued (a background response waiting its turn) is read as
    the other lifecycle events are: its response, not a raw event."""
    queued = {"type": "response.queued", "response": {"id": "r1", "status": "queued"}}
    chunks = events(queued, created(), completed())
    pieces = list(iter_response_events(chunks))
    assert not [p for p in pieces if isinstance(p, ResponseEvent)]
    assert pieces[0] == ResponseReported(queued["response"])


def test_a_reasoning_delta_that_is_no_text_is_named() -> None:
    """A reasoning delta whose delta is not a string is a ResponseFormatError
    naming it."""
    chunks = events(
        created(),
        {"type": "response.reasoning_summary_text.delta", "item_id": "r", "delta": 7},
    )
    with pytest.raises(ResponseFormatError, match="sent a reasoning delta"):
        replay(chunks)


@pytest.mark.parametrize(
    ("usage", "total"),
    [
        ({"input_tokens": 7, "output_tokens": 3}, 10),
        ({"input_tokens": 7, "output_tokens": 3, "total_tokens": 12}, 12),
    ],
)
def test_usage_without_a_total_is_the_sum(usage: dict[str, int], total: int) -> None:
    """A total the server gives is kept; without one it is input plus output."""
    chunks = events(created(), completed(usage=usage))
    assert replay(chunks)["usage"].total_tokens == total


def function_call(n: int, name: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": f"fc{n}",
        "call_id": f"c{n}",
        "name": name,
        "arguments": f'{{"n": {n}}}',
        **fields,
    }


def test_done_events_alone_carry_parallel_calls_and_messages() -> None:
    """A server sending only .done events, without output_index, for two calls
    and two messages: each item is its own, nothing is dropped or glued."""
    chunks = events(
        created(),
        {"type": "response.output_text.done", "item_id": "m1", "text": "One. "},
        {"type": "response.output_text.done", "item_id": "m2", "text": "Two."},
        {
            "type": "response.function_call_arguments.done",
            "item_id": "fc1",
            "arguments": '{"n": 1}',
        },
        {"type": "response.output_item.done", "item": function_call(1, "f")},
        {
            "type": "response.function_call_arguments.done",
            "item_id": "fc2",
            "arguments": '{"n": 2}',
        },
        {"type": "response.output_item.done", "item": function_call(2, "g")},
        completed(),
    )
    result = replay(chunks)
    assert result["text"] == "One. Two."
    assert result["calls"] == [("c1", "f", '{"n": 1}'), ("c2", "g", '{"n": 2}')]


def test_an_event_without_index_or_id_belongs_to_the_last_item() -> None:
    """Argument deltas naming no item (no output_index, no item_id) continue
    the call added last, not a call of their own."""
    added = function_call(1, "f", arguments="")
    chunks = events(
        created(),
        {"type": "response.output_item.added", "item": function_call(0, "e")},
        {"type": "response.output_item.added", "item": added},
        {"type": "response.function_call_arguments.delta", "delta": '{"n": '},
        {"type": "response.function_call_arguments.delta", "delta": "1}"},
        completed(),
    )
    assert replay(chunks)["calls"] == [
        ("c0", "e", '{"n": 0}'),
        ("c1", "f", '{"n": 1}'),
    ]


def test_an_id_first_seen_in_a_delta_names_an_item_added_without_one() -> None:
    """An item added without an id is the one the next new item_id names."""
    added = function_call(1, "f", arguments="")
    del added["id"]
    chunks = events(
        created(),
        {"type": "response.output_item.added", "item": added},
        {
            "type": "response.function_call_arguments.delta",
            "item_id": "fc1",
            "delta": "{}",
        },
        completed(),
    )
    assert replay(chunks)["calls"] == [("c1", "f", "{}")]


def test_whole_arguments_in_the_added_item_are_not_repeated() -> None:
    """A call whose arguments come whole in output_item.added, then again in
    its .done events, has them once."""
    call = function_call(1, "f")
    chunks = events(
        created(),
        {"type": "response.output_item.added", "item": call},
        {
            "type": "response.function_call_arguments.done",
            "item_id": "fc1",
            "arguments": call["arguments"],
        },
        {"type": "response.output_item.done", "item": call},
        completed(),
    )
    assert replay(chunks)["calls"] == [("c1", "f", '{"n": 1}')]


def test_reasoning_done_then_its_item_done_is_read_once() -> None:
    """A reasoning summary sent whole in its .done event, then again in the
    finished item, is read once."""
    summary = [{"type": "summary_text", "text": "why"}]
    item = {"type": "reasoning", "id": "rs1", "summary": summary}
    chunks = events(
        created(),
        {
            "type": "response.reasoning_summary_text.done",
            "item_id": "rs1",
            "text": "why",
        },
        {"type": "response.output_item.done", "item": item},
        completed(),
    )
    assert replay(chunks)["reasoning"] == "why"


def test_the_streamed_model_is_reported_once() -> None:
    """The model of the lifecycle events is reported, once while it stays the
    same; a model that is not a string is not."""

    def lifecycle(kind: str, model: Any) -> dict[str, Any]:
        return {"type": kind, "response": {"status": "in_progress", "model": model}}

    chunks = events(
        lifecycle("response.created", {"name": "m"}),
        lifecycle("response.in_progress", "gpt-4o-mini"),
        {"type": "response.output_text.delta", "item_id": "m", "delta": "hi"},
        completed(model="gpt-4o-mini"),
    )
    pieces = list(iter_response_events(chunks))
    reported = [p for p in pieces if isinstance(p, ModelReported)]
    assert reported == [ModelReported("gpt-4o-mini")]
    assert replay(chunks)["model"] == "gpt-4o-mini"


def test_items_added_without_ids_are_numbered_in_order() -> None:
    """Calls added without an id or output_index, each followed by argument
    deltas naming no item, stay two calls in the order they were added."""
    first = {"type": "function_call", "call_id": "c1", "name": "f", "arguments": ""}
    second = {**first, "call_id": "c2", "name": "g"}
    chunks = events(
        created(),
        {"type": "response.output_item.added", "item": first},
        {"type": "response.function_call_arguments.delta", "delta": "{}"},
        {"type": "response.output_item.added", "item": second},
        {"type": "response.function_call_arguments.delta", "delta": "[]"},
        completed(),
    )
    assert replay(chunks)["calls"] == [("c1", "f", "{}"), ("c2", "g", "[]")]
    pieces = list(iter_response_events(chunks))
    indexes = [p.index for p in pieces if isinstance(p, ToolCallDelta)]
    assert indexes == [0, 0, 1, 1]


def test_finished_items_without_ids_are_each_read() -> None:
    """Messages sent whole in output_item.done, without ids or indexes, are
    each read: the second is not taken for the first."""

    def message(text: str) -> dict[str, Any]:
        content = [{"type": "output_text", "text": text}]
        return {"type": "message", "content": content}

    chunks = events(
        created(),
        {"type": "response.output_item.done", "item": message("One. ")},
        {"type": "response.output_item.done", "item": message("Two.")},
        completed(),
    )
    assert replay(chunks)["text"] == "One. Two."


@pytest.mark.parametrize("item_first", [False, True])
def test_each_item_is_read_once_whatever_the_order_of_its_done_events(
    item_first: bool,
) -> None:
    """A finished item and the .done events of its text, arguments or
    reasoning carry the same content: read once, whichever comes first."""
    message = {
        "type": "message",
        "id": "m1",
        "content": [{"type": "output_text", "text": "hi"}],
    }
    summary = [{"type": "summary_text", "text": "why"}]
    reasoning = {"type": "reasoning", "id": "rs1", "summary": summary}
    call = function_call(1, "f")
    pairs = [
        (
            {"type": "response.reasoning_summary_text.done", "item_id": "rs1"}
            | {"text": "why"},
            {"type": "response.output_item.done", "item": reasoning},
        ),
        (
            {"type": "response.output_text.done", "item_id": "m1", "text": "hi"},
            {"type": "response.output_item.done", "item": message},
        ),
        (
            {"type": "response.function_call_arguments.done", "item_id": "fc1"}
            | {"arguments": call["arguments"]},
            {"type": "response.output_item.done", "item": call},
        ),
    ]
    ordered = [
        e
        for done, item in pairs
        for e in ((item, done) if item_first else (done, item))
    ]
    result = replay(events(created(), *ordered, completed()))
    assert (result["reasoning"], result["text"]) == ("why", "hi")
    assert result["calls"] == [("c1", "f", '{"n": 1}')]


def test_a_whole_incomplete_reply_finishes_with_length() -> None:
    """A non-streamed reply with status incomplete ends for length."""
    chunks = emulator.encode(KINDS["incomplete"], {**BODY, "stream": False}).writes
    result = replay(chunks)
    assert (result["text"], result["finish"]) == ("cut sho", "length")


def test_an_arguments_delta_that_is_no_text_is_named() -> None:
    """An arguments delta whose delta is not a string is a ResponseFormatError
    naming it."""
    chunks = events(
        created(),
        {"type": "response.function_call_arguments.delta", "item_id": "f", "delta": 7},
    )
    with pytest.raises(ResponseFormatError, match="sent a function_call_arguments"):
        replay(chunks)


def test_every_event_of_llamacpp_is_read() -> None:
    """Each event type of llama.cpp's stream is one this module reads."""
    for body in (LLAMACPP, LLAMA_SERVER):
        pieces = list(iter_response_events([body]))
        assert not [p for p in pieces if isinstance(p, ResponseEvent)]


def test_a_long_error_message_is_cut_at_300_characters() -> None:
    """The server's error message is kept to its first 300 characters."""
    error = {"type": "error", "code": "server_error", "message": "x" * 299 + "yz"}
    with pytest.raises(InternalServerError) as caught:
        replay(events(created(), error))
    assert str(caught.value).endswith(": " + "x" * 299 + "y")


def test_a_whole_reply_failed_without_an_error_says_so() -> None:
    """A non-streamed reply with status failed and no error object raises
    an APIError that says the response failed."""
    chunks = [json.dumps({"status": "failed", "output": []}).encode()]
    with pytest.raises(APIError) as caught:
        replay(chunks)
    assert str(caught.value).startswith("the response failed: ")
    assert "no message" not in str(caught.value)


def test_a_call_is_named_once() -> None:
    """A call announced by output_item.added and finished by output_item.done
    has its id and name in one event: a reader that joins fragments as the
    OpenAI SDK does (strings added up) reads them once."""
    for body in (LLAMACPP, b"".join(stream_bytes(KINDS["tools"]))):
        pieces = list(iter_response_events([body]))
        named = [
            (p.index, p.id, p.name) for p in pieces if isinstance(p, ToolCallDelta)
        ]
        named = [fields for fields in named if fields[1] or fields[2]]
        assert len(named) == len({index for index, _, _ in named}), named


def test_an_item_without_index_or_id_is_done_once() -> None:
    """A message added, streamed and done, with neither output_index nor an id
    anywhere: its .done closes the item it streamed, so its text is read once;
    a second such item after it is still an item of its own."""
    content = [{"type": "output_text", "text": "Hello"}]
    chunks = events(
        created(),
        {"type": "response.output_item.added", "item": {"type": "message"}},
        {"type": "response.output_text.delta", "delta": "Hel"},
        {"type": "response.output_text.delta", "delta": "lo"},
        {
            "type": "response.output_item.done",
            "item": {"type": "message", "content": content},
        },
        {
            "type": "response.output_item.done",
            "item": {"type": "message", "content": [dict(content[0], text="!")]},
        },
        completed(),
    )
    assert replay(chunks)["text"] == "Hello!"


def test_done_before_completed_says_what_is_missing() -> None:
    chunks = [*events(created()), b"data: [DONE]\n\n"]
    missing = r"ended before response\.completed"
    with pytest.raises(IncompleteStreamError, match=missing):
        list(iter_response_events(chunks))


def test_an_event_with_empty_data_is_named_not_read_as_the_one_before() -> None:
    """``data:`` with nothing after it is an event (the SSE rules dispatch
    it), whose data is not JSON: an error naming it, never the previous
    event's delta a second time."""
    delta = {"type": "response.output_text.delta", "item_id": "m", "delta": "Hi"}
    chunks = [*events(created(), delta), b"data:\n\n", *events(completed())]
    pieces = iter_response_events(chunks)
    assert "Hi" in [next(pieces), next(pieces)]
    with pytest.raises(ResponseFormatError, match="an event"):
        list(pieces)


def test_a_whole_response_with_an_error_says_it_failed() -> None:
    error = {"message": "boom", "code": "boom_code"}
    body = {"id": "r1", "status": "failed", "error": error, "output": []}
    with pytest.raises(APIError, match=r"^the response failed \(boom_code\): boom$"):
        replay([json.dumps(body).encode()])


def test_a_whole_response_with_an_item_that_is_not_an_object_is_named() -> None:
    body = {"id": "r1", "status": "completed", "output": [42]}
    with pytest.raises(ResponseFormatError, match="an output item that is not an"):
        replay([json.dumps(body).encode()])


def test_done_events_alone_carry_every_part() -> None:
    """A server sending only .done events reads every part of an item: two
    summary parts of one reasoning item and two text parts of one message,
    each once, the finished items after them adding nothing."""
    summary = [{"type": "summary_text", "text": t} for t in ("First. ", "Then.")]
    reasoning = {"type": "reasoning", "id": "rs1", "summary": summary}
    content = [{"type": "output_text", "text": t} for t in ("Hel", "lo")]
    message = {"type": "message", "id": "m1", "content": content}

    def summary_done(part: int) -> dict[str, Any]:
        kind = "response.reasoning_summary_text.done"
        return {"type": kind, "item_id": "rs1", "summary_index": part} | {
            "text": summary[part]["text"]
        }

    def text_done(part: int) -> dict[str, Any]:
        kind = "response.output_text.done"
        return {"type": kind, "item_id": "m1", "content_index": part} | {
            "text": content[part]["text"]
        }

    chunks = events(
        created(),
        summary_done(0),
        summary_done(1),
        {"type": "response.output_item.done", "item": reasoning},
        text_done(0),
        text_done(1),
        {"type": "response.output_item.done", "item": message},
        completed(),
    )
    result = replay(chunks)
    assert (result["reasoning"], result["text"]) == ("First. Then.", "Hello")


@pytest.mark.parametrize("indexed", ["deltas", "dones"])
def test_parts_indexed_on_one_side_only_are_read_once(indexed: str) -> None:
    """Deltas and their .done events of which only one side sends part
    indexes: the text is read once, not twice."""
    part = {"content_index": 0, "summary_index": 0}

    def event(kind: str, **fields: Any) -> dict[str, Any]:
        sides = {"deltas": kind.endswith(".delta"), "dones": kind.endswith(".done")}
        return {"type": kind, **fields, **(part if sides[indexed] else {})}

    chunks = events(
        created(),
        event("response.reasoning_summary_text.delta", item_id="rs1", delta="why"),
        event("response.reasoning_summary_text.done", item_id="rs1", text="why"),
        event("response.output_text.delta", item_id="m1", delta="hi"),
        event("response.output_text.done", item_id="m1", text="hi"),
        completed(),
    )
    result = replay(chunks)
    assert (result["reasoning"], result["text"]) == ("why", "hi")


def test_streamed_parts_are_not_repeated_by_their_done_events() -> None:
    """Two text parts streamed as deltas, then each part's .done: each once."""
    chunks = events(
        created(),
        *(
            {"type": "response.output_text.delta", "item_id": "m1"}
            | {"content_index": part, "delta": text}
            for part, text in ((0, "Hel"), (0, "l"), (1, "o"))
        ),
        {"type": "response.output_text.done", "item_id": "m1", "content_index": 0}
        | {"text": "Hell"},
        {"type": "response.output_text.done", "item_id": "m1", "content_index": 1}
        | {"text": "o"},
        completed(),
    )
    assert replay(chunks)["text"] == "Hello"


@pytest.mark.parametrize("usage", [b'{"input_tokens": -1}', b"7"])
def test_a_malformed_usage_is_named(usage: bytes) -> None:
    data = b'data: {"type": "response.completed", "response": {"usage": %s}}\n\n'
    with pytest.raises(ResponseFormatError, match="sent a malformed usage"):
        list(iter_response_events([data % usage]))


def test_an_item_read_whole_is_not_repeated_by_its_parts_done_events() -> None:
    """A finished message and reasoning item read whole, then the .done
    events of their parts, with part indexes: each text once."""
    summary = [{"type": "summary_text", "text": "why"}]
    reasoning = {"type": "reasoning", "id": "rs1", "summary": summary}
    content = [{"type": "output_text", "text": "hi"}]
    message = {"type": "message", "id": "m1", "content": content}
    chunks = events(
        created(),
        {"type": "response.output_item.done", "item": reasoning},
        {"type": "response.reasoning_summary_text.done", "item_id": "rs1"}
        | {"summary_index": 0, "text": "why"},
        {"type": "response.output_item.done", "item": message},
        {"type": "response.output_text.done", "item_id": "m1"}
        | {"content_index": 0, "text": "hi"},
        completed(),
    )
    result = replay(chunks)
    assert (result["reasoning"], result["text"]) == ("why", "hi")


def test_an_item_done_twice_is_read_once() -> None:
    """A server that sends an item's output_item.done twice: its text and
    reasoning are read once."""
    summary = [{"type": "summary_text", "text": "why"}]
    reasoning = {"type": "reasoning", "id": "rs1", "summary": summary}
    content = [{"type": "output_text", "text": "hi"}]
    message = {"type": "message", "id": "m1", "content": content}
    done = [
        {"type": "response.output_item.done", "item": i} for i in (reasoning, message)
    ]
    result = replay(events(created(), *done, *done, completed()))
    assert (result["reasoning"], result["text"]) == ("why", "hi")
