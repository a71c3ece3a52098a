"""OpenAICompatible: the wire format, replies, models, errors, and the API key."""

from __future__ import annotations

import json
import logging
import pickle
from collections.abc import Iterator
from typing import Any

import pytest
import responses

import chatproviders
from chatproviders import (
    APIConnectionError,
    APIError,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    IncompleteStreamError,
    InternalServerError,
    ModelNotSupportedError,
    OpenAICompatible,
    RateLimitError,
    ResponseFormatError,
    UnsupportedParameterError,
)
from chatproviders._streams.openai_chunks import iter_chat_reply
from chatproviders.testing import EmulatorServer, serve
from tests.constants import HELLO, OPENAI_BASE
from tests.loopback import Conn, LoopbackServer

KEY = "sk-test-Zq81x"
SSE_BODY = (
    b'data: {"choices": [{"delta": {"role": "assistant"}}]}\n\n'
    b'data: {"choices": [{"delta": {"content": "Hel"}}]}\n\n'
    b'data: {"choices": [{"delta": {"content": "lo"}, "finish_reason": null}]}\n\n'
    b"data: [DONE]\n\n"
)


@pytest.fixture
def server() -> Iterator[EmulatorServer]:
    """The OpenAI-compatible emulator, requiring KEY."""
    with serve("openai", api_key=KEY, chunk_size=3) as started:
        yield started


def client(url: str = OPENAI_BASE, **options: Any) -> OpenAICompatible:
    return OpenAICompatible(url, KEY, model="gpt-4o-mini", **options)


@responses.activate
def test_stream_request_is_exact() -> None:
    """stream() posts model, messages, stream: true and only the given parameters."""
    responses.post(f"{OPENAI_BASE}/chat/completions", body=SSE_BODY)
    with client().stream(HELLO, temperature=0.2, max_tokens=5, seed=None) as stream:
        assert list(stream) == ["Hel", "lo"]
    request = responses.calls[0].request
    assert request.url == f"{OPENAI_BASE}/chat/completions"
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.body) == {
        "model": "gpt-4o-mini",
        "messages": HELLO,
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0.2,
        "max_tokens": 5,
    }


@responses.activate
def test_complete_asks_for_and_reads_one_json_reply() -> None:
    """complete() sends stream: false and returns choices[0].message.content."""
    reply = {
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi!"}}]
    }
    responses.post(f"{OPENAI_BASE}/chat/completions", json=reply)
    result = client().complete(HELLO, model="llama3.2:1b")
    assert (result.text, result.model, result.provider) == (
        "Hi!",
        "llama3.2:1b",
        "OpenAICompatible",
    )
    assert json.loads(responses.calls[0].request.body)["stream"] is False


@responses.activate
def test_a_json_reply_to_a_streamed_request_is_read_too() -> None:
    """A server that ignores stream: true and sends one JSON object still works."""
    reply = {"choices": [{"message": {"content": "whole"}}]}
    responses.post(f"{OPENAI_BASE}/chat/completions", body="\n  " + json.dumps(reply))
    with client().stream(HELLO) as stream:
        assert list(stream) == ["whole"]


JSON_BODY = b'  \n{"choices": [{"message": {"content": "Gr\xc3\xbc\xc3\x9fe"}}]}'


@pytest.mark.parametrize(
    ("body", "text"), [(JSON_BODY, "Grüße"), (SSE_BODY, "Hello")], ids=["json", "sse"]
)
def test_reply_kind_is_sniffed_at_any_split(body: bytes, text: str) -> None:
    """JSON or SSE is told apart whatever the first read holds, even blanks only."""
    for cut in range(len(body) + 1):
        pieces = [body[:cut], body[cut:]]
        assert "".join(iter_chat_reply(pieces)) == text


@pytest.mark.parametrize("framing", ["chunked", "length", "close"])
@pytest.mark.parametrize("fault", [{}, {"split_crlf": True}, {"split_utf8": True}])
def test_emulator_replies_stream_whole(
    server: EmulatorServer, framing: str, fault: dict[str, bool]
) -> None:
    """Every framing, split CRLFs and split characters give the emulator's text."""
    server.set_reply(text="Grüße — ok", chunk_size=2, framing=framing, **fault)
    with client(server.url) as chat:
        with chat.stream(HELLO) as stream:
            chunks = list(stream)
        assert chat.complete(HELLO).text == "Grüße — ok"
    assert "".join(chunks) == "Grüße — ok"
    assert len(chunks) > 1
    assert [r.json["stream"] for r in server.requests] == [True, False]


def test_list_models_returns_the_ids(server: EmulatorServer) -> None:
    """list_models() GETs {base_url}/models with the key and returns data[].id."""
    assert client(server.url).list_models() == ["gpt-3.5-turbo", "gpt-4o-mini"]
    request = server.requests[0]
    assert (request.method, request.route) == ("GET", "/v1/models")
    assert request.headers["authorization"] == f"Bearer {KEY}"


