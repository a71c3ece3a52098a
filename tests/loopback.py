"""A byte-level HTTP server on 127.0.0.1 for what ``responses`` cannot fake.

Each accepted connection runs ``handler(conn)`` on its own thread; the handler
writes exactly the bytes a test needs (slow tokens, a framing, a split
character, a stall, a reset) and may wait on events the test sets, so tests
synchronize on events rather than sleeps. Exceptions raised by a handler are
re-raised when the server stops, so a failing handler fails its test.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Callable, Optional

WAIT = 5.0  # the bound on every wait in a test; never reached when things work


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    raw_headers: list[tuple[str, str]]  # names as sent
    body: bytes


@dataclass
class Conn:
    """One accepted connection, seen from the server."""

    sock: socket.socket
    framing: str = "chunked"
    closed_by_client: threading.Event = field(default_factory=threading.Event)
    #: Set by the server's stop() when it shuts this connection down while the
    #: client still has it open: that wake-up is no close by the client.
    shut_by_server: threading.Event = field(default_factory=threading.Event)
    _buffer: bytes = b""

    def read_request(self) -> Optional[Request]:
        """Read one request; ``None`` if the client closed the connection first."""
        while b"\r\n\r\n" not in self._buffer:
            data = self.sock.recv(65536)
            if not data:
                return None
            self._buffer += data
        head, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
        request_line, *lines = head.decode("latin-1").split("\r\n")
        method, path, _ = request_line.split(" ", 2)
        raw_headers = [tuple(line.split(": ", 1)) for line in lines]
        headers = {name.lower(): value for name, value in raw_headers}
        length = int(headers.get("content-length", "0"))
        while len(self._buffer) < length:
            data = self.sock.recv(65536)
            if not data:
                return None
            self._buffer += data
        body, self._buffer = self._buffer[:length], self._buffer[length:]
        return Request(method, path, headers, raw_headers, body)  # type: ignore[arg-type]

    def send_head(
        self,
        status: int = 200,
        headers: Iterable[tuple[str, str]] = (("Content-Type", "text/plain"),),
        framing: str = "chunked",
        length: Optional[int] = None,
    ) -> None:
        """Send the status line and headers for ``framing``: chunked, length, close."""
        self.framing = framing
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}"]
        lines += [f"{name}: {value}" for name, value in headers]
        if framing == "chunked":
            lines.append("Transfer-Encoding: chunked")
        elif framing == "length":
            assert length is not None, "length framing needs the body's length"
            lines.append(f"Content-Length: {length}")
        else:
            lines.append("Connection: close")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def send(self, data: bytes) -> None:
        """Write one piece of the body at once (one chunk when chunked)."""
        if self.framing == "chunked":
            data = b"%x\r\n%s\r\n" % (len(data), data)
        self.sock.sendall(data)

    def end(self) -> None:
        """End the body: the last chunk, or closing a close-delimited body."""
        if self.framing == "chunked":
            self.sock.sendall(b"0\r\n\r\n")
        elif self.framing == "close":
            self.sock.shutdown(socket.SHUT_WR)

    def respond(
        self, status: int, body: bytes, content_type: str = "text/plain"
    ) -> None:
        """A whole reply in one go, with Content-Length."""
        self.send_head(status, [("Content-Type", content_type)], "length", len(body))
        self.sock.sendall(body)

    def reset(self) -> None:
        """Abort the connection with a TCP reset."""
        self.sock.setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
        )
        self.sock.close()

    def wait_closed_by_client(self, timeout: float = WAIT) -> bool:
        """Block until the client closes its end (recv gives EOF or an error)."""
        self.sock.settimeout(timeout)
        try:
            while self.sock.recv(65536):
                pass
        except socket.timeout:
            return False
        except OSError:
            pass
        if self.shut_by_server.is_set():
            return False
        self.closed_by_client.set()
        return True

    def client_has_closed(self) -> bool:
        """True when the client's end of file is waiting (or was read): no wait."""
        try:
            return self.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            return False
        except OSError:  # reset by the client, or already closed here
            return True


Handler = Callable[[Conn], None]


class LoopbackServer:
    """``with LoopbackServer(handler) as server:`` then talk to ``server.url``."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.host = self.url[len("http://") :]
        self.accepted = 0
        self.errors: list[BaseException] = []
        self._threads: list[threading.Thread] = []
        self._conns: list[Conn] = []
        self._acceptor = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> LoopbackServer:
        self._acceptor.start()
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.stop()
        if self.errors and exc is None:
            raise self.errors[0]

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self.listener.close()
        for conn in list(self._conns):
            if not conn.client_has_closed():
                conn.shut_by_server.set()
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_RDWR)
        self._acceptor.join(WAIT)
        for thread in list(self._threads):
            thread.join(WAIT)

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.accepted += 1
            conn = Conn(sock)
            self._conns.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: Conn) -> None:
        try:
            self.handler(conn)
        except BaseException as exc:  # reported at stop()
            self.errors.append(exc)
        finally:
            conn.sock.close()


_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}
