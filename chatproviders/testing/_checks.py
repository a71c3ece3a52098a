"""Checking request bodies: JSON field shapes, the Cromicle hash, the GPROChat sign.

Written from the protocol tables, not with the clients' code, so that a
client's mistake cannot pass its own emulator.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Callable, Mapping


def cromicle_hash(token: str, message: str) -> str:
    """The Cromicle request hash: sha256 of ``token + message``, lowercase hex."""
    return hashlib.sha256((token + message).encode()).hexdigest()


GPROCHAT_SECRET = "2BC120D4-BB36-1B60-26DE-DB630472A3D8"


def gprochat_sign(timestamp: int, prompt: str) -> str:
    """The GPROChat request sign: sha256 of ``f"{time}:{prompt}:{SECRET}"``, hex."""
    return hashlib.sha256(
        f"{timestamp}:{prompt}:{GPROCHAT_SECRET}".encode()
    ).hexdigest()


@dataclass(frozen=True)
class Kind:
    """What a JSON field must be: a test, and words for the error message."""

    description: str
    test: Callable[[Any], bool]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_messages(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) > 0
        and all(
            isinstance(m, dict)
            and isinstance(m.get("role"), str)
            and isinstance(m.get("content"), str)
            for m in value
        )
    )


def _is_gemini_turn(value: Any) -> bool:
    if not (isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict)):
        return False
    parts = value[0].get("parts")
    return (
        value[0].get("role") == "user"
        and isinstance(parts, list)
        and len(parts) == 1
        and isinstance(parts[0], dict)
        and isinstance(parts[0].get("text"), str)
    )


STRING = Kind("a string", lambda v: isinstance(v, str))
NUMBER = Kind("a number", _is_number)
INTEGER = Kind("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool))
BOOLEAN = Kind("a boolean", lambda v: isinstance(v, bool))
TRUE = Kind("true", lambda v: v is True)
NULL = Kind("null", lambda v: v is None)
MESSAGES = Kind("a non-empty list of {role, content} string objects", _is_messages)
GEMINI_TURN = Kind('[{"role": "user", "parts": [{"text": <string>}]}]', _is_gemini_turn)


def shape_problem(
    body: Any,
    fields: Mapping[str, Kind],
    optional: Mapping[str, Kind],
    others_allowed: bool,
) -> str | None:
    """Why ``body`` is not a JSON object with these fields, or None when it is."""
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    missing = [name for name in fields if name not in body]
    if missing:
        return f"missing field(s): {', '.join(missing)}"
    extra = sorted(set(body) - set(fields) - set(optional))
    if extra and not others_allowed:
        return f"unexpected field(s): {', '.join(extra)}"
    for name, kind in {**fields, **optional}.items():
        if name in body and not kind.test(body[name]):
            return f"field {name!r} must be {kind.description}"
    return None
