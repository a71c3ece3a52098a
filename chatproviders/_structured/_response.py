"""ParsedResponse: a whole reply, with the value it was parsed into."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Generic, Optional, TypeVar

from .._streams.chat_stream import ChatResponse

__all__ = ["ParsedResponse"]

T = TypeVar("T")


@dataclass(frozen=True)
class ParsedResponse(ChatResponse, Generic[T]):
    """What :meth:`Client.parse <chatproviders.Client.parse>` returns: a
    :class:`~chatproviders.ChatResponse` with the reply read into the schema.

    ``parsed`` is an instance of the pydantic model (or the value of the
    type, or the validated JSON for a JSON Schema ``dict``); it is None when
    the model refused, and then ``refusal`` says why. ``mode`` is the mode
    that produced the reply: ``"json_schema"``, ``"json_object"`` or
    ``"prompt"``.
    """

    parsed: Optional[T] = None
    mode: str = "json_schema"

    @classmethod
    def of(
        cls, reply: ChatResponse, parsed: Any, mode: str, **changes: Any
    ) -> ParsedResponse[Any]:
        """``reply`` with ``parsed`` and ``mode`` added (and ``changes`` made)."""
        values = {f.name: getattr(reply, f.name) for f in fields(ChatResponse)}
        return cls(**{**values, **changes}, parsed=parsed, mode=mode)
