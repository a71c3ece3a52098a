"""The Responses API's reply, from bytes: typed server-sent events, or one object.

A streamed reply is server-sent events whose JSON ``type`` names them::

    data: {"type": "response.created", "response": {"id": "resp_1", ...}}
    data: {"type": "response.output_item.added", "output_index": 0, "item": {...}}
    data: {"type": "response.output_text.delta", "item_id": "msg_1", "delta": "Hel"}
    data: {"type": "response.completed", "response": {..., "usage": {...}}}

:func:`iter_response_events` yields ``str`` for output text and an event for
the rest, as the chat decoders do: :class:`~chatproviders.ReasoningDelta`
(summary or raw reasoning text), :class:`~chatproviders.ToolCallDelta`
(``function_call`` items; the id is the item's ``call_id``),
:class:`~chatproviders.UsageReported`, :class:`~chatproviders.FinishReported`,
:class:`~chatproviders.ModelReported`, and two of its own:
:class:`ResponseReported` (the response object of a lifecycle event) and
:class:`OutputItemDone` (a finished output item). An event type this module
does not know comes out as a :class:`ResponseEvent`, never an error.

Servers differ: llama.cpp's server sends no ``output_index``,
``content_index`` or ``sequence_number``, so items are told apart by their
``item_id`` and numbered in the order they were added; a server that sends
only the ``.done`` events (the whole text, the whole arguments) is read from
those. ``response.completed`` or ``response.incomplete`` ends the reply;
``response.failed`` and ``error`` raise the matching :class:`APIError`
subclass, after the text before them; a stream that stops before its end
raises :class:`IncompleteStreamError`. A body that opens with ``{`` is a whole
response object (``"stream": false``), read into the same events.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NoReturn, Optional

from .._constants import ERROR_BODY_EXCERPT
from .._streams.events import (
    FinishReported,
    ModelReported,
    Piece,
    ReasoningDelta,
    ReplyState,
    StreamEvent,
    ToolCallDelta,
    Usage,
    UsageReported,
)
from .._streams.openai_chunks import _json_object, one_json_object
from .._wire.transport import error_class_for_status
from ..decoders import SSEDecoder
from ..exceptions import (
    APIError,
    IncompleteStreamError,
    ResponseFormatError,
)

__all__ = [
    "OutputItemDone",
    "ResponseEvent",
    "ResponseReported",
    "ResponseUsage",
    "failure",
    "iter_response_events",
]


@dataclass(frozen=True)
class ResponseUsage(Usage):
    """Token counts of a Responses reply: ``input_tokens`` and
    ``output_tokens`` (also under the chat names ``prompt_tokens`` and
    ``completion_tokens``), ``total_tokens``, and ``reasoning_tokens`` when
    the server says (None when not).
    """

    reasoning_tokens: Optional[int] = None

    @property
    def input_tokens(self) -> int:
        return self.prompt_tokens

    @property
    def output_tokens(self) -> int:
        return self.completion_tokens


@dataclass(frozen=True)
class ResponseEvent(StreamEvent):
    """An event of a type not read here, as the server sent it: ``type`` and
    the whole JSON object ``data``. Servers add types; they never break a stream.
    """

    type: str
    data: dict[str, Any]

    def apply(self, state: ReplyState) -> None:
        pass


@dataclass(frozen=True)
class ResponseReported(StreamEvent):
    """The response object of a lifecycle event (``response.created``,
    ``response.in_progress``, ``response.completed``, ``response.incomplete``):
    its id, status and, at the end, its output and usage.
    """

    response: dict[str, Any]

    def apply(self, state: ReplyState) -> None:
        if isinstance(state, ResponsesState):
            state.add_response(self.response)


@dataclass(frozen=True)
class OutputItemDone(StreamEvent):
    """An output item the server has finished, at position ``index``."""

    index: int
    item: dict[str, Any]

    def apply(self, state: ReplyState) -> None:
        if isinstance(state, ResponsesState):
            state.items[self.index] = self.item


class ResponsesState(ReplyState):
    """A chat reply's state, and what only a Responses reply has: the id,
    the status, the output items and why an incomplete reply stopped.
    """

    def __init__(self) -> None:
        super().__init__()
        self.id: Optional[str] = None
        self.status: Optional[str] = None
        self.incomplete_reason: Optional[str] = None
        self.items: dict[int, dict[str, Any]] = {}
        self.final_output: Optional[list[Any]] = None

    def add_response(self, response: dict[str, Any]) -> None:
        if isinstance(response.get("id"), str):
            self.id = response["id"]
        if isinstance(response.get("status"), str):
            self.status = response["status"]
        details = response.get("incomplete_details")
        if isinstance(details, dict) and details.get("reason") is not None:
            self.incomplete_reason = str(details["reason"])
        output = response.get("output")
        if isinstance(output, list) and (output or self.status != "in_progress"):
            self.final_output = output

    @property
    def output(self) -> tuple[Any, ...]:
        """The final response's output items; else the finished items in order."""
        if self.final_output:
            return tuple(self.final_output)
        return tuple(self.items[index] for index in sorted(self.items))


