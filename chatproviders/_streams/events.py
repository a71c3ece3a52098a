"""What a reply holds besides its text: tool calls, usage, reasoning, and the
events a stream reports them by.

A provider's decoder yields ``str`` for answer text and, for everything else,
one of the :class:`StreamEvent` classes below. The stream keeps the text and
hands each event to a :class:`ReplyState`, which joins them into what the
reply says once it has ended: ``tool_calls``, ``finish_reason``, ``usage``,
``reasoning`` and ``model``.

The result types have the OpenAI SDK's shapes (``call.id``, ``call.type``,
``call.function.name``, ``call.function.arguments``; ``usage.prompt_tokens``,
``usage.completion_tokens``, ``usage.total_tokens``), so code ports over.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Union

__all__ = [
    "FinishReported",
    "Function",
    "ModelReported",
    "Piece",
    "ReasoningDelta",
    "RefusalDelta",
    "ReplyState",
    "StreamEvent",
    "TextDelta",
    "ToolCall",
    "ToolCallDelta",
    "Usage",
    "UsageReported",
    "assistant_message",
]


@dataclass(frozen=True)
class Function:
    """The function a tool call names, and its arguments as a JSON string."""

    name: str
    arguments: str


@dataclass(frozen=True)
class ToolCall:
    """A call the model asks for: run ``function`` and send back a ``tool``
    message with ``tool_call_id=call.id``.
    """

    id: str
    function: Function
    type: str = "function"

    def parse_arguments(self, schema: Any) -> Any:
        """The arguments validated into ``schema`` (a pydantic model class, a
        type pydantic's TypeAdapter takes, or a JSON Schema dict); raises
        :class:`~chatproviders.StructuredOutputError` listing what is wrong.
        """
        from .._structured._tools import parse_arguments

        return parse_arguments(self, schema)

    def to_dict(self) -> dict[str, Any]:
        """The call as OpenAI's JSON puts it, for an assistant message."""
        return {
            "id": self.id,
            "type": self.type,
            "function": {
                "name": self.function.name,
                "arguments": self.function.arguments,
            },
        }


@dataclass(frozen=True)
class Usage:
    """Token counts, as the server reported them."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


def assistant_message(text: str, tool_calls: tuple[ToolCall, ...]) -> dict[str, Any]:
    """The assistant turn to append to the history: its text, its tool calls."""
    if not tool_calls:
        return {"role": "assistant", "content": text}
    return {
        "role": "assistant",
        "content": text or None,
        "tool_calls": [call.to_dict() for call in tool_calls],
    }


# -- events -----------------------------------------------------------------


class StreamEvent:
    """Base class of what a stream reports besides its answer text."""

    __slots__ = ()

    def apply(self, state: ReplyState) -> None:
        """Add this event to ``state``."""
        raise NotImplementedError


@dataclass(frozen=True)
class TextDelta(StreamEvent):
    """A piece of the answer text (only :meth:`ChatStream.events` makes these)."""

    text: str

    def apply(self, state: ReplyState) -> None:
        pass  # the stream keeps the text itself


@dataclass(frozen=True)
class ReasoningDelta(StreamEvent):
    """A piece of the model's reasoning (``reasoning_content`` or ``reasoning``)."""

    text: str

    def apply(self, state: ReplyState) -> None:
        state.reasoning_parts.append(self.text)


@dataclass(frozen=True)
class RefusalDelta(StreamEvent):
    """A piece of the model's refusal to answer (OpenAI's ``refusal`` field)."""

    text: str

    def apply(self, state: ReplyState) -> None:
        state.refusal_parts.append(self.text)


@dataclass(frozen=True)
class ToolCallDelta(StreamEvent):
    """A fragment of tool call number ``index``; any field may be missing.

    ``index`` is None when the server sent none: the fragment then belongs to
    the last call, or opens a new one when it brings a new ``id``.
    """

    index: Optional[int]
    id: Optional[str] = None
    type: Optional[str] = None
    name: Optional[str] = None
    arguments: Optional[str] = None

    def apply(self, state: ReplyState) -> None:
        state.add_tool_call_delta(self)


@dataclass(frozen=True)
class UsageReported(StreamEvent):
    """The token counts, usually in the last chunk (with empty ``choices``)."""

    usage: Usage

    def apply(self, state: ReplyState) -> None:
        state.usage = self.usage


@dataclass(frozen=True)
class FinishReported(StreamEvent):
    """Why the model stopped: ``stop``, ``length``, ``tool_calls``..."""

    reason: str

    def apply(self, state: ReplyState) -> None:
        state.finish_reason = self.reason


@dataclass(frozen=True)
class ModelReported(StreamEvent):
    """The model name the server says answered."""

    model: str

    def apply(self, state: ReplyState) -> None:
        state.model = self.model


#: What a decoder yields: answer text, or an event.
Piece = Union[str, StreamEvent]


# -- accumulation -----------------------------------------------------------


class _PartialCall:
    __slots__ = ("arguments", "id", "name", "type")

    def __init__(self) -> None:
        self.id = ""
        self.type = ""
        self.name = ""
        self.arguments: list[str] = []

    def add(self, delta: ToolCallDelta) -> None:
        # A repeated name equal to the one held is not appended: the
        # llama.cpp server repeats it (and the id) in every fragment of a call.
        if delta.id:
            self.id = delta.id
        if delta.type:
            self.type = delta.type
        if delta.name and delta.name != self.name:
            self.name += delta.name
        if delta.arguments:
            self.arguments.append(delta.arguments)

    def result(self) -> ToolCall:
        function = Function(self.name, "".join(self.arguments))
        return ToolCall(self.id, function, self.type or "function")


class ReplyState:
    """The non-text parts of a reply, joined from its events as they arrive.

    Tool-call fragments are joined by ``index`` as the OpenAI SDK does
    (interleaved parallel calls, the id and name only in the first fragment,
    several fragments of one call in one chunk), except that a new ``id`` at
    an index whose call has a different one opens a new call: Ollama streams
    every parallel call at index 0. The last usage and finish reason
    reported win.
    """

    def __init__(self) -> None:
        self.reasoning_parts: list[str] = []
        self.refusal_parts: list[str] = []
        self.finish_reason: Optional[str] = None
        self.usage: Optional[Usage] = None
        self.model: Optional[str] = None
        # Keyed (index, how many calls that index opened before), so calls
        # sharing an index keep the order they opened in.
        self._calls: dict[tuple[int, int], _PartialCall] = {}
        self._open: dict[int, tuple[int, int]] = {}  # index -> its latest call
        self._last_index = 0

    @property
    def reasoning(self) -> str:
        return "".join(self.reasoning_parts)

    @property
    def refusal(self) -> Optional[str]:
        return "".join(self.refusal_parts) if self.refusal_parts else None

    @property
    def tool_calls(self) -> tuple[ToolCall, ...]:
        """The tool calls so far, in index order (complete once the reply is)."""
        return tuple(self._calls[index].result() for index in sorted(self._calls))

    def add_tool_call_delta(self, delta: ToolCallDelta) -> None:
        # No index: the last call, unless a new id opens one.
        index = self._last_index if delta.index is None else delta.index
        key = self._open.get(index)
        call = None if key is None else self._calls[key]
        if call is None or (delta.id and call.id and delta.id != call.id):
            key = (index, 0 if key is None else key[1] + 1)
            call = self._calls[key] = _PartialCall()
            self._open[index] = key
        call.add(delta)
        self._last_index = index