@responses.activate
@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        ('{"object": "list"}', "application/json", "without data"),
        ("[1, 2]", "application/json", "without data"),
        ("[" * 100_000, "application/json", "without data"),
        ("<html><title>UI</title></html>", "text/html", "ends in /v1"),
        ("Sign in to the network first.", "text/html", "ends in /v1"),
    ],
)
def test_list_models_refuses_other_bodies(
    body: str, content_type: str, message: str
) -> None:
    """A model list without data[].id, or a web page (by its start or by its
    declared type), is a ResponseFormatError."""
    responses.get(f"{OPENAI_BASE}/models", body=body, content_type=content_type)
    with pytest.raises(ResponseFormatError, match=message) as caught:
        client().list_models()
    assert caught.value.host == "127.0.0.1:9"


@responses.activate
def test_list_models_maps_failures_to_our_errors() -> None:
    """An error status and a refused connection become our errors."""
    responses.get(
        f"{OPENAI_BASE}/models", status=401, json={"error": {"message": "no"}}
    )
    with pytest.raises(AuthenticationError, match="answered 401"):
        client().list_models()
    with pytest.raises(APIConnectionError, match="connection failed"):
        client("http://127.0.0.1:9/unmocked/v1").list_models()


def test_base_url_is_required() -> None:
    """Without base_url: a ValueError naming the usual servers' URLs."""
    with pytest.raises(ValueError, match="base_url") as caught:
        OpenAICompatible()
    for url in ("11434/v1", "8080/v1", "8000/v1", "1234/v1"):
        assert url in str(caught.value)


@responses.activate
def test_any_model_name_is_sent_and_one_is_required() -> None:
    """Models are open; with no model on the client or the call, an error, no I/O."""
    with pytest.raises(ModelNotSupportedError, match="needs a model") as caught:
        OpenAICompatible(OPENAI_BASE).stream(HELLO)
    assert isinstance(caught.value, ValueError)
    assert len(responses.calls) == 0
    responses.post(f"{OPENAI_BASE}/chat/completions", body=SSE_BODY)
    OpenAICompatible(OPENAI_BASE).stream(HELLO, model="qwen2.5:0.5b").close()
    OpenAICompatible(OPENAI_BASE, model="default-one").stream(HELLO).close()
    sent = [json.loads(call.request.body)["model"] for call in responses.calls]
    assert sent == ["qwen2.5:0.5b", "default-one"]


@responses.activate
@pytest.mark.parametrize("name", ["tool", "api_key", "proxy_url"])
def test_parameters_outside_the_allow_list_are_refused(name: str) -> None:
    """Body parameters are an explicit list; anything else raises before sending."""
    with pytest.raises(UnsupportedParameterError, match=name):
        client().stream(HELLO, **{name: 1})
    assert len(responses.calls) == 0


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (404, BadRequestError),
        (429, RateLimitError),
        (500, InternalServerError),
    ],
)
def test_error_bodies_give_the_class_by_status_and_the_message(
    server: EmulatorServer, status: int, cls: type[APIStatusError]
) -> None:
    """{"error": {...}} replies: the status picks the class, error.message is shown."""
    error = {"message": "Model is loading", "type": "server_error", "code": "busy"}
    server.set_reply(status=status, body=json.dumps({"error": error}))
    with pytest.raises(APIStatusError) as caught:
        client(server.url, max_retries=0).stream(HELLO)
    assert type(caught.value) is cls
    assert "Model is loading (busy)" in str(caught.value)
    assert json.loads(caught.value.body) == {"error": error}


def test_wrong_key_and_unknown_model_come_from_the_server(
    server: EmulatorServer,
) -> None:
    """The emulator's own 401 and 404 name the problem; base_url is fine, no hint."""
    with pytest.raises(AuthenticationError, match="Incorrect API key"):
        OpenAICompatible(server.url, "sk-other", model="gpt-4o-mini").stream(HELLO)
    with pytest.raises(BadRequestError, match="`nope` does not exist") as caught:
        client(server.url).stream(HELLO, model="nope")
    assert "/v1" not in str(caught.value)


def test_a_404_without_v1_hints_at_the_api_root(server: EmulatorServer) -> None:
    """A base_url missing /v1 gets a 404 whose message says where the root is."""
    with pytest.raises(BadRequestError, match="usually ends in /v1"):
        client(server.url[: -len("/v1")]).stream(HELLO)