#: ``code`` of an ``error`` or ``response.failed`` event -> the HTTP status
#: it stands for, and so the class raised.
_ERROR_STATUSES: dict[str, int] = {
    "rate_limit_exceeded": 429,
    "insufficient_quota": 429,
    "server_error": 500,
    "internal_error": 500,
    "vector_store_timeout": 500,
    "invalid_api_key": 401,
    "authentication_error": 401,
    "permission_denied": 401,
}


def failure(error: Any, what: str) -> APIError:
    """The error to raise for an ``error`` value: its class by ``code`` (or
    ``type``), the server's message and code in it. A status error's
    ``status_code`` is the status its class stands for (500 for
    ``server_error``...), though the HTTP reply said 200.
    """
    if not isinstance(error, dict):
        error = {"message": str(error)}
    code = error.get("code") or error.get("type")
    code = None if code is None else str(code)
    message = str(error.get("message") or code or "no message")[:300]
    status = _ERROR_STATUSES.get(code or "")
    if status is None and code and code.startswith(("invalid", "context_length")):
        status = 400
    text = f"{what} ({code}): {message}" if code else f"{what}: {message}"
    if status is None:
        return APIError(text, code=code)
    # The reply's status was 200; the error's is the one its class stands
    # for, so that retries and fallback treat it as they would that reply.
    body = json.dumps(error)[:ERROR_BODY_EXCERPT]
    cls = error_class_for_status(status)
    return cls(text, code=code, body=body, status_code=status)


class _Items:
    """Output items by ``item_id`` and position: what each has streamed so far."""

    __slots__ = ("by_id", "count", "done", "streamed")

    def __init__(self) -> None:
        self.by_id: dict[str, int] = {}
        self.count = 0
        self.done: set[int] = set()  # items whose output_item.done was read
        # (index, "text"|"reasoning"|"arguments"|"call"): some of it came in
        # events; (index, "text"|"reasoning", part...): that part did, or
        # "whole": the finished item was read whole
        self.streamed: set[tuple[Any, ...]] = set()

    def index(self, data: dict[str, Any], added: bool = False) -> int:
        """The item's position: ``output_index`` when sent, else by ``item_id``
        (or the item's ``id``), numbering items in the order they were added.
        An id not seen before is a new item (a server may send only ``.done``
        events), unless the last item came without an id: then it names that one.
        An event with neither belongs to the last item.
        """
        item = data.get("item")
        key = data.get("item_id")
        if key is None and isinstance(item, dict):
            key = item.get("id")
        if key is not None and type(key) is not str:
            _malformed("an event whose item id is not a string", data)
        position = data.get("output_index")
        if type(position) is not int or position < 0:
            position = self.by_id.get(key) if key is not None else None
            if position is None:
                last = self.count - 1
                named = key is not None and last in self.by_id.values()
                position = self.count if added or named or last < 0 else last
        if key is not None:
            self.by_id.setdefault(key, position)
        self.count = max(self.count, position + 1)
        return position


def iter_response_events(chunks: Iterable[bytes]) -> Iterator[Piece]:
    """Text and events of a Responses reply: events, or one response object."""
    whole, body = one_json_object(chunks)
    if whole is None:
        yield from _stream(body)
    else:
        yield from _whole(whole)


