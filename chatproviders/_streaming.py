"""What a call returns: a :class:`ChatStream` to close, or a :class:`ChatResponse`."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Optional

from ._closing import Closing
from .exceptions import ChatProvidersError, IncompleteStreamError

if TYPE_CHECKING:
    import requests

#: Gives an error its context (provider, host, partial text); see Provider.locate.
Locate = Callable[[ChatProvidersError, str], ChatProvidersError]

__all__ = ["ChatResponse", "ChatStream"]


@dataclass(frozen=True)
class ChatResponse:
    """A whole reply. ``str(reply)`` is its text."""

    text: str
    provider: str
    model: str
    attempts: int = 1
    time_to_first_chunk: Optional[float] = None
    elapsed: float = 0.0

    def __str__(self) -> str:
        return self.text


class ChatStream(Closing):
    """A reply arriving piece by piece: iterate it for ``str`` chunks, then close it.

    Use it in a ``with`` block. Leaving the block, ``close()``, reaching the end,
    ``break``-ing out of the ``with`` block, an error, or garbage collection
    closes the HTTP response; a response read to its end returns its connection
    to the pool. ``text`` is everything received so far; ``provider``,
    ``attempts`` and ``time_to_first_chunk`` say who answered and how.
    """

    def __init__(
        self,
        source: Iterable[Any],
        *,
        provider: str,
        model: str,
        host: str,
        attempts: int = 1,
        started: Optional[float] = None,
        locate: Optional[Locate] = None,
    ) -> None:
        self._source = source  # an Exchange: the reply's pieces, and its response
        self._chunks: Iterator[str] = iter(source)
        self._locate = locate
        self.provider = provider
        self.model = model
        self.host = host
        self.attempts = attempts
        self.time_to_first_chunk: Optional[float] = None
        self._parts: list[str] = []
        self._started = time.monotonic() if started is None else started
        self._closed = False
        self._ended = False  # the reply reached its end (not closed early)
        self._first: Optional[str] = None

    @property
    def text(self) -> str:
        """Everything received so far, joined."""
        return "".join(self._parts)

    @property
    def response(self) -> Optional[requests.Response]:
        """The HTTP response being read, once its headers are in."""
        return getattr(self._source, "response", None)

    @property
    def closed(self) -> bool:
        return self._closed

    def __iter__(self) -> ChatStream:
        return self

    def __next__(self) -> str:
        if self._first is not None:
            first, self._first = self._first, None
            return first
        if self._closed:
            raise StopIteration
        try:
            chunk = next(self._chunks)
        except StopIteration:
            self._ended = True
            self.close()
            raise
        except ChatProvidersError as exc:
            self.close()
            if self._locate is not None:
                self._locate(exc, self.text)
            raise
        except BaseException:
            self.close()
            raise
        if not self._parts:
            self.time_to_first_chunk = time.monotonic() - self._started
        self._parts.append(chunk)
        return chunk

    def _read_first_chunk(self) -> None:
        """Wait for the first chunk (or the end) and keep it for ``__next__``.

        Failures up to here can still be retried: no text reached the caller.
        """
        for chunk in self:
            self._first = chunk
            break

    def until_done(self) -> ChatResponse:
        """Read the rest of the reply and return the whole of it.

        Raises :class:`IncompleteStreamError`, with the text received, when the
        stream was closed before the reply's end: what is left cannot be read.
        """
        with self:
            for _ in self:
                pass
        if not self._ended:
            raise IncompleteStreamError(
                "the stream was closed before the reply ended",
                partial_text=self.text,
                provider=self.provider,
                host=self.host,
            )
        return ChatResponse(
            text=self.text,
            provider=self.provider,
            model=self.model,
            attempts=self.attempts,
            time_to_first_chunk=self.time_to_first_chunk,
            elapsed=time.monotonic() - self._started,
        )

    def close(self) -> None:
        """Release the HTTP response. Safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        try:
            close_chunks = getattr(self._chunks, "close", None)
            if close_chunks is not None:
                close_chunks()
        finally:
            close_source = getattr(self._source, "close", None)
            if close_source is not None:
                close_source()

    def __del__(self) -> None:
        # A stream dropped unread must still give back its socket.
        if not getattr(self, "_closed", True):
            self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return (
            f"<ChatStream {self.provider} {self.model!r} {state}, "
            f"{len(self._parts)} chunks>"
        )
