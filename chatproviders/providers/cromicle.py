"""Cromicle: the prompt and a hash of it in; raw UTF-8 text out, until EOF.

=============  ==========================================================
request        ``POST https://cromicle.top/chat``
headers        ``accept: */*``, ``content-type: application/json``
body           ``{"message": P, "token": "abc", "hash": H}``
P              ``format_prompt(messages)``
H              hex SHA-256 of the UTF-8 bytes of ``"abc" + P``
response       raw UTF-8 text, no framing
=============  ==========================================================
"""

from __future__ import annotations

import hashlib
from typing import Any

from .._messages import Messages, check_plain, format_prompt
from .._provider import Provider

__all__ = ["Cromicle"]

TOKEN = "abc"


def _create_header() -> dict[str, str]:
    """The request headers (gpt4free's helper of the same name)."""
    return {"accept": "*/*", "content-type": "application/json"}


def _create_payload(message: str) -> dict[str, str]:
    """The body for a prompt (gpt4free's helper of the same name)."""
    digest = hashlib.sha256((TOKEN + message).encode("utf-8")).hexdigest()
    return {"message": message, "token": TOKEN, "hash": digest}


class Cromicle(Provider):
    url = "https://cromicle.top"
    path = "/chat"
    emulator = "chatproviders.testing._protocols:Cromicle"
    working = False  # the public service is offline
    supports_message_history = False
    supports_gpt_35_turbo = True
    default_model = "gpt-3.5-turbo"
    models = ["gpt-3.5-turbo"]
    headers = _create_header()

    def payload(self, messages: Messages, model: str, **params: Any) -> dict[str, Any]:
        check_plain(messages, self.name(), self.host)  # flattened to a prompt
        return _create_payload(format_prompt(messages))
