"""OpenAICompatible against llama-cpp-python's server and a tiny random model.

The model's weights are random, so the tests check what a real server does
with our requests, not what it says: greedy sampling (``temperature=0``)
makes every answer deterministic, and a named ``tool_choice`` makes the
server's grammar force valid JSON arguments out of the noise.
"""

from __future__ import annotations

import json
import string
from collections.abc import Iterator

import pytest

from chatproviders import (
    BadRequestError,
    IncompleteStreamError,
    OpenAICompatible,
    ToolCallDelta,
)
from tests.llamacpp.server import ALIAS, LlamaServer

HI = [{"role": "user", "content": "Hello, who are you?"}]
MAX_TOKENS = 12
GREEDY = {"max_tokens": MAX_TOKENS, "temperature": 0}
UNITS = ["celsius", "fahrenheit"]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather now: its unit, and whether it rains",
            "parameters": {
                "type": "object",
                "properties": {
                    "unit": {"type": "string", "enum": UNITS},
                    "rainy": {"type": "boolean"},
                },
                "required": ["unit", "rainy"],
                "additionalProperties": False,
            },
        },
    }
]
GET_WEATHER = {"type": "function", "function": {"name": "get_weather"}}
PRINTABLE = set(string.printable) - set("\t\n\r\x0b\x0c")


@pytest.fixture
def client(llama_server: LlamaServer) -> Iterator[OpenAICompatible]:
    """A client of the server, closed after the test."""
    with OpenAICompatible(llama_server.base_url, model=llama_server.model) as opened:
        yield opened


@pytest.fixture(scope="module")
def greedy_text(llama_server: LlamaServer) -> str:
    """The model's greedy answer to HI, streamed and joined."""
    with OpenAICompatible(llama_server.base_url, model=llama_server.model) as opened:
        with opened.stream(HI, **GREEDY) as stream:
            return "".join(stream)


def test_list_models(client: OpenAICompatible, llama_server: LlamaServer) -> None:
    """list_models() reads the server's /v1/models: the one alias it serves."""
    assert client.list_models() == [llama_server.model]


def test_stream_arrives_in_chunks(client: OpenAICompatible) -> None:
    """stream() yields the answer in several chunks and ends at max_tokens."""
    with client.stream(HI, **GREEDY) as stream:
        chunks = list(stream)
    assert len(chunks) > 1
    text = "".join(chunks)
    assert text
    assert set(text) <= PRINTABLE
    assert stream.text == text
    assert stream.finish_reason == "length"
    assert stream.tool_calls == ()
    assert stream.model == ALIAS
    # It takes stream_options but sends no usage chunk.
    assert stream.usage is None


def test_complete_is_the_stream_joined(
    client: OpenAICompatible, greedy_text: str
) -> None:
    """complete(), a reply not streamed, has the stream's greedy text, and usage."""
    reply = client.complete(HI, **GREEDY)
    assert reply.text == greedy_text
    assert reply.finish_reason == "length"
    assert reply.model == ALIAS
    assert reply.usage is not None
    assert reply.usage.completion_tokens == MAX_TOKENS
    assert reply.usage.prompt_tokens > 0
    assert reply.usage.total_tokens == MAX_TOKENS + reply.usage.prompt_tokens


def test_stream_in_background(client: OpenAICompatible, greedy_text: str) -> None:
    """stream_in_background() reads the same answer on a worker thread."""
    with client.stream_in_background(HI, **GREEDY) as background:
        assert background.result(timeout=60) == greedy_text


def test_context_overflow_is_a_bad_request(
    client: OpenAICompatible, llama_server: LlamaServer
) -> None:
    """A prompt past the context is a 400 BadRequestError in the server's words."""
    too_long = [{"role": "user", "content": "x" * (2 * llama_server.n_ctx)}]
    with pytest.raises(BadRequestError) as caught:
        client.complete(too_long, **GREEDY)
    error = caught.value
    assert error.status_code == 400
    assert f"maximum context length is {llama_server.n_ctx} tokens" in str(error)
    assert "context_length_exceeded" in error.body


def test_context_overflow_in_a_stream_is_an_error(
    client: OpenAICompatible, llama_server: LlamaServer
) -> None:
    """Streamed, the overflow comes as a 200 whose stream ends at once, which is
    an IncompleteStreamError, not an empty answer.
    """
    too_long = [{"role": "user", "content": "x" * (2 * llama_server.n_ctx)}]
    with pytest.raises(IncompleteStreamError) as caught:
        with client.stream(too_long, **GREEDY) as stream:
            list(stream)
    assert caught.value.partial_text == ""


def test_streamed_tool_call_keeps_one_name_and_id(client: OpenAICompatible) -> None:
    """A named tool_choice streams one call: its name and id are not glued together
    although the server repeats them in every fragment, and the arguments are JSON.
    """
    with client.stream(
        HI, tools=TOOLS, tool_choice=GET_WEATHER, max_tokens=64, temperature=0
    ) as stream:
        deltas = [e for e in stream.events() if isinstance(e, ToolCallDelta)]
    assert len(deltas) > 1
    assert {delta.name for delta in deltas} == {"get_weather"}
    assert len({delta.id for delta in deltas}) == 1
    [call] = stream.tool_calls
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert call.id == deltas[0].id
    arguments = json.loads(call.function.arguments)
    assert arguments["unit"] in UNITS
    assert isinstance(arguments["rainy"], bool)
    assert stream.finish_reason == "tool_calls"


def test_completed_tool_call(client: OpenAICompatible) -> None:
    """complete() with a named tool_choice gives one call whose arguments are JSON."""
    reply = client.complete(
        HI, tools=TOOLS, tool_choice=GET_WEATHER, max_tokens=64, temperature=0
    )
    [call] = reply.tool_calls
    assert call.function.name == "get_weather"
    assert call.id.startswith("call_")
    assert json.loads(call.function.arguments)["unit"] in UNITS
    assert reply.finish_reason == "tool_calls"
