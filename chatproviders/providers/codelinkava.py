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

from collections.abc import Iterable, Iterator
from typing import Any

from .._messages import Messages, check_plain
from .._provider import Provider
from .._streams.events import Piece
from .._streams.openai_chunks import iter_chat_chunks, iter_chat_events

__all__ = ["CodeLinkAva", "iter_chat_chunks"]


class CodeLinkAva(Provider):
    url = "https://ava-ai-ef611.web.app"
    api_endpoint = "https://ava-alpha-api.codelink.io/api/chat"
    path = "/api/chat"
    emulator = "chatproviders.testing._protocols:CodeLinkAva"
    working = False  # the public service is offline
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
        check_plain(messages, self.name(), self.host)  # sent as role/content
        return {
            "messages": messages,
            "temperature": params["temperature"],
            "stream": True,
        }

    def iter_text(self, chunks: Iterable[bytes]) -> Iterator[Piece]:
        # Text, and events for the finish reason and usage (see ChatStream).
        return iter_chat_events(chunks)
