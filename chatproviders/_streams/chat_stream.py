"""What a call returns: a :class:`ChatStream` to close, or a :class:`ChatResponse`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Optional, Protocol

from ..exceptions import ChatProvidersError, IncompleteStreamError, ResponseFormatError
from .closing import Closing
from .events import (
    Piece,
    ReasoningDelta,
    RefusalDelta,
    ReplyState,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
    assistant_message,
)

if TYPE_CHECKING:
    import requests

#: The clock of the figures a reply reports (``time_to_first_chunk``,
#: ``elapsed``, ``Attempt.elapsed``); tests replace it. Deadlines keep
#: ``time.monotonic``.
clock = time.monotonic

#: Gives an error its context (provider, host, partial text); see Provider.locate.
Locate = Callable[[ChatProvidersError, str], ChatProvidersError]

__all__ = [
    "ChatResponse",
    "ChatStream",
    "ReplySource",
    "reached_end",
    "read_first_chunk",
    "when_ended",
]


class ReplySource(Protocol):
    """What a :class:`ChatStream` reads from (an ``Exchange`` is one): the
    reply's pieces (``str`` text and stream events), in order, once; and
    ``close()``, which releases what it holds from any state. A source may also
    have ``abort()`` (make a read blocked in another thread return at once)
    and ``response`` (the HTTP response, once its headers are in); the stream
    uses them when it has.
    """

    def __iter__(self) -> Iterator[Piece]: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class ChatResponse:
    """A whole reply. ``str(reply)`` is its text.

    ``model`` is the name the server reported, else the one requested.
    ``tool_calls`` are the calls the model asks for (empty when none),
    ``finish_reason`` why it stopped, ``usage`` the token counts (None when
    the server sent none), ``reasoning`` the text of its reasoning deltas,
    ``refusal`` the model's refusal to answer (None when it did not refuse).
    """

    text: str
    provider: str
    model: str
    attempts: int = 1
    time_to_first_chunk: Optional[float] = None
    elapsed: float = 0.0
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: Optional[str] = None
    usage: Optional[Usage] = None
    reasoning: str = ""
    refusal: Optional[str] = None

    def __str__(self) -> str:
        return self.text

    def as_message(self) -> dict[str, Any]:
        """This reply as the assistant message to append to the history."""
        return assistant_message(self.text, self.tool_calls)


class ChatStream(Closing):
    """A reply arriving piece by piece: iterate it for ``str`` chunks, then close it.

    Use it in a ``with`` block. Leaving the block, ``close()``, reaching the end,
    ``break``-ing out of the ``with`` block, an error, or garbage collection
    closes the HTTP response; a response read to its end returns its connection
    to the pool. ``text`` is everything received so far; ``provider``,
    ``attempts`` and ``time_to_first_chunk`` say who answered and how; both
    count from the start of the call, so they include retries and, through a
    :class:`FallbackProvider`, the providers that failed before this one.

    Iterating yields the answer text only. Once the loop has ended,
    ``tool_calls``, ``finish_reason``, ``usage``, ``reasoning`` and ``model``
    (as the server reported it) are complete; :meth:`events` shows every
    delta live instead.
    """

    def __init__(
        self,
        source: ReplySource,
        *,
        provider: str,
        model: str,
        host: str,
        attempts: int = 1,
        started: Optional[float] = None,
        locate: Optional[Locate] = None,
    ) -> None:
        self._source = source  # an Exchange: the reply's pieces, and its response
        self._chunks: Iterator[Piece] = iter(source)
        self._locate = locate
        self.provider = provider
        self.requested_model = model
        self.host = host
        self.attempts = attempts
        self._first_at: Optional[float] = None
        self._parts: list[str] = []
        self._started = clock() if started is None else started
        self._closed = False
        self._released = False  # the source is closed (close() may wait on a reader)
        self._ended = False  # the reply reached its end (not closed early)
        self._state = ReplyState()
        self._pending: list[Piece] = []  # read ahead, not yet handed out
        #: The validated value, once a stream opened with ``schema=`` has ended.
        self.parsed: Any = None
        self._on_end: Optional[Callable[[ChatStream], None]] = None

    @property
    def text(self) -> str:
        """Everything received so far, joined."""
        return "".join(self._parts)

    @property
    def model(self) -> str:
        """The model the server reported, else the one requested."""
        return self._state.model or self.requested_model

    @property
    def tool_calls(self) -> tuple[ToolCall, ...]:
        """The tool calls the model asks for (complete once the loop has ended)."""
        return self._state.tool_calls

    @property
    def finish_reason(self) -> Optional[str]:
        """Why the model stopped, as the server said; None until it says."""
        return self._state.finish_reason

    @property
    def usage(self) -> Optional[Usage]:
        """The token counts; None when the server sent none (so far)."""
        return self._state.usage

    @property
    def reasoning(self) -> str:
        """The text of the reasoning deltas received so far, joined."""
        return self._state.reasoning

    @property
    def refusal(self) -> Optional[str]:
        """The model's refusal to answer, as received so far; None if none."""
        return self._state.refusal

    def as_message(self) -> dict[str, Any]:
        """The reply so far as the assistant message to append to the history."""
        return assistant_message(self.text, self.tool_calls)

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
        while self._pending:
            item = self._pending.pop(0)
            if type(item) is str:
                return item
        while True:
            item = self._pull()
            if type(item) is str:
                return item

    def events(self) -> Iterator[StreamEvent]:
        """Every delta as it arrives: :class:`TextDelta`, :class:`ReasoningDelta`,
        :class:`ToolCallDelta`, :class:`UsageReported`, :class:`FinishReported`
        and :class:`ModelReported` events.

        It reads the same reply as iterating the stream: each delta is handed
        out once, to whichever asks first, so use one or the other (a loop over
        ``events()`` after some plain iteration gets the rest). Either way,
        ``text``, ``tool_calls``, ``usage`` and the rest see every delta.
        """
        while True:
            if self._pending:
                item = self._pending.pop(0)
            else:
                try:
                    item = self._pull()
                except StopIteration:
                    return
            yield TextDelta(item) if isinstance(item, str) else item

    def _pull(self) -> Piece:
        """The next text or event, kept in the stream's state; StopIteration at
        the end. The one place the reply's errors get their context.
        """
        if self._closed:
            self._run_on_end()
            raise StopIteration
        try:
            item = next(self._chunks)
        except StopIteration:
            self._ended = not self._closed_elsewhere()
            self.close()
            self._run_on_end()
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
        if type(item) is not str:
            text = self._absorb(item)
            if text is None:
                return item
            item = text
        if self._closed_elsewhere():
            self._parts.append(item)  # it arrived: keep it in .text
            self._release()
            raise StopIteration
        if not self._parts:
            self._first_at = clock()
        self._parts.append(item)
        return item

    def _run_on_end(self) -> None:
        """Once the reply has ended, call the hook a stream opened with
        ``schema=`` has (it sets ``parsed``, or raises after the text); once.
        """
        on_end, self._on_end = self._on_end, None
        if on_end is not None and self._ended:
            on_end(self)

    def _absorb(self, item: object) -> Optional[str]:
        """Apply an event to the state; a ``str`` subclass comes back as text."""
        if isinstance(item, StreamEvent):
            item.apply(self._state)
            return None
        if isinstance(item, str):
            return str(item)
        self.close()  # a provider's bug, not the server's: no error of ours
        raise TypeError(
            f"{self.provider}.iter_text yielded {type(item).__name__}, "
            "not str or a StreamEvent"
        )

    def _closed_elsewhere(self) -> bool:
        """True once close() came from another thread while this one read."""
        return self._closed

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
            tool_calls=self.tool_calls,
            finish_reason=self.finish_reason,
            usage=self.usage,
            reasoning=self.reasoning,
            refusal=self.refusal,
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


def when_ended(stream: ChatStream, callback: Callable[[ChatStream], None]) -> None:
    """Have ``callback(stream)`` run once ``stream`` has read the reply to its
    end (not when it is closed early): where a stream opened with a schema
    validates what it read.
    """
    stream._on_end = callback


def reached_end(stream: ChatStream) -> bool:
    """True once ``stream`` has read the reply to its end, False while it
    reads and when it was closed early."""
    return stream._ended


def read_first_chunk(stream: ChatStream) -> None:
    """Read ``stream`` up to its first text, reasoning or tool-call delta (or
    its end), keeping what was read for its reader: a client does this before
    it hands a stream out, since failures up to here can still be retried
    (nothing reached the caller).
    """
    while True:
        try:
            item = stream._pull()
        except StopIteration:
            return
        stream._pending.append(item)
        if type(item) is str or isinstance(
            item, (ReasoningDelta, RefusalDelta, ToolCallDelta)
        ):
            return
