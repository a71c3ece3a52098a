"""``batch(..., schema=...)``: each item parsed, and its value in the checkpoint."""

from __future__ import annotations

from typing import Any, Optional

from ._schema import SchemaMismatch, Target

__all__ = ["ParsingClient", "check", "from_record", "to_record"]


def check(schema: Any) -> None:
    """Refuse a schema that cannot be used, before any I/O."""
    Target.of(schema, "batch(schema=...)")


def to_record(schema: Any, parsed: Any) -> Any:
    """``parsed`` as JSON data for the checkpoint line."""
    return None if parsed is None else Target.of(schema).to_json(parsed)


def from_record(schema: Any, record: dict[str, Any]) -> tuple[bool, Optional[Any]]:
    """A checkpoint record's value read back: ``(True, value)``, or
    ``(False, None)`` when it has none or no longer fits the schema (the item
    is then sent again).
    """
    if "parsed" not in record:  # written by a batch without a schema
        return False, None
    if record["parsed"] is None:  # the model refused
        return True, None
    try:
        return True, Target.of(schema).from_json(record["parsed"])
    except SchemaMismatch:
        return False, None


class ParsingClient:
    """A client whose ``complete`` is ``parse`` with ``schema``: what a batch
    sends through when given a schema (it pickles, for an executor's workers,
    when the schema does).
    """

    def __init__(self, client: Any, schema: Any) -> None:
        self.client = client
        self.schema = schema

    def complete(
        self, messages: Any, model: Optional[str] = None, **params: Any
    ) -> Any:
        return self.client.parse(messages, self.schema, model=model, **params)
