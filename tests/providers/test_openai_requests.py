"""OpenAICompatible's requests (every parameter, extra_body, usage in streams)
and the openai emulator's tool calls, reasoning, usage and history checks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import responses

import chatproviders
from chatproviders import (
    BadRequestError,
    OpenAICompatible,
    UnsupportedParameterError,
    Usage,
)
from chatproviders.testing import EmulatorServer, Reply, serve
from tests.constants import HELLO, OPENAI_BASE

SSE = b'data: {"choices": [{"delta": {"content": "ok"}}]}\n\ndata: [DONE]\n\n'
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
#: One value for each chat-completions parameter, as a caller would pass it.
PARAMETERS: dict[str, Any] = {
    "audio": {"voice": "alloy", "format": "wav"},
    "frequency_penalty": 0.5,
    "function_call": "auto",
    "functions": [WEATHER_TOOL["function"]],
    "logit_bias": {"50256": -100},
    "logprobs": True,
    "max_completion_tokens": 64,
    "max_tokens": 32,
    "metadata": {"run": "7"},
    "min_p": 0.05,
    "modalities": ["text"],
    "n": 1,
    "parallel_tool_calls": False,
    "prediction": {"type": "content", "content": "x"},
    "presence_penalty": -0.5,
    "prompt_cache_key": "k1",
    "reasoning_effort": "low",
    "response_format": {"type": "json_object"},
    "safety_identifier": "u-1",
    "seed": 42,
    "service_tier": "auto",
    "stop": ["\n\n", "END"],
    "store": False,
    "stream_options": {"include_usage": False},
    "temperature": 0,
    "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
    "tools": [WEATHER_TOOL],
    "top_k": 40,
    "top_logprobs": 3,
    "top_p": 0.9,
    "user": "ann",
    "verbosity": "low",
    "web_search_options": {},
}


@pytest.fixture
def server() -> Iterator[EmulatorServer]:
    with serve("openai") as started:
        yield started


def client(url: str = OPENAI_BASE, **options: Any) -> OpenAICompatible:
    return OpenAICompatible(url, model="gpt-4o-mini", **options)


def sent(call: int = 0) -> Any:
    return json.loads(responses.calls[call].request.body)


@responses.activate
def test_every_parameter_goes_into_the_body_as_given() -> None:
    """Each chat-completions parameter reaches the body unchanged, falsy
    values (0, False, {}) included."""
    responses.post(f"{OPENAI_BASE}/chat/completions", body=SSE)
    client().stream(HELLO, **PARAMETERS).close()
    assert sent() == {
        "model": "gpt-4o-mini",
        "messages": HELLO,
        "stream": True,
        **PARAMETERS,
    }


@responses.activate
def test_extra_body_is_merged_into_the_body() -> None:
    """extra_body carries vendor fields (Ollama options, vLLM guided_json)."""
    responses.post(f"{OPENAI_BASE}/chat/completions", body=SSE)
    extra = {"options": {"num_ctx": 8192}, "keep_alive": "5m", "guided_json": {}}
    client().stream(HELLO, temperature=0.1, extra_body=extra).close()
    assert sent() == {
        "model": "gpt-4o-mini",
        "messages": HELLO,
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0.1,
        **extra,
    }


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ({"temprature": 0.1}, r"unsupported parameter\(s\) temprature"),
        ({"keep_alive": "5m"}, "unsupported parameter"),
        ({"extra_body": ["options"]}, "extra_body must be a dict of str keys"),
        ({"extra_body": {1: 2}}, "extra_body must be a dict of str keys"),
        ({"n": 2}, "n=2: a reply here holds one choice"),
        ({"n": True}, "n=True: a reply here holds one choice"),
    ],
)
@responses.activate
def test_typos_and_what_cannot_be_read_are_refused(
    params: dict[str, Any], problem: str
) -> None:
    """An unknown keyword (unless inside extra_body), a bad extra_body and n>1
    raise UnsupportedParameterError, naming the provider, before any request."""
    with pytest.raises(UnsupportedParameterError, match=problem) as caught:
        client().stream(HELLO, **params)
    assert caught.value.provider == "OpenAICompatible"
    assert len(responses.calls) == 0


def test_streams_ask_for_usage_and_read_it(server: EmulatorServer) -> None:
    """By default a stream sends stream_options.include_usage and gets the
    usage chunk (empty choices) at its end."""
    server.set_reply(text="one two three", usage={"prompt_tokens": 7})
    with client(server.url).stream(HELLO) as stream:
        assert "".join(stream) == "one two three"
    assert server.requests[0].json["stream_options"] == {"include_usage": True}
    assert stream.usage == Usage(7, 3, 10)
    assert stream.finish_reason == "stop"


def test_include_usage_false_sends_no_stream_options(server: EmulatorServer) -> None:
    """include_usage=False leaves stream_options out; no usage comes back."""
    with client(server.url, include_usage=False).stream(HELLO) as stream:
        assert stream.until_done().usage is None
    assert "stream_options" not in server.requests[0].json


def test_complete_sends_no_stream_options_and_gets_usage(
    server: EmulatorServer,
) -> None:
    """complete() drops stream_options (OpenAI refuses it without stream) and
    reads the usage of the chat.completion."""
    server.set_reply(text="a b", usage={"prompt_tokens": 2})
    reply = client(server.url).complete(HELLO)
    assert "stream_options" not in server.requests[0].json
    assert reply.usage == Usage(2, 2, 4)
    assert reply.finish_reason == "stop"


def test_a_400_naming_stream_options_says_how_to_turn_it_off(
    server: EmulatorServer,
) -> None:
    """A server that refuses stream_options: the error says include_usage=False."""
    refusal = {"error": {"message": "Unrecognized request argument: stream_options"}}
    server.queue_reply(status=400, body=json.dumps(refusal))
    with pytest.raises(BadRequestError, match="pass include_usage=False") as caught:
        client(server.url).stream(HELLO)
    assert "Unrecognized request argument" in str(caught.value)
    server.queue_reply(status=400, body=json.dumps(refusal))
    with pytest.raises(BadRequestError) as caught:
        client(server.url, include_usage=False).stream(HELLO)
    assert "include_usage" not in str(caught.value)


def test_include_usage_must_be_a_bool() -> None:
    """include_usage is checked when the client is made."""
    with pytest.raises(TypeError, match="include_usage must be a bool"):
        OpenAICompatible(OPENAI_BASE, include_usage="no")  # type: ignore[arg-type]


def test_a_tool_loop_against_the_emulator(server: EmulatorServer) -> None:
    """Ask with tools, get parallel calls streamed in fragments, send the tool
    answers back with the assistant turn, get the answer."""
    calls = [
        {"name": "get_weather", "arguments": {"city": "Paris"}},
        {"name": "get_weather", "arguments": {"city": "Oslo"}},
    ]
    server.queue_reply(tool_calls=calls, tool_call_fragments=5, interleave=True)
    server.set_reply(text="Paris 18, Oslo 9.")
    chat = client(server.url)
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Weather?"}]
    with chat.stream(messages, tools=[WEATHER_TOOL]) as stream:
        assert list(stream) == []
    assert stream.finish_reason == "tool_calls"
    assert [call.id for call in stream.tool_calls] == ["call_0", "call_1"]
    assert [json.loads(c.function.arguments) for c in stream.tool_calls] == [
        {"city": "Paris"},
        {"city": "Oslo"},
    ]
    messages.append(stream.as_message())
    for call, degrees in zip(stream.tool_calls, ("18", "9")):
        messages.append({"role": "tool", "tool_call_id": call.id, "content": degrees})
    answer = chat.complete(messages, tools=[WEATHER_TOOL])
    assert answer.text == "Paris 18, Oslo 9." and answer.tool_calls == ()
    assert server.requests[1].json["messages"] == messages


@pytest.mark.parametrize(
    ("messages", "problem"),
    [
        (
            [{"role": "tool", "tool_call_id": "call_0", "content": "18"}],
            "must be a response to a preceeding message with 'tool_calls'",
        ),
        (
            [
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_0",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                        }
                    ],
                },
                {"role": "user", "content": "and?"},
            ],
            "did not have response messages: call_0",
        ),
    ],
)
def test_the_emulator_checks_tool_histories_as_openai_does(
    server: EmulatorServer, messages: list[dict[str, Any]], problem: str
) -> None:
    """A tool message must answer a call of the assistant turn before it, and
    every call must be answered: else 400, in OpenAI's words."""
    with pytest.raises(BadRequestError, match=problem):
        client(server.url).complete(messages)


