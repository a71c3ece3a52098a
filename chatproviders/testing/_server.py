"""EmulatorServer: one provider's protocol served on loopback, with its replies and
the requests it received.
"""

from __future__ import annotations

import collections
import ipaddress
import logging
import threading
import time
from types import TracebackType
from typing import Any, Sequence

from chatproviders._numbers import check_count, check_seconds
from chatproviders.testing._http import LoopbackHTTPServer
from chatproviders.testing._protocols import Protocol, make_protocol
from chatproviders.testing._reply import Reply, make_reply
from chatproviders.testing._traffic import RecordedRequest

logger = logging.getLogger("chatproviders.testing")

#: Seconds a connection may wait for (the rest of) a request before the
#: server closes it, so that idle or trickling clients cannot hold every thread.
IDLE_TIMEOUT = 60.0


class EmulatorServer:
    """An offline server of one provider's protocol, on 127.0.0.1, in daemon threads.

    ``provider`` is the name of a registered provider that has an emulator
    (any case; ``chatproviders list`` shows them), or a :class:`Protocol`.
    The default reply is ``reply`` (or a fresh :class:`Reply`) with ``fields``
    replaced; its text defaults to the provider's greeting. ``api_key`` (requests
    must send ``Authorization: Bearer <key>``) and ``models`` (the known model
    names) apply to openai only. ``port=0`` picks a free port.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`. Every
    request is recorded in :attr:`requests`. Chat requests get the queued replies
    first, in order (:meth:`queue_reply`), then the default (:meth:`set_reply`).
    Its threads are named ``chatproviders-emulator:PORT:...``.
    """

    def __init__(
        self,
        provider: str | type[Protocol] | Protocol,
        reply: Reply | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        models: Sequence[str] | None = None,
        idle_timeout: float = IDLE_TIMEOUT,
        **fields: Any,
    ) -> None:
        if api_key is not None and not (
            isinstance(api_key, str)
            and api_key.isascii()
            and api_key.isprintable()
            and " " not in api_key
        ):  # a key no client could send would make no test
            raise ValueError(
                "api_key must be a str of ASCII letters, digits and punctuation"
            )
        check_count(port, "port", maximum=65535)
        self._protocol: Protocol = make_protocol(provider, api_key, models)
        self.host = _loopback(host)
        self._port = port
        self._idle_timeout = float(check_seconds(idle_timeout, "idle_timeout"))
        self._reply = make_reply(reply, fields, self._protocol.greeting)
        self._queue: collections.deque[Reply] = collections.deque()
        self._requests: list[RecordedRequest] = []
        self._changed = threading.Condition()
        self._stopping = threading.Event()
        self._httpd: LoopbackHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> EmulatorServer:
        """Bind the port and serve in a daemon thread; a server starts only once."""
        if self._httpd is not None or self._stopping.is_set():
            raise RuntimeError("an EmulatorServer can be started only once")
        self._httpd = LoopbackHTTPServer(
            (self.host, self._port),
            self._protocol,
            self._record,
            self._next_reply,
            self._stopping,
            self._idle_timeout,
        )
        self._thread = threading.Thread(
            target=self._httpd.serve,
            name=f"{self._httpd.thread_prefix}{self.provider}",
            daemon=True,
        )
        self._thread.start()
        logger.debug("%s emulator listening on %s", self.provider, self.url)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop: wake stalled and idle handlers, close every socket, join threads.

        Idempotent; waits for the threads at most about ``timeout`` seconds.
        """
        check_seconds(timeout, "timeout", zero=True)
        with self._changed:
            if self._stopping.is_set():
                return
            self._stopping.set()
        if self._httpd is None or self._thread is None:
            return
        deadline = time.monotonic() + timeout
        self._httpd.wake()
        self._thread.join(timeout)  # the accept loop ends at once
        for thread in self._httpd.shut_connections():
            thread.join(max(0.0, deadline - time.monotonic()))
        self._httpd.server_close()
        logger.debug("%s emulator stopped", self.provider)

    def __enter__(self) -> EmulatorServer:
        return self if self._httpd is not None else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def provider(self) -> str:
        """The provider's name, lower-case."""
        return self._protocol.name

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the server is not started")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """The base URL: ``http://127.0.0.1:PORT`` (``.../v1`` for openai)."""
        return f"http://{self.host}:{self.port}{self._protocol.prefix}"

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, in arrival order (the live list)."""
        return self._requests

    @property
    def connections(self) -> int:
        """How many TCP connections the server has accepted."""
        return 0 if self._httpd is None else self._httpd.connections

    @property
    def reply(self) -> Reply:
        """The default reply, used when no queued reply is left."""
        return self._reply

    def set_reply(self, reply: Reply | None = None, **fields: Any) -> Reply:
        """Make ``reply`` (or a fresh Reply) with ``fields`` replaced the default."""
        new = make_reply(reply, fields, self._protocol.greeting)
        with self._changed:
            self._reply = new
        return new

    def queue_reply(self, reply: Reply | None = None, **fields: Any) -> Reply:
        """Answer one later chat request with this reply; queued replies go first,
        in order. Requests that the protocol refuses (e.g. a bad hash) use none.
        """
        new = make_reply(reply, fields, self._protocol.greeting)
        with self._changed:
            self._queue.append(new)
        return new

    def wait_for_requests(
        self, count: int, timeout: float = 5.0
    ) -> list[RecordedRequest]:
        """Wait until ``count`` requests arrived and return the first ``count``;
        or TimeoutError. :attr:`requests` has all of them.
        """
        check_count(count, "count")
        check_seconds(timeout, "timeout", zero=True)
        with self._changed:
            if not self._changed.wait_for(
                lambda: len(self._requests) >= count, timeout
            ):
                got = len(self._requests)
                raise TimeoutError(f"{got} of {count} requests arrived in {timeout}s")
            return self._requests[:count]

    def __repr__(self) -> str:
        if self._httpd is None:
            return f"<EmulatorServer {self.provider} not started>"
        state = "stopped" if self._stopping.is_set() else "running"
        return f"<EmulatorServer {self.provider} {self.url} {state}>"

    def _record(self, request: RecordedRequest) -> None:
        with self._changed:
            self._requests.append(request)
            self._changed.notify_all()

    def _next_reply(self) -> Reply:
        with self._changed:
            return self._queue.popleft() if self._queue else self._reply


def _loopback(host: str) -> str:
    """``host`` when it is an IPv4 loopback address (``localhost`` is 127.0.0.1)."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        if ipaddress.IPv4Address(host).is_loopback:
            return host
    except ValueError:
        pass
    raise ValueError(f"the emulator listens on IPv4 loopback only, not {host!r}")
