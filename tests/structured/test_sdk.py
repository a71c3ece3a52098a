"""parse() against the OpenAI SDK's chat.completions.parse, on the same emulator.

Both clients talk to one openai emulator; it records what each sent and
answers each the same queued reply. The request's ``response_format`` must be
the same, and so must ``.parsed`` (and ``.refusal``) for the same reply.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from chatproviders import OpenAICompatible, StructuredOutputError
from chatproviders.testing import EmulatorServer, serve
from tests.structured.models import SDK_MODELS, Customer, Person

# The SDK is in the [test] extra for Python 3.10+ (its own floor) only.
openai = pytest.importorskip("openai") if sys.version_info >= (3, 10) else None
pytestmark = pytest.mark.skipif(openai is None, reason="openai's SDK needs 3.10+")

HI = [{"role": "user", "content": "Fill it in."}]
MODEL = "gpt-4o-mini"


@pytest.fixture
def server() -> Iterator[EmulatorServer]:
    with serve("openai") as server:
        yield server


@pytest.fixture
def sdk(server: EmulatorServer) -> Iterator[Any]:
    client = openai.OpenAI(base_url=server.url, api_key="sk-test", max_retries=0)
    yield client
    client.close()


@pytest.fixture
def ours(server: EmulatorServer) -> Iterator[OpenAICompatible]:
    with OpenAICompatible(server.url, api_key="sk-test", model=MODEL) as client:
        yield client


@pytest.mark.parametrize("model", SDK_MODELS, ids=lambda m: m.__name__)
def test_same_request_same_parsed(
    model: Any, server: EmulatorServer, sdk: Any, ours: OpenAICompatible
) -> None:
    """For each model the body's response_format is the SDK's, and the
    emulator's JSON for it parses to equal values through both."""
    theirs = sdk.chat.completions.parse(model=MODEL, messages=HI, response_format=model)
    mine = ours.parse(HI, model, mode="json_schema")
    sent_by_sdk, sent_by_us = (r.json for r in server.requests)
    assert sent_by_us["response_format"] == sent_by_sdk["response_format"]
    assert sent_by_us["messages"] == sent_by_sdk["messages"]
    assert mine.parsed == theirs.choices[0].message.parsed
    assert mine.parsed is not None


REPLIES = [
    {"text": json.dumps({"name": "Ann", "age": 31, "member": False})},
    {"text": '{"name": "\\u00c9lo\\u00efse", "age": -1, "member": true}  \n'},
    {"refusal": "I can't help with that request."},
    {"refusal": "No.", "text": ""},
]


@pytest.mark.parametrize("reply", REPLIES)
def test_same_reply_same_parsed_and_refusal(
    reply: dict[str, Any], server: EmulatorServer, sdk: Any, ours: OpenAICompatible
) -> None:
    """Replies, refusals among them, read the same as the SDK reads them."""
    server.queue_reply(**reply)
    server.queue_reply(**reply)
    message = (
        sdk.chat.completions.parse(model=MODEL, messages=HI, response_format=Person)
        .choices[0]
        .message
    )
    mine = ours.parse(HI, Person, mode="json_schema")
    assert mine.parsed == message.parsed
    assert mine.refusal == message.refusal
    assert mine.text == (message.content or "")


def test_cut_at_max_tokens_raises_as_the_sdk_does(
    server: EmulatorServer, sdk: Any, ours: OpenAICompatible
) -> None:
    """finish_reason "length" raises in both, even for JSON that parses."""
    for _ in range(2):
        server.queue_reply(
            text='{"name": "A", "age": 1, "member": true}', finish_reason="length"
        )
    with pytest.raises(openai.LengthFinishReasonError):
        sdk.chat.completions.parse(model=MODEL, messages=HI, response_format=Person)
    with pytest.raises(StructuredOutputError, match="max_tokens") as caught:
        ours.parse(HI, Person, max_parse_retries=3)
    assert caught.value.finish_reason == "length"
    assert len(server.requests) == 2  # no retry: it would be cut again


def test_stream_sends_the_sdks_request_too(
    server: EmulatorServer, sdk: Any, ours: OpenAICompatible
) -> None:
    """stream(schema=) asks as the SDK's stream helper does, and parses the same."""
    with sdk.chat.completions.stream(
        model=MODEL, messages=HI, response_format=Customer
    ) as theirs:
        final = theirs.get_final_completion()
    with ours.stream(HI, schema=Customer) as stream:
        pieces = list(stream)
    sent_by_sdk, sent_by_us = (r.json for r in server.requests)
    assert sent_by_us["response_format"] == sent_by_sdk["response_format"]
    assert stream.parsed == final.choices[0].message.parsed
    assert "".join(pieces) == stream.text
