"""Putting a body on the socket: the three framings, delays, byte-level faults.

Every write goes straight to the socket (``sendall``, and the server sets
TCP_NODELAY), so each piece leaves the machine as soon as it is written.
"""

from __future__ import annotations

import enum
import socket
import struct
import threading
from typing import Sequence

from chatproviders.testing._reply import Framing, Reply


class Outcome(enum.Enum):
    """How writing a body ended."""

    COMPLETE = "complete"  # the whole body and its end marker were sent
    ABORTED = "aborted"  # stalled, or the server is stopping: close the connection
    RESET = "reset"  # SO_LINGER is set to 0: closing the socket now sends a RST


def framing_headers(framing: Framing, length: int) -> dict[str, str]:
    """The headers that announce how the end of the body is found."""
    if framing == "chunked":
        return {"Transfer-Encoding": "chunked"}
    if framing == "length":
        return {"Content-Length": str(length)}
    return {"Connection": "close"}


def split_first_character(writes: Sequence[bytes]) -> list[bytes]:
    """Cut the write holding the first multi-byte UTF-8 character after its lead."""
    for index, data in enumerate(writes):
        for offset, byte in enumerate(data):
            if byte >= 0xC0:  # the lead byte of a multi-byte sequence
                cut = offset + 1
                return [*writes[:index], data[:cut], data[cut:], *writes[index + 1 :]]
    return list(writes)


def send_body(
    sock: socket.socket,
    writes: Sequence[bytes],
    reply: Reply,
    stopping: threading.Event,
) -> Outcome:
    """Write the body in ``reply.framing`` with the reply's delay and faults."""
    budget = reply.stall_after if reply.stall_after is not None else reply.reset_after
    sent = 0
    for index, data in enumerate([piece for piece in writes if piece]):
        if stopping.is_set() or (index and reply.delay and stopping.wait(reply.delay)):
            return Outcome.ABORTED
        if budget is not None and sent + len(data) >= budget:
            _write(sock, reply.framing, data[: budget - sent])
            return _fault(sock, reply)
        _write(sock, reply.framing, data)
        sent += len(data)
    if budget is not None:  # the whole body fits: fault before the end marker
        return _fault(sock, reply)
    if reply.framing == "chunked":
        sock.sendall(b"0\r\n\r\n")
    return Outcome.COMPLETE


def _write(sock: socket.socket, framing: Framing, data: bytes) -> None:
    if not data:  # an empty chunk would end a chunked body
        return
    if framing == "chunked":
        data = b"%x\r\n%s\r\n" % (len(data), data)
    sock.sendall(data)


def _fault(sock: socket.socket, reply: Reply) -> Outcome:
    if reply.reset_after is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        return Outcome.RESET
    _stall(sock)
    return Outcome.ABORTED


def _stall(sock: socket.socket) -> None:
    """Send nothing until the client closes the connection or the server stops
    (``stop()`` shuts every connection down, which ends the read). Whatever the
    client sends meanwhile is read and dropped.
    """
    try:
        while sock.recv(65536):
            pass
    except OSError:  # reset by the client
        return
