"""parse() and stream(schema=) against the emulators: modes, retries, refusals."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from chatproviders import (
    Cromicle,
    FallbackProvider,
    InternalServerError,
    InvalidMessagesError,
    OpenAICompatible,
    ParsedResponse,
    RateLimitError,
    StructuredOutputError,
    UnsupportedParameterError,
)
from chatproviders.testing import EmulatorServer, LlamaCppServer, serve
from tests.structured.models import Customer, Person

HI = [{"role": "user", "content": "Ann is 31 and a member."}]
ANN = {"name": "Ann", "age": 31, "member": True}


@pytest.fixture
def server() -> Iterator[EmulatorServer]:
    with serve("openai") as server:
        yield server


@pytest.fixture
def client(server: EmulatorServer) -> Iterator[OpenAICompatible]:
    with OpenAICompatible(server.url, model="gpt-4o-mini") as client:
        yield client


def formats(server: EmulatorServer) -> list[Any]:
    """The response_format type of every request the server received."""
    return [(r.json.get("response_format") or {}).get("type") for r in server.requests]


def test_parse_returns_a_model_instance(client: OpenAICompatible) -> None:
    """The emulator answers JSON built from the schema; parsed is the model."""
    reply = client.parse(HI, Customer)
    assert isinstance(reply, ParsedResponse)
    assert isinstance(reply.parsed, Customer)
    assert reply.mode == "json_schema" and reply.refusal is None
    assert reply.parsed == Customer.model_validate_json(reply.text)


def test_json_schema_dict_gives_the_validated_json(
    client: OpenAICompatible, server: EmulatorServer
) -> None:
    """A dict schema is sent strict and parsed is plain JSON data."""
    schema = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 5}}}
    reply = client.parse(HI, schema)
    assert reply.parsed == {"n": 5}
    sent = server.requests[0].json["response_format"]["json_schema"]
    assert sent["strict"] is True and sent["name"] == "response"
    assert sent["schema"]["additionalProperties"] is False
    assert sent["schema"]["required"] == ["n"]


def test_invalid_reply_is_asked_again_with_the_errors(
    client: OpenAICompatible, server: EmulatorServer
) -> None:
    """One invalid reply, then a retry that tells the model what was wrong."""
    server.queue_reply(text='{"name": "Ann", "age": "old"}')
    server.queue_reply(text=json.dumps(ANN))
    reply = client.parse(HI, Person)
    assert reply.parsed == Person(**ANN)
    assert reply.attempts == 2
    retry = server.requests[1].json["messages"]
    assert retry[:2] == [
        *HI,
        {"role": "assistant", "content": '{"name": "Ann", "age": "old"}'},
    ]
    assert retry[2]["role"] == "user"
    assert "age: Input should be a valid integer" in retry[2]["content"]
    assert "member: Field required" in retry[2]["content"]


def test_retries_spent_raise_with_text_and_errors(
    client: OpenAICompatible, server: EmulatorServer
) -> None:
    """After max_parse_retries, StructuredOutputError carries the text and errors."""
    for _ in range(3):
        server.queue_reply(text="Sure! Here you go.")
    with pytest.raises(StructuredOutputError) as caught:
        client.parse(HI, Person, max_parse_retries=2)
    error = caught.value
    assert len(server.requests) == 3
    assert error.text == "Sure! Here you go."
    assert error.errors and "Invalid JSON" in error.errors[0]
    assert error.mode == "json_schema" and error.provider == "OpenAICompatible"
    assert "does not match the schema Person" in str(error)


def test_the_message_lists_every_problem_and_stays_short(
    client: OpenAICompatible, server: EmulatorServer
) -> None:
    """The message joins the problems with "; ", whole when short, cut to 300
    characters (ending in "...") when long; .errors keeps them all."""
    one = {"type": "object", "properties": {"a": {"type": "integer"}}}
    one["required"] = ["a"]
    server.queue_reply(text="{}")
    with pytest.raises(StructuredOutputError) as caught:
        client.parse(HI, one, mode="prompt", max_parse_retries=0)
    assert len(caught.value.errors) == 1
    assert str(caught.value).endswith(f": {caught.value.errors[0]}")

    names = [f"field_number_{i}" for i in range(40)]
    many = {"type": "object", "properties": {n: {"type": "integer"} for n in names}}
    many["required"] = names
    server.queue_reply(text="{}")
    with pytest.raises(StructuredOutputError) as caught:
        client.parse(HI, many, mode="prompt", max_parse_retries=0)
    errors = caught.value.errors
    assert len(errors) == 40
    shown = "; ".join(errors)[:297] + "..."
    assert str(caught.value).endswith(f": {shown}")


def test_the_cut_is_at_300_characters_exactly(
    client: OpenAICompatible, server: EmulatorServer
) -> None:
    """A problem of 300 characters is shown whole; one of 301 is cut to 297
    and "..."."""

    def problem(name: str) -> tuple[str, str]:
        schema = {"type": "object", "properties": {name: {"type": "integer"}}}
        schema["required"] = [name]
        server.queue_reply(text="{}")
        with pytest.raises(StructuredOutputError) as caught:
            client.parse(HI, schema, mode="prompt", max_parse_retries=0)
        (error,) = caught.value.errors
        return str(caught.value), error

    _, short = problem("a")  # one problem, as long as its name makes it
    message, error = problem("a" * (1 + 300 - len(short)))
    assert len(error) == 300 and message.endswith(f": {error}")
    message, error = problem("a" * (1 + 301 - len(short)))
    assert len(error) == 301 and message.endswith(f": {error[:297]}...")


def test_no_retry_when_told_none(
    client: OpenAICompatible, server: EmulatorServer
) -> None:
    """max_parse_retries=0 sends one request."""
    server.queue_reply(text="[]")
    with pytest.raises(StructuredOutputError):
        client.parse(HI, Person, max_parse_retries=0)
    assert len(server.requests) == 1


def test_one_retry_by_default(client: OpenAICompatible, server: EmulatorServer) -> None:
    """Without max_parse_retries, a reply that does not match is asked again
    once: two requests, then StructuredOutputError."""
    for _ in range(3):
        server.queue_reply(text="[]")
    with pytest.raises(StructuredOutputError):
        client.parse(HI, Person)
    assert len(server.requests) == 2


def test_asking_again_names_every_problem(
    client: OpenAICompatible, server: EmulatorServer
) -> None:
    """The request asking again quotes the reply's problems, joined by "; "."""
    server.queue_reply(text="{}")
    with pytest.raises(StructuredOutputError) as caught:
        client.parse(HI, Person, max_parse_retries=0)
    problems = caught.value.errors
    assert len(problems) == 3  # name, age and member are missing
    server.queue_reply(text="{}")
    server.queue_reply(text=json.dumps(ANN))
    assert client.parse(HI, Person).parsed == Person(**ANN)
    asked = server.requests[-1].json["messages"][-1]["content"]
    assert f"not valid: {'; '.join(problems)}. " in asked


