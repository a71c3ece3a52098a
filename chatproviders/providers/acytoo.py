"""Acytoo: the whole history in; raw UTF-8 text out, until EOF.

=============  ==========================================================
request        ``POST https://chat.acytoo.com/api/completions``
headers        ``accept: */*``, ``content-type: application/json``
body           ``{"key": "", "model": "gpt-3.5-turbo", "messages": M,
               "temperature": T, "password": ""}``
M              the caller's messages, verbatim
T              ``temperature``, default 0.5
response       raw UTF-8 text, no framing; 429 under load
=============  ==========================================================
"""

from __future__ import annotations

from typing import Any

from .._messages import Messages, check_plain
from .._provider import Provider

__all__ = ["Acytoo"]


def _create_header() -> dict[str, str]:
    """The request headers (gpt4free's helper of the same name)."""
    return {"accept": "*/*", "content-type": "application/json"}


def _create_payload(
    messages: Messages, temperature: float = 0.5, **kwargs: Any
) -> dict[str, Any]:
    """The body (gpt4free's helper of the same name; other keywords are ignored)."""
    return {
        "key": "",
        "model": "gpt-3.5-turbo",
        "messages": messages,
        "temperature": temperature,
        "password": "",
    }


class Acytoo(Provider):
    url = "https://chat.acytoo.com"
    path = "/api/completions"
    emulator = "chatproviders.testing._protocols:Acytoo"
    working = False  # the public service is offline
    supports_message_history = True
    supports_gpt_35_turbo = True
    default_model = "gpt-3.5-turbo"
    models = ["gpt-3.5-turbo"]
    headers = _create_header()
    parameters = {"temperature": 0.5}

    def payload(self, messages: Messages, model: str, **params: Any) -> dict[str, Any]:
        check_plain(messages, self.name(), self.host)  # sent as role/content
        return _create_payload(messages, params["temperature"])
