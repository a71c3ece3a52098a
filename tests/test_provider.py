"""The base class as a provider module's author meets it: what a class gets
without stating it, the request it makes, and a client's life and secrets."""

from __future__ import annotations

import json
import threading
from typing import Any, Optional

import pytest
import responses

import chatproviders
from chatproviders import (
    APIStatusError,
    BadRequestError,
    OpenAICompatible,
    Provider,
    UnsupportedParameterError,
)
from tests.constants import BASE, HI, OPENAI_BASE
from tests.loopback import WAIT, Conn, LoopbackServer


class House(Provider):
    """A provider as a plugin's author writes it: the protocol table only."""

    url = BASE
    path = "/chat"
    default_model = "house-1"
    models = ["house-1"]
    headers = {"Accept": "text/plain"}
    parameters = {"temperature": 1.0, "max_tokens": 16}

    def payload(self, messages: Any, model: str, **params: Any) -> dict[str, Any]:
        return {"model": model, "messages": messages, **params}


def test_a_provider_that_does_not_say_is_working_and_streams_alone() -> None:
    """What a class that states only its protocol table gets: it is working,
    it streams, it takes no message history, and it claims no gpt-3.5-turbo."""
    assert House.working is True
    assert House.supports_stream is True
    assert House.supports_message_history is False
    assert House.supports_gpt_35_turbo is False


@responses.activate
def test_the_facade_sends_through_a_provider_that_does_not_say() -> None:
    """ChatCompletion.create() takes such a provider without ignore_working."""
    responses.post(f"{BASE}/chat", body="hi there")
    reply = chatproviders.ChatCompletion.create("house-1", HI, provider=House)
    assert reply == "hi there"


@responses.activate
def test_a_json_body_is_declared_json_beside_the_protocol_headers() -> None:
    """Protocol headers that name no Content-Type get application/json with
    them; the body is the payload with the parameters' defaults."""
    responses.post(f"{BASE}/chat", body="ok")
    House().complete(HI, temperature=0.5)
    request = responses.calls[0].request
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Accept"] == "text/plain"
    assert json.loads(request.body) == {
        "model": "house-1",
        "messages": HI,
        "temperature": 0.5,
        "max_tokens": 16,
    }


@responses.activate
def test_a_content_type_of_the_callers_is_the_only_one_sent() -> None:
    """headers={"content-type": ...} (any case) replaces the JSON default."""
    responses.post(f"{BASE}/chat", body="ok")
    House(headers={"content-type": "application/json; charset=utf-8"}).complete(HI)
    sent = responses.calls[0].request.headers
    assert [name for name in sent if name.lower() == "content-type"] == ["content-type"]
    assert sent["Content-Type"] == "application/json; charset=utf-8"


def test_an_unknown_parameter_is_refused_naming_those_taken() -> None:
    """The error lists every parameter the provider accepts, readably."""
    with pytest.raises(UnsupportedParameterError) as caught:
        House().complete(HI, top_k=3)
    assert "unsupported parameter(s) top_k" in str(caught.value)
    assert "this provider accepts: max_tokens, temperature" in str(caught.value)


def test_a_parameter_json_cannot_carry_is_named_with_what_json_takes() -> None:
    """NaN for a number is refused before sending, saying what JSON takes."""
    with pytest.raises(UnsupportedParameterError) as caught:
        House().complete(HI, temperature=float("nan"))
    message = str(caught.value)
    assert "parameter temperature=nan cannot be sent" in message
    assert message.endswith(
        "JSON takes str, numbers (not NaN or infinity), bools, None, lists and dicts"
    )


def test_a_provider_class_without_its_protocol_table_is_refused() -> None:
    """A subclass that leaves out what a request needs is a TypeError naming
    it when the class is defined, unless it says it is abstract."""
    with pytest.raises(TypeError, match="provider Half must set"):

        class Half(Provider):
            path = "/chat"

    class Base(Provider, abstract=True):
        path = "/chat"

    assert Base.path == "/chat"


def test_probe_model_names_a_bad_timeout() -> None:
    with pytest.raises(ValueError, match="timeout"):
        House().probe_model(-1)


def test_closed_is_a_bool_that_turns_true_on_close() -> None:
    """client.closed is False until close(), then True."""
    client = House()
    assert client.closed is False
    client.close()
    assert client.closed is True


def test_close_closes_the_pooled_connection_while_a_reply_is_still_held() -> None:
    """close() closes the client's idle keep-alive connections at once, even
    while the caller still holds a stream whose connection went back to the
    pool (urllib3 2 would close them only when the pool is freed)."""
    hung_up = threading.Event()

    def keep_alive(conn: Conn) -> None:
        while conn.read_request() is not None:
            conn.respond(200, b"Hello")
        hung_up.set()

    with LoopbackServer(keep_alive) as server:
        client = House(base_url=server.url)
        stream = client.stream(HI)
        assert "".join(stream) == "Hello"
        assert client.complete(HI).text == "Hello"  # the same connection, again
        client.close()
        assert hung_up.wait(WAIT), "the pooled connection is still open"
        assert stream.closed


