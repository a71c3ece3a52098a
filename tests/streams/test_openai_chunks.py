"""What an OpenAI-style reply may hold, pinned: malformed ``choices`` entries,
in-band errors and their class, and the units of a "try again in" hint."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
import responses

from chatproviders import (
    APIError,
    OpenAICompatible,
    RateLimitError,
    ResponseFormatError,
)
from tests.constants import HI, OPENAI_BASE

try:
    from chatproviders.decoders import ServerSentEvent, SSEDecoder
except ImportError:  # before the decoders became public
    from chatproviders._decoders import ServerSentEvent, SSEDecoder
from chatproviders._wire.retry import parse_retry_after
from tests.loopback import WAIT, Conn, LoopbackServer

URL = f"{OPENAI_BASE}/chat/completions"


def client() -> OpenAICompatible:
    return OpenAICompatible(OPENAI_BASE, "sk-test", model="m", max_retries=0)


def events(*objects: Any) -> bytes:
    lines = [b"data: " + json.dumps(o).encode() + b"\n\n" for o in objects]
    return b"".join(lines) + b"data: [DONE]\n\n"


def text_chunk(text: str) -> dict[str, Any]:
    return {"choices": [{"delta": {"content": text}}]}


MALFORMED_CHOICES = [
    [{}],
    ["text"],
    [None],
    [{"delta": "text", "message": "text"}],
    # An explicit null delta or message counts as absent: llama.cpp's server
    # sends such nulls (see tests/providers/test_openai_parity.py), so it is no error.
    {"0": {"delta": {"content": "x"}}},
]


@pytest.mark.parametrize("choices", MALFORMED_CHOICES)
@responses.activate
def test_a_malformed_choices_entry_in_a_chunk_is_a_format_error(choices: Any) -> None:
    """A chunk whose choices[0] has no delta object is refused, naming the path."""
    responses.post(URL, body=events(text_chunk("ok"), {"choices": choices}))
    with client().stream(HI) as stream:
        assert next(stream) == "ok"
        with pytest.raises(ResponseFormatError, match=r"a chunk without choices\[0\]"):
            next(stream)
    assert stream.text == "ok"


@pytest.mark.parametrize("choices", MALFORMED_CHOICES)
@responses.activate
def test_a_malformed_choices_entry_in_a_reply_is_a_format_error(choices: Any) -> None:
    """A reply whose choices[0] has no message object is refused, naming the path."""
    responses.post(URL, json={"choices": choices})
    with pytest.raises(ResponseFormatError, match=r"a reply without choices\[0\]"):
        client().complete(HI)


@pytest.mark.parametrize("choices", [None, [], {}])
@responses.activate
def test_a_reply_without_choices_is_a_format_error(choices: Any) -> None:
    """A reply with no choices at all has no answer: refused, not returned empty."""
    responses.post(URL, json={"id": "x", "choices": choices})
    with pytest.raises(ResponseFormatError, match="without choices") as caught:
        client().complete(HI)
    assert '"id": "x"' in str(caught.value.body)


@pytest.mark.parametrize("content", [5, ["a"], {"text": "a"}, True])
@responses.activate
def test_non_text_content_is_a_format_error(content: Any) -> None:
    """Content that is not a string is refused, in a chunk and in a reply."""
    responses.post(URL, body=events({"choices": [{"delta": {"content": content}}]}))
    with pytest.raises(ResponseFormatError, match="non-text content"):
        client().stream(HI)
    responses.post(URL, json={"choices": [{"message": {"content": content}}]})
    with pytest.raises(ResponseFormatError, match="non-text content"):
        client().complete(HI)


@responses.activate
def test_chunks_without_text_are_skipped() -> None:
    """Chunks with no choices, no content or null content carry no text: skipped."""
    body = events(
        {"choices": []},
        {"choices": [{"delta": {"role": "assistant"}}]},
        text_chunk("Hel"),
        {"choices": [{"delta": {"content": None}}]},
        text_chunk(""),
        {"usage": {"total_tokens": 3}},
        text_chunk("lo"),
    )
    responses.post(URL, body=body)
    with client().stream(HI) as stream:
        assert list(stream) == ["Hel", "lo"]


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ({"message": "model overloaded", "code": "busy"}, "model overloaded"),
        ({"code": "busy"}, "busy"),
        ("busy", "busy"),
    ],
)
@responses.activate
def test_an_error_object_in_a_whole_reply_is_an_api_error(
    error: Any, expected: str
) -> None:
    """A 200 reply holding {"error": ...} raises APIError itself, with its message
    (or code), not a format error about missing choices."""
    responses.post(URL, json={"error": error})
    with pytest.raises(APIError) as caught:
        client().complete(HI)
    assert type(caught.value) is APIError
    assert f"reported an error: {expected}" in str(caught.value)


@responses.activate
def test_an_error_event_in_a_stream_is_an_api_error() -> None:
    """An {"error": ...} event raises APIError itself, with the text so far."""
    responses.post(URL, body=events(text_chunk("par"), {"error": {"message": "down"}}))
    with client().stream(HI) as stream, pytest.raises(APIError) as caught:
        list(stream)
    assert type(caught.value) is APIError
    assert "reported an error in the stream: down" in str(caught.value)
    assert caught.value.partial_text == "par"


@pytest.mark.parametrize(
    ("body", "seconds"),
    [
        ("try again in 500MS", 0.5),
        ("Try again in 500 Ms.", 0.5),
        ("Please retry after 250 MILLISECONDS", 0.25),
        ("TRY AGAIN IN 2S", 2.0),
        ("try again in 3 Secs", 3.0),
        ("try again in 2 MIN", 120.0),
        ("Try again in 1.5 Minutes", 90.0),
        ("try again in 4", 4.0),
        ("try again in 20m", 1200.0),
    ],
)
def test_try_again_hints_read_their_unit_whatever_its_case(
    body: str, seconds: float
) -> None:
    """An upper-case unit means the same as a lower-case one: 500MS is half a
    second, not 500 minutes."""
    assert parse_retry_after(None, body) == pytest.approx(seconds)


@responses.activate
def test_a_429_hint_in_milliseconds_is_the_retry_after() -> None:
    """A 429 saying "try again in 500MS" carries retry_after 0.5."""
    responses.post(URL, status=429, json={"error": {"message": "Try again in 500MS"}})
    with pytest.raises(RateLimitError) as caught:
        client().complete(HI)
    assert caught.value.retry_after == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("header", "expected"), [("0", 0.0), ("0.0", 0.0), ("-1", None), ("  3 ", 3.0)]
)
def test_a_retry_after_header_of_zero_means_now(header: str, expected: Any) -> None:
    """Retry-After: 0 is "now", kept as 0; a negative number is no answer."""
    assert parse_retry_after(header) == expected


@pytest.mark.parametrize(
    ("event", "problem"),
    [
        (b"data: {bad\n\n", "not JSON"),
        (b"data:\n\n", "not JSON"),
        (b"data: [1]\n\n", "not a JSON object"),
    ],
)
@responses.activate
def test_an_event_that_is_no_json_object_is_a_format_error(
    event: bytes, problem: str
) -> None:
    """An event that is not JSON (or empty, or not an object) is refused, by name."""
    responses.post(
        URL, body=events(text_chunk("ok"))[: -len(b"data: [DONE]\n\n")] + event
    )
    with client().stream(HI) as stream, pytest.raises(ResponseFormatError) as caught:
        list(stream)
    assert f"sent an event that is {problem}" in str(caught.value)
    assert stream.text == "ok"


@pytest.mark.parametrize(
    ("body", "problem"), [(b"{bad", "not JSON"), (b"{} []", "not JSON")]
)
@responses.activate
def test_a_whole_reply_that_is_no_json_object_is_a_format_error(
    body: bytes, problem: str
) -> None:
    """A reply starting with { that is not one JSON object is refused, by name."""
    responses.post(URL, body=body)
    with pytest.raises(ResponseFormatError, match=f"sent a reply that is {problem}"):
        client().complete(HI)


@responses.activate
def test_invalid_utf8_in_a_whole_reply_becomes_replacement_characters() -> None:
    """Bytes that are not UTF-8 in a JSON reply are replaced, not an error."""
    responses.post(URL, body=b'{"choices": [{"message": {"content": "caf\xe9!"}}]}')
    assert client().complete(HI).text == "caf\ufffd!"


@pytest.mark.parametrize("error", [{"message": "x" * 1000}, "x" * 1000])
@responses.activate
def test_an_error_message_is_cut_at_300_characters(error: Any) -> None:
    """A long in-band error message is kept to its first 300 characters."""
    responses.post(URL, json={"error": error})
    with pytest.raises(APIError) as caught:
        client().complete(HI)
    assert "x" * 300 in str(caught.value)
    assert "x" * 301 not in str(caught.value)


@responses.activate
def test_the_non_text_content_message_is_cut_at_200_characters() -> None:
    """A huge non-text content is quoted in the error only as far as 200 characters."""
    content = list(range(500))
    responses.post(URL, json={"choices": [{"message": {"content": content}}]})
    with pytest.raises(ResponseFormatError) as caught:
        client().complete(HI)
    message = f"sent non-text content: {content!r}"
    assert message[:200] in str(caught.value)
    assert message[:201] not in str(caught.value)


def test_a_streamed_reply_yields_its_first_chunk_before_the_rest_arrives() -> None:
    """The first event is handed over while the server still holds the rest."""
    got_first = threading.Event()

    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.send_head(headers=[("Content-Type", "text/event-stream")])
        conn.send(events(text_chunk("Hel"))[: -len(b"data: [DONE]\n\n")])
        assert got_first.wait(WAIT), "the client waited for the rest first"
        rest = events(text_chunk("lo"))  # with the end, in one write: the client
        # may hang up as soon as it has [DONE]
        conn.sock.sendall(b"%x\r\n%s\r\n0\r\n\r\n" % (len(rest), rest))

    with LoopbackServer(handler) as server:
        with OpenAICompatible(server.url, model="m") as chat:
            with chat.stream(HI) as stream:
                assert next(stream) == "Hel"
                got_first.set()
                assert list(stream) == ["lo"]


def test_a_decoder_flushed_mid_line_starts_the_next_stream_clean() -> None:
    """flush() drops an unterminated line and restarts BOM handling: the next
    stream's first event is read whole."""
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n\ndata: cut") == [ServerSentEvent(data="a")]
    assert decoder.flush() == []
    events = decoder.feed(b"\xef\xbb\xbfdata: b\n\n")
    assert [event.data for event in events] == ["b"]


def test_iter_chat_chunks_yields_the_text_alone() -> None:
    """iter_chat_chunks, for providers that want text only, drops the events."""
    from chatproviders._streams.openai_chunks import iter_chat_chunks

    body = events(
        {"model": "m", "choices": [{"delta": {"content": "Hel"}}]},
        {"choices": [{"delta": {"reasoning": "hmm", "content": "lo"}}]},
        {"choices": [{"delta": {}, "finish_reason": "stop"}], "usage": None},
    )
    assert list(iter_chat_chunks([body])) == ["Hel", "lo"]


def test_parallel_tool_calls_of_a_whole_reply_stay_apart() -> None:
    """A non-streamed reply's message lists its tool calls without an index:
    each is its own call, by its place in the list."""
    from chatproviders._streams.events import ReplyState, StreamEvent
    from chatproviders._streams.openai_chunks import iter_chat_reply_events

    calls = [  # no index, and no id either (Ollama sends none)
        {"type": "function", "function": {"name": f"f{n}"}} for n in range(2)
    ]
    reply = {
        "choices": [{"message": {"content": None, "tool_calls": calls}}],
    }
    state = ReplyState()
    for piece in iter_chat_reply_events([json.dumps(reply).encode()]):
        assert isinstance(piece, StreamEvent)
        piece.apply(state)
    assert [call.function.name for call in state.tool_calls] == ["f0", "f1"]


@pytest.mark.parametrize(
    ("usage", "total"),
    [
        ({"prompt_tokens": 10, "completion_tokens": 30, "total_tokens": 50}, 50),
        ({"prompt_tokens": 10, "completion_tokens": 30}, 40),
    ],
)
def test_usage_keeps_the_servers_total_or_adds_it_up(
    usage: dict[str, int], total: int
) -> None:
    """A reported total is kept as given (reasoning or cached tokens may make
    it more than the sum); a missing one is the sum."""
    from chatproviders._streams.events import UsageReported
    from chatproviders._streams.openai_chunks import iter_chat_events

    body = events({"choices": [], "usage": usage})
    (reported,) = [p for p in iter_chat_events([body]) if isinstance(p, UsageReported)]
    assert reported.usage.total_tokens == total


def test_a_reasoning_field_that_is_no_text_is_not_reasoning() -> None:
    """A server whose ``reasoning`` is an object (effort, a summary setting)
    gives no reasoning delta; its text comes through."""
    from chatproviders._streams.events import ReasoningDelta
    from chatproviders._streams.openai_chunks import iter_chat_events

    body = events(
        {"choices": [{"delta": {"reasoning": {"effort": "low"}, "content": "hi"}}]},
        {"choices": [{"delta": {"reasoning_content": "", "reasoning": "why"}}]},
    )
    pieces = list(iter_chat_events([body]))
    assert pieces == ["hi", ReasoningDelta("why")]