def test_a_reply_that_starts_as_json_is_not_searched_for_another(
    client: OpenAICompatible, server: EmulatorServer
) -> None:
    """JSON followed by words and a fenced example is a reply to ask again
    about: the example in the fence is never taken for the answer."""
    example = {"name": "Bob", "age": 40, "member": False}
    fence = f"```json\n{json.dumps(example)}\n```"
    server.queue_reply(text=f"{json.dumps(ANN)}\nAn example of the shape:\n{fence}")
    with pytest.raises(StructuredOutputError):
        client.parse(HI, Person, max_parse_retries=0)


def test_refusal_sets_refusal_without_raising(
    client: OpenAICompatible, server: EmulatorServer
) -> None:
    """A refusal is no error: parsed is None and refusal says why."""
    server.queue_reply(refusal="I can't help with that.")
    reply = client.parse(HI, Person)
    assert reply.parsed is None and reply.refusal == "I can't help with that."
    assert len(server.requests) == 1


def test_content_filter_raises(
    client: OpenAICompatible, server: EmulatorServer
) -> None:
    """A reply withheld by a content filter raises at once."""
    server.queue_reply(text="{", finish_reason="content_filter")
    with pytest.raises(StructuredOutputError, match="content filter"):
        client.parse(HI, Person)


def test_fenced_json_is_read(client: OpenAICompatible, server: EmulatorServer) -> None:
    """JSON in a fenced code block, with words around it, is read."""
    server.queue_reply(
        text=f"Here it is:\n```json\n{json.dumps(ANN)}\n```\nAnything else?"
    )
    assert client.parse(HI, Person).parsed == Person(**ANN)


