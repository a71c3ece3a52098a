"""What a batch gives back: a BatchItem per input, in a BatchResult."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

from .._streams.chat_stream import ChatResponse
from .._streams.events import Usage
from ..exceptions import ChatProvidersError
from .inputs import Call

__all__ = ["BatchItem", "BatchResult"]


@dataclass(frozen=True)
class BatchItem:
    """One input's outcome. ``text`` is None when it failed; then ``error``
    says why. Items read back from a checkpoint have ``reply=None``. In a
    batch given a ``schema``, ``parsed`` is the reply read into it (None when
    the model refused), and the checkpoint keeps it as JSON.
    ``usage`` is the :class:`~chatproviders.Usage` the server reported (None
    when it reported none); ``tries`` is how many requests the item took, 0
    for one never sent because the batch stopped.
    """

    index: int
    id: Any
    input: Any = field(repr=False)
    text: Optional[str] = None
    reply: Optional[ChatResponse] = field(default=None, repr=False)
    error: Optional[ChatProvidersError] = None
    provider: Optional[str] = None
    usage: Optional[Usage] = field(default=None, repr=False)
    tries: int = 0
    parsed: Any = None

    @property
    def ok(self) -> bool:
        """True when the item has its reply."""
        return self.error is None

    def record(
        self, input_sha: str, client: Optional[Mapping[str, Any]] = None
    ) -> dict[str, Any]:
        """The item as a checkpoint line."""
        error = None if self.error is None else f"{type(self.error).__name__}: "
        record: dict[str, Any] = {
            "index": self.index,
            "id": self.id,
            "text": self.text,
            "error": None if self.error is None else f"{error}{self.error}",
            "provider": self.provider,
            "model": self.reply.model if self.reply is not None else None,
        }
        if self.usage is not None:
            record["usage"] = asdict(self.usage)
        if client is not None:
            record["client"] = client
        record["input_sha"] = input_sha
        return record

    @classmethod
    def from_record(cls, call: Call, record: Mapping[str, Any]) -> BatchItem:
        """The item a checkpoint line holds (its ``reply`` is None)."""
        usage = record.get("usage")
        usage = usage if isinstance(usage, Mapping) else {}
        given, made, total = (
            usage.get(name)
            for name in ("prompt_tokens", "completion_tokens", "total_tokens")
        )
        read: Optional[Usage] = None  # none, or a line not written by this version
        if isinstance(given, int) and isinstance(made, int):
            total = total if isinstance(total, int) else given + made
            read = Usage(given, made, total)
        return cls(
            call.index,
            call.id,
            call.input,
            text=record.get("text"),
            provider=record.get("provider"),
            usage=read,
        )


class BatchResult(list[BatchItem]):
    """The items of a batch, in input order: a list, plus summaries."""

    @property
    def succeeded(self) -> list[BatchItem]:
        return [item for item in self if item.error is None]

    @property
    def failed(self) -> list[BatchItem]:
        return [item for item in self if item.error is not None]

    @property
    def texts(self) -> list[Optional[str]]:
        """Each item's text, None where it failed: a column for a DataFrame."""
        return [item.text for item in self]

    @property
    def parsed(self) -> list[Any]:
        """Each item's parsed value (a batch given a ``schema``), None where
        it failed or the model refused: rows for a DataFrame.
        """
        return [item.parsed for item in self]

    @property
    def usage(self) -> Optional[Usage]:
        """The token counts summed over the items that have them; None when
        none has (the server reported no usage).
        """
        usages = [item.usage for item in self if item.usage is not None]
        if not usages:
            return None
        return Usage(
            sum(u.prompt_tokens for u in usages),
            sum(u.completion_tokens for u in usages),
            sum(u.total_tokens for u in usages),
        )

    def __repr__(self) -> str:
        return (
            f"<BatchResult of {len(self)} items: {len(self.succeeded)} "
            f"succeeded, {len(self.failed)} failed>"
        )
