"""Errors in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``.

Every failure the gateway answers is a :class:`GatewayError`: its status, a
message for the client, OpenAI's error ``type`` and ``code``, and any extra
headers (``Retry-After``, ``Allow``). :func:`from_provider_error` is the one
place an upstream's failure becomes a status:

==============================  ======  =====================================
upstream failure                status  why
==============================  ======  =====================================
a parameter or messages refused  400    the request is wrong for the route
a model the route lacks          404    as OpenAI answers an unknown model
an upstream 400 or 422 (every)  same   the upstream refused the request
rate limited (every try)         429    ``Retry-After`` from the upstream
timed out (every try)            504    the upstream took too long
anything else                    502    the upstream failed
==============================  ======  =====================================
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from http import HTTPStatus
from typing import Optional

from ..exceptions import (
    AllProvidersFailedError,
    APIStatusError,
    APITimeoutError,
    ChatProvidersError,
    InvalidMessagesError,
    ModelNotSupportedError,
    RateLimitError,
    UnsupportedParameterError,
)

__all__ = ["LONE_SURROGATES", "GatewayError", "error_body", "from_provider_error"]


class GatewayError(Exception):
    """A failure the gateway answers with ``status`` and OpenAI's error JSON."""

    def __init__(
        self,
        status: int,
        message: str,
        type: str = "invalid_request_error",
        code: Optional[str] = None,
        headers: Sequence[tuple[str, str]] = (),
        param: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.headers = list(headers)
        self.param = param

    @property
    def status_line(self) -> str:
        """``"404 Not Found"``: the status as WSGI's ``start_response`` takes it."""
        try:
            return f"{self.status} {HTTPStatus(self.status).phrase}"
        except ValueError:
            return f"{self.status} Error"

    def to_dict(self) -> dict[str, object]:
        """The body's JSON value."""
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def body(self) -> bytes:
        """The body's bytes: :meth:`to_dict` as UTF-8 JSON."""
        return error_body(self.to_dict())


#: How a lone surrogate (half an emoji an upstream sent as ``"\\ud83d"``),
#: which UTF-8 cannot hold, is written: as the same JSON escape, inside its string.
LONE_SURROGATES = "backslashreplace"


def error_body(value: object) -> bytes:
    """``value`` as UTF-8 JSON."""
    return json.dumps(value, ensure_ascii=False).encode("utf-8", LONE_SURROGATES)


def retry_after_header(seconds: Optional[float]) -> list[tuple[str, str]]:
    """``Retry-After`` in whole seconds (at least 1), or nothing."""
    if seconds is None or not math.isfinite(seconds):
        return []
    return [("Retry-After", str(max(1, math.ceil(seconds))))]


def from_provider_error(error: ChatProvidersError, route: str) -> GatewayError:
    """The status and message an upstream's failure (or refusal) is answered with.

    The message names the provider and says what happened; it never holds the
    upstream's host or a key (``Provider.locate`` hides those already).
    """
    if isinstance(error, (UnsupportedParameterError, InvalidMessagesError)):
        return GatewayError(400, error.message, code="invalid_request")
    if isinstance(error, ModelNotSupportedError):
        return GatewayError(
            404, f"route {route!r}: {error.message}", code="model_not_found"
        )
    if isinstance(error, AllProvidersFailedError):
        errors = [attempt.error for attempt in error.attempts]
        reasons = "; ".join(
            f"{attempt.provider.lower()}: {_message(attempt.error)}"
            for attempt in error.attempts
        )
        message = f"every provider of route {route!r} failed: {reasons}"
    else:
        errors = [error]
        message = f"{(error.provider or route).lower()}: {_message(error)}"
    if errors and all(isinstance(e, RateLimitError) for e in errors):
        waits = [e.retry_after for e in errors if isinstance(e, RateLimitError)]
        known = [w for w in waits if w is not None]
        return GatewayError(
            429,
            message,
            type="requests",
            code="rate_limit_exceeded",
            headers=retry_after_header(min(known) if known else None),
        )
    refused = [e.status_code for e in errors if isinstance(e, APIStatusError)]
    if errors and len(refused) == len(errors) and set(refused) <= {400, 422}:
        # the upstream refused the client's own request: the client's to fix
        # (an SDK does not retry it, parse() steps down), not a bad gateway
        return GatewayError(refused[0], message, code="upstream_refused")
    if errors and all(isinstance(e, APITimeoutError) for e in errors):
        return GatewayError(504, message, type="api_error", code="upstream_timeout")
    return GatewayError(502, message, type="api_error", code="upstream_error")


def _message(error: BaseException) -> str:
    if isinstance(error, ChatProvidersError):
        text = error.message
        if isinstance(error, APIStatusError) and str(error.status_code) not in text:
            text = f"HTTP {error.status_code}: {text}"
        return text
    return f"{type(error).__name__}: {error}"