def test_close_ends_a_background_call_waiting_to_try_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A background stream whose call waits out a Retry-After when close()
    comes ends then, without a second try and without the wait."""
    from chatproviders._wire import retry

    waiting = threading.Event()
    tries: list[Conn] = []

    def sleep(seconds: float, cancel: Optional[threading.Event] = None) -> None:
        assert cancel is not None
        waiting.set()
        cancel.wait(WAIT)  # as the real one: cut short when cancel is set

    monkeypatch.setattr(retry, "sleep", sleep)

    def busy(conn: Conn) -> None:
        while conn.read_request() is not None:
            tries.append(conn)
            head = [("Retry-After", "30"), ("Content-Type", "text/plain")]
            conn.send_head(503, head, "length", 4)
            conn.sock.sendall(b"busy")

    with LoopbackServer(busy) as server:
        client = House(base_url=server.url, max_retries=2)
        stream = client.stream_in_background(HI)
        assert waiting.wait(WAIT)  # the worker waits 30 s before its next try
        client.close()
        with pytest.raises(APIStatusError, match="503") as ended:
            stream.result(timeout=WAIT)  # the wait's last error, at once
        assert ended.value.tries == 1 and len(tries) == 1


def test_a_call_prepared_before_close_is_not_sent_after_it() -> None:
    """A request prepared while the client was open, sent after close():
    refused, and nothing reaches the server."""
    arrived: list[Conn] = []

    def answer(conn: Conn) -> None:
        arrived.append(conn)
        if conn.read_request() is not None:
            conn.respond(200, b"sent anyway")

    with LoopbackServer(answer) as server:
        client = House(base_url=server.url)
        prepared = client.prepare(HI, None, {})
        client.close()
        with pytest.raises(RuntimeError, match="closed"):
            client.send_prepared(prepared)
    assert arrived == []


@responses.activate
@pytest.mark.parametrize(("key", "hidden"), [("sk-1234", False), ("sk-12345", True)])
def test_a_key_of_eight_characters_or_more_is_hidden(key: str, hidden: bool) -> None:
    """An echoed API key of 8 characters is hidden; a shorter one (such as
    "ollama", the placeholder local servers document) is left as it is."""
    responses.post(
        f"{OPENAI_BASE}/chat/completions",
        status=400,
        json={"error": {"message": f"key {key} is not valid here"}},
    )
    client = OpenAICompatible(OPENAI_BASE, key, model="m", max_retries=0)
    with pytest.raises(BadRequestError) as caught:
        client.complete(HI)
    assert (key not in str(caught.value)) is hidden
    assert ("key *** is not valid" in str(caught.value)) is hidden


KEY = "sk-live-1a2b3c"


@responses.activate
@pytest.mark.parametrize("cut", range(7, len(KEY)))
def test_an_excerpt_cut_through_the_key_hides_each_start_of_eight_or_more(
    cut: int,
) -> None:
    """An error body's excerpt that ends inside the echoed key: every start of 8
    characters or more is hidden, whatever its length; a start of 7 is left,
    as too short to give the key away and too common to cut out of text."""
    filler = "x" * (500 - cut)  # the excerpt keeps 500 characters
    responses.post(
        f"{OPENAI_BASE}/chat/completions", status=400, body=f"{filler}{KEY} no"
    )
    client = OpenAICompatible(OPENAI_BASE, KEY, model="m", max_retries=0)
    with pytest.raises(BadRequestError) as caught:
        client.complete(HI)
    shown = caught.value.body  # the excerpt; the message quotes less of it
    if cut >= 8:
        assert KEY[:8] not in shown and shown.endswith("x***")
    else:
        assert shown.endswith("x" + KEY[:7])


def test_closing_a_client_closes_its_copies_on_the_session_it_made() -> None:
    """A copy from with_options() shares the session; closing the client that
    made the session closes the copy too. A session passed in stays open, and
    so do the other clients on it."""
    import requests

    client = House()
    copy = client.with_options(max_retries=0)
    client.close()
    assert copy.closed

    session = requests.Session()
    mine = House(session=session)
    other = mine.with_options(max_retries=0)
    mine.close()
    assert not other.closed
    other.close()
    session.close()


def test_messages_json_cannot_carry_are_named_as_the_messages() -> None:
    """A NaN in a message's extra field is the messages' fault, not a parameter's."""
    with pytest.raises(chatproviders.InvalidMessagesError) as caught:
        House().prepare(
            [{"role": "user", "content": "hi", "x": float("nan")}], None, {}
        )
    assert "messages cannot be sent: JSON takes str" in str(caught.value)


def test_the_probe_model_of_a_closed_list_is_the_default_one() -> None:
    assert House().probe_model(1.0) == "house-1"


def test_a_hint_already_in_the_message_is_not_added_again() -> None:
    """A provider's advice is appended once, and not when the server said it."""

    class Hinted(House):
        def hint(self, error: chatproviders.ChatProvidersError) -> str:
            return "see the docs"

    def answer(conn: Conn) -> None:
        if conn.read_request() is not None:
            conn.respond(400, b"bad request: see the docs")

    with LoopbackServer(answer) as server:
        with pytest.raises(BadRequestError) as caught:
            Hinted(base_url=server.url).complete(HI)
    assert str(caught.value).count("see the docs") == 1
