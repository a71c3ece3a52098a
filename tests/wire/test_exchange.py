"""One try of a call (an exchange) lets go of its sockets when the call ends,
however it ends, not when its deadline comes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any, Callable, Optional

import pytest

from chatproviders import (
    APIConnectionError,
    APITimeoutError,
    OpenAICompatible,
    RateLimitError,
)
from chatproviders._wire import exchange as _exchange
from chatproviders._wire import transport as _transport
from chatproviders._wire.deadline import Guard
from chatproviders.testing import EmulatorServer, serve
from tests.constants import BASE, HI
from tests.loopback import WAIT, Conn, LoopbackServer

#: Far enough that no deadline passes during a test: a guard still open at the
#: end was left open by the exchange, not shut by the watchdog.
LONG = 3600.0


@pytest.fixture
def guards(monkeypatch: pytest.MonkeyPatch) -> list[Guard]:
    """Every guard an exchange makes from here on."""
    made: list[Guard] = []

    def make(deadline: Optional[float] = None) -> Guard:
        guard = Guard(deadline)
        made.append(guard)
        return guard

    monkeypatch.setattr(_exchange, "Guard", make)
    return made


@pytest.fixture
def server() -> Iterator[EmulatorServer]:
    with serve("openai", chunk_size=3) as started:
        yield started


def client(url: str, **options: Any) -> OpenAICompatible:
    return OpenAICompatible(
        url, model="gpt-4o-mini", max_retries=0, total_timeout=LONG, **options
    )


def read_to_the_end(chat: OpenAICompatible) -> None:
    with chat.stream(HI) as stream:
        assert "".join(stream)


def close_after_one_piece(chat: OpenAICompatible) -> None:
    with chat.stream(HI) as stream:
        next(stream)


def complete(chat: OpenAICompatible) -> None:
    assert chat.complete(HI).text


def list_models(chat: OpenAICompatible) -> None:
    assert chat.list_models()


@pytest.mark.parametrize(
    "call", [read_to_the_end, close_after_one_piece, complete, list_models]
)
def test_a_call_that_succeeds_lets_go_of_its_guard(
    call: Callable[[OpenAICompatible], None],
    server: EmulatorServer,
    guards: list[Guard],
) -> None:
    """Once a call is over (a stream read or closed early, a whole reply, the
    model list), its sockets are forgotten and the watchdog can drop it: a
    client with a long total_timeout does not hold every connection it ever
    used until those deadlines pass."""
    with client(server.url) as chat:
        call(chat)
    assert len(guards) == 1
    assert guards[0].done


@pytest.mark.parametrize("call", [read_to_the_end, list_models])
def test_an_error_status_lets_go_of_its_guard(
    call: Callable[[OpenAICompatible], None], guards: list[Guard]
) -> None:
    """A 429 is raised as our error with its guard finished."""

    def slow_down(conn: Conn) -> None:
        assert conn.read_request() is not None
        conn.respond(429, b'{"error": {"message": "slow down"}}', "application/json")

    with LoopbackServer(slow_down) as server:
        with client(f"{server.url}/v1") as chat, pytest.raises(RateLimitError):
            call(chat)
    assert [guard.done for guard in guards] == [True]


@pytest.mark.parametrize("call", [read_to_the_end, list_models])
def test_a_connection_that_fails_lets_go_of_its_guard(
    call: Callable[[OpenAICompatible], None], guards: list[Guard]
) -> None:
    """A refused connection is raised as our error with its guard finished."""
    with client(f"{BASE}/v1") as chat, pytest.raises(APIConnectionError):
        call(chat)
    assert [guard.done for guard in guards] == [True]


def test_a_failing_response_hook_lets_go_of_its_guard(
    server: EmulatorServer, guards: list[Guard]
) -> None:
    """A hook that refuses the response (as a cancelled background stream's
    does) ends the exchange: its error comes out, the guard is finished and the
    response closed."""
    seen: list[Any] = []

    def refuse(response: Any) -> None:
        seen.append(response)
        raise KeyError("refused")

    with client(server.url) as chat:
        prepared = chat.prepare(HI, None, {})
        with pytest.raises(Exception, match="refused"):
            chat.send_prepared(prepared, on_response=refuse)
    assert [guard.done for guard in guards] == [True]
    assert seen[0].raw.closed


def test_a_body_cut_short_by_the_deadline_is_closed_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """When the total timeout runs out between two reads of a model list, the
    connection is closed as the error is raised, not left open for as long as
    the caller keeps the error."""
    offset = [0.0]
    clock = SimpleNamespace(monotonic=lambda: time.monotonic() + offset[0])
    monkeypatch.setattr(_transport, "time", clock)  # the reads' clock only
    conns: list[Conn] = []

    def part_of_a_list(conn: Conn) -> None:
        conns.append(conn)
        assert conn.read_request() is not None
        conn.send_head(200, [("Content-Type", "application/json")], "length", 100)
        conn.send(b'{"data": [')
        offset[0] = 2 * LONG  # the deadline has passed, as the reader will see
        conn.send(b'{"id": "m"}')  # wakes a read that started before
        conn.wait_closed_by_client()

    with LoopbackServer(part_of_a_list) as server:
        chat = client(f"{server.url}/v1")
        with pytest.raises(APITimeoutError, match="total_timeout") as caught:
            chat.list_models()
        assert conns[0].closed_by_client.wait(WAIT)
        del caught


def test_close_from_another_thread_wakes_a_call_waiting_for_the_headers() -> None:
    """A client closed while one of its calls waits for a slow server's first
    byte: the call returns at once, not after the read timeout."""
    asked = threading.Event()
    outcome: list[BaseException] = []

    def never_answer(conn: Conn) -> None:
        assert conn.read_request() is not None
        asked.set()
        conn.wait_closed_by_client()

    def call(chat: OpenAICompatible) -> None:
        try:
            chat.complete(HI)
        except BaseException as exc:  # whatever it is, it came
            outcome.append(exc)

    with LoopbackServer(never_answer) as server:
        chat = OpenAICompatible(
            f"{server.url}/v1", model="m", timeout=(WAIT, 60), max_retries=0
        )
        caller = threading.Thread(target=call, args=(chat,), daemon=True)
        caller.start()
        assert asked.wait(WAIT)
        chat.close()
        caller.join(WAIT)
        assert not caller.is_alive()
    assert outcome
