"""The sockets of one exchange, shut down at its deadline or from another thread.

A timeout on each read cannot bound a server that trickles a byte every half
second (of the status line, a header, a chunk-size line, an empty deflate
block), and a read blocked in one thread cannot be interrupted by closing its
response from another. So each exchange has a :class:`Guard`: every socket
the exchange sends or reads on is registered with it (by the connection
classes of :class:`GuardedAdapter`, which a client mounts on the session it
makes), and :meth:`Guard.shut` makes any blocked read or write on them
return at once. One daemon thread, :class:`_Watchdog`, shuts each guard down
at its deadline.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import socket
import threading
import time
import weakref
from collections.abc import Iterator
from typing import Any, Optional

import requests.adapters
import urllib3.connection
import urllib3.connectionpool

__all__ = ["Guard", "GuardedAdapter", "guarding"]

_local = threading.local()  # .guard: the Guard of this thread's request, if any

#: Which guard each socket belongs to now (the last exchange that used it).
_owners: weakref.WeakKeyDictionary[socket.socket, Guard] = weakref.WeakKeyDictionary()
_owners_lock = threading.Lock()


class Guard:
    """The sockets of one exchange; :meth:`shut` wakes whatever waits on them."""

    def __init__(self, deadline: Optional[float] = None) -> None:
        self.deadline = deadline
        self.expired = False  # shut because the deadline passed
        self.complete = False  # the reply was read whole before any shut
        self.done = False
        self._sockets: list[socket.socket] = []
        self._shut = False
        self._lock = threading.Lock()
        if deadline is not None:
            _watchdog.watch(self)

    def add(self, sock: Optional[socket.socket]) -> None:
        """Guard ``sock`` too, as its one guard now; shut it at once if this
        guard already was.
        """
        if sock is None:
            return
        with _owners_lock:
            _owners[sock] = self
        with self._lock:
            if sock not in self._sockets:
                self._sockets.append(sock)
            shut = self._shut
        if shut:
            self._shut_own(sock)

    def shut(self, expired: bool = False) -> None:
        """Shut every socket down (not close: the owner closes), now and later."""
        with self._lock:
            if self.done or self._shut:
                return
            self._shut = True
            self.expired = expired
            sockets = list(self._sockets)
        for sock in sockets:
            self._shut_own(sock)

    def _shut_own(self, sock: socket.socket) -> None:
        """Shut ``sock`` down unless it left this exchange: once a reply is
        read its connection goes back to the pool (see ``_put_conn``) and may
        carry another request before this exchange has finished.
        """
        with _owners_lock:
            if _owners.get(sock) is self:
                _shut_down(sock)

    def finish(self) -> None:
        """The exchange is over: forget its sockets, which may serve others now."""
        with self._lock:
            self.done = True
            self._sockets.clear()

    def released(self) -> None:
        """Its connection went back to the pool: the reply was read whole."""
        with self._lock:
            if not self._shut:
                self.complete = True


@contextlib.contextmanager
def guarding(guard: Guard) -> Iterator[None]:
    """Register with ``guard`` the sockets this thread's request uses."""
    previous = getattr(_local, "guard", None)
    _local.guard = guard
    try:
        yield
    finally:
        _local.guard = previous


def _shut_down(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class _Registering:
    """A urllib3 connection that registers its socket with the thread's guard,
    from the moment it exists (a proxy's CONNECT and the TLS handshake come
    after), and each time the connection is reused.
    """

    sock: Any

    def _new_conn(self) -> socket.socket:
        sock: socket.socket = super()._new_conn()  # type: ignore[misc]
        _register(sock)
        return sock

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        _register(self.sock)

    def request(self, *args: Any, **kwargs: Any) -> None:
        _register(self.sock)  # a pooled connection, reused
        super().request(*args, **kwargs)  # type: ignore[misc]


def _register(sock: Optional[socket.socket]) -> None:
    guard: Optional[Guard] = getattr(_local, "guard", None)
    if guard is not None:
        guard.add(sock)


class _HTTPConnection(_Registering, urllib3.connection.HTTPConnection):
    pass


class _HTTPSConnection(_Registering, urllib3.connection.HTTPSConnection):
    pass


class _Releasing:
    """A pool that takes a connection back from its guard when it gets it back."""

    def _put_conn(self, conn: Any) -> None:
        sock = getattr(conn, "sock", None)
        if sock is not None:
            with _owners_lock:
                guard = _owners.pop(sock, None)
            if guard is not None:
                guard.released()
        super()._put_conn(conn)  # type: ignore[misc]


class _HTTPPool(_Releasing, urllib3.connectionpool.HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(_Releasing, urllib3.connectionpool.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


_POOLS = {"http": _HTTPPool, "https": _HTTPSPool}


class GuardedAdapter(requests.adapters.HTTPAdapter):
    """requests' ``HTTPAdapter``, whose connections a chat's deadline and a
    ``close()`` from another thread can reach in every phase (directly and
    through http(s) proxies; not SOCKS). A client mounts it on the session it
    makes; mount it on a session of your own to keep both::

        session.mount("http://", GuardedAdapter(pool_maxsize=200))
        session.mount("https://", GuardedAdapter(pool_maxsize=200))
    """

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **kwargs)
        if not proxy.lower().startswith("socks"):
            manager.pool_classes_by_scheme = _POOLS
        return manager


class _Watchdog:
    """One daemon thread that shuts each guard down at its deadline."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Guard]] = []
        self._prune_at = 256
        self._order = itertools.count()
        self._changed = threading.Condition()
        self._thread: Optional[threading.Thread] = None

    def watch(self, guard: Guard) -> None:
        assert guard.deadline is not None
        with self._changed:
            if len(self._heap) >= self._prune_at:  # finished guards behind a
                self._heap = [entry for entry in self._heap if not entry[2].done]
                heapq.heapify(self._heap)  # long deadline would pile up
                self._prune_at = max(256, 2 * len(self._heap))
            heapq.heappush(self._heap, (guard.deadline, next(self._order), guard))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="chatproviders-watchdog", daemon=True
                )
                self._thread.start()
            self._changed.notify()

    def _run(self) -> None:
        while True:
            with self._changed:
                while self._heap and self._heap[0][2].done:
                    heapq.heappop(self._heap)  # finished in time
                if not self._heap:
                    self._changed.wait()
                    continue
                deadline, _, guard = self._heap[0]
                wait = deadline - time.monotonic()
                if wait > 0:
                    self._changed.wait(wait)
                    continue
                heapq.heappop(self._heap)
            guard.shut(expired=True)


_watchdog = _Watchdog()


def _after_fork_in_child() -> None:
    """The child has one thread: locks another thread held stay held, and the
    watchdog thread is gone. Start afresh."""
    global _watchdog, _owners_lock
    _watchdog = _Watchdog()
    _owners_lock = threading.Lock()
    _owners.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
