"""Reading a request's JSON body: every way it can be wrong is a clear 400 (or 413).

Checked in order: the Content-Type (``application/json``), the size (the
Content-Length, then the bytes read, against ``max_body``), UTF-8, JSON
(strict: no NaN or Infinity, no nesting deep enough to break the parser), and
an object at the top.
"""

from __future__ import annotations

import json
from typing import Any

from ._errors import GatewayError

__all__ = ["read_json_object"]

_READ = 64 * 1024


def read_json_object(environ: dict[str, Any], max_body: int) -> dict[str, Any]:
    """The request body as a JSON object, or a :class:`GatewayError`."""
    content_type = environ.get("CONTENT_TYPE", "")
    media = content_type.split(";", 1)[0].strip().lower()
    if media != "application/json":
        raise GatewayError(
            400,
            "the body must be JSON, sent with 'Content-Type: application/json' "
            f"(got {content_type!r})"
            if content_type
            else "the body must be JSON, sent with 'Content-Type: application/json' "
            "(the request had no Content-Type)",
            code="invalid_content_type",
        )
    raw = _read_body(environ, max_body)
    if not raw:
        raise GatewayError(400, "the request body is empty; send a JSON object")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise GatewayError(
            400,
            f"the body is not valid UTF-8: byte 0x{raw[exc.start]:02x} at "
            f"position {exc.start}",
            code="invalid_encoding",
        ) from None
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise GatewayError(
            400,
            f"the body is not valid JSON: {exc.msg} at line {exc.lineno} "
            f"column {exc.colno}",
            code="invalid_json",
        ) from None
    except (ValueError, RecursionError) as exc:
        raise GatewayError(
            400, f"the body is not valid JSON: {exc}"[:300], code="invalid_json"
        ) from None
    if not isinstance(value, dict):
        raise GatewayError(
            400,
            f"the body must be a JSON object, got {_json_type(value)}",
            code="invalid_json",
        )
    return value


def _read_body(environ: dict[str, Any], max_body: int) -> bytes:
    length_text = environ.get("CONTENT_LENGTH") or ""
    stream = environ["wsgi.input"]
    too_large = GatewayError(
        413,
        f"the request body is larger than {max_body} bytes",
        code="request_too_large",
    )
    if length_text:
        try:
            length = int(length_text)
        except ValueError:
            raise GatewayError(400, "the Content-Length is not a number") from None
        if length > max_body:
            raise too_large
        return bytes(stream.read(length)) if length > 0 else b""
    parts: list[bytes] = []  # chunked: read up to one byte past the limit
    total = 0
    while total <= max_body:
        data = stream.read(min(_READ, max_body + 1 - total))
        if not data:
            break
        parts.append(data)
        total += len(data)
    if total > max_body:
        raise too_large
    return b"".join(parts)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"
