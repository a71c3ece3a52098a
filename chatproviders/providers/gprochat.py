"""GPROChat: a signed, flattened prompt in; raw UTF-8 text out, until EOF.

=============  ==========================================================
request        ``POST https://gprochat.com/api/generate``
headers        browser-like, ``content-type: text/plain;charset=UTF-8``
               (the body is still JSON)
body           ``{"messages": [{"role": "user", "parts": [{"text": P}]}],
               "time": TS, "pass": null, "sign": S}``
P              ``format_prompt(messages)``: the history in one user turn
TS             milliseconds since the epoch
S              hex SHA-256 of ``f"{TS}:{P}:{SECRET}"``
response       raw UTF-8 text
errors         ``{"error": {...}}`` with 400 / 401 / 500; a 500 saying
               ``Quota exceeded`` is a rate limit
=============  ==========================================================
"""

from __future__ import annotations

import hashlib
import time
from typing import Any, Optional

from .._messages import Messages, check_plain, format_prompt
from .._provider import Provider
from ..exceptions import APIStatusError, RateLimitError

__all__ = ["GPROChat"]

SECRET = "2BC120D4-BB36-1B60-26DE-DB630472A3D8"


def now_ms() -> int:
    """The timestamp the signature covers; tests replace it for a fixed clock."""
    return int(time.time() * 1000)


class GPROChat(Provider):
    url = "https://gprochat.com"
    api_endpoint = "https://gprochat.com/api/generate"
    path = "/api/generate"
    emulator = "chatproviders.testing._protocols:GPROChat"
    working = False  # the public service is offline
    supports_message_history = True
    supports_gpt_35_turbo = False
    default_model = "gemini-1.5-pro"
    models = ["gemini-1.5-pro", "gemini-pro"]
    headers = {
        "accept": "*/*",
        "origin": "https://gprochat.com",
        "referer": "https://gprochat.com/",
        "user-agent": (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 "
            "(KHTML, like Gecko) Chrome/129.0.0.0 Safari/537.36"
        ),
        "content-type": "text/plain;charset=UTF-8",
    }

    @staticmethod
    def generate_signature(timestamp: int, message: str) -> str:
        return hashlib.sha256(f"{timestamp}:{message}:{SECRET}".encode()).hexdigest()

    def payload(self, messages: Messages, model: str, **params: Any) -> dict[str, Any]:
        check_plain(messages, self.name(), self.host)  # flattened to a prompt
        prompt = format_prompt(messages)
        timestamp = now_ms()
        return {
            "messages": [{"role": "user", "parts": [{"text": prompt}]}],
            "time": timestamp,
            "pass": None,
            "sign": self.generate_signature(timestamp, prompt),
        }

    def status_error_class(
        self, status: int, body: str
    ) -> Optional[type[APIStatusError]]:
        return RateLimitError if "quota exceeded" in body.lower() else None
