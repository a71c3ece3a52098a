"""Minimal raw-socket HTTP/1.1 servers on 127.0.0.1 for the benchmarks.

No http.server and no emulator logic, so that the server costs as little as
possible: it reads a request (its head and a Content-Length body) and answers
it in one of three ways:

* :func:`bulk`: a prebuilt body written in fixed-size ``sendall`` calls, as
  fast as the socket takes it, then the connection is closed (throughput);
* :func:`tokens`: one piece every ``interval`` seconds, with
  ``time.perf_counter()`` recorded right after each ``sendall`` (latency);
* :func:`tiny`: a two-byte body with Content-Length on a keep-alive
  connection (per-request overhead).

``GET /stats`` answers ``{"connections": N, "requests": M}`` in every mode,
counting neither itself nor the connections that asked only for it.

Run as a script (``python _servers.py bulk|tiny ...``) it serves in a process
of its own, so that the client being measured has a core and the GIL to
itself; it prints its port and serves until its stdin is closed.
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Callable, NamedTuple

import _bodies

#: An answer writes the reply to the socket; it returns True to keep the
#: connection open for another request.
Answer = Callable[[socket.socket], bool]

_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)


class Server:
    """Serve ``answer`` on 127.0.0.1, one daemon thread per connection."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.connections = 0
        self.requests = 0
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=256)
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    def start(self) -> Server:
        self._thread.start()
        return self

    def stop(self) -> None:
        with suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept() on Linux
        self._listener.close()

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        counted = False
        with conn, suppress(OSError):
            for head in _read_requests(conn):
                if head.startswith(b"GET /stats "):
                    stats = {"connections": self.connections, "requests": self.requests}
                    conn.sendall(_response(json.dumps(stats).encode(), "length"))
                    continue
                self.requests += 1
                if not counted:
                    self.connections, counted = self.connections + 1, True
                if not self.answer(conn):
                    return


def _read_requests(conn: socket.socket) -> Iterator[bytes]:
    """Yield the head of each request on ``conn`` (its body is read and dropped)."""
    buffer = b""
    while True:
        while b"\r\n\r\n" not in buffer:
            data = conn.recv(65536)
            if not data:
                return
            buffer += data
        head, _, buffer = buffer.partition(b"\r\n\r\n")
        found = _CONTENT_LENGTH.search(head)
        length = int(found.group(1)) if found else 0
        while len(buffer) < length:
            data = conn.recv(65536)
            if not data:
                return
            buffer += data
        buffer = buffer[length:]
        yield head


def _head(framing: str, length: int, content_type: str, close: bool) -> bytes:
    lines = [b"HTTP/1.1 200 OK", b"Content-Type: " + content_type.encode()]
    if framing == "chunked":
        lines.append(b"Transfer-Encoding: chunked")
    elif framing == "length":
        lines.append(b"Content-Length: %d" % length)
    if close or framing == "close":
        lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _frame(framing: str, data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data) if framing == "chunked" else data


def _response(body: bytes, framing: str, content_type: str = "text/plain") -> bytes:
    head = _head(framing, len(body), content_type, close=False)
    return (
        head + _frame(framing, body) + (b"0\r\n\r\n" if framing == "chunked" else b"")
    )


def bulk(body: bytes, write_size: int, framing: str, content_type: str) -> Answer:
    """Write ``body`` in ``write_size`` pieces as fast as possible, then close."""
    pieces = [body[i : i + write_size] for i in range(0, len(body), write_size)]
    wire = [_head(framing, len(body), content_type, close=True)]
    wire += [_frame(framing, piece) for piece in pieces]
    if framing == "chunked":
        wire.append(b"0\r\n\r\n")

    def answer(conn: socket.socket) -> bool:
        for data in wire:
            conn.sendall(data)
        return False

    return answer


class Write(NamedTuple):
    """One token written: when ``sendall`` returned, and the totals sent so far."""

    time: float
    wire: int  # bytes on the socket, head and framing included
    body: int  # body bytes
    text: int  # characters of reply text


class Token(NamedTuple):
    data: bytes  # what goes in the body
    text: int  # how many characters of reply text it carries


def tokens(
    pieces: Sequence[Token],
    interval: float,
    framing: str,
    content_type: str,
    trailer: bytes,
    writes: list[list[Write]],
) -> Answer:
    """Write one piece every ``interval`` s, recording each in a new list in
    ``writes``; then ``trailer`` (not timed), and close the connection.
    """
    length = sum(len(piece.data) for piece in pieces) + len(trailer)

    def answer(conn: socket.socket) -> bool:
        record: list[Write] = []
        writes.append(record)
        head = _head(framing, length, content_type, close=True)
        conn.sendall(head)
        wire, body, text = len(head), 0, 0
        start = time.perf_counter()
        for number, piece in enumerate(pieces, 1):
            pause = start + number * interval - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            data = _frame(framing, piece.data)
            conn.sendall(data)
            now = time.perf_counter()
            wire, body, text = (
                wire + len(data),
                body + len(piece.data),
                text + piece.text,
            )
            record.append(Write(now, wire, body, text))
        ending = _frame(framing, trailer) if trailer else b""
        conn.sendall(ending + (b"0\r\n\r\n" if framing == "chunked" else b""))
        return False

    return answer


def tiny(body: bytes = b"ok") -> Answer:
    """Answer ``body`` with Content-Length and keep the connection open."""
    response = _response(body, "length", "text/plain; charset=utf-8")

    def answer(conn: socket.socket) -> bool:
        conn.sendall(response)
        return True

    return answer


@contextmanager
def spawn(*args: str) -> Iterator[int]:
    """Run this module as a server process with ``args``; yield its port."""
    script = str(Path(__file__).resolve())
    process = subprocess.Popen(
        [sys.executable, script, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"the server process failed to start: {args}")
        yield int(line)
    finally:
        assert process.stdin is not None
        process.stdin.close()  # the server's signal to exit
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def stats(port: int) -> dict[str, int]:
    """The server's ``GET /stats``, over a connection of its own."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET /stats HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        data = b""
        while b"}" not in data:
            data += sock.recv(4096)
    counts: dict[str, int] = json.loads(data.partition(b"\r\n\r\n")[2])
    return counts


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=["bulk", "tiny"])
    parser.add_argument("--kind", choices=["text", "sse"], default="text")
    parser.add_argument("--size", type=int, default=50_000_000)
    parser.add_argument("--write-size", type=int, default=16 * 1024)
    parser.add_argument("--framing", default="chunked")
    options = parser.parse_args(argv)
    if options.mode == "bulk":
        body = _bodies.body(options.kind, options.size).data
        content_type = _bodies.CONTENT_TYPES[options.kind]
        answer = bulk(body, options.write_size, options.framing, content_type)
    else:
        answer = tiny()
    with Server(answer) as server:
        print(server.port, flush=True)
        sys.stdin.read()  # until the parent closes our stdin


if __name__ == "__main__":
    main()
