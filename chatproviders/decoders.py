"""Incremental wire decoding for streamed replies: bytes first, text last.

The decoders every provider uses, public for your own::

    iter_text(chunks)    # UTF-8 bytes -> str pieces
    iter_lines(chunks)   # bytes -> str lines (CR, LF or CRLF)
    iter_sse(chunks)     # bytes -> ServerSentEvent(data, event, id, retry)
    iter_ndjson(chunks)  # bytes -> one JSON value per non-blank line

Network reads arrive in pieces of arbitrary size, and a piece boundary may
fall anywhere: between a CR and its LF, or in the middle of a multi-byte UTF-8
character. So everything here works on raw bytes for as long as possible and
turns them into text only when that is safe. Lines are split on the raw bytes
(CR, LF and CRLF are all line ends; a CR that ends one read ends its line at
once, and an LF opening the next read is taken as the rest of that CRLF, not as
an empty line), and only complete lines are decoded as UTF-8. Raw text is
decoded with an incremental decoder, so a character split across reads comes
out whole. Invalid bytes become U+FFFD: never an exception, and never silently
dropped. This module uses only the standard library and takes plain ``bytes``,
so it can be fed by any HTTP client and tested on plain lists of bytes.
"""

from __future__ import annotations

import codecs
import json
from typing import Any, Iterable, Iterator, NamedTuple

from ._constants import ERROR_BODY_EXCERPT
from .exceptions import ResponseFormatError

__all__ = [
    "LineSplitter",
    "SSEDecoder",
    "ServerSentEvent",
    "iter_lines",
    "iter_ndjson",
    "iter_sse",
    "iter_text",
]

_BOM = "\ufeff"


class LineSplitter:
    """Split a byte stream into lines ending in CR, LF or CRLF (the WHATWG / SSE rule).

    Feed it the stream piece by piece; each call returns the lines completed so
    far, with their terminators removed. Work is done on whole buffers with
    ``bytes`` methods, never per byte in Python, and a partial line is kept as
    a list of pieces that is joined once, when its terminator arrives.
    """

    __slots__ = ("_pending", "_skip_lf")

    def __init__(self) -> None:
        self._pending: list[bytes] = []
        # The previous feed ended in CR: its line has been emitted, and an LF
        # at the start of the next feed is the second half of a CRLF.
        self._skip_lf = False

    def feed(self, data: bytes) -> list[bytes]:
        """Add *data* and return the lines it completes, terminators removed."""
        if not data:
            return []
        if self._skip_lf:
            self._skip_lf = False
            if data[:1] == b"\n":
                data = data[1:]
                if not data:
                    return []
        if b"\r" in data:
            # A trailing CR ends its line now; remember to drop an LF that may
            # start the next feed. Then reduce every terminator to LF.
            self._skip_lf = data.endswith(b"\r")
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        elif b"\n" not in data:
            self._pending.append(data)
            return []
        lines = data.split(b"\n")
        tail = lines.pop()
        if self._pending:
            self._pending.append(lines[0])
            lines[0] = b"".join(self._pending)
            self._pending = []
        if tail:
            self._pending.append(tail)
        return lines

    def flush(self) -> list[bytes]:
        """At end of stream, return the unterminated last line, if any (0 or 1 items).

        The splitter is reset and can be reused for a new stream.
        """
        tail = b"".join(self._pending)
        self._pending = []
        self._skip_lf = False
        return [tail] if tail else []


class ServerSentEvent(NamedTuple):
    """One dispatched server-sent event (immutable; a named tuple, cheap to make).

    ``data`` is the event's data lines joined with ``"\\n"``; ``event`` is its
    type (``"message"`` unless an ``event:`` field said otherwise). ``id`` is
    the stream's last event id at dispatch time (it persists across events, as
    in the spec; ``None`` if no ``id:`` field has been seen yet). ``retry`` is
    the last valid reconnection time in milliseconds the stream has sent
    (it persists likewise; ``None`` if none yet).
    """

    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None


