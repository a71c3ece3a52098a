"""check() tells the truth about clients it cannot use, and its probes end.

A class that leaves ``models`` empty is probed with its default model; a
closed client or FallbackProvider refuses to send, so it is never ``ok``.
A FallbackProvider's background probes are bounded by their own deadline
even when a member's session has no deadline guard (a plain
``HTTPAdapter``), one at a time per member, and none is left after
``close()``: tried against a server that trickles a header forever.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import requests.adapters

from chatproviders import Cromicle, FallbackProvider, Provider, check
from chatproviders._health import check as _check
from chatproviders._health import fallback as _fallback
from chatproviders.testing import serve
from tests.loopback import WAIT, Conn, LoopbackServer


class NoModelList(Provider):
    """A plugin-style provider that states a default model but no list."""

    url = ""
    path = "/chat"
    default_model = "house-model"

    def payload(self, messages: Any, model: str, **params: Any) -> dict[str, Any]:
        return {"model": model, "messages": messages}


def test_a_class_without_a_model_list_is_probed_with_its_default_model() -> None:
    """models = [] (the base default) is no reason for an error: the probe
    sends the default model and the result is ok."""

    def handler(conn: Conn) -> None:
        request = conn.read_request()
        assert request is not None and b'"house-model"' in request.body
        conn.respond(200, b"OK")

    with LoopbackServer(handler) as loop:
        (result,) = check([NoModelList(base_url=loop.url)], timeout=5)
    assert (result.status, result.model, result.error) == ("ok", "house-model", None)


def test_a_closed_client_is_not_ok() -> None:
    """A closed client refuses to send, so check() reports an error saying it
    is closed, and sends nothing."""
    with serve("cromicle") as server:
        client = Cromicle(base_url=server.url)
        client.close()
        (result,) = check([client], timeout=5)
        assert server.requests == []
    assert (result.status, result.elapsed) == ("error", 0.0)  # nothing was tried
    assert result.error is not None and "closed" in result.error


def test_a_closed_fallback_provider_is_not_ok() -> None:
    """Likewise a closed FallbackProvider, probed by one chat through it."""
    with serve("cromicle") as server:
        fallback = FallbackProvider([Cromicle(base_url=server.url)])
        fallback.close()
        (result,) = check([fallback], timeout=5)
        assert server.requests == []
    assert result.status == "error"
    assert result.error is not None and "closed" in result.error


# -- background probes against a header trickled forever ----------------------


class Trickler:
    """A server that answers every request with a status line and then one
    byte of a header every 20 ms, forever: no read timeout ever fires. It
    counts the connections the client holds open, and the probe threads
    alive at each request."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.changed = threading.Condition()
        self.open = 0
        self.probes_at_request: list[int] = []
        self.connected = threading.Event()
        self.server = LoopbackServer(self.handle)

    def handle(self, conn: Conn) -> None:
        with self.changed:
            self.open += 1
        self.connected.set()
        try:
            if conn.read_request() is None:
                return
            with self.changed:
                self.probes_at_request.append(len(probe_threads("check")))
            conn.sock.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            while not self.stop.is_set() and not conn.client_has_closed():
                conn.sock.sendall(b"a")
                self.stop.wait(0.02)  # the server's pace, not a synchronisation
        except OSError:
            pass  # the client shut the socket down
        finally:
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_RDWR)  # stopped: the reply ends
            with self.changed:
                self.open -= 1
                self.changed.notify_all()

    def all_closed(self) -> bool:
        """Wait (bounded) until the client holds no connection open."""
        with self.changed:
            return self.changed.wait_for(lambda: self.open == 0, WAIT)


@pytest.fixture
def trickler() -> Iterator[Trickler]:
    server = Trickler()
    with server.server:
        yield server
        server.stop.set()


def plain_session() -> requests.Session:
    """What the README's batch section advises: a bigger pool, no guard."""
    session = requests.Session()
    for prefix in ("http://", "https://"):
        session.mount(prefix, requests.adapters.HTTPAdapter(pool_maxsize=32))
    return session


def probe_threads(kind: str = "") -> list[threading.Thread]:
    """The probe threads, and FallbackProviders' background-check threads."""
    names = (
        (f"chatproviders-{kind}",)
        if kind
        else (
            "chatproviders-check",
            "chatproviders-health",
        )
    )
    return [t for t in threading.enumerate() if t.name.startswith(names)]


class Rounds:
    """wait_interval for tests: lets ``count`` rounds run back to back, then
    waits for close()."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.done = threading.Event()

    def wait(self, stop: threading.Event, seconds: float) -> bool:
        if self.count:
            self.count -= 1
            return stop.is_set()
        self.done.set()
        return stop.wait(WAIT)


def gone(threads: list[threading.Thread]) -> bool:
    """True once every thread has ended, all within one WAIT."""
    end = time.monotonic() + WAIT
    for thread in threads:
        thread.join(max(0.0, end - time.monotonic()))
    return not any(thread.is_alive() for thread in threads)


def test_background_probes_are_bounded_whatever_the_session(
    trickler: Trickler, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Four rounds against a trickled header through an unguarded session:
    each probe ends by its own deadline (a timeout), one at a time, and
    nothing is left after close()."""
    rounds = Rounds(4)
    monkeypatch.setattr(_fallback, "wait_interval", rounds.wait)
    session = plain_session()
    member = Cromicle(base_url=trickler.server.url, session=session)
    fallback = FallbackProvider([member], health_interval=0.2)
    assert rounds.done.wait(WAIT)
    assert trickler.server.accepted == 4  # one probe a round
    assert trickler.probes_at_request == [1, 1, 1, 1]  # never two at once
    assert trickler.all_closed()  # each ended at its deadline
    fallback.close()
    assert gone(probe_threads())
    session.close()


def test_close_ends_a_background_probe_in_flight(
    trickler: Trickler, monkeypatch: pytest.MonkeyPatch
) -> None:
    """close() ends a probe stuck on a trickled header at once, long before
    its 10 s deadline, and its socket with it."""
    rounds = Rounds(1)
    monkeypatch.setattr(_fallback, "wait_interval", rounds.wait)
    session = plain_session()
    member = Cromicle(base_url=trickler.server.url, session=session)
    fallback = FallbackProvider([member], health_interval=60)
    assert trickler.connected.wait(WAIT)
    assert len(probe_threads()) == 2  # the probe and the background thread
    fallback.close()
    assert gone(probe_threads())  # WAIT < 10 s
    assert trickler.all_closed()
    session.close()


def test_one_probe_per_member_at_a_time(
    trickler: Trickler, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A probe that nothing can bound (a session adapter of the caller's own
    kind) is not joined by a second one: the next check says the last has
    not ended, and sends nothing."""

    class OwnAdapter(requests.adapters.HTTPAdapter):
        pass

    monkeypatch.setattr(_check, "GRACE", 0.0)
    session = requests.Session()
    session.mount("http://", OwnAdapter())
    member = Cromicle(base_url=trickler.server.url, session=session, timeout=30)
    (first,) = check([member], timeout=0.2)
    (second,) = check([member], timeout=0.2)
    assert first.status == second.status == "timeout"
    assert second.error is not None and "has not ended" in second.error
    assert trickler.server.accepted == 1
    trickler.stop.set()  # the server ends the reply: the probe ends
    assert gone(probe_threads())
    session.close()