def test_the_emulator_refuses_bad_tools_and_stream_options(
    server: EmulatorServer,
) -> None:
    """tools must be function tools; stream_options needs stream: true."""
    with pytest.raises(BadRequestError, match=r"Invalid 'tools\[0\]'"):
        client(server.url).stream(HELLO, tools=[{"type": "function"}])
    with pytest.raises(BadRequestError, match="only allowed when 'stream'"):
        client(server.url).stream(HELLO, extra_body={"stream": False})


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_the_emulator_streams_reasoning_in_either_field(
    server: EmulatorServer, field: str
) -> None:
    """Reasoning deltas (DeepSeek's reasoning_content, Ollama's reasoning) are
    kept apart from the text, streamed and not."""
    server.set_reply(
        text="4", reasoning="Two and two make four.", reasoning_field=field
    )
    with client(server.url).stream(HELLO) as stream:
        assert list(stream) == ["4"]
    assert stream.reasoning == "Two and two make four."
    assert server.requests[0].json["stream"] is True
    reply = client(server.url).complete(HELLO)
    assert (reply.text, reply.reasoning) == ("4", "Two and two make four.")


def test_a_complete_reply_with_tool_calls_fills_the_fields(
    server: EmulatorServer,
) -> None:
    """A non-streamed chat.completion with tool calls: content None, calls in
    order, finish reason tool_calls."""
    server.set_reply(tool_calls=[{"name": "f", "arguments": "{}", "id": "call_x"}])
    reply = client(server.url).complete(HELLO)
    assert reply.text == ""
    assert [(c.id, c.type, c.function.name) for c in reply.tool_calls] == [
        ("call_x", "function", "f")
    ]
    assert reply.finish_reason == "tool_calls"
    assert reply.model == "gpt-4o-mini"


