"""An OpenAI-compatible gateway over chatproviders' clients, as a WSGI application.

::

    from chatproviders.gateway import make_app

    app = make_app({"routes": ["cromicle", "fast=cromicle,acytoo"],
                    "base_urls": {"cromicle": "http://127.0.0.1:8001"}})

``app`` serves ``POST /v1/chat/completions`` (streamed and not),
``GET /v1/models``, ``GET /health`` and ``GET /ready`` on any WSGI server;
``chatproviders serve`` runs it on waitress, and gunicorn's ``gthread``
workers run ``chatproviders.gateway:make_app('gateway.toml')``. A route is a
provider's name (``cromicle``), or an alias over several tried in turn
(``fast=cromicle,acytoo``, a :class:`~chatproviders.FallbackProvider`);
a request's ``model`` is ``ROUTE`` or ``ROUTE/MODEL``.

Modules: ``_config`` (the TOML config and keys files), ``_routes`` (routes
and their clients), ``_app`` (the WSGI application and its endpoints),
``_chat`` (chat completions), ``_request`` (reading a JSON body),
``_errors`` (OpenAI's error shape), ``_keys`` (keys and limits), ``_log``
(the access log), ``_hangup`` (clients that leave mid-stream), ``_server``
(running it on waitress).
"""

from __future__ import annotations

from typing import Optional, TextIO

from ._app import Gateway
from ._call import Call, Reply
from ._config import ConfigError, ConfigSource, GatewayConfig, KeySpec, load_config
from ._errors import GatewayError

__all__ = [
    "Call",
    "ConfigError",
    "Gateway",
    "GatewayConfig",
    "GatewayError",
    "KeySpec",
    "Reply",
    "load_config",
    "make_app",
]


def make_app(config: ConfigSource, *, access_log: Optional[TextIO] = None) -> Gateway:
    """The gateway as a WSGI application, from a config file's path (TOML) or
    a dict of the same shape (see :mod:`chatproviders.gateway._config`).

    Raises :class:`ConfigError` naming the field that is wrong. The access
    log goes to ``access_log`` (default: ``sys.stderr``). Call the app's
    ``close()`` when done with it.
    """
    return Gateway(config, access_log=access_log)
