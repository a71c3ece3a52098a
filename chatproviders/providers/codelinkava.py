"""CodeLinkAva: the history in; OpenAI-style server-sent events out.

=============  ==========================================================
request        ``POST https://ava-alpha-api.codelink.io/api/chat``
headers        browser-like, Origin/Referer ``https://ava-ai-ef611.web.app``
body           ``{"messages": M, "temperature": 0.6, "stream": true}``
response       ``data: {json}`` events; text in ``choices[0].delta.content``
               (skipped when absent or null); ``data: [DONE]`` ends it
=============  ==========================================================

Unlike the historical client, options such as ``proxy`` never reach the
body, and events are parsed by the SSE rules, not sliced with ``line[6:-1]``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from .._client import Provider
from .._decoders import iter_sse
from .._messages import Messages
from ..exceptions import APIError, IncompleteStreamError, ResponseFormatError

__all__ = ["CodeLinkAva", "iter_chat_chunks"]


class CodeLinkAva(Provider):
    url = "https://ava-ai-ef611.web.app"
    api_endpoint = "https://ava-alpha-api.codelink.io/api/chat"
    path = "/api/chat"
    working = False
    supports_stream = True
    supports_message_history = False
    supports_gpt_35_turbo = True
    default_model = "gpt-3.5-turbo"
    models = ["gpt-3.5-turbo"]
    headers = {
        "User-Agent": (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
            "(KHTML, like Gecko) Chrome/116.0.0.0 Safari/537.36"
        ),
        "Accept": "*/*",
        "Accept-Language": (
            "en,fr-FR;q=0.9,fr;q=0.8,es-ES;q=0.7,es;q=0.6,en-US;q=0.5,am;q=0.4,de;q=0.3"
        ),
        "Origin": "https://ava-ai-ef611.web.app",
        "Referer": "https://ava-ai-ef611.web.app/",
        "Sec-Fetch-Dest": "empty",
        "Sec-Fetch-Mode": "cors",
        "Sec-Fetch-Site": "same-origin",
        "Content-Type": "application/json",
    }
    parameters = {"temperature": 0.6}

    def payload(self, messages: Messages, model: str, **params: Any) -> dict[str, Any]:
        return {
            "messages": messages,
            "temperature": params["temperature"],
            "stream": True,
        }

    def iter_text(self, chunks: Iterable[bytes]) -> Iterator[str]:
        return iter_chat_chunks(chunks)


def iter_chat_chunks(chunks: Iterable[bytes]) -> Iterator[str]:
    """The text of OpenAI-style ``chat.completion.chunk`` events, up to ``[DONE]``."""
    for event in iter_sse(chunks):
        if event.data == "[DONE]":
            return
        try:
            data = json.loads(event.data)
        except ValueError:
            raise ResponseFormatError(
                f"sent an event that is not JSON: {event.data[:200]!r}",
                body=event.data[:500],
            ) from None
        if not isinstance(data, dict):
            raise ResponseFormatError(
                f"sent an event that is not a JSON object: {event.data[:200]!r}",
                body=event.data[:500],
            )
        if "error" in data:
            raise APIError(
                f"reported an error in the stream: {_error_text(data['error'])}"
            )
        content = _delta_content(data)
        if content:
            yield content
    raise IncompleteStreamError("the stream ended before data: [DONE]")


def _delta_content(data: dict[str, Any]) -> Any:
    choices = data.get("choices")
    if not choices:
        return None
    try:
        content = choices[0]["delta"].get("content")
    except (KeyError, TypeError, IndexError, AttributeError):
        raise ResponseFormatError(
            f"sent a chunk without choices[0].delta: {json.dumps(data)[:200]}",
            body=json.dumps(data)[:500],
        ) from None
    if content is not None and not isinstance(content, str):
        raise ResponseFormatError(f"sent non-text content: {content!r}"[:200])
    return content


def _error_text(error: Any) -> str:
    if isinstance(error, dict):
        return str(error.get("message") or error.get("code") or error)[:300]
    return str(error)[:300]
