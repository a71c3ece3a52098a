"""What an endpoint is given and gives back: a :class:`Call` in, a
:class:`Reply` out, and the gateway's parts it may use (:class:`Services`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Protocol

from ._config import GatewayConfig, KeySpec
from ._errors import LONE_SURROGATES, GatewayError
from ._hangup import HangupWatcher
from ._keys import KeyRing
from ._log import AccessRecord
from ._request import read_json_object
from ._routes import Route, Routes

__all__ = [
    "Call",
    "Reply",
    "Services",
    "check_items",
    "read_body",
    "route_of",
    "stream_flag",
]

logger = logging.getLogger("chatproviders.gateway")


class Services(Protocol):
    """The parts of a gateway an endpoint uses."""

    config: GatewayConfig
    routes: Routes
    keys: KeyRing
    hangups: HangupWatcher


@dataclass
class Reply:
    """What an endpoint answers: a status, headers and the body's pieces."""

    status: int
    headers: list[tuple[str, str]]
    body: Iterable[bytes]

    @classmethod
    def json(
        cls, status: int, value: Any, headers: Iterable[tuple[str, str]] = ()
    ) -> Reply:
        """``value`` as a JSON body with its Content-Type and Content-Length."""
        data = json.dumps(value, ensure_ascii=False).encode("utf-8", LONE_SURROGATES)
        return cls(
            status,
            [
                *headers,
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(data))),
            ],
            [data],
        )

    @classmethod
    def error(cls, error: GatewayError) -> Reply:
        """``error`` in OpenAI's shape, with its status and headers."""
        return cls.json(error.status, error.to_dict(), error.headers)


@dataclass
class Call:
    """One request as an endpoint sees it: the WSGI ``environ``, the caller's
    key (None when the gateway has no keys), and its access-log record.
    """

    environ: dict[str, Any]
    record: AccessRecord
    key: Optional[KeySpec]
    max_body: int
    _closers: list[Callable[[], None]] = field(default_factory=list)

    def json(self) -> dict[str, Any]:
        """The body as a JSON object; any problem is a 400 (or 413)."""
        return read_json_object(self.environ, self.max_body)

    def on_close(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` when the reply has ended (or the client left)."""
        self._closers.append(callback)

    def close(self) -> None:
        """Run the callbacks of :meth:`on_close`, each once, in order; one
        that fails is logged and the others still run."""
        closers, self._closers = self._closers, []
        for callback in closers:
            try:
                callback()
            except Exception:
                logger.exception("cleaning up after %s failed", self.record.path)


def read_body(call: Call, known: Iterable[str]) -> dict[str, Any]:
    """The request's JSON object; a field not in ``known`` is a 400, as
    OpenAI's API answers it."""
    body = call.json()
    unknown = sorted(set(body) - set(known))
    if unknown:
        raise GatewayError(
            400,
            f"Unrecognized request argument supplied: {', '.join(unknown)}",
            param=unknown[0],
            code="unknown_parameter",
        )
    return body


def route_of(
    gateway: Services, call: Call, body: dict[str, Any]
) -> tuple[Route, Optional[str]]:
    """The route the body's ``model`` names, and the model to pass on; the
    caller's key must be allowed it."""
    route, model = gateway.routes.resolve(body.get("model"))
    call.record.route = route.name
    gateway.keys.allow(call.key, route.name)
    return route, model


def check_items(gateway: Services, body: dict[str, Any], name: str) -> None:
    """Refuse a ``name`` list (``messages``, ``input``) over the configured
    number of items."""
    items = body.get(name)
    limit = gateway.config.max_messages
    if isinstance(items, list) and len(items) > limit:
        raise GatewayError(
            400,
            f"{name} has {len(items)} items; at most {limit} are accepted",
            param=name,
            code="too_many_messages",
        )


def stream_flag(body: dict[str, Any]) -> bool:
    """The body's ``stream``: absent or null is false; anything but a bool is
    a 400."""
    flag = body.get("stream", False)
    if flag is None:
        return False
    if not isinstance(flag, bool):
        raise GatewayError(400, "stream must be true or false", param="stream")
    return flag