def _stream(chunks: Iterable[bytes]) -> Iterator[Piece]:
    decoder = SSEDecoder()
    items = _Items()
    text_item: Any = object()  # the item and part of the last text delta
    text_part: Any = None
    model: Optional[str] = None
    loads = json.JSONDecoder().raw_decode
    for chunk in chunks:
        for event in decoder.feed(chunk):
            data_text = event.data
            if data_text == "[DONE]":
                raise IncompleteStreamError(
                    "the stream ended before response.completed"
                )
            try:
                data, end = loads(data_text)
            except ValueError:
                end = -1
            if end != len(data_text) or type(data) is not dict:
                data = _json_object(data_text, "an event")
            kind = data.get("type")
            if kind is None:
                kind = event.event
            elif type(kind) is not str:
                _malformed("an event whose type is not a string", data)
            if kind == "response.output_text.delta":
                delta = data.get("delta")
                if type(delta) is not str:
                    _malformed("an output_text delta", data)
                key, part = data.get("item_id"), data.get("content_index")
                if key != text_item or part != text_part:
                    text_item, text_part = key, part
                    items.streamed.update(_part(items.index(data), "text", data))
                if delta:
                    yield delta
                continue
            handler = _HANDLERS.get(kind)
            if handler is None:
                yield ResponseEvent(str(kind), data)
                continue
            response = data.get("response")
            if isinstance(response, dict):
                reported = response.get("model")
                if reported and type(reported) is str and reported != model:
                    model = reported
                    yield ModelReported(reported)
            yield from handler(data, items)
            if kind in _ENDS:
                return
    decoder.flush()
    raise IncompleteStreamError("the stream ended before response.completed")


def _lifecycle(data: dict[str, Any], items: _Items) -> Iterator[Piece]:
    response = data.get("response")
    if not isinstance(response, dict):
        _malformed(f"a {data.get('type')} event without a response", data)
    yield ResponseReported(response)


def _end(data: dict[str, Any], items: _Items) -> Iterator[Piece]:
    response = data.get("response")
    if not isinstance(response, dict):
        _malformed(f"a {data.get('type')} event without a response", data)
    yield from _unannounced(response, data, items)
    yield from _finish(response, data.get("type") == "response.incomplete")


def _unannounced(
    response: dict[str, Any], data: dict[str, Any], items: _Items
) -> Iterator[Piece]:
    """The final output's items, when no item event came at all (a server that
    sends only the lifecycle events): read whole, as the OpenAI SDK reads
    them. After any item event, the events are the reply: a server whose
    final ids differ from its events' must not have its text read twice.
    """
    output = response.get("output")
    if items.count or items.streamed or not isinstance(output, list):
        return
    for index, item in enumerate(output):
        if isinstance(item, dict):
            yield from _item_pieces(index, item, data, items)


def _finish(response: dict[str, Any], incomplete: bool) -> Iterator[Piece]:
    yield ResponseReported(response)
    if response.get("usage") is not None:
        yield UsageReported(_usage(response))
    if incomplete or response.get("status") == "incomplete":
        details = response.get("incomplete_details")
        reason = details.get("reason") if isinstance(details, dict) else None
        yield FinishReported(
            "length" if reason in (None, "max_output_tokens") else str(reason)
        )
        return
    output = response.get("output")
    calls = isinstance(output, list) and any(
        isinstance(item, dict) and item.get("type") == "function_call"
        for item in output
    )
    yield FinishReported("tool_calls" if calls else "stop")


def _failed(data: dict[str, Any], items: _Items) -> Iterator[Piece]:
    response = data.get("response")
    error = response.get("error") if isinstance(response, dict) else None
    raise failure(error or {"message": "the response failed"}, "the response failed")


def _error(data: dict[str, Any], items: _Items) -> Iterator[Piece]:
    error = data.get("error")
    if not isinstance(error, dict):  # the usual shape: the fields in the event
        error = {key: value for key, value in data.items() if key != "type"}
    raise failure(error, "reported an error in the stream")


