"""Chat messages: checking their shape, and flattening them into one prompt.

Messages have OpenAI's shape: a ``role`` (``system``, ``developer``,
``user``, ``assistant`` or ``tool``) and a ``content`` that is a string, a
list of content parts (``{"type": "text", "text": ...}``,
``{"type": "image_url", ...}``; other part types pass through), or ``None``
for an assistant message that carries ``tool_calls``. A ``tool`` message
answers one of those calls and names it in ``tool_call_id``. Messages are
checked for shape only, and sent as given.

The seed providers carry plain conversations only: :func:`check_plain`
refuses what they cannot send instead of dropping it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, List

from .exceptions import InvalidMessagesError

__all__ = [
    "PLAIN_ROLES",
    "ROLES",
    "Messages",
    "check_plain",
    "format_prompt",
    "validate_messages",
]

Messages = List[Mapping[str, Any]]

ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})

#: The roles a plain conversation (one the seed providers can carry) has.
PLAIN_ROLES = frozenset({"system", "user", "assistant"})


def validate_messages(messages: object) -> Messages:
    """Return ``messages`` as a list if it is a non-empty list of chat messages.

    Raises :class:`InvalidMessagesError` naming the first problem found, by
    the message's index and the key.
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
        if not isinstance(role, str):
            raise InvalidMessagesError(
                f"messages[{index}] needs a string 'role', got {role!r}"
            )
        if role not in ROLES:
            raise InvalidMessagesError(
                f"messages[{index}] has unknown role {role!r}; "
                f"use one of {', '.join(sorted(ROLES))}"
            )
        content = message.get("content")
        if type(content) is str:  # the usual case, first
            if not content.isascii():
                _check_encodable(f"messages[{index}] 'content'", content)
        else:
            _check_content(index, role, message)
        if len(message) > 2 or role == "tool":
            _check_other_keys(index, role, message)
    return list(messages)


def check_plain(messages: Messages, provider: str = "", host: str = "") -> None:
    """Refuse what a plain conversation cannot hold: roles other than
    system, user and assistant, content that is not a string, tool calls.

    For the seed providers, which send ``role``/``content`` strings or one
    flattened prompt; ``messages`` is already checked by :func:`validate_messages`.
    """
    who = provider or "a provider that takes a plain conversation"
    for index, message in enumerate(messages):
        role, content = message["role"], message.get("content")
        problem = ""
        if role not in PLAIN_ROLES:
            problem = f"has role {role!r}"
        elif not isinstance(content, str):
            kind = "content parts" if isinstance(content, list) else "no text"
            problem = f"has {kind} in 'content'"
        elif message.get("tool_calls") is not None:  # tool_call_id: role 'tool'
            problem = "has 'tool_calls'"
        if problem:
            raise InvalidMessagesError(
                f"messages[{index}] {problem}, which {who} cannot carry: it "
                "takes system, user and assistant messages with string content "
                "(OpenAICompatible takes tools and content parts)",
                provider=provider or None,
                host=host or None,
            )


def format_prompt(messages: Sequence[Mapping[str, Any]]) -> str:
    """Flatten a conversation into one prompt, as the seed providers expect.

    One message: its content, unchanged. Several: one ``"Role: content"`` line
    each, then ``"Assistant:"`` on a line of its own. The list is not modified.
    Only a plain conversation can be flattened (see ``check_plain``).

    >>> format_prompt([{"role": "system", "content": "Be brief"},
    ...                {"role": "user", "content": "Hi"}])
    'System: Be brief\\nUser: Hi\\nAssistant:'
    """
    check_plain(validate_messages(messages))
    if len(messages) == 1:
        return str(messages[0]["content"])
    lines = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
    return "\n".join(lines) + "\nAssistant:"


