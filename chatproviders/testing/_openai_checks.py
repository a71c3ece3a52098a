"""The openai emulator's checks of a chat request, with OpenAI's own messages:
message shapes, tool-call histories, ``tools``, ``stream_options``.

Each check returns ``(message, param)`` for a 400, or None when it passes.
"""

from __future__ import annotations

from typing import Any, Optional

Problem = Optional[tuple[str, str]]

ROLES = ("system", "developer", "user", "assistant", "tool")

NOT_AN_ANSWER = (
    "Invalid parameter: messages with role 'tool' must be a response to a "
    "preceeding message with 'tool_calls'."
)
NOT_ANSWERED = (
    "An assistant message with 'tool_calls' must be followed by tool messages "
    "responding to each 'tool_call_id'. The following tool_call_ids did not "
    "have response messages: {}"
)


def request_problem(body: dict[str, Any]) -> Problem:
    """The first problem of a chat request body whose required fields exist."""
    return (
        _messages_problem(body["messages"])
        or _history_problem(body["messages"])
        or _tools_problem(body.get("tools"))
        or _stream_options_problem(body)
    )


def _messages_problem(messages: Any) -> Problem:
    if not isinstance(messages, list) or not messages:
        return "'messages' must be a non-empty array", "messages"
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            return f"Invalid type for '{where}': expected an object", where
        role = message.get("role")
        if role not in ROLES:
            return f"Invalid value for '{where}.role': {role!r}", f"{where}.role"
        content = message.get("content")
        if content is None and role == "assistant" and message.get("tool_calls"):
            continue
        if isinstance(content, str):
            continue
        if not isinstance(content, list) or not all(
            isinstance(part, dict) and isinstance(part.get("type"), str)
            for part in content
        ):
            return (
                f"Invalid type for '{where}.content': expected a string or an "
                "array of content parts",
                f"{where}.content",
            )
    return None


def _history_problem(messages: list[dict[str, Any]]) -> Problem:
    """A tool message must answer a call of the assistant message before it,
    and every such call must be answered before the conversation goes on.
    """
    waiting: list[str] = []  # ids of calls not answered yet
    for index, message in enumerate(messages):
        role = message["role"]
        if role == "tool":
            if message.get("tool_call_id") not in waiting:
                return NOT_AN_ANSWER, f"messages.[{index}].role"
            waiting.remove(message["tool_call_id"])
            continue
        if waiting:
            return NOT_ANSWERED.format(", ".join(waiting)), f"messages.[{index}]"
        calls = message.get("tool_calls") if role == "assistant" else None
        if calls:
            ids = [call.get("id") for call in calls if isinstance(call, dict)]
            waiting = [i for i in ids if isinstance(i, str)]
            if len(waiting) != len(calls):
                return (
                    f"Invalid 'messages[{index}].tool_calls': each needs an id",
                    f"messages[{index}].tool_calls",
                )
    if waiting:
        return NOT_ANSWERED.format(", ".join(waiting)), "messages"
    return None


def _tools_problem(tools: Any) -> Problem:
    if tools is None:
        return None
    if not isinstance(tools, list):
        return "Invalid type for 'tools': expected an array", "tools"
    for index, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        if (
            not isinstance(function, dict)
            or tool.get("type") != "function"
            or not isinstance(function.get("name"), str)
        ):
            return (
                f"Invalid 'tools[{index}]': expected {{'type': 'function', "
                "'function': {'name': ..., 'parameters': ...}}",
                f"tools[{index}]",
            )
    return None


def _stream_options_problem(body: dict[str, Any]) -> Problem:
    options = body.get("stream_options")
    if options is None:
        return None
    if body.get("stream") is not True:
        return (
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            "stream_options",
        )
    if not isinstance(options, dict):
        return "Invalid type for 'stream_options': expected an object", (
            "stream_options"
        )
    return None


def wants_usage(body: dict[str, Any]) -> bool:
    """Whether a streamed request asks for a usage chunk."""
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True
