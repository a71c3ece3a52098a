"""What a call returns: a :class:`ChatStream` to close, or a :class:`ChatResponse`."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Optional

from ._closing import Closing
from .exceptions import ChatProvidersError, IncompleteStreamError, ResponseFormatError

if TYPE_CHECKING:
    import requests

#: The clock of the figures a reply reports (``time_to_first_chunk``,
#: ``elapsed``, ``Attempt.elapsed``); tests replace it. Deadlines keep
#: ``time.monotonic``.
clock = time.monotonic

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
    ``attempts`` and ``time_to_first_chunk`` say who answered and how; both
    count from the start of the call, so they include retries and, through a
    :class:`FallbackProvider`, the providers that failed before this one.
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
        self._first_at: Optional[float] = None
        self._parts: list[str] = []
        self._started = clock() if started is None else started
        self._closed = False
        self._released = False  # the source is closed (close() may wait on a reader)
        self._ended = False  # the reply reached its end (not closed early)
        self._first: Optional[str] = None

    @property
    def text(self) -> str:
        """Everything received so far, joined."""
        return "".join(self._parts)

    @property
    def time_to_first_chunk(self) -> Optional[float]:
        """Seconds from the start of the call to the first chunk, once it came."""
        return None if self._first_at is None else self._first_at - self._started

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
            self._ended = not self._closed_elsewhere()
            self.close()
            raise
        except ChatProvidersError as exc:
            if self._closed_elsewhere():
                self._release()  # closed from another thread: end quietly
                raise StopIteration from None
            self.close()
            if self._locate is not None:
                self._locate(exc, self.text)
            raise
        except Exception as exc:
            if self._closed_elsewhere():
                self._release()
                raise StopIteration from None
            self.close()  # a decoder's own failure: the reply is not readable,
            error = ResponseFormatError(  # and what came before it is kept
                f"could not read the reply ({type(exc).__name__}: {exc})"[:300]
            )
            if self._locate is not None:
                self._locate(error, self.text)
            raise error from exc
        except BaseException:
            self.close()
            raise
        if self._closed_elsewhere():
            self._parts.append(chunk)  # it arrived: keep it in .text
            self._release()
            raise StopIteration
        if not self._parts:
            self._first_at = clock()
        self._parts.append(chunk)
        return chunk

    def _closed_elsewhere(self) -> bool:
        """True once close() came from another thread while this one read."""
        return self._closed

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
            elapsed=clock() - self._started,
        )

    def close(self) -> None:
        """Release the HTTP response. Safe to call more than once, and from
        any thread: a read in progress elsewhere returns at once, and that
        thread's iteration ends quietly.
        """
        if self._closed:
            return
        self._closed = True
        self._release()

    def _release(self) -> None:
        if self._released:
            return
        try:
            close_chunks = getattr(self._chunks, "close", None)
            if close_chunks is not None:
                close_chunks()
        except ValueError:  # "generator already executing": another thread reads
            abort = getattr(self._source, "abort", None)
            if abort is not None:
                abort()  # its read returns; that thread releases the rest
            return
        self._released = True
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