def _check_content(index: int, role: str, message: Mapping[str, Any]) -> None:
    """``content`` that is not a string: parts, or None where OpenAI allows it."""
    content = message.get("content")
    where = f"messages[{index}] 'content'"
    if content is None:
        if role == "assistant" and (
            message.get("tool_calls") or message.get("refusal") is not None
        ):
            return
        raise InvalidMessagesError(
            f"messages[{index}] needs a string 'content' or a list of content "
            f"parts, got {type(content).__name__} (None is for an assistant "
            "message with tool_calls)"
        )
    if not isinstance(content, list):
        raise InvalidMessagesError(
            f"messages[{index}] needs a string 'content' or a list of content "
            f"parts, got {type(content).__name__}"
        )
    if not content:
        raise InvalidMessagesError(f"{where} is an empty list of parts")
    for number, part in enumerate(content):
        at = f"{where}[{number}]"
        if not isinstance(part, Mapping) or not isinstance(part.get("type"), str):
            raise InvalidMessagesError(
                f"{at} must be a dict with a string 'type', such as "
                "{'type': 'text', 'text': ...}"
            )
        kind = part["type"]
        if kind == "text":
            text = part.get("text")
            if not isinstance(text, str):
                raise InvalidMessagesError(
                    f"{at} is a text part without a string 'text'"
                )
            if not text.isascii():
                _check_encodable(f"{at} 'text'", text)
        elif role != "user" and not (role == "assistant" and kind == "refusal"):
            raise InvalidMessagesError(
                f"{at} has type {kind!r}; a {role} message takes text parts only"
            )


def _check_other_keys(index: int, role: str, message: Mapping[str, Any]) -> None:
    """``name``, ``tool_calls`` and ``tool_call_id``, where OpenAI has them."""
    name = message.get("name")
    if name is not None and not isinstance(name, str):
        raise InvalidMessagesError(
            f"messages[{index}] 'name' must be a string, got {type(name).__name__}"
        )
    calls = message.get("tool_calls")
    if calls is not None:
        if role != "assistant":
            raise InvalidMessagesError(
                f"messages[{index}] has 'tool_calls', which only an assistant "
                f"message may have (its role is {role!r})"
            )
        _check_tool_calls(index, calls)
    call_id = message.get("tool_call_id")
    if role == "tool" and not isinstance(call_id, str):
        raise InvalidMessagesError(
            f"messages[{index}] is a tool message and needs a string "
            f"'tool_call_id', the id of the call it answers; got {call_id!r}"
        )
    if role != "tool" and call_id is not None:
        raise InvalidMessagesError(
            f"messages[{index}] has 'tool_call_id', which only a tool message "
            f"may have (its role is {role!r})"
        )


def _check_tool_calls(index: int, calls: Any) -> None:
    where = f"messages[{index}] 'tool_calls'"
    if not isinstance(calls, list):
        raise InvalidMessagesError(
            f"{where} must be a list of calls, got {type(calls).__name__}"
        )
    for number, call in enumerate(calls):
        at = f"{where}[{number}]"
        if not isinstance(call, Mapping):
            raise InvalidMessagesError(
                f"{at} must be a dict with 'id', 'type' and 'function' "
                "(a ToolCall's .to_dict() is one)"
            )
        for key in ("id", "type"):
            if not isinstance(call.get(key), str):
                raise InvalidMessagesError(f"{at} needs a string {key!r}")
        function = call.get("function")
        if not isinstance(function, Mapping):
            raise InvalidMessagesError(
                f"{at} needs a 'function' dict with 'name' and 'arguments'"
            )
        for key in ("name", "arguments"):
            if not isinstance(function.get(key), str):
                got = type(function.get(key)).__name__
                raise InvalidMessagesError(
                    f"{at}['function'] needs a string {key!r}, got {got}"
                    + (" (arguments are a JSON string)" if key == "arguments" else "")
                )


def _check_encodable(where: str, content: str) -> None:
    """Refuse a lone surrogate, which has no UTF-8 form: the usual trace of
    bytes read with ``errors="surrogateescape"`` (``sys.argv``, stdin).
    """
    try:
        content.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidMessagesError(
            f"{where} is not valid text: "
            f"{content[exc.start]!r} at position {exc.start} has no UTF-8 form "
            "(bytes decoded with errors='surrogateescape'?)"
        ) from None