@pytest.mark.parametrize(
    ("body", "error", "message"),
    [
        (b'data: {"error": {"message": "overloaded"}}\n\n', APIError, "overloaded"),
        (
            b'data: {"choices": [{"delta": {"content": "x"}}]}\n\n',
            IncompleteStreamError,
            "[DONE]",
        ),
        (b'{"choices": []}', ResponseFormatError, "without choices"),
        (b'{"error": {"message": "context too long"}}', APIError, "context too long"),
    ],
)
def test_bad_replies_raise_clear_errors(
    body: bytes, error: type[APIError], message: str
) -> None:
    """In-band errors, a missing [DONE] and an empty JSON reply are our errors."""

    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.respond(200, body, "text/event-stream")

    with LoopbackServer(handler) as loop, pytest.raises(error) as caught:
        client(loop.url + "/v1").complete(HELLO)
    assert message in str(caught.value)
    assert str(caught.value).startswith(f"OpenAICompatible at {loop.host}: ")


def test_the_key_never_shows_in_repr_errors_or_logs(
    server: EmulatorServer, caplog: pytest.LogCaptureFixture
) -> None:
    """repr(client), str/repr/pickle of errors and every log record (retries
    included) omit the key, even when the server echoes it back."""
    caplog.set_level(logging.DEBUG)
    chat = client(server.url, max_retries=1)
    echo = json.dumps({"error": {"message": f"key {KEY} is over quota"}})
    server.queue_reply(status=429, body=echo)  # retried, and logged
    server.queue_reply(status=400, body=echo)
    server.queue_reply(body=f"data: {echo}\n\n")  # an error event in the stream
    errors: list[APIError] = []
    for _ in range(2):
        with pytest.raises(APIError) as caught:
            chat.complete(HELLO)
        errors.append(caught.value)
    assert chat.complete(HELLO).text  # and calls that work
    assert chat.list_models()
    logged = [record.getMessage() for record in caplog.records]
    assert any(
        "retry 1 of 1" in line and "*** is over quota" in line for line in logged
    )
    shown = [repr(chat), repr(chat.prepare(HELLO, None, {})), *logged]
    for error in errors:
        assert "*** is over quota" in str(error)
        shown += [str(error), repr(error), getattr(error, "body", "")]
        shown.append(str(pickle.loads(pickle.dumps(error))))
    assert not [text for text in shown if KEY in text]


@pytest.mark.parametrize("key", ["sk-a b", "sk-ab\n", "sk-\x00", "sk-\u0442\u0435"])
def test_a_malformed_key_is_refused_without_echoing_it(key: str) -> None:
    """A key requests would refuse in a header raises a ValueError that omits it."""
    with pytest.raises(ValueError, match="api_key") as caught:
        OpenAICompatible(OPENAI_BASE, key)
    assert key not in str(caught.value)


def test_the_facade_and_create_completion_take_api_key(server: EmulatorServer) -> None:
    """ChatCompletion.create(provider=OpenAICompatible, api_key=...) works."""
    text = chatproviders.ChatCompletion.create(
        model="gpt-3.5-turbo",
        messages=HELLO,
        provider=OpenAICompatible,
        base_url=server.url,
        api_key=KEY,
    )
    assert text == server.reply.text
    chunks = OpenAICompatible.create_completion(
        "gpt-4o-mini", HELLO, base_url=server.url, api_key=KEY, temperature=0
    )
    assert "".join(chunks) == server.reply.text
    assert server.requests[-1].json["temperature"] == 0


def test_openai_compatible_is_registered_but_not_auto_chosen() -> None:
    """It is public and found as "openai", but the facade never picks it by
    model: it needs a base_url."""
    assert "OpenAICompatible" in chatproviders.__all__
    assert OpenAICompatible in chatproviders.list_providers()
    assert chatproviders.get_provider("openai") is OpenAICompatible
    assert chatproviders.get_provider("OPENAICOMPATIBLE") is OpenAICompatible
    with pytest.raises(chatproviders.ProviderNotWorkingError):
        chatproviders.ChatCompletion.create(None, HELLO)  # the seeds are not working


def test_a_model_that_is_not_a_str_is_refused() -> None:
    """model=b"m" is refused before sending, not encoded into a broken body."""
    with pytest.raises(ModelNotSupportedError, match="must be a str"):
        OpenAICompatible(OPENAI_BASE).stream(HELLO, b"m")  # type: ignore[arg-type]


def test_a_closed_client_refuses_to_send(server: EmulatorServer) -> None:
    """After close() (or its with block), every call raises instead of quietly
    opening new connections that nobody will close."""
    chat = client(server.url)
    with chat:
        assert chat.complete(HELLO).text
    for call in (
        lambda: chat.stream(HELLO),
        lambda: chat.complete(HELLO),
        lambda: chat.stream_in_background(HELLO),
        chat.list_models,
    ):
        with pytest.raises(RuntimeError, match="client is closed"):
            call()
    assert len(server.requests) == 1