def test_auto_steps_down_from_llamacpps_500_and_remembers() -> None:
    """llama.cpp's 500 for json_schema: auto finds json_object, retries none of
    the 500s, and the next call goes straight to json_object."""
    with (
        serve(LlamaCppServer) as server,
        OpenAICompatible(server.url, model="gpt-4o-mini") as client,
    ):
        first = client.parse(HI, Person)
        second = client.parse(HI, Person)
        assert (first.mode, second.mode) == ("json_object", "json_object")
        assert formats(server) == ["json_schema", "json_object", "json_object"]
        assert isinstance(first.parsed, Person)
        sent = server.requests[1].json
        assert sent["response_format"]["schema"] == Person.model_json_schema()
        assert "JSON" in sent["messages"][0]["content"]
        # the client's model, named, is the model already asked
        client.parse(HI, Person, model="gpt-4o-mini")
        assert formats(server)[3:] == ["json_object"]
        del server.requests[3:]
        # another model of the same client starts from the top again
        client.parse(HI, Person, model="gpt-3.5-turbo")
        assert formats(server)[3:] == ["json_schema", "json_object"]


def test_explicit_mode_does_not_step_down() -> None:
    """mode='json_schema' against llama.cpp raises its 500, after one request."""
    with (
        serve(LlamaCppServer) as server,
        OpenAICompatible(server.url, model="gpt-4o-mini") as client,
    ):
        with pytest.raises(
            InternalServerError, match="Input should be 'text' or 'json_object'"
        ):
            client.parse(HI, Person, mode="json_schema")
        assert len(server.requests) == 1


@pytest.mark.parametrize("status", [400, 422])
def test_auto_steps_down_on_a_refused_request(
    status: int, client: OpenAICompatible, server: EmulatorServer
) -> None:
    """A 400 or 422 to json_schema steps down to json_object."""
    server.queue_reply(status=status)
    assert client.parse(HI, Person).mode == "json_object"
    assert formats(server) == ["json_schema", "json_object"]


def test_auto_steps_all_the_way_to_prompt(
    client: OpenAICompatible, server: EmulatorServer
) -> None:
    """Refused twice, auto states the schema in a system message."""
    server.queue_reply(status=400)
    server.queue_reply(status=400)
    server.queue_reply(text=json.dumps(ANN))
    reply = client.parse(HI, Person)
    assert reply.mode == "prompt" and reply.parsed == Person(**ANN)
    assert formats(server) == ["json_schema", "json_object", None]
    system = server.requests[2].json["messages"][0]
    assert system["role"] == "system"
    assert json.dumps(Person.model_json_schema()) in system["content"]


@pytest.mark.parametrize("status", [429, 500, 503])
def test_other_errors_do_not_step_down(status: int, server: EmulatorServer) -> None:
    """A 429 or a plain 5xx is no refusal of the format: raised, mode kept."""
    with OpenAICompatible(server.url, model="gpt-4o-mini", max_retries=0) as client:
        server.queue_reply(status=status)
        with pytest.raises((RateLimitError, InternalServerError)):
            client.parse(HI, Person)
        assert formats(server) == ["json_schema"]


def test_prompt_mode_retry_against_a_seed_provider() -> None:
    """Cromicle takes no format: prompt mode, one invalid reply, then a retry."""
    with serve("cromicle") as server, Cromicle(base_url=server.url) as client:
        server.queue_reply(text="Ann is 31, a member.")
        server.queue_reply(text=f"```\n{json.dumps(ANN)}\n```", chunk_size=4)
        reply = client.parse(HI, Person)
        assert reply.mode == "prompt" and reply.parsed == Person(**ANN)
        first, second = (r.json["message"] for r in server.requests)
        assert first.startswith("System: Answer with one JSON value only")
        assert '"required": ["name", "age", "member"]' in first
        assert "User: Ann is 31 and a member.\nAssistant:" in first
        assert (
            "Assistant: Ann is 31, a member.\nUser: That reply is not valid" in second
        )


