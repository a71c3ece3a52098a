"""Noticing a client that hung up while its upstream says nothing.

A WSGI application learns of a closed connection only when a write fails,
and a stalled upstream gives it nothing to write. So one daemon thread looks
at every open stream's connection every :data:`POLL_INTERVAL` seconds and
closes the upstream stream of any client that left: ``ChatStream.close()``
works from any thread, and the read waiting on the upstream returns at once.

How a connection is looked at depends on the server: waitress gives
``environ["waitress.client_disconnected"]`` (with ``channel_request_lookahead``
set, as ``chatproviders serve`` does), gunicorn ``environ["gunicorn.socket"]``,
which is peeked at without reading. Other servers fall back on the failed
write.
"""

from __future__ import annotations

import itertools
import logging
import socket
import threading
from typing import Any, Callable, Optional

__all__ = ["POLL_INTERVAL", "HangupWatcher", "disconnect_probe"]

logger = logging.getLogger("chatproviders.gateway")

#: Seconds between two looks at the open connections.
POLL_INTERVAL = 0.2

Probe = Callable[[], bool]


def disconnect_probe(environ: dict[str, Any]) -> Optional[Probe]:
    """A callable that says whether the client has gone, or None if unknown."""
    probe = environ.get("waitress.client_disconnected")
    if callable(probe):
        return probe  # type: ignore[no-any-return]
    sock = environ.get("gunicorn.socket")
    flags = getattr(socket, "MSG_PEEK", 0) | getattr(socket, "MSG_DONTWAIT", 0)
    if isinstance(sock, socket.socket) and hasattr(socket, "MSG_DONTWAIT"):

        def gone() -> bool:
            try:
                return sock.recv(1, flags) == b""
            except (BlockingIOError, InterruptedError):
                return False
            except OSError:
                return True

        return gone
    return None


class HangupWatcher:
    """Closes the upstream of each watched stream whose client has gone."""

    def __init__(self, interval: float = POLL_INTERVAL) -> None:
        self.interval = interval
        self._watched: dict[int, tuple[Probe, Callable[[], None]]] = {}
        self._tokens = itertools.count()
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._thread: Optional[threading.Thread] = None
        self._stopped = False

    def watch(self, probe: Probe, on_hangup: Callable[[], None]) -> int:
        """Call ``on_hangup`` (once) when ``probe()`` says the client left."""
        with self._lock:
            token = next(self._tokens)
            self._watched[token] = (probe, on_hangup)
            if self._thread is None and not self._stopped:
                self._thread = threading.Thread(
                    target=self._run, name="chatproviders-gateway-hangup", daemon=True
                )
                self._thread.start()
            return token

    def unwatch(self, token: int) -> None:
        with self._lock:
            self._watched.pop(token, None)

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            self._wake.notify_all()

    def _run(self) -> None:
        while True:
            with self._lock:
                self._wake.wait(self.interval)
                if self._stopped:
                    return
                watched = list(self._watched.items())
            for token, (probe, on_hangup) in watched:
                try:
                    gone = probe()
                except Exception:  # a probe of a closed channel: gone
                    gone = True
                if gone:
                    self.unwatch(token)
                    try:
                        on_hangup()
                    except Exception:  # the next client that leaves is still seen
                        logger.exception("closing the upstream of a client that left")
