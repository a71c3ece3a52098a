"""The openai emulator's structured outputs: JSON built from the request's schema,
and a server that refuses ``json_schema`` as llama.cpp's does.

When a chat request has a ``response_format`` (``json_schema``, or
``json_object`` with a ``schema`` beside it as llama.cpp's server reads it)
and the reply's text was not set, the emulator answers with
:func:`instance_of` the schema: the same JSON for the same schema, every
time. ``json_object`` without a schema gets a small object. A reply whose
text was set (``queue_reply(text="{not json")``) is sent as it is: that is
how a test makes the server answer invalid JSON once.

:class:`LlamaCppServer` (in ``_protocols``) is the openai emulator with
llama-cpp-python's server's rule: ``response_format`` takes ``text`` or
``json_object`` only, and any other type is refused with its HTTP 500.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any, Callable

from chatproviders.testing._reply import Reply

__all__ = ["instance_of", "structured_reply"]

#: Values for strings of a known format, so that a validator accepts them.
FORMATS = {
    "date-time": "2024-01-01T00:00:00Z",
    "date": "2024-01-01",
    "time": "00:00:00",
    "email": "user@example.com",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "ipv4": "127.0.0.1",
}

#: Deeper than this, a recursive schema gets null (or an empty value).
MAX_DEPTH = 8


def instance_of(schema: Any, name: str = "value") -> Any:
    """A value valid against the JSON Schema ``schema``, built from it alone:
    every property filled in, the first of each ``enum`` and ``anyOf``, a
    string named after its property, numbers at their minimum (else 1).
    """
    return _instance(schema, schema, name, 0)


def _instance(schema: Any, root: Any, name: str, depth: int) -> Any:
    if not isinstance(schema, dict):
        return None  # true, or a schema we cannot read
    if "$ref" in schema:
        resolved = _resolve(root, schema["$ref"])
        siblings = {k: v for k, v in schema.items() if k != "$ref"}
        schema = {**resolved, **siblings}
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            variants = schema[key]
            chosen = next((v for v in variants if not _is_null(v)), variants[0])
            if depth >= MAX_DEPTH and any(_is_null(v) for v in variants):
                return None
            return _instance({**_rest(schema, key), **chosen}, root, name, depth)
    if schema.get("allOf"):
        merged = dict(_rest(schema, "allOf"))
        for part in schema["allOf"]:
            merged.update(part if isinstance(part, dict) else {})
        return _instance(merged, root, name, depth)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = (
            "object"
            if "properties" in schema
            else "array"
            if "items" in schema
            else "string"
        )
    return _MAKERS.get(kind, _string)(schema, root, name, depth)


def _object(schema: dict[str, Any], root: Any, name: str, depth: int) -> Any:
    properties = schema.get("properties") or {}
    if depth >= MAX_DEPTH:
        properties = {k: properties[k] for k in schema.get("required", ())}
    return {
        key: _instance(value, root, key, depth + 1) for key, value in properties.items()
    }


def _array(schema: dict[str, Any], root: Any, name: str, depth: int) -> Any:
    prefix = schema.get("prefixItems")
    if isinstance(prefix, list):
        return [_instance(item, root, name, depth + 1) for item in prefix]
    count = max(int(schema.get("minItems", 0)), 0 if depth >= MAX_DEPTH else 1)
    count = min(count, int(schema.get("maxItems", count)))
    item = schema.get("items", {})
    return [_instance(item, root, name, depth + 1) for _ in range(count)]


def _string(schema: dict[str, Any], root: Any, name: str, depth: int) -> Any:
    text = FORMATS.get(schema.get("format", ""), name)
    minimum, maximum = schema.get("minLength", 0), schema.get("maxLength")
    text = text.ljust(minimum, "x")
    return text if maximum is None else text[:maximum]


def _number(schema: dict[str, Any], root: Any, name: str, depth: int) -> Any:
    integer = schema.get("type") == "integer" or (
        isinstance(schema.get("type"), list) and "integer" in schema["type"]
    )
    step = 1 if integer else 0.5
    value: float = 1
    if "minimum" in schema:
        value = schema["minimum"]
    elif "exclusiveMinimum" in schema:
        value = schema["exclusiveMinimum"] + step
    if "maximum" in schema:
        value = min(value, schema["maximum"])
    elif "exclusiveMaximum" in schema:
        value = min(value, schema["exclusiveMaximum"] - step)
    return int(value) if integer else float(value)


_MAKERS: dict[str, Callable[[dict[str, Any], Any, str, int], Any]] = {
    "object": _object,
    "array": _array,
    "string": _string,
    "integer": _number,
    "number": _number,
    "boolean": lambda schema, root, name, depth: True,
    "null": lambda schema, root, name, depth: None,
}


def _is_null(schema: Any) -> bool:
    return isinstance(schema, dict) and schema.get("type") == "null"


def _rest(schema: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k != key}


def _resolve(root: Any, ref: Any) -> dict[str, Any]:
    if not isinstance(ref, str) or not ref.startswith("#"):
        return {}
    node = root
    for part in ref[1:].split("/")[1:]:
        node = (
            node.get(part.replace("~1", "/").replace("~0", "~"), {})
            if isinstance(node, dict)
            else {}
        )
    return node if isinstance(node, dict) else {}


def structured_reply(reply: Reply, body: dict[str, Any], greeting: str) -> Reply:
    """``reply`` with JSON for the request's ``response_format`` as its text,
    when it asks for JSON and the text was left to its default.
    """
    format_ = body.get("response_format")
    if not isinstance(format_, dict) or reply.text != greeting or reply.refusal:
        return reply
    kind = format_.get("type")
    if kind == "json_schema":
        spec = format_.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
    elif kind == "json_object":
        schema = format_.get("schema", {"properties": {"text": {"const": greeting}}})
    else:
        return reply
    text = json.dumps(instance_of(schema or {}), ensure_ascii=False)
    return replace(reply, text=text, chunks=None)