def test_seed_provider_refuses_other_modes() -> None:
    """Asking a seed provider for json_schema says which mode it takes."""
    with Cromicle(base_url="http://127.0.0.1:9") as client:
        with pytest.raises(ValueError, match="mode='prompt'"):
            client.parse(HI, Person, mode="json_schema")


def test_fallback_takes_the_modes_every_provider_takes() -> None:
    """A FallbackProvider of openai and Cromicle asks in prompt mode."""
    with serve("openai") as openai, serve("cromicle") as cromicle:
        openai.queue_reply(status=503)
        cromicle.queue_reply(text=json.dumps(ANN))
        fallback = FallbackProvider(
            [
                OpenAICompatible(openai.url, model="gpt-4o-mini", max_retries=0),
                Cromicle(base_url=cromicle.url),
            ]
        )
        with fallback:
            reply = fallback.parse(HI, Person)
        assert reply.mode == "prompt" and reply.provider == "Cromicle"
        assert "response_format" not in openai.requests[0].json


def test_fallback_steps_down_when_every_provider_refuses() -> None:
    """Two llama.cpp servers behind a FallbackProvider: both refuse
    json_schema, so auto steps down to json_object for the whole fallback."""
    with serve(LlamaCppServer) as one, serve(LlamaCppServer) as two:
        fallback = FallbackProvider(
            [OpenAICompatible(s.url, model="gpt-4o-mini") for s in (one, two)]
        )
        with fallback:
            first = fallback.parse(HI, list[Person])
            assert first.mode == "json_object"
            assert isinstance(first.parsed, list)
            assert isinstance(first.parsed[0], Person)
            assert fallback.parse(HI, list[Person]).mode == "json_object"
        assert formats(one) == ["json_schema", "json_object", "json_object"]
        assert formats(two) == ["json_schema"]
        sent = one.requests[1].json["messages"][0]
        assert sent == {"role": "system", "content": "Answer with one JSON value only."}


def test_bad_arguments_fail_before_any_request(
    client: OpenAICompatible, server: EmulatorServer
) -> None:
    """A bad mode, retry count, response_format or parameter raises at once."""
    with pytest.raises(ValueError, match="mode must be"):
        client.parse(HI, Person, mode="grammar")
    with pytest.raises(ValueError, match="max_parse_retries"):
        client.parse(HI, Person, max_parse_retries=-1)
    with pytest.raises(TypeError, match="response_format is set by the schema"):
        client.parse(HI, Person, response_format={"type": "json_object"})
    with pytest.raises(UnsupportedParameterError):
        client.parse(HI, Person, temprature=0)
    assert server.requests == []


def test_parameters_reach_the_body(
    client: OpenAICompatible, server: EmulatorServer
) -> None:
    """Other keywords go in the request as complete() sends them."""
    client.parse(HI, Person, temperature=0, max_tokens=50)
    body = server.requests[0].json
    assert (body["temperature"], body["max_tokens"], body["stream"]) == (0, 50, False)


# -- streams ----------------------------------------------------------------


def test_stream_with_schema_takes_a_mode(
    client: OpenAICompatible, server: EmulatorServer
) -> None:
    """stream(schema=..., mode="prompt") asks in that mode: the schema in a
    system message, no response_format."""
    server.queue_reply(text=json.dumps(ANN))
    with client.stream(HI, schema=Person, mode="prompt") as stream:
        stream.until_done()
    assert stream.parsed == Person(**ANN)
    sent = server.requests[0].json
    assert "response_format" not in sent and "mode" not in sent
    assert '"age"' in sent["messages"][0]["content"]


