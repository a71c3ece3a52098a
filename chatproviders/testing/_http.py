"""The HTTP/1.1 layer: a threaded server that tracks its connections, and the handler
that reads a request, records it and writes the protocol's answer.
"""

from __future__ import annotations

import contextlib
import json
import logging
import selectors
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from typing import Any, Callable, Mapping

from chatproviders.testing import _framing
from chatproviders.testing._protocols import Protocol
from chatproviders.testing._reply import Reply
from chatproviders.testing._traffic import Answer, RecordedRequest

logger = logging.getLogger("chatproviders.testing")

ERROR_REPLY = Reply(text="", framing="length")  # request errors: no faults

#: The largest request body read; a bigger one is refused with 400.
MAX_REQUEST_BODY = 16 * 1024 * 1024


class LoopbackHTTPServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer that counts, tracks and can shut its connections, and
    whose accept loop (:meth:`serve`) stops at once when :meth:`wake` is called.
    """

    def __init__(
        self,
        address: tuple[str, int],
        protocol: Protocol,
        record: Callable[[RecordedRequest], None],
        next_reply: Callable[[], Reply],
        stopping: threading.Event,
        idle_timeout: float | None = None,
    ) -> None:
        self.protocol = protocol
        self.idle_timeout = idle_timeout
        self.record = record
        self.next_reply = next_reply
        self.stopping = stopping
        self.connections = 0
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._handlers: list[threading.Thread] = []
        self._wake_reader, self._wake_writer = socket.socketpair()
        super().__init__(address, Handler)

    def serve(self) -> None:
        """Accept connections, each served in its thread, until ``stopping`` is set
        and :meth:`wake` called (serve_forever would poll for that instead).
        """
        with selectors.DefaultSelector() as selector:
            selector.register(self.socket, selectors.EVENT_READ)
            selector.register(self._wake_reader, selectors.EVENT_READ)
            while not self.stopping.is_set():
                ready = {key.fileobj for key, _ in selector.select()}
                if self._wake_reader in ready:
                    self._wake_reader.recv(64)
                if self.socket in ready and not self.stopping.is_set():
                    self._accept()

    def wake(self) -> None:
        """Wake :meth:`serve` up so that it sees ``stopping``."""
        with contextlib.suppress(OSError):
            self._wake_writer.send(b"\0")

    def _accept(self) -> None:
        try:
            request, client_address = self.get_request()
        except OSError:  # the client gave up before the accept
            return
        try:
            self.process_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
            self.shutdown_request(request)

    def server_close(self) -> None:
        super().server_close()
        self._wake_reader.close()
        self._wake_writer.close()

    def server_bind(self) -> None:
        TCPServer.server_bind(self)  # HTTPServer's own does a reverse DNS lookup
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    @property
    def thread_prefix(self) -> str:
        """The start of the names of this server's threads."""
        return f"chatproviders-emulator:{self.server_port}:"

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._lock:
            self.connections += 1
            self._open.add(request)
            thread = threading.Thread(
                target=self.process_request_thread,
                args=(request, client_address),
                name=f"{self.thread_prefix}connection-{self.connections}",
                daemon=True,
            )
            self._handlers = [t for t in self._handlers if t.is_alive()] + [thread]
        thread.start()

    def shutdown_request(self, request: Any) -> None:
        with self._lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def shut_connections(self) -> list[threading.Thread]:
        """Shut every open connection down (waking idle handlers); return handlers."""
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            return list(self._handlers)

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.exception("emulator error while serving %s", client_address)


class Handler(BaseHTTPRequestHandler):
    """Reads one request, records it, answers as the protocol and reply say."""

    protocol_version = "HTTP/1.1"  # keep-alive
    server_version = "chatproviders-emulator"
    disable_nagle_algorithm = True  # TCP_NODELAY: every write leaves at once
    server: LoopbackHTTPServer

    @property
    def timeout(self) -> float | None:  # type: ignore[override]
        """How long reading a request may wait: the server's idle timeout."""
        return self.server.idle_timeout

    def _serve_request(self) -> None:
        protocol = self.server.protocol
        try:
            body = self._read_body()
        except ValueError as exc:
            self.close_connection = True
            self._respond(protocol.error(400, f"unreadable body: {exc}"), ERROR_REPLY)
            return
        headers = _lower_headers(self.headers.items())
        request = RecordedRequest(self.command, self.path, headers, body, _json(body))
        self.server.record(request)
        answer = protocol.handle(request)
        if answer is not None:
            self._respond(answer, ERROR_REPLY)
        else:
            reply = self.server.next_reply()
            self._respond(protocol.render(reply, request), reply)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _serve_request

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts: list[bytes] = []
            total = 0
            while True:
                size = int(self.rfile.readline(1024).split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline(65536) not in (b"\r\n", b"\n", b""):
                        pass  # trailer fields
                    return b"".join(parts)
                total += size
                _check_body_size(total)
                parts.append(self.rfile.read(size))
                self.rfile.readline(1024)
        length = int(self.headers.get("Content-Length") or 0)
        _check_body_size(length)
        return self.rfile.read(length)

    def _respond(self, answer: Answer, reply: Reply) -> None:
        writes = answer.writes
        if reply.split_utf8:
            writes = _framing.split_first_character(writes)
        length = sum(len(data) for data in writes)
        headers = _merge(answer.headers, reply.headers)
        headers = _merge(headers, _framing.framing_headers(reply.framing, length))
        self.connection.settimeout(None)  # a reply is written at the reader's pace
        try:
            self.send_response(answer.status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            sock, stopping = self.connection, self.server.stopping
            outcome = _framing.send_body(sock, writes, reply, stopping)
        except OSError as exc:  # the client went away
            logger.debug("client %s went away: %r", self.client_address, exc)
            outcome = _framing.Outcome.ABORTED
        if outcome is not _framing.Outcome.COMPLETE:
            self.close_connection = True
        else:
            self.connection.settimeout(self.timeout)
        if outcome is _framing.Outcome.RESET:
            self.rfile.close()  # drop the file's reference: close() is the real close
            self.connection.close()

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)


def _check_body_size(size: int) -> None:
    if size < 0:
        raise ValueError("negative body size")
    if size > MAX_REQUEST_BODY:
        raise ValueError(f"body over {MAX_REQUEST_BODY} bytes")


def _lower_headers(items: list[tuple[str, str]]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in items:
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers


def _json(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError):  # UnicodeDecodeError, JSONDecodeError
        return None


def _merge(base: Mapping[str, str], extra: Mapping[str, str]) -> dict[str, str]:
    """``base`` updated with ``extra``, header names compared case-insensitively."""
    names = {name.lower() for name in extra}
    merged = {name: value for name, value in base.items() if name.lower() not in names}
    merged.update(extra)
    return merged
