"""The deadline guard in the small: what a shut guard does to the sockets of
its exchange, and the watchdog that shuts each guard at its deadline, even
after it has dropped the guards that finished."""

from __future__ import annotations

import queue
import socket
import threading
import time
from collections.abc import Iterator
from typing import Optional

import pytest

from chatproviders import APITimeoutError, Cromicle
from chatproviders._wire import deadline as _deadline
from chatproviders._wire.deadline import Guard
from tests.constants import HI
from tests.loopback import WAIT, Conn, LoopbackServer


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """Two connected sockets: the exchange's, and the server's end."""
    ours, theirs = socket.socketpair()
    ours.settimeout(WAIT)
    with ours, theirs:
        yield ours, theirs


def test_a_socket_added_after_the_shut_is_shut_at_once(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    """close() from another thread while the exchange is still connecting:
    the socket it then opens is shut as soon as it is registered."""
    ours, _ = pair
    guard = Guard()
    guard.shut()
    guard.add(ours)
    assert ours.recv(64) == b""  # shut down: the read ends at once


def test_a_guard_shut_by_close_is_not_then_called_expired() -> None:
    """Shut by close() first, its deadline passing after changes nothing:
    the exchange ended by a close, not by a timeout."""
    guard = Guard()
    guard.shut()
    guard.shut(expired=True)
    assert not guard.expired


def test_a_finished_exchange_is_not_shut_by_its_deadline(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    """Once finished, a guard's deadline passing neither marks it expired
    nor touches the socket, which may serve another exchange now."""
    ours, theirs = pair
    guard = Guard()
    guard.add(ours)
    guard.finish()
    guard.shut(expired=True)
    assert not guard.expired
    theirs.sendall(b"still open")
    assert ours.recv(64) == b"still open"


def watched(watchdog: _deadline._Watchdog, deadline: float) -> Guard:
    guard = Guard()  # no deadline: not on the module's own watchdog
    guard.deadline = deadline
    watchdog.watch(guard)
    return guard


def test_the_watchdog_still_shuts_the_earliest_deadline_after_dropping_finished(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    """256 guards queued, the earliest of them finished: the watchdog drops
    the finished ones, and still shuts the next earliest at its deadline,
    not after the far one queued before it."""
    ours, _ = pair
    watchdog = _deadline._Watchdog()
    now = time.monotonic()
    with watchdog._changed:  # its thread waits until every guard is queued
        first = watched(watchdog, now)
        far = watched(watchdog, now + 1e6)
        soon = watched(watchdog, now + 0.05)
        soon.add(ours)
        for n in range(253):
            watched(watchdog, now + 2e6 + n).finish()
        first.finish()
        last = watched(watchdog, now + 3e6)  # the 257th: the queue is pruned
    try:
        assert ours.recv(64) == b""  # shut at its deadline, within WAIT
        assert soon.expired and not far.expired
    finally:
        for guard in (far, soon, last):
            guard.finish()


def test_a_queue_of_finished_guards_only_is_pruned_to_nothing() -> None:
    """256 finished guards, then one more: all are dropped, none raises."""
    watchdog = _deadline._Watchdog()
    far = time.monotonic() + 1e6
    with watchdog._changed:
        for n in range(256):
            watched(watchdog, far + n).finish()
        last = watched(watchdog, far)
        assert [entry[2] for entry in watchdog._heap] == [last]
    last.finish()


TRICKLE = 0.05  # the pace of a trickling server, not a synchronization


def trickle(conn: Conn, data: bytes, cut: threading.Event) -> None:
    """Send ``data`` a byte at a time, for WAIT at most; ``cut`` is set when
    the client cuts the connection meanwhile."""
    for index in range(int(WAIT / TRICKLE)):
        if conn.client_has_closed():
            cut.set()
            return
        try:
            conn.sock.sendall(data[index % len(data) :][:1])
        except OSError:
            cut.set()
            return
        time.sleep(TRICKLE)


def test_the_deadline_cuts_a_proxy_trickling_its_connect_reply() -> None:
    """https through a proxy whose CONNECT reply trickles: the connection is
    cut at total_timeout while the reply is still coming, from the moment the
    socket exists (before the tunnel is up)."""
    cut = threading.Event()

    def proxy(conn: Conn) -> None:
        conn.sock.recv(65536)  # CONNECT host:port
        trickle(conn, b"HTTP/1.1 200 Connection established\r\n", cut)

    with LoopbackServer(proxy) as server:
        client = Cromicle(
            "https://127.0.0.1:9", proxy=server.url, timeout=WAIT, total_timeout=0.3
        )
        with pytest.raises(APITimeoutError) as caught:
            client.complete(HI)
        assert cut.wait(WAIT)  # cut mid-reply, not when the proxy gave up
    assert caught.value.limit == "total"


def test_the_deadline_cuts_a_reused_connection_that_trickles() -> None:
    """A second request on a kept-alive connection is guarded too: its
    trickling head is cut at total_timeout."""
    cut = threading.Event()

    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.respond(200, b"first")  # with its length: the connection is kept
        conn.read_request()
        trickle(conn, b"HTTP/1.1 200 OK\r\nX-Slow: 1\r\n", cut)

    with LoopbackServer(handler) as server:
        client = Cromicle(server.url, timeout=WAIT, total_timeout=0.3)
        assert client.complete(HI).text == "first"
        with pytest.raises(APITimeoutError):
            client.complete(HI)
        assert cut.wait(WAIT)


class _Waits(threading.Condition):
    """A condition that reports each wait, by the timeout it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.timeouts: queue.Queue[Optional[float]] = queue.Queue()

    def wait(self, timeout: Optional[float] = None) -> bool:
        self.timeouts.put(timeout)
        return super().wait(timeout)


def test_the_watchdog_sleeps_until_the_next_deadline_or_a_change() -> None:
    """Between deadlines the watchdog's thread sleeps: until the next deadline
    while one is queued, and without a timeout once none is. It never polls."""
    watchdog = _deadline._Watchdog()
    watchdog._changed = waits = _Waits()
    far = watched(watchdog, time.monotonic() + 1e6)
    assert 1e6 - WAIT < waits.timeouts.get(timeout=WAIT) <= 1e6  # type: ignore[operator]
    far.finish()
    ended = Guard()
    ended.deadline = time.monotonic() + 1e6
    ended.finish()
    watchdog.watch(ended)  # wakes it: both are done, and nothing is left
    assert waits.timeouts.get(timeout=WAIT) is None
    assert waits.timeouts.empty()


def test_an_expired_exchange_not_yet_ended_holds_back_no_other_deadline(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    """One exchange shut at its deadline is still ending (its caller has not
    finished it): the next exchange's deadline still shuts that one too."""
    ours, _ = pair
    watchdog = _deadline._Watchdog()
    first = watched(watchdog, time.monotonic())
    first.add(ours)
    assert ours.recv(64) == b""  # shut; not finished
    mine, theirs = socket.socketpair()
    with mine, theirs:
        mine.settimeout(WAIT)
        second = watched(watchdog, time.monotonic() + 0.05)
        second.add(mine)
        assert mine.recv(64) == b""  # shut at its deadline, within WAIT
    for guard in (first, second):
        guard.finish()
