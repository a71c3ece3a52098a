"""The WSGI application: endpoints by path and method, keys, errors, the log.

Every request, whatever becomes of it, gets one access-log line when its
reply has ended, and every failure is answered in OpenAI's error shape:
never a traceback, and a 500 only for a bug of the gateway's own.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Callable, Optional, TextIO

from ._call import Call, Reply
from ._chat import chat_completions
from ._config import ConfigSource, load_config
from ._errors import GatewayError
from ._hangup import HangupWatcher
from ._keys import KeyRing
from ._log import AccessLog, AccessRecord
from ._responses import responses
from ._routes import Routes

__all__ = ["Endpoint", "Gateway"]

logger = logging.getLogger("chatproviders.gateway")

StartResponse = Callable[..., Any]


#: An endpoint: ``handler(gateway, call) -> Reply``.
Handler = Callable[["Gateway", Call], Reply]


@dataclass(frozen=True)
class Endpoint:
    """A handler, and whether it needs the caller's key."""

    handler: Handler
    #: False for the probes a load balancer sends (``/health``, ``/ready``).
    needs_key: bool = True


class Gateway:
    """An OpenAI-compatible WSGI application over chatproviders' clients.

    Make it with :func:`chatproviders.gateway.make_app`. ``access_log`` is
    where each request's line goes (default: ``sys.stderr``; None: nowhere).
    A new endpoint (``/v1/responses``, say) is one :meth:`add_endpoint` call.
    """

    def __init__(
        self, config: ConfigSource, *, access_log: Optional[TextIO] = None
    ) -> None:
        self.config = load_config(config)
        self.routes = Routes(self.config)
        self.keys = KeyRing(self.config.keys, self.config.limits_storage)
        self.log = AccessLog(sys.stderr if access_log is None else access_log)
        self.hangups = HangupWatcher()
        self.endpoints: dict[str, dict[str, Endpoint]] = {}
        self.add_endpoint("POST", "/v1/chat/completions", chat_completions)
        self.add_endpoint("POST", "/v1/responses", responses)
        self.add_endpoint("GET", "/v1/models", _models)
        self.add_endpoint("GET", "/health", _health, needs_key=False)
        self.add_endpoint("GET", "/ready", _ready, needs_key=False)
        self._active = 0
        self._idle = threading.Condition()

    def add_endpoint(
        self, method: str, path: str, handler: Handler, *, needs_key: bool = True
    ) -> None:
        """Serve ``handler(gateway, call) -> Reply`` at ``method path``.

        It gets the authenticated :class:`Call`; a :class:`GatewayError` it
        raises is answered in OpenAI's error shape.
        """
        self.endpoints.setdefault(path, {})[method.upper()] = Endpoint(
            handler, needs_key
        )

    def __call__(
        self, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "/")
        record = AccessRecord(method, path)
        call = Call(environ, record, None, self.config.max_body)
        with self._idle:
            self._active += 1
        try:
            reply = self._dispatch(call)
        except GatewayError as error:
            reply = Reply.error(error)
        except Exception:
            logger.exception("the gateway failed on %s %s", method, path)
            reply = Reply.error(
                GatewayError(
                    500, "the gateway failed; see its log", type="server_error"
                )
            )
        record.status = reply.status
        try:
            start_response(_status_line(reply.status), reply.headers)
        except BaseException:
            _Body(reply.body, call, self).close()
            raise
        return _Body(reply.body, call, self)

    def wait_idle(self, timeout: Optional[float]) -> bool:
        """Wait until no request is in progress (True), or ``timeout`` passes."""
        with self._idle:
            return self._idle.wait_for(lambda: self._active == 0, timeout)

    @property
    def active(self) -> int:
        """Requests in progress, streams included."""
        return self._active

    def close(self) -> None:
        """End every open stream and close every upstream client."""
        self.hangups.stop()
        self.routes.close()

    def _dispatch(self, call: Call) -> Reply:
        methods = self.endpoints.get(call.record.path)
        if methods is None:
            raise GatewayError(
                404,
                f"Invalid URL ({call.record.method} {call.record.path})",
                code="unknown_url",
            )
        endpoint = methods.get(call.record.method)
        if endpoint is None:
            allowed = ", ".join(sorted(methods))
            raise GatewayError(
                405,
                f"{call.record.method} is not allowed on {call.record.path}; "
                f"use {allowed}",
                code="method_not_allowed",
                headers=[("Allow", allowed)],
            )
        if endpoint.needs_key:
            call.key = self.keys.authenticate(call.environ.get("HTTP_AUTHORIZATION"))
            call.record.key = call.key.name if call.key else None
        return endpoint.handler(self, call)

    def _done(self, call: Call) -> None:
        call.close()
        self.log.write(call.record)
        with self._idle:
            self._active -= 1
            self._idle.notify_all()


class _Body:
    """The reply's body as the WSGI server reads it; ``close()`` ends the request."""

    def __init__(self, body: Iterable[bytes], call: Call, gateway: Gateway) -> None:
        self._body = body
        self._iterator: Optional[Iterator[bytes]] = None
        self._call = call
        self._gateway = gateway
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        for piece in self._body:
            self._call.record.first_byte()
            yield piece

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._gateway._done(self._call)


def _status_line(status: int) -> str:
    return GatewayError(status, "").status_line


def _models(gateway: Gateway, call: Call) -> Reply:
    allowed = None if call.key is None else call.key.models
    ids = [
        model
        for model in gateway.routes.model_ids()
        if allowed is None or model.partition("/")[0] in allowed
    ]
    data = [
        {"id": model, "object": "model", "created": 0, "owned_by": "chatproviders"}
        for model in ids
    ]
    return Reply.json(200, {"object": "list", "data": data})


def _health(gateway: Gateway, call: Call) -> Reply:
    return Reply.json(200, {"status": "ok"})


def _ready(gateway: Gateway, call: Call) -> Reply:
    routes = gateway.routes.readiness()
    ready = any(route["ready"] for route in routes.values())
    return Reply.json(200 if ready else 503, {"ready": ready, "routes": routes})
