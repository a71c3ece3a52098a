"""Chat messages: checking them, and flattening them into one prompt."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, List

from .exceptions import InvalidMessagesError

__all__ = ["ROLES", "Messages", "format_prompt", "validate_messages"]

Messages = List[Mapping[str, Any]]

ROLES = frozenset({"system", "user", "assistant"})


def validate_messages(messages: object) -> Messages:
    """Return ``messages`` unchanged if it is a non-empty list of chat messages.

    Raises :class:`InvalidMessagesError` naming the first problem found.
    """
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence):
        raise InvalidMessagesError(
            "messages must be a list of {'role': ..., 'content': ...} dicts, "
            f"got {type(messages).__name__}"
        )
    if not messages:
        raise InvalidMessagesError("messages is empty: send at least one message")
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise InvalidMessagesError(
                f"messages[{index}] must be a dict with 'role' and 'content', "
                f"got {type(message).__name__}"
            )
        role = message.get("role")
        content = message.get("content")
        if not isinstance(role, str):
            raise InvalidMessagesError(
                f"messages[{index}] needs a string 'role', got {role!r}"
            )
        if role not in ROLES:
            raise InvalidMessagesError(
                f"messages[{index}] has unknown role {role!r}; "
                f"use one of {', '.join(sorted(ROLES))}"
            )
        if not isinstance(content, str):
            raise InvalidMessagesError(
                f"messages[{index}] needs a string 'content', "
                f"got {type(content).__name__}"
            )
        if not content.isascii():
            _check_encodable(index, content)
    return list(messages)


def _check_encodable(index: int, content: str) -> None:
    """Refuse a lone surrogate, which has no UTF-8 form: the usual trace of
    bytes read with ``errors="surrogateescape"`` (``sys.argv``, stdin).
    """
    try:
        content.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidMessagesError(
            f"messages[{index}] 'content' is not valid text: "
            f"{content[exc.start]!r} at position {exc.start} has no UTF-8 form "
            "(bytes decoded with errors='surrogateescape'?)"
        ) from None


def format_prompt(messages: Sequence[Mapping[str, Any]]) -> str:
    """Flatten a conversation into one prompt, as the seed providers expect.

    One message: its content, unchanged. Several: one ``"Role: content"`` line
    each, then ``"Assistant:"`` on a line of its own. The list is not modified.

    >>> format_prompt([{"role": "system", "content": "Be brief"},
    ...                {"role": "user", "content": "Hi"}])
    'System: Be brief\\nUser: Hi\\nAssistant:'
    """
    validate_messages(messages)
    if len(messages) == 1:
        return str(messages[0]["content"])
    lines = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
    return "\n".join(lines) + "\nAssistant:"