def _item_added(data: dict[str, Any], items: _Items) -> Iterator[Piece]:
    item = data.get("item")
    index = items.index(data, added=True)
    if isinstance(item, dict) and item.get("type") == "function_call":
        items.streamed.add((index, "call"))
        yield _call_delta(index, item, data)
        if item.get("arguments"):
            items.streamed.add((index, "arguments"))


def _item_done(data: dict[str, Any], items: _Items) -> Iterator[Piece]:
    item = data.get("item")
    if not isinstance(item, dict):
        _malformed("an output_item.done event without an item", data)
    # an item seen before keeps its place; one that names none is the last
    # item, unless that one is done already (a server sending .done alone)
    fresh = items.count == 0 or items.count - 1 in items.done
    index = items.index(data, added=fresh)
    items.done.add(index)
    yield from _item_pieces(index, item, data, items)
    yield OutputItemDone(index, item)


def _item_pieces(
    index: int, item: dict[str, Any], data: dict[str, Any], items: _Items
) -> Iterator[Piece]:
    """What a whole output item holds that its events did not stream."""
    kind = item.get("type")
    if kind == "function_call":
        if (index, "call") not in items.streamed:
            yield _call_delta(index, {**item, "arguments": None}, data)
        if (index, "arguments") not in items.streamed:
            items.streamed.add((index, "arguments"))
            yield _call_delta(index, {"arguments": item.get("arguments")}, data)
    elif kind == "message" and (index, "text") not in items.streamed:
        items.streamed.update(((index, "text"), (index, "text", "whole")))
        text = "".join(_texts(item.get("content"), "output_text"))
        if text:
            yield text
    elif kind == "reasoning" and (index, "reasoning") not in items.streamed:
        items.streamed.update(((index, "reasoning"), (index, "reasoning", "whole")))
        text = "".join(_reasoning_texts(item))
        if text:
            yield ReasoningDelta(text)


def _part(
    index: int, kind: str, data: dict[str, Any]
) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """The keys a text or reasoning event marks as read: its item's, and its
    part's (by ``summary_index`` and ``content_index``, when sent)."""
    numbers = (data.get("summary_index"), data.get("content_index"))
    if not all(number is None or type(number) is int for number in numbers):
        _malformed("an event whose part index is not a number", data)
    return (index, kind), (index, kind, *numbers)


def _fresh(index: int, kind: str, data: dict[str, Any], items: _Items) -> bool:
    """Whether a ``.done`` event's whole text is new: its part was not
    streamed, nor its item read whole. Marks it read. Without part indexes,
    any text of its item is its own; deltas without them cover every part.
    """
    item, part = _part(index, kind, data)
    if part[2:] == (None, None):
        seen = item in items.streamed
    else:
        seen = part in items.streamed or (index, kind, None, None) in items.streamed
    if seen or (index, kind, "whole") in items.streamed:
        return False
    items.streamed.update((item, part))
    return True


def _text_done(data: dict[str, Any], items: _Items) -> Iterator[Piece]:
    index = items.index(data)
    text = data.get("text")
    if isinstance(text, str) and _fresh(index, "text", data, items) and text:
        yield text


def _arguments_delta(data: dict[str, Any], items: _Items) -> Iterator[Piece]:
    index = items.index(data)
    items.streamed.add((index, "arguments"))
    delta = data.get("delta")
    if type(delta) is not str:
        _malformed("a function_call_arguments delta", data)
    yield ToolCallDelta(index, arguments=delta)


def _arguments_done(data: dict[str, Any], items: _Items) -> Iterator[Piece]:
    index = items.index(data)
    arguments = data.get("arguments")
    if (index, "arguments") not in items.streamed and isinstance(arguments, str):
        items.streamed.add((index, "arguments"))
        yield ToolCallDelta(index, arguments=arguments)


def _reasoning_delta(data: dict[str, Any], items: _Items) -> Iterator[Piece]:
    items.streamed.update(_part(items.index(data), "reasoning", data))
    delta = data.get("delta")
    if type(delta) is not str:
        _malformed("a reasoning delta", data)
    if delta:
        yield ReasoningDelta(delta)


