"""Messages in OpenAI's shape: checked for shape, sent verbatim; seeds refuse
what they cannot carry."""

from __future__ import annotations

import json
from typing import Any

import pytest
import responses

import chatproviders
from chatproviders import InvalidMessagesError, OpenAICompatible, format_prompt
from chatproviders._messages import validate_messages
from tests.constants import OPENAI_BASE

SEEDS = [
    chatproviders.Acytoo,
    chatproviders.CodeLinkAva,
    chatproviders.Cromicle,
    chatproviders.GPROChat,
]

SSE = b'data: {"choices": [{"delta": {"content": "ok"}}]}\n\ndata: [DONE]\n\n'
CALL = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
}
TOOL_LOOP = [
    {"role": "developer", "content": "Use the tools."},
    {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
    {
        "role": "user",
        "name": "ann",
        "content": [
            {"type": "text", "text": "Weather in this city?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}},
            {"type": "input_audio", "input_audio": {"data": "AA", "format": "wav"}},
        ],
    },
    {"role": "assistant", "content": None, "tool_calls": [CALL]},
    {"role": "tool", "tool_call_id": "call_1", "content": '{"celsius": 18}'},
]


@responses.activate
def test_every_role_and_content_shape_is_sent_verbatim() -> None:
    """developer, parts (text, image, other types), an assistant turn with
    content None and tool_calls, and a tool answer reach the body unchanged."""
    responses.post(f"{OPENAI_BASE}/chat/completions", body=SSE)
    with OpenAICompatible(OPENAI_BASE, model="m").stream(TOOL_LOOP) as stream:
        assert list(stream) == ["ok"]
    assert json.loads(responses.calls[0].request.body)["messages"] == TOOL_LOOP


@responses.activate
def test_an_assistant_refusal_part_is_sent_verbatim() -> None:
    """A refusal part, as OpenAI returns it, is history an assistant message
    may carry; another part type in an assistant message is refused."""
    responses.post(f"{OPENAI_BASE}/chat/completions", body=SSE)
    refusal = {"role": "assistant", "content": [{"type": "refusal", "refusal": "No."}]}
    messages = [{"role": "user", "content": "hi"}, refusal]
    with OpenAICompatible(OPENAI_BASE, model="m").stream(messages) as stream:
        assert list(stream) == ["ok"]
    assert json.loads(responses.calls[0].request.body)["messages"] == messages
    image = {"type": "image_url", "image_url": {"url": "data:,"}}
    with pytest.raises(InvalidMessagesError, match="has type 'image_url'"):
        OpenAICompatible(OPENAI_BASE, model="m").stream(
            [{"role": "assistant", "content": [image]}]
        )


@pytest.mark.parametrize(
    ("message", "problem"),
    [
        ({"role": "user", "content": None}, r"messages\[0\] needs a string 'content'"),
        ({"role": "assistant"}, r"None is for an assistant message with tool_calls"),
        ({"role": "user", "content": []}, r"messages\[0\] 'content' is an empty list"),
        ({"role": "user", "content": ["hi"]}, r"'content'\[0\] must be a dict"),
        (
            {"role": "user", "content": [{"type": "text", "text": 1}]},
            r"'content'\[0\] is a text part without a string 'text'",
        ),
        (
            {"role": "system", "content": [{"type": "image_url", "image_url": {}}]},
            r"'content'\[0\] has type 'image_url'; a system message takes text",
        ),
        (
            {"role": "user", "content": [{"type": "text", "text": "\udce9"}]},
            r"'content'\[0\] 'text' is not valid text",
        ),
        ({"role": "tool", "content": "18"}, r"needs a string 'tool_call_id'"),
        (
            {"role": "user", "content": "x", "tool_call_id": "call_1"},
            r"'tool_call_id', which only a tool message may have",
        ),
        (
            {"role": "user", "content": "x", "tool_calls": [CALL]},
            r"'tool_calls', which only an assistant message may have",
        ),
        (
            {"role": "assistant", "content": None, "tool_calls": CALL},
            r"'tool_calls' must be a list",
        ),
        (
            {"role": "assistant", "content": None, "tool_calls": [{**CALL, "id": 7}]},
            r"'tool_calls'\[0\] needs a string 'id'",
        ),
        (
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [{**CALL, "function": {"name": "f", "arguments": {}}}],
            },
            r"'tool_calls'\[0\]\['function'\] needs a string 'arguments', got dict"
            r" \(arguments are a JSON string\)$",
        ),
        (
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [{**CALL, "function": {"name": 7, "arguments": "{}"}}],
            },
            r"'tool_calls'\[0\]\['function'\] needs a string 'name', got int$",
        ),
        ({"role": "user", "content": "x", "name": 3}, r"'name' must be a string"),
    ],
)
@responses.activate
def test_bad_shapes_name_the_message_and_the_key(
    message: dict[str, Any], problem: str
) -> None:
    """Each malformed message raises InvalidMessagesError naming its index and
    key, before any request."""
    with pytest.raises(InvalidMessagesError, match=problem) as caught:
        OpenAICompatible(OPENAI_BASE, model="m").stream([message])
    assert caught.value.provider == "OpenAICompatible"
    assert len(responses.calls) == 0


@pytest.mark.parametrize(
    ("message", "problem"),
    [
        (TOOL_LOOP[0], r"messages\[1\] has role 'developer'"),
        (TOOL_LOOP[1], r"messages\[1\] has content parts in 'content'"),
        (TOOL_LOOP[3], r"messages\[1\] has no text in 'content'"),
        ({**TOOL_LOOP[3], "content": "x"}, r"messages\[1\] has 'tool_calls'"),
        (TOOL_LOOP[4], r"messages\[1\] has role 'tool'"),
    ],
)
@responses.activate
def test_seed_providers_refuse_what_they_cannot_carry(
    message: dict[str, Any], problem: str
) -> None:
    """Every seed provider (flattening or verbatim) refuses parts, tool calls
    and the developer and tool roles, naming itself, instead of dropping them."""
    messages = [{"role": "user", "content": "hi"}, message]
    for cls in SEEDS:
        with pytest.raises(InvalidMessagesError, match=problem) as caught:
            cls(base_url="http://127.0.0.1:9").stream(messages)
        assert f"which {cls.__name__} cannot carry" in str(caught.value)
        assert caught.value.provider == cls.__name__
        assert caught.value.host == "127.0.0.1:9"
    assert len(responses.calls) == 0


def test_format_prompt_refuses_what_a_prompt_cannot_hold() -> None:
    """format_prompt is public: a tool message is an error, not a 'Tool:' line."""
    with pytest.raises(InvalidMessagesError, match="has role 'tool'"):
        format_prompt([{"role": "user", "content": "hi"}, TOOL_LOOP[4]])


def test_a_tool_call_to_dict_is_a_valid_history_entry() -> None:
    """ToolCall.to_dict() and ChatResponse.as_message() give messages that pass
    the shape check, so a reply goes back into the history as it is."""
    call = chatproviders.ToolCall("call_1", chatproviders.Function("f", "{}"))
    reply = chatproviders.ChatResponse(
        text="", provider="p", model="m", tool_calls=(call,)
    )
    message = reply.as_message()
    function = {"name": "f", "arguments": "{}"}
    assert message == {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "call_1", "type": "function", "function": function}],
    }
    assert validate_messages([message]) == [message]
