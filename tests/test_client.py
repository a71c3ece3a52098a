"""What every client does, provider or fallback: copies, pickling, forking, nesting."""

from __future__ import annotations

import os
import pickle
from typing import Any

import pytest
import requests

from chatproviders import (
    AllProvidersFailedError,
    Client,
    Cromicle,
    FallbackProvider,
    OpenAICompatible,
    get_provider,
)
from chatproviders.testing import serve
from tests.constants import HI
from tests.loopback import Conn, LoopbackServer


def keep_alive(conn: Conn) -> None:
    """A keep-alive server: "ok" to every request on the connection."""
    while conn.read_request() is not None:
        conn.respond(200, b"ok")


def test_with_options_changes_only_what_it_names_and_shares_the_session() -> None:
    """with_options copies every argument but those given, shares the session
    and never closes it."""
    client = OpenAICompatible(
        "http://127.0.0.1:9/v1", "sk-test-key", model="m", timeout=3.0
    )
    copy = client.with_options(max_retries=0, total_timeout=5.0)
    assert type(copy) is OpenAICompatible
    assert (copy.max_retries, copy.total_timeout) == (0, 5.0)
    assert (copy.base_url, copy.api_key, copy.model) == (
        client.base_url,
        "sk-test-key",
        "m",
    )
    assert copy.timeout == 3.0 and client.max_retries == 2
    assert copy.session is client.session
    copy.close()
    client.prepare(HI, None, {})  # the original is still open
    assert client.session.adapters  # and its session too


def test_with_options_refuses_what_the_constructor_refuses() -> None:
    """A bad option in with_options is the constructor's error, at once."""
    with pytest.raises(ValueError, match="max_retries"):
        Cromicle().with_options(max_retries=-1)
    with pytest.raises(TypeError, match="bogus"):
        Cromicle().with_options(bogus=1)


def test_a_pickled_client_is_rebuilt_with_a_session_of_its_own() -> None:
    """A client pickles; the copy has the same options and its own session,
    and sends."""
    with serve("openai", text="pickled") as server:
        client = OpenAICompatible(server.url, model="gpt-4o-mini", max_retries=1)
        copy = pickle.loads(pickle.dumps(client))
        assert copy.session is not client.session
        assert (copy.base_url, copy.model, copy.max_retries) == (
            client.base_url,
            "gpt-4o-mini",
            1,
        )
        assert copy.complete(HI).text == "pickled"
        copy.close()
        client.close()


def test_a_fallback_provider_pickles_with_its_members() -> None:
    """FallbackProvider pickles (its lock is made anew) and the copy works."""
    with serve("cromicle", text="from the copy") as server:
        fallback = FallbackProvider(
            (
                p
                for p in [Cromicle(base_url="http://127.0.0.1:9"), Cromicle(server.url)]
            ),
            cooldown=5.0,
        )
        copy = pickle.loads(pickle.dumps(fallback))
        assert copy.cooldown == 5.0 and len(copy.providers) == 2
        assert copy.complete(HI).text == "from the copy"
        copy.close()


def test_fallback_with_options_passes_member_options_on() -> None:
    """Its own keywords change on the copy; the rest reach every member."""
    fallback = FallbackProvider([Cromicle(), Cromicle()], cooldown=1.0)
    copy = fallback.with_options(max_retries=0, cooldown=2.0)
    assert copy.cooldown == 2.0 and fallback.cooldown == 1.0
    assert [p.max_retries for p in copy.providers] == [0, 0]
    assert [p.max_retries for p in fallback.providers] == [2, 2]
    assert copy.providers[0] is not fallback.providers[0]


def test_a_fallback_provider_nests() -> None:
    """A FallbackProvider is a client: one inside another is one provider
    there, trying its own in turn."""
    with serve("cromicle", text="inner") as server:
        down = "http://127.0.0.1:9"
        inner = FallbackProvider([Cromicle(down, max_retries=0), Cromicle(server.url)])
        outer = FallbackProvider([Cromicle(down, max_retries=0), inner])
        assert isinstance(inner, Client)
        reply = outer.complete(HI)
        assert reply.text == "inner"
        assert reply.attempts == 3  # the dead one outside, the dead one inside
        dead = FallbackProvider([FallbackProvider([Cromicle(down, max_retries=0)])])
        with pytest.raises(AllProvidersFailedError) as caught:
            dead.complete(HI)
        assert isinstance(caught.value.attempts[0].error, AllProvidersFailedError)