def test_stream_with_schema_sets_parsed_at_the_end(
    client: OpenAICompatible, server: EmulatorServer
) -> None:
    """The text streams in pieces; parsed is set once the reply has ended."""
    server.set_reply(chunk_size=5)
    with client.stream(HI, schema=Person) as stream:
        pieces = []
        for piece in stream:
            assert stream.parsed is None
            pieces.append(piece)
    assert len(pieces) > 3
    assert stream.parsed == Person.model_validate_json("".join(pieces))
    assert server.requests[0].json["stream"] is True


def test_stream_validation_error_comes_after_the_text(
    client: OpenAICompatible, server: EmulatorServer
) -> None:
    """An invalid streamed reply hands out all its text, then raises."""
    server.queue_reply(text='{"name": 5}', chunk_size=3)
    pieces: list[str] = []
    with client.stream(HI, schema=Person) as stream:
        with pytest.raises(StructuredOutputError) as caught:
            for piece in stream:
                pieces.append(piece)
    assert "".join(pieces) == '{"name": 5}' == caught.value.text
    assert len(server.requests) == 1


def test_stream_refusal(client: OpenAICompatible, server: EmulatorServer) -> None:
    """A streamed refusal arrives in pieces; parsed stays None, nothing raised."""
    server.queue_reply(refusal="I won't.", chunk_size=2)
    with client.stream(HI, schema=Person) as stream:
        assert list(stream) == []
    assert stream.refusal == "I won't." and stream.parsed is None


def test_stream_until_done_raises_for_a_bad_reply(
    client: OpenAICompatible, server: EmulatorServer
) -> None:
    """until_done() on a schema stream raises the validation error too."""
    server.queue_reply(text="nope")
    with pytest.raises(StructuredOutputError):
        client.stream(HI, schema=Person).until_done()


def test_stream_steps_down_and_logs_why(caplog: Any) -> None:
    """stream(schema=) steps down like parse(), and logs why."""
    with (
        serve(LlamaCppServer) as server,
        OpenAICompatible(server.url, model="gpt-4o-mini") as client,
    ):
        with caplog.at_level(logging.INFO, "chatproviders"):
            with client.stream(HI, schema=Person) as stream:
                text = "".join(stream)
        assert isinstance(stream.parsed, Person) and text == stream.text
        assert "refused response mode json_schema" in caplog.text


def test_json_object_mode_and_a_bare_json_object_request(
    client: OpenAICompatible, server: EmulatorServer
) -> None:
    """mode='json_object' sends the plain schema beside the type; a request
    for json_object with no schema gets a small JSON object."""
    reply = client.parse(HI, Person, mode="json_object")
    assert reply.mode == "json_object" and isinstance(reply.parsed, Person)
    bare = client.complete(HI, response_format={"type": "json_object"})
    assert json.loads(bare.text) == {"text": server.reply.text}


def test_stream_with_schema_from_an_sse_seed_provider() -> None:
    """CodeLinkAva streams events; in prompt mode its JSON parses at the end."""
    from chatproviders import CodeLinkAva

    with serve("codelinkava", text=json.dumps(ANN), chunk_size=4) as server:
        with CodeLinkAva(base_url=server.url) as client:
            with client.stream(HI, schema=Person) as stream:
                pieces = list(stream)
    assert len(pieces) > 5 and stream.parsed == Person(**ANN)
    assert server.requests[0].json["messages"][0]["role"] == "system"


@pytest.mark.parametrize("mode", ["auto", "json_object", "prompt"])
@pytest.mark.parametrize(
    ("messages", "words"),
    [
        ("hi", "must be a list of"),
        (None, "must be a list of"),
        ([1], r"messages\[0\] must be a dict"),
        ([{"role": "user"}], r"messages\[0\] needs a string 'content'"),
    ],
)
def test_bad_messages_are_named_as_chat_names_them(
    client: OpenAICompatible,
    server: EmulatorServer,
    mode: str,
    messages: Any,
    words: str,
) -> None:
    """parse() and stream(schema=) check messages as complete() does, before
    any mode adds its instruction: the index is the caller's, nothing is sent."""
    with pytest.raises(InvalidMessagesError, match=words):
        client.parse(messages, Person, mode=mode)
    with pytest.raises(InvalidMessagesError, match=words):
        client.stream(messages, schema=Person, mode=mode)
    assert server.requests == []
