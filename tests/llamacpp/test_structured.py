"""parse() against llama-cpp-python's server: auto mode finds json_object.

The server refuses ``response_format: {"type": "json_schema"}`` with HTTP 500
(``Input should be 'text' or 'json_object'``) but turns the ``schema`` of a
``json_object`` request into a grammar, so even the random model answers
valid JSON. The string is bounded (``max_length``) so that the grammar ends
it whatever the noise: a random model has no reason to close a quote. The
integer has no bounds: llama.cpp's grammar does not read them, and a value
out of them would fail validation.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import BaseModel, Field

from chatproviders import InternalServerError, OpenAICompatible
from tests.llamacpp.server import LlamaServer

ASK = [{"role": "user", "content": "A reading, please."}]
# The answer is at most about 75 bytes (the grammar caps an integer at 16
# digits and a space at one); the prompt about 80 tokens of the 256.
GREEDY = {"temperature": 0, "max_tokens": 120}


class Reading(BaseModel):
    count: int
    ok: bool
    label: str = Field(max_length=8)


@pytest.fixture
def client(llama_server: LlamaServer) -> Iterator[OpenAICompatible]:
    with OpenAICompatible(llama_server.base_url, model=llama_server.model) as opened:
        yield opened


def test_auto_finds_json_object_and_remembers_it(client: OpenAICompatible) -> None:
    """auto: json_schema is refused with a 500, json_object gives a valid
    Reading, and the second call asks with json_object at once."""
    first = client.parse(ASK, Reading, **GREEDY)
    assert first.mode == "json_object"
    assert isinstance(first.parsed, Reading)
    assert first.parsed == Reading.model_validate_json(first.text)
    second = client.parse(ASK, Reading, **GREEDY)
    assert second.mode == "json_object" and second.attempts == 1
    assert second.parsed == first.parsed  # greedy: the same answer


def test_json_schema_is_refused_as_the_emulator_says(client: OpenAICompatible) -> None:
    """The real refusal is the 500 LlamaCppServer imitates, sent once."""
    with pytest.raises(InternalServerError) as caught:
        client.parse(ASK, Reading, mode="json_schema", **GREEDY)
    error = caught.value
    assert error.status_code == 500 and error.tries == 1
    assert "Input should be 'text' or 'json_object'" in error.body
    assert "response_format" in error.body


def test_stream_with_schema(client: OpenAICompatible) -> None:
    """stream(schema=) streams the grammar's JSON and parses it at the end."""
    with client.stream(ASK, schema=Reading, **GREEDY) as stream:
        pieces = list(stream)
    assert len(pieces) > 1
    assert isinstance(stream.parsed, Reading)
