"""``batch(..., schema=...)``: each item parsed, and its value in the checkpoint."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Optional

from ._schema import SchemaMismatch, Target

__all__ = ["ParsingClient", "check", "from_record", "to_record"]


def check(schema: Any) -> None:
    """Refuse a schema that cannot be used, before any I/O."""
    Target.of(schema, "batch(schema=...)")


def to_record(schema: Any, parsed: Any) -> dict[str, Any]:
    """The checkpoint line's fields: ``parsed`` as JSON data, and
    ``schema_sha``, the schema it was asked for."""
    target = Target.of(schema)
    value = None if parsed is None else target.to_json(parsed)
    return {"parsed": value, "schema_sha": _sha(target)}


def _sha(target: Target) -> str:
    text = json.dumps(target.json_schema, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def from_record(schema: Any, record: dict[str, Any]) -> tuple[bool, Optional[Any]]:
    """A checkpoint record's value read back: ``(True, value)``, or
    ``(False, None)`` when it has none, was asked for another schema, or no
    longer fits the schema (the item is then sent again).
    """
    if "parsed" not in record:  # written by a batch without a schema
        return False, None
    if record.get("schema_sha") != _sha(Target.of(schema)):  # asked otherwise
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
