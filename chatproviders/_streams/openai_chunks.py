"""OpenAI-style chat replies: ``chat.completion.chunk`` events, or one JSON object.

CodeLinkAva and every OpenAI-compatible server stream the same events::

    data: {"choices": [{"delta": {"content": "Hel"}}], ...}
    data: [DONE]

and an OpenAI-compatible server asked for ``"stream": false`` sends one
``chat.completion`` object whose text is ``choices[0].message.content``.
Both are read from plain bytes here, with no HTTP library.

:func:`iter_chat_events` and :func:`iter_chat_reply_events` yield ``str`` for
answer text and an event (see :mod:`chatproviders._streams.events`) for the rest:
reasoning (``reasoning_content``, or ``reasoning`` as Ollama and OpenRouter
name it), tool-call fragments, the finish reason, usage (also from a last
chunk whose ``choices`` is empty) and the model the server names. Explicit
``null`` values count as absent; a legacy ``function_call`` is not read.
:func:`iter_chat_chunks` and :func:`iter_chat_reply` yield the text only.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from itertools import chain
from typing import Any, NoReturn, Optional

from .._constants import ERROR_BODY_EXCERPT
from ..decoders import iter_sse
from ..exceptions import APIError, IncompleteStreamError, ResponseFormatError
from .events import (
    FinishReported,
    ModelReported,
    Piece,
    ReasoningDelta,
    RefusalDelta,
    ToolCallDelta,
    Usage,
    UsageReported,
)

__all__ = [
    "error_text",
    "iter_chat_chunks",
    "iter_chat_events",
    "iter_chat_reply",
    "iter_chat_reply_events",
    "one_json_object",
]


def iter_chat_events(chunks: Iterable[bytes]) -> Iterator[Piece]:
    """Text and events of OpenAI-style ``chat.completion.chunk`` events, up to
    ``[DONE]``.
    """
    model: Any = None
    for event in iter_sse(chunks):
        if event.data == "[DONE]":
            return
        data = _json_object(event.data, "an event")
        if "error" in data:
            raise APIError(
                f"reported an error in the stream: {error_text(data['error'])}"
            )
        reported = data.get("model")
        if reported != model and reported and type(reported) is str:
            model = reported
            yield ModelReported(reported)
        choices = data.get("choices")
        if choices:
            try:
                choice = choices[0]
                delta = choice["delta"]
                content = delta.get("content")
            except (KeyError, TypeError, IndexError, AttributeError):
                yield from _choice_pieces(data, "delta")
            else:
                # The usual chunk, a delta of text alone, takes the short way.
                if (
                    type(content) is str
                    and len(delta) == 1
                    and choice.get("finish_reason") is None
                ):
                    if content:
                        yield content
                else:
                    yield from _choice_pieces(data, "delta")
        if data.get("usage") is not None:
            yield UsageReported(_usage(data))
    raise IncompleteStreamError("the stream ended before data: [DONE]")


def one_json_object(
    chunks: Iterable[bytes],
) -> tuple[Optional[dict[str, Any]], Iterator[bytes]]:
    """A body that is one JSON object (its first non-blank byte is ``{``),
    read whole, or None; and the body's chunks, none lost, to read as events.
    """
    pieces = iter(chunks)
    head = b""
    for piece in pieces:
        head += piece
        if head.strip():
            break
    body = chain([head], pieces)
    if not head.lstrip().startswith(b"{"):
        return None, body
    text = b"".join(body).decode("utf-8", errors="replace")
    return _json_object(text, "a reply"), iter(())


def iter_chat_reply_events(chunks: Iterable[bytes]) -> Iterator[Piece]:
    """Chunk events, or the text and events of a whole ``chat.completion`` object.

    Which one is decided by the body's first non-blank byte: ``{`` opens a JSON
    object, anything else is read as server-sent events. So a server that
    answers a streamed request with one JSON object still works.
    """
    whole, body = one_json_object(chunks)
    if whole is None:
        yield from iter_chat_events(body)
        return
    data = whole
    if "error" in data:
        raise APIError(f"reported an error: {error_text(data['error'])}")
    if not data.get("choices"):
        raise ResponseFormatError(
            f"sent a reply without choices: {json.dumps(data)[:200]}",
            body=json.dumps(data)[:ERROR_BODY_EXCERPT],
        )
    model = data.get("model")
    if model and isinstance(model, str):
        yield ModelReported(model)
    yield from _choice_pieces(data, "message")
    if data.get("usage") is not None:
        yield UsageReported(_usage(data))


def iter_chat_chunks(chunks: Iterable[bytes]) -> Iterator[str]:
    """The text of OpenAI-style ``chat.completion.chunk`` events, up to ``[DONE]``."""
    for piece in iter_chat_events(chunks):
        if type(piece) is str:
            yield piece


def iter_chat_reply(chunks: Iterable[bytes]) -> Iterator[str]:
    """The text of chunk events or of one ``chat.completion`` object."""
    for piece in iter_chat_reply_events(chunks):
        if type(piece) is str:
            yield piece


def error_text(error: Any) -> str:
    """The message of an ``{"error": ...}`` value: its message, else its code."""
    if isinstance(error, dict):
        return str(error.get("message") or error.get("code") or error)[:300]
    return str(error)[:300]


_raw_decode = json.JSONDecoder().raw_decode


def _loads(text: str) -> Any:
    """``json.loads``, faster when nothing surrounds the value (the usual case)."""
    try:
        data, end = _raw_decode(text)
    except ValueError:
        end = -1
    return data if end == len(text) else json.loads(text)


def _json_object(text: str, what: str) -> dict[str, Any]:
    try:
        data = _loads(text)
    except (ValueError, RecursionError):  # RecursionError: nested too deep
        raise ResponseFormatError(
            f"sent {what} that is not JSON: {text[:200]!r}",
            body=text[:ERROR_BODY_EXCERPT],
        ) from None
    if not isinstance(data, dict):
        raise ResponseFormatError(
            f"sent {what} that is not a JSON object: {text[:200]!r}",
            body=text[:ERROR_BODY_EXCERPT],
        )
    return data


def _choice_pieces(data: dict[str, Any], key: str) -> Iterator[Piece]:
    """Everything in ``choices[0][key]`` (``delta`` or ``message``): reasoning,
    text, tool calls, then the choice's finish reason.
    """
    what = "a chunk" if key == "delta" else "a reply"
    choices = data["choices"]
    choice = choices[0] if isinstance(choices, list) else None
    delta = choice.get(key) if isinstance(choice, dict) else None
    if not isinstance(delta, dict):
        if not isinstance(choice, dict) or choice.get(key, False) is not None:
            _format_error(f"sent {what} without choices[0].{key}", data)
        delta = {}  # "delta": null, as an empty one
    reasoning = delta.get("reasoning_content") or delta.get("reasoning")
    if reasoning and isinstance(reasoning, str):
        yield ReasoningDelta(reasoning)
    content = delta.get("content")
    if content is not None:
        if not isinstance(content, str):
            raise ResponseFormatError(f"sent non-text content: {content!r}"[:200])
        if content:
            yield content
    refusal = delta.get("refusal")
    if refusal and isinstance(refusal, str):
        yield RefusalDelta(refusal)
    calls = delta.get("tool_calls")
    if calls:
        if not isinstance(calls, list):
            _format_error(f"sent {what} whose tool_calls is not a list", data)
        for position, call in enumerate(calls):
            yield _tool_call_delta(call, position if key == "message" else None, data)
    reason = choice.get("finish_reason") if isinstance(choice, dict) else None
    if reason is not None:
        yield FinishReported(str(reason))


def _tool_call_delta(
    call: Any, position: Optional[int], data: dict[str, Any]
) -> ToolCallDelta:
    """One entry of ``tool_calls``; ``position``, a whole reply's place in its
    list, is the index (its ``index`` fields may all say 0, as Ollama's do).
    """
    function = call.get("function") if isinstance(call, dict) else None
    if function is None:
        function = {}
    index: Any = position
    if position is None and isinstance(call, dict):
        index = call.get("index")
    texts = (
        *(call.get(key) if isinstance(call, dict) else None for key in ("id", "type")),
        *(
            function.get(key) if isinstance(function, dict) else None
            for key in ("name", "arguments")
        ),
    )
    if (
        not isinstance(call, dict)
        or not isinstance(function, dict)
        or not (index is None or (type(index) is int and index >= 0))
        or not all(text is None or isinstance(text, str) for text in texts)
    ):
        _format_error("sent a malformed tool call", data)
    call_id, kind, name, arguments = texts
    return ToolCallDelta(index, call_id, kind, name, arguments)


def _usage(data: dict[str, Any]) -> Usage:
    usage = data["usage"]
    counts = [
        usage.get(key) if isinstance(usage, dict) else None
        for key in ("prompt_tokens", "completion_tokens", "total_tokens")
    ]
    if not isinstance(usage, dict) or not all(
        count is None or (type(count) is int and count >= 0) for count in counts
    ):
        _format_error("sent a malformed usage", data)
    prompt, completion, total = (count or 0 for count in counts)
    if counts[2] is None:
        total = prompt + completion
    return Usage(prompt, completion, total)


def _format_error(message: str, data: dict[str, Any]) -> NoReturn:
    text = json.dumps(data)
    raise ResponseFormatError(
        f"{message}: {text[:200]}", body=text[:ERROR_BODY_EXCERPT]
    )
