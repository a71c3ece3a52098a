"""OpenAI-style chat replies: ``chat.completion.chunk`` events, or one JSON object.

CodeLinkAva and every OpenAI-compatible server stream the same events::

    data: {"choices": [{"delta": {"content": "Hel"}}], ...}
    data: [DONE]

and an OpenAI-compatible server asked for ``"stream": false`` sends one
``chat.completion`` object whose text is ``choices[0].message.content``.
Both are read from plain bytes here, with no HTTP library.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from itertools import chain
from typing import Any

from ._constants import ERROR_BODY_EXCERPT
from .decoders import iter_sse
from .exceptions import APIError, IncompleteStreamError, ResponseFormatError

__all__ = ["error_text", "iter_chat_chunks", "iter_chat_reply"]


def iter_chat_chunks(chunks: Iterable[bytes]) -> Iterator[str]:
    """The text of OpenAI-style ``chat.completion.chunk`` events, up to ``[DONE]``."""
    for event in iter_sse(chunks):
        if event.data == "[DONE]":
            return
        data = _json_object(event.data, "an event")
        if "error" in data:
            raise APIError(
                f"reported an error in the stream: {error_text(data['error'])}"
            )
        content = _delta_content(data)
        if content:
            yield content
    raise IncompleteStreamError("the stream ended before data: [DONE]")


def iter_chat_reply(chunks: Iterable[bytes]) -> Iterator[str]:
    """Chunk events, or the text of a whole ``chat.completion`` JSON object.

    Which one is decided by the body's first non-blank byte: ``{`` opens a JSON
    object, anything else is read as server-sent events. So a server that
    answers a streamed request with one JSON object still works.
    """
    pieces = iter(chunks)
    head = b""
    for piece in pieces:
        head += piece
        if head.strip():
            break
    if not head.lstrip().startswith(b"{"):
        yield from iter_chat_chunks(chain([head], pieces))
        return
    body = b"".join(chain([head], pieces)).decode("utf-8", errors="replace")
    data = _json_object(body, "a reply")
    if "error" in data:
        raise APIError(f"reported an error: {error_text(data['error'])}")
    content = _message_content(data)
    if content:
        yield content


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


def _delta_content(data: dict[str, Any]) -> Any:
    return _choice_content(data, "delta")


def _message_content(data: dict[str, Any]) -> Any:
    if not data.get("choices"):
        raise ResponseFormatError(
            f"sent a reply without choices: {json.dumps(data)[:200]}",
            body=json.dumps(data)[:ERROR_BODY_EXCERPT],
        )
    return _choice_content(data, "message")


def _choice_content(data: dict[str, Any], key: str) -> Any:
    choices = data.get("choices")
    if not choices:
        return None
    try:
        content = choices[0][key].get("content")
    except (KeyError, TypeError, IndexError, AttributeError):
        what = "a chunk" if key == "delta" else "a reply"
        raise ResponseFormatError(
            f"sent {what} without choices[0].{key}: {json.dumps(data)[:200]}",
            body=json.dumps(data)[:ERROR_BODY_EXCERPT],
        ) from None
    if content is not None and not isinstance(content, str):
        raise ResponseFormatError(f"sent non-text content: {content!r}"[:200])
    return content
