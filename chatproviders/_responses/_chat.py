"""A client whose chat calls go through the Responses API (``chat --responses``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Mapping, Optional

from ._resource import Responses
from ._stream import ResponsesReply, ResponsesStream

__all__ = ["ResponsesChat", "messages_as_input"]


def messages_as_input(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Chat messages as Responses input items: an assistant turn becomes a
    ``message`` item (servers such as llama.cpp's read it only so).
    """
    items = []
    for message in messages:
        item = {"role": message["role"], "content": message["content"]}
        if message["role"] == "assistant":
            item["type"] = "message"
        items.append(item)
    return items


class ResponsesChat:
    """``client`` as it is, but for :meth:`stream` and :meth:`complete`, which
    send the chat's messages to its Responses API.
    """

    def __init__(self, client: Any) -> None:
        self._client = client
        self._responses: Responses = client.responses

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def stream(
        self, messages: Sequence[Mapping[str, Any]], model: Optional[str] = None
    ) -> ResponsesStream:
        return self._responses.stream(messages_as_input(messages), model)

    def complete(
        self, messages: Sequence[Mapping[str, Any]], model: Optional[str] = None
    ) -> ResponsesReply:
        return self._responses.complete(messages_as_input(messages), model)
