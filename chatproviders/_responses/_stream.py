"""What a Responses call returns: a :class:`ResponsesStream` or a reply."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

from .._streams.background import BackgroundStream, background_request
from .._streams.chat_stream import ChatResponse, ChatStream
from .._streams.events import ToolCall
from ._events import ResponsesState, ResponseUsage

__all__ = ["ResponsesBackgroundStream", "ResponsesReply", "ResponsesStream"]


@dataclass(frozen=True)
class ResponsesReply:
    """A whole Responses reply. ``str(reply)`` is its text.

    ``id`` and ``status`` are the server's (``completed`` or ``incomplete``);
    ``text`` joins every ``output_text``; ``output`` holds the output items as
    the server sent them; each of ``tool_calls`` is a
    :class:`~chatproviders.ToolCall` whose ``id`` is the item's ``call_id``,
    to answer with a ``function_call_output`` item; ``reasoning`` is the
    reasoning text (summaries, or the raw text where a server sends that);
    ``finish_reason`` is ``stop``, ``tool_calls``, or ``length`` when the
    reply is incomplete for ``max_output_tokens`` (then ``incomplete_reason``
    says so).
    """

    id: Optional[str]
    status: Optional[str]
    model: str
    text: str
    output: tuple[Any, ...]
    tool_calls: tuple[ToolCall, ...]
    reasoning: str
    usage: Optional[ResponseUsage]
    finish_reason: Optional[str]
    incomplete_reason: Optional[str]
    provider: str
    attempts: int = 1
    time_to_first_chunk: Optional[float] = None
    elapsed: float = 0.0

    def __str__(self) -> str:
        return self.text

    def as_input(self) -> list[dict[str, Any]]:
        """The items that continue the conversation on a server that keeps
        none (one that refuses ``previous_response_id``): send the earlier
        input, these, then the next message or ``function_call_output`` items.

        Messages come as ``{"type": "message", "role": "assistant",
        "content": TEXT}`` (llama.cpp's server reads no other shape), calls as
        ``function_call`` items with their ``call_id``; a reasoning item
        comes only when it carries ``encrypted_content`` (a server cannot
        read one back otherwise).
        """
        items: list[dict[str, Any]] = []
        for item in self.output:
            kind = item.get("type") if isinstance(item, dict) else None
            if kind == "message":
                content = item.get("content")
                text = "".join(
                    part.get("text", "")
                    for part in (content if isinstance(content, list) else ())
                    if isinstance(part, dict) and part.get("type") == "output_text"
                )
                items.append({"type": "message", "role": "assistant", "content": text})
            elif kind == "function_call":
                items.append(
                    {
                        "type": "function_call",
                        "call_id": item.get("call_id"),
                        "name": item.get("name"),
                        "arguments": item.get("arguments"),
                    }
                )
            elif kind == "reasoning" and item.get("encrypted_content"):
                items.append(dict(item))
        if not items and (self.text or self.tool_calls):  # output not sent
            items.append({"type": "message", "role": "assistant", "content": self.text})
            items += [
                {
                    "type": "function_call",
                    "call_id": call.id,
                    "name": call.function.name,
                    "arguments": call.function.arguments,
                }
                for call in self.tool_calls
            ]
        return items


class ResponsesStream(ChatStream):
    """A Responses reply arriving piece by piece: a :class:`ChatStream` (iterate
    it for the text, ``with``, ``close()`` from any thread,
    :meth:`~chatproviders.ChatStream.events`) that also knows the reply's
    ``id``, ``status`` and ``output``, and whose
    :meth:`until_done` returns a :class:`ResponsesReply`.

    :meth:`~chatproviders.ChatStream.events` also yields
    :class:`ResponseReported` (lifecycle events), :class:`OutputItemDone`,
    and a :class:`ResponseEvent` for each event of a
    type this version does not read.
    """

    _state: ResponsesState

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._state = ResponsesState()

    @property
    def id(self) -> Optional[str]:
        """The response's id, once the server sent it."""
        return self._state.id

    @property
    def status(self) -> Optional[str]:
        """The response's last status reported (``in_progress``, ``completed``...)."""
        return self._state.status

    @property
    def output(self) -> tuple[Any, ...]:
        """The output items (complete once the loop has ended)."""
        return self._state.output

    @property
    def incomplete_reason(self) -> Optional[str]:
        """Why an incomplete reply stopped (``max_output_tokens``...), or None."""
        return self._state.incomplete_reason

    def until_done(self) -> ResponsesReply:  # type: ignore[override]
        """Read the rest of the reply and return the whole of it.

        Raises :class:`IncompleteStreamError`, with the text received, when the
        stream was closed before the reply's end.
        """
        return self._reply(super().until_done())

    def _reply(self, chat: ChatResponse) -> ResponsesReply:
        state = self._state
        usage = state.usage
        return ResponsesReply(
            id=state.id,
            status=state.status,
            model=chat.model,
            text=chat.text,
            output=state.output,
            tool_calls=chat.tool_calls,
            reasoning=chat.reasoning,
            usage=usage if isinstance(usage, ResponseUsage) else None,
            finish_reason=chat.finish_reason,
            incomplete_reason=state.incomplete_reason,
            provider=chat.provider,
            attempts=chat.attempts,
            time_to_first_chunk=chat.time_to_first_chunk,
            elapsed=chat.elapsed,
        )

    def __repr__(self) -> str:
        return super().__repr__().replace("<ChatStream", "<ResponsesStream", 1)


class ResponsesBackgroundStream(BackgroundStream):
    """A :class:`BackgroundStream` of a Responses reply's text, whose
    :meth:`response` gives the whole :class:`ResponsesReply` at the end.
    """

    _streams: list[ResponsesStream]

    @classmethod
    def _of_responses(
        cls, send: Callable[..., ResponsesStream], maxsize: int
    ) -> ResponsesBackgroundStream:
        streams: list[ResponsesStream] = []

        def opened(**hooks: Any) -> ResponsesStream:
            stream = send(**hooks)
            streams.append(stream)
            return stream

        stream = background_request(opened, maxsize, cls)
        stream._streams = streams
        return stream

    def response(self, timeout: Optional[float] = None) -> ResponsesReply:
        """Wait for the end (as :meth:`~chatproviders.BackgroundStream.result`)
        and return the whole reply.
        """
        self.result(timeout)
        if not self._streams:
            raise RuntimeError("the stream was closed before its request was sent")
        return self._streams[-1].until_done()