def test_a_nested_fallback_passes_over_refusing_members() -> None:
    """A model no member of the inner fallback takes passes over the whole inner one."""
    with serve("openai", text="any model") as server:
        inner = FallbackProvider([Cromicle(), Cromicle()])
        outer = FallbackProvider([inner, OpenAICompatible(server.url)])
        assert outer.complete(HI, model="gpt-4o-mini").text == "any model"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_opens_its_own_connection() -> None:
    """After a fork, the child never sends on the parent's pooled keep-alive
    socket: the server sees a second connection, and the parent's still works."""
    with LoopbackServer(keep_alive) as server:
        client = Cromicle(base_url=server.url)
        assert client.complete(HI).text == "ok"
        assert client.complete(HI).text == "ok"
        assert server.accepted == 1  # pooled and reused
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report, and leave without cleanup
            status = b"?"
            try:
                status = b"1" if client.complete(HI).text == "ok" else b"0"
            finally:
                os.write(write, status)
                os._exit(0)
        os.close(write)
        assert os.read(read, 1) == b"1"
        os.waitpid(pid, 0)
        os.close(read)
        assert server.accepted == 2
        assert client.complete(HI).text == "ok"  # the parent's socket is intact
        assert server.accepted == 2
        client.close()


def test_a_session_you_pass_is_yours_in_copies_too() -> None:
    """with_options keeps a session you passed; closing either client keeps it open."""
    session = requests.Session()
    closed: list[bool] = []
    session.close = lambda: closed.append(True)  # type: ignore[method-assign]
    client = Cromicle(session=session)
    client.with_options(timeout=1.0).close()
    client.close()
    assert closed == []


@pytest.mark.parametrize("name", ["cromicle", "openai"])
def test_every_registered_client_pickles(name: str) -> None:
    """Registered classes pickle with their constructor's arguments."""
    cls: Any = get_provider(name)
    client = cls("http://127.0.0.1:9/v1") if name == "openai" else cls()
    copy = pickle.loads(pickle.dumps(client))
    assert type(copy) is cls and copy.endpoint() == client.endpoint()


class Relay(Client):
    """A client class of one's own: positional-only, positional and ``*args``
    and ``**options`` arguments, its calls made by a provider inside."""

    def __init__(
        self, url: str, /, name: str, *spare: str, model: str = "m", **options: Any
    ) -> None:
        self.url, self.relay_name, self.spare = url, name, spare
        self.model, self.options = model, options
        self.inner = OpenAICompatible(url, model=model, **options)

    def prepare(self, messages: Any, model: Any, params: Any) -> Any:
        return self.inner.prepare(messages, model, params)

    def send_prepared(self, prepared: Any, **figures: Any) -> Any:
        return self.inner.send_prepared(prepared, **figures)

    def close(self) -> None:
        self.inner.close()


def fields(relay: Relay) -> tuple[Any, ...]:
    return (relay.url, relay.relay_name, relay.spare, relay.model, relay.options)


@pytest.mark.parametrize("spare", [(), ("b", "c")])
def test_a_client_class_of_your_own_copies_and_pickles(spare: tuple[str, ...]) -> None:
    """A Client subclass whose constructor takes positional-only arguments,
    *args and **options is copied and unpickled with every one of them."""
    relay = Relay("http://127.0.0.1:9/v1", "a", *spare, timeout=3.0)
    assert fields(pickle.loads(pickle.dumps(relay))) == fields(relay)
    copy = relay.with_options(model="n")
    assert fields(copy) == ("http://127.0.0.1:9/v1", "a", spare, "n", {"timeout": 3.0})
    assert fields(relay)[3] == "m"


def test_a_client_class_of_your_own_answers_every_call() -> None:
    """A Client subclass that defines prepare and send_prepared gets stream,
    complete and stream_in_background, and is not closed, nor is a fallback
    over it."""
    with serve("openai", text="Four.") as server:
        relay = Relay(server.url, "a", model="gpt-4o-mini")
        assert relay.closed is False
        assert FallbackProvider([relay]).closed is False
        with relay.stream(HI) as stream:
            assert "".join(stream) == "Four."
        assert relay.complete(HI).text == "Four."
        background = relay.stream_in_background(HI)
        assert background.result(10) == "Four."
        relay.close()


def test_with_options_takes_a_new_session_when_given_one() -> None:
    """with_options(session=...) uses the session given, not the original's."""
    client = Cromicle()
    session = requests.Session()
    copy = client.with_options(session=session)
    assert copy.session is session and client.session is not session
    assert pickle.loads(pickle.dumps(copy)).session is not session
    client.close()
