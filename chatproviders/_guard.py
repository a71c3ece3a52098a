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
        """Shut ``sock`` down unless another exchange guards it by now: once
        a reply is read, its connection goes back to the pool and may carry
        another request before this exchange has finished.
        """
        with _owners_lock:
            if _owners.get(sock) is not self:
                return
        _shut_down(sock)

    def finish(self) -> None:
        """The exchange is over: forget its sockets, which may serve others now."""
        with self._lock:
            self.done = True
            self._sockets.clear()


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
    """A urllib3 connection that registers its socket with the thread's guard."""

    sock: Any

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


class _HTTPPool(urllib3.connectionpool.HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(urllib3.connectionpool.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


_POOLS = {"http": _HTTPPool, "https": _HTTPSPool}


class GuardedAdapter(requests.adapters.HTTPAdapter):
    """requests' adapter, with connections that register with the exchange's
    :class:`Guard` (direct and through http(s) proxies; not SOCKS).
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
        self._order = itertools.count()
        self._changed = threading.Condition()
        self._thread: Optional[threading.Thread] = None

    def watch(self, guard: Guard) -> None:
        assert guard.deadline is not None
        with self._changed:
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

    def _forget(self) -> None:
        """After a fork: the thread is gone in the child; start afresh."""
        self.__init__()  # type: ignore[misc]


_watchdog = _Watchdog()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_watchdog._forget)
