"""The ways to ask for structured output, which a client takes, and what each sends.

=============  ===============================================================
json_schema    ``response_format: {"type": "json_schema", "json_schema":
               {"schema": STRICT, "name": NAME, "strict": true}}``, the
               OpenAI SDK's request for the same model, byte for byte
json_object    ``response_format: {"type": "json_object", "schema": PLAIN}``
               (llama.cpp's server turns the schema into a grammar; OpenAI
               reads the type only) and a short system instruction, since
               OpenAI's JSON mode wants the word JSON in the messages
prompt         no ``response_format``: the schema is stated in a system
               message (the seed providers, and servers with no format)
=============  ===============================================================

``auto`` tries them best first, among those the client takes (a
:class:`~chatproviders.FallbackProvider` takes what all its providers take),
and steps down only when the server refuses the request as such
(:func:`refuses_format`); the mode that worked is remembered per client and
model.
"""

from __future__ import annotations

import json
import threading
from typing import Any, Optional, cast

from .._messages import Messages
from ..exceptions import AllProvidersFailedError, APIStatusError
from ._schema import Target

__all__ = [
    "MODES",
    "forget",
    "refuses_format",
    "remember",
    "remembered",
    "request",
    "supported_modes",
]

#: Best first.
MODES = ("json_schema", "json_object", "prompt")

JSON_OBJECT_INSTRUCTION = "Answer with one JSON {} only."
PROMPT_INSTRUCTION = (
    "Answer with one JSON value only, no other text, valid against this JSON "
    "Schema:\n{schema}"
)

#: Words in a 5xx error that show the server refused the format itself
#: (llama-cpp-python: "Input should be 'text' or 'json_object'", 500).
_FORMAT_WORDS = ("response_format", "json_schema", "json_object")


def supported_modes(client: Any) -> tuple[str, ...]:
    """The modes ``client`` takes, best first."""
    members = getattr(client, "providers", None)
    if isinstance(members, list):  # a FallbackProvider: what every one takes
        each = [set(supported_modes(member)) for member in members]
        return tuple(mode for mode in MODES if all(mode in s for s in each))
    if "response_format" in getattr(client, "parameters", {}):
        return MODES
    return ("prompt",)


def request(
    mode: str, target: Target, messages: Messages, params: dict[str, Any]
) -> tuple[Messages, dict[str, Any]]:
    """The messages and parameters that ask for ``target`` in ``mode``."""
    params = dict(params)
    if mode == "json_schema":
        params["response_format"] = {
            "type": "json_schema",
            "json_schema": {
                "schema": target.strict_schema,
                "name": target.name,
                "strict": True,
            },
        }
        return list(messages), params
    if mode == "json_object":
        params["response_format"] = {
            "type": "json_object",
            "schema": target.json_schema,
        }
        kind = "object" if target.json_schema.get("type") == "object" else "value"
        instruction = JSON_OBJECT_INSTRUCTION.format(kind)
        return _with_instruction(messages, instruction), params
    schema = json.dumps(target.json_schema, ensure_ascii=False)
    return _with_instruction(messages, PROMPT_INSTRUCTION.format(schema=schema)), params


def _with_instruction(messages: Messages, instruction: str) -> Messages:
    """``messages`` (a copy) with ``instruction`` ending the first system
    message, or in a new one at the start.
    """
    copied = [dict(message) for message in messages]
    first = copied[0] if copied else None
    if (
        first
        and first.get("role") == "system"
        and isinstance(first.get("content"), str)
    ):
        first["content"] = f"{first['content']}\n\n{instruction}"
        return cast(Messages, copied)
    return [{"role": "system", "content": instruction}, *copied]


def refuses_format(error: BaseException) -> bool:
    """True when ``error`` is the server refusing the request as such: a 400
    or 422, or a 5xx whose error names ``response_format`` or its type (as
    llama-cpp-python's server does); for a FallbackProvider, when every
    provider refused so. Never for a timeout, a 429 or any other failure.
    """
    if isinstance(error, AllProvidersFailedError):
        return bool(error.attempts) and all(
            refuses_format(attempt.error) for attempt in error.attempts
        )
    if not isinstance(error, APIStatusError):
        return False
    if error.status_code in (400, 422):
        return True
    said = f"{error.message} {error.body}"
    return error.status_code >= 500 and any(word in said for word in _FORMAT_WORDS)


# -- the mode that worked, per client and model -----------------------------

_lock = threading.Lock()


def remembered(client: Any, model: Optional[str]) -> Optional[str]:
    """The mode that last worked for ``client`` and ``model``, if any."""
    return getattr(client, "_structured_modes", {}).get(model or "")


def remember(client: Any, model: Optional[str], mode: str) -> None:
    with _lock:
        modes = client.__dict__.setdefault("_structured_modes", {})
        modes[model or ""] = mode


def forget(client: Any, model: Optional[str]) -> None:
    with _lock:
        client.__dict__.get("_structured_modes", {}).pop(model or "", None)