class SSEDecoder:
    """Incremental server-sent events decoder following the WHATWG event-stream rules.

    :meth:`feed` returns every event whose terminating blank line is in the
    bytes seen so far, as soon as that line arrives. :meth:`flush` ends the
    stream: an event whose blank line never arrived is discarded, as the spec
    requires. After :meth:`flush` the decoder can be fed a new stream (for
    instance after reconnecting); the last event id and retry value carry over.
    """

    __slots__ = ("_at_start", "_data", "_event", "_last_id", "_lines", "_retry")

    def __init__(self) -> None:
        self._lines = LineSplitter()
        self._at_start = True
        self._data: list[str] = []
        self._event = ""
        self._last_id: str | None = None
        self._retry: int | None = None

    def feed(self, data: bytes) -> list[ServerSentEvent]:
        """Add *data* and return the events it completes, in stream order."""
        events: list[ServerSentEvent] = []
        for raw in self._lines.feed(data):
            event = self._process_line(raw)
            if event is not None:
                events.append(event)
        return events

    def flush(self) -> list[ServerSentEvent]:
        """At end of stream, discard any incomplete event; always returns ``[]``.

        An unterminated last line is part of that incomplete event, so it is
        discarded too rather than interpreted.
        """
        self._lines.flush()
        self._at_start = True
        self._data = []
        self._event = ""
        return []

    def _process_line(self, raw: bytes) -> ServerSentEvent | None:
        line = raw.decode("utf-8", "replace")
        if self._at_start:
            self._at_start = False
            if line.startswith(_BOM):
                line = line[1:]
        if not line:
            return self._dispatch()
        if line[0] == ":":
            return None  # comment / keep-alive
        name, sep, value = line.partition(":")
        if sep and value[:1] == " ":
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._last_id = value
        elif (
            name == "retry" and value.isascii() and value.isdigit() and len(value) < 10
        ):
            self._retry = int(value)
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        if not self._data:
            self._event = ""
            return None
        event = ServerSentEvent(
            data="\n".join(self._data),
            event=self._event or "message",
            id=self._last_id,
            retry=self._retry,
        )
        self._data = []
        self._event = ""
        return event


def iter_sse(chunks: Iterable[bytes]) -> Iterator[ServerSentEvent]:
    """Decode server-sent events from *chunks*, yielding each as soon as complete."""
    decoder = SSEDecoder()
    for chunk in chunks:
        yield from decoder.feed(chunk)
    yield from decoder.flush()


def iter_text(chunks: Iterable[bytes]) -> Iterator[str]:
    """Decode UTF-8 *chunks* incrementally, yielding non-empty strings.

    A character split across chunks comes out whole; invalid bytes, and a
    character truncated by the end of the stream, become U+FFFD.
    """
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    for chunk in chunks:
        text = decoder.decode(chunk)
        if text:
            yield text
    text = decoder.decode(b"", final=True)
    if text:
        yield text


def iter_lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """Decode *chunks* into lines ending in CR, LF or CRLF, terminators removed.

    A terminator split across chunks ends one line, not two; a last line
    without a terminator is still yielded. Each line is decoded as UTF-8
    once complete (invalid bytes become U+FFFD).
    """
    splitter = LineSplitter()
    for chunk in chunks:
        for line in splitter.feed(chunk):
            yield line.decode("utf-8", "replace")
    for line in splitter.flush():
        yield line.decode("utf-8", "replace")


def iter_ndjson(chunks: Iterable[bytes]) -> Iterator[Any]:
    """Decode newline-delimited JSON: one value per non-blank line.

    Raises :class:`~chatproviders.ResponseFormatError` for a line that is
    not JSON, quoting its start.
    """
    for line in iter_lines(chunks):
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except (ValueError, RecursionError):  # RecursionError: nested too deep
            raise ResponseFormatError(
                f"sent a line that is not JSON: {line[:200]!r}",
                body=line[:ERROR_BODY_EXCERPT],
            ) from None