def _reasoning_done(data: dict[str, Any], items: _Items) -> Iterator[Piece]:
    index = items.index(data)
    text = data.get("text")
    if isinstance(text, str) and text and _fresh(index, "reasoning", data, items):
        yield ReasoningDelta(text)


def _nothing(data: dict[str, Any], items: _Items) -> Iterator[Piece]:
    return iter(())


_HANDLERS = {
    "response.created": _lifecycle,
    "response.queued": _lifecycle,
    "response.in_progress": _lifecycle,
    "response.completed": _end,
    "response.incomplete": _end,
    "response.failed": _failed,
    "error": _error,
    "response.output_item.added": _item_added,
    "response.output_item.done": _item_done,
    "response.content_part.added": _nothing,
    "response.content_part.done": _nothing,
    "response.output_text.done": _text_done,
    "response.function_call_arguments.delta": _arguments_delta,
    "response.function_call_arguments.done": _arguments_done,
    "response.reasoning_summary_part.added": _nothing,
    "response.reasoning_summary_part.done": _nothing,
    "response.reasoning_summary_text.delta": _reasoning_delta,
    "response.reasoning_summary_text.done": _reasoning_done,
    "response.reasoning_text.delta": _reasoning_delta,
    "response.reasoning_text.done": _reasoning_done,
}
_ENDS = frozenset({"response.completed", "response.incomplete"})


def _whole(response: dict[str, Any]) -> Iterator[Piece]:
    """The pieces of a whole response object (a reply to ``"stream": false``)."""
    if response.get("error"):
        raise failure(response["error"], "the response failed")
    if response.get("status") == "failed":
        raise failure({"message": "the response failed"}, "the response failed")
    output = response.get("output")
    if not isinstance(output, list):
        _malformed("a reply without output", response)
    model = response.get("model")
    if model and isinstance(model, str):
        yield ModelReported(model)
    for index, item in enumerate(output):
        if not isinstance(item, dict):
            _malformed("an output item that is not an object", response)
        kind = item.get("type")
        if kind == "reasoning":
            text = "".join(_reasoning_texts(item))
            if text:
                yield ReasoningDelta(text)
        elif kind == "message":
            text = "".join(_texts(item.get("content"), "output_text"))
            if text:
                yield text
        elif kind == "function_call":
            yield _call_delta(index, item, response)
    yield from _finish(response, False)


def _call_delta(
    index: int, item: dict[str, Any], data: dict[str, Any]
) -> ToolCallDelta:
    fields = [item.get(key) for key in ("call_id", "name", "arguments")]
    if not all(value is None or isinstance(value, str) for value in fields):
        _malformed("a malformed function_call item", data)
    call_id, name, arguments = fields
    return ToolCallDelta(index, call_id, "function", name, arguments or None)


def _texts(content: Any, kind: str) -> Iterator[str]:
    for part in content if isinstance(content, list) else ():
        if isinstance(part, dict) and part.get("type") == kind:
            text = part.get("text")
            if isinstance(text, str):
                yield text


def _reasoning_texts(item: dict[str, Any]) -> Iterator[str]:
    yield from _texts(item.get("summary"), "summary_text")
    yield from _texts(item.get("content"), "reasoning_text")


def _usage(response: dict[str, Any]) -> ResponseUsage:
    usage = response["usage"]
    if not isinstance(usage, dict):
        _malformed("a malformed usage", response)
    counts = [
        usage.get(key) for key in ("input_tokens", "output_tokens", "total_tokens")
    ]
    details = usage.get("output_tokens_details")
    reasoning = details.get("reasoning_tokens") if isinstance(details, dict) else None
    if not all(
        count is None or (type(count) is int and count >= 0)
        for count in (*counts, reasoning)
    ):
        _malformed("a malformed usage", response)
    given, made, total = (count or 0 for count in counts)
    if counts[2] is None:
        total = given + made
    return ResponseUsage(given, made, total, reasoning)


def _malformed(what: str, data: dict[str, Any]) -> NoReturn:
    text = json.dumps(data)
    raise ResponseFormatError(
        f"sent {what}: {text[:200]}", body=text[:ERROR_BODY_EXCERPT]
    )
