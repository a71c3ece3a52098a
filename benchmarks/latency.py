"""1. Per-token latency: from the server's write of a token to the caller's text.

A server thread in this process writes a token every 20 ms and records
``time.perf_counter()`` right after each ``sendall``; the client records it
right after each chunk reaches the caller (same process, same clock). A
token's delay runs from its write to the first chunk that completes it, so
chunks that arrive together (or all at the end) count as late, not as lost.

Under Content-Length and close-delimited framing plain ``requests``
(``iter_content(chunk_size=None)``) hands the body over only at the end: that
is the baseline's point. The floor is a raw socket ``recv`` loop.
"""

from __future__ import annotations

import socket
import time
from bisect import bisect_left
from collections.abc import Iterable, Sized
from typing import Callable

import _bodies
import _report
import requests
from _servers import Server, Token, Write, tokens

from chatproviders import CodeLinkAva, Cromicle

INTERVAL = 0.020
FRAMINGS = ("chunked", "length", "close")
TARGET_P99 = 0.005
MESSAGES = [{"role": "user", "content": "Hi"}]
TIMEOUT = (10.0, 60.0)

#: (time, total so far): bytes on the wire, body bytes, or reply characters.
Received = list[tuple[float, int]]


def _record(pieces: Iterable[Sized]) -> Received:
    received: Received = []
    total = 0
    for piece in pieces:
        now = time.perf_counter()
        total += len(piece)
        received.append((now, total))
    return received


def raw_socket(port: int) -> Received:
    """The floor: send the request, ``recv`` until the server closes."""
    request = (
        b"POST /chat HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
    )
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(request)
        return _record(iter(lambda: sock.recv(65536), b""))


def plain_requests(port: int) -> Received:
    """The baseline: requests with ``stream=True``, ``iter_content(None)``."""
    with requests.post(
        f"http://127.0.0.1:{port}/chat", data=b"{}", stream=True, timeout=TIMEOUT
    ) as response:
        return _record(response.iter_content(chunk_size=None))


def ours(provider: type[Cromicle] | type[CodeLinkAva]) -> Callable[[int], Received]:
    def read(port: int) -> Received:
        with provider(base_url=f"http://127.0.0.1:{port}") as client:
            with client.stream(MESSAGES) as stream:
                return _record(stream)

    return read


#: (label, what its totals count, body kind, how it reads)
CLIENTS = [
    ("raw socket recv (floor)", "wire", "text", raw_socket),
    ("requests iter_content(None)", "body", "text", plain_requests),
    ("ours: Cromicle (raw text)", "text", "text", ours(Cromicle)),
    ("ours: CodeLinkAva (SSE)", "text", "sse", ours(CodeLinkAva)),
]


def delays(writes: list[Write], unit: str, received: Received) -> list[float]:
    """For each write, the time until the caller had all of it."""
    totals = [total for _, total in received]
    result = []
    for write in writes:
        index = bisect_left(totals, getattr(write, unit))
        if index == len(totals):
            raise RuntimeError("the client did not receive every token")
        result.append(received[index][0] - write.time)
    return result


def measure(
    framing: str, kind: str, unit: str, read: Callable[[int], Received], count: int
) -> list[float]:
    """The delays of ``count`` tokens served in ``framing``, read by ``read``."""
    texts = [_bodies.PIECES[i % len(_bodies.PIECES)] for i in range(count)]
    if kind == "sse":
        pieces = [Token(_bodies.event(text), len(text)) for text in texts]
        trailer = _bodies.DONE
    else:
        pieces = [Token(text.encode(), len(text)) for text in texts]
        trailer = b""
    writes: list[list[Write]] = []
    content_type = _bodies.CONTENT_TYPES[kind]
    answer = tokens(pieces, INTERVAL, framing, content_type, trailer, writes)
    with Server(answer) as server:
        received = read(server.port)
    return delays(writes[0], unit, received)


def run(quick: bool = False) -> None:
    count = 25 if quick else 100
    rows = []
    for framing in FRAMINGS:
        for label, unit, kind, read in CLIENTS:
            found = measure(framing, kind, unit, read, count)
            p50, p99 = _report.percentile(found, 0.5), _report.percentile(found, 0.99)
            verdict = ""
            if label.startswith("ours"):
                verdict = _report.check(
                    "latency",
                    f"p99 < 5 ms, {framing}, {label}",
                    p99 < TARGET_P99,
                    f"p99 {p99 * 1000:.2f} ms",
                )
            rows.append(
                [
                    framing,
                    label,
                    f"{p50 * 1000:.2f}",
                    f"{p99 * 1000:.2f}",
                    f"{max(found) * 1000:.2f}",
                    "p99 < 5 ms" if verdict else "",
                    verdict,
                ]
            )
    _report.table(
        f"1. Per-token latency: a token every {INTERVAL * 1000:.0f} ms, "
        f"{count} tokens, delay from the server's sendall to the caller",
        ["framing", "client", "p50 ms", "p99 ms", "max ms", "target", ""],
        rows,
        left=2,
    )


if __name__ == "__main__":
    run()