def test_reply_checks_its_new_fields() -> None:
    """Reply refuses tool calls, fragments and reasoning fields it cannot send."""
    with pytest.raises(TypeError, match="needs a string 'name'"):
        Reply(tool_calls=[{"arguments": "{}"}])
    with pytest.raises(TypeError, match="tool_calls must be a list"):
        Reply(tool_calls={"name": "f"})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="tool_call_fragments must be an int >= 1"):
        Reply(tool_call_fragments=0)
    with pytest.raises(ValueError, match="reasoning_field must be"):
        Reply(reasoning_field="thinking")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="usage must map"):
        Reply(usage={"prompt_tokens": -1})


def test_the_facade_passes_tools_to_openai_compatible(
    server: EmulatorServer,
) -> None:
    """ChatCompletion.create(..., tools=...) works for OpenAICompatible: the
    tools reach the body, and include_usage is a client option."""
    text = chatproviders.ChatCompletion.create(
        "gpt-4o-mini",
        HELLO,
        provider=OpenAICompatible,
        base_url=server.url,
        include_usage=False,
        tools=[WEATHER_TOOL],
        tool_choice="auto",
    )
    assert text == server.reply.text
    body = server.requests[0].json
    assert body["tools"] == [WEATHER_TOOL] and body["tool_choice"] == "auto"
    assert "stream_options" not in body
