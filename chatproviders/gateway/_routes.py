"""Routes: the model names a gateway serves, each a client (or a fallback).

A route named after a provider (``cromicle``) is that provider's client; an
alias (``fast=cromicle,acytoo``) is a :class:`~chatproviders.FallbackProvider`
over one client per member. One client is made per provider name and shared
by every route that names it, so a connection pool and a fallback's cooldown
serve all of them.
"""

from __future__ import annotations

import inspect
import threading
import time
from dataclasses import dataclass
from typing import Any, Optional

from .._client import Client
from .._health.fallback import FallbackProvider
from .._registry import get_provider
from ..exceptions import ChatProvidersError
from ._config import ConfigError, GatewayConfig
from ._errors import GatewayError

__all__ = ["Route", "Routes"]


@dataclass
class Route:
    """One route: its ``name``, its ``client``, and its members' names."""

    name: str
    client: Client
    members: list[str]
    models: list[str]

    def member_name(self, class_name: str, host: Optional[str] = None) -> str:
        """The route name of the member whose class answered, from ``host``
        when two members are of one class (``openai`` and ``openaicompatible``).
        """
        same = [
            (member, client)
            for member, client in zip(self.members, self._clients())
            if type(client).name() == class_name
        ]
        for member, client in same:
            if len(same) == 1 or getattr(client, "host", None) == host:
                return member
        return same[0][0] if same else class_name.lower()

    def _clients(self) -> list[Client]:
        if isinstance(self.client, FallbackProvider):
            return list(self.client.providers)
        return [self.client]


class Routes:
    """Every route of a config, and where a ``model`` field leads."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        used = {name for members in config.routes.values() for name in members}
        for table in ("base_urls", "api_keys"):  # a typo would go unnoticed
            for name in getattr(config, table):
                if name not in used:
                    raise ConfigError(
                        f"{table}.{name}: no route uses a provider called {name!r}"
                    )
        self.clients: dict[str, Client] = {}
        self.routes: dict[str, Route] = {}
        for alias, members in config.routes.items():
            clients = [self._client(name) for name in members]
            if len(members) == 1 and alias == members[0]:
                client = clients[0]
            else:
                client = FallbackProvider(clients)
            models = config.models.get(alias)
            if models is None:
                models = list(getattr(clients[0], "models", []) or [])
            self.routes[alias] = Route(alias, client, members, models)
        self._health: dict[str, Any] = {}
        self._checked_at = -float("inf")
        self._check_lock = threading.Lock()

    def resolve(self, model: Any) -> tuple[Route, Optional[str]]:
        """The route and the model to pass for a request's ``model`` field:
        ``ROUTE`` (the provider's default model) or ``ROUTE/MODEL``.
        """
        if not isinstance(model, str) or not model:
            raise GatewayError(
                400,
                "you must provide a model parameter: a route "
                f"({', '.join(self.routes)}) or ROUTE/MODEL",
                param="model",
                code="missing_model" if not model else "invalid_type",
            )
        name, _, inner = model.partition("/")
        route = self.routes.get(name.lower())
        if route is None:
            raise GatewayError(
                404,
                f"The model {model!r} does not exist; this gateway serves "
                f"{', '.join(self.routes)} (and ROUTE/MODEL)",
                param="model",
                code="model_not_found",
            )
        listed = self.config.models.get(route.name)
        if inner and listed is not None and inner not in listed:
            raise GatewayError(
                404,
                f"The model {model!r} does not exist; route {route.name!r} "
                f"serves {', '.join(listed) or 'its default only'}",
                param="model",
                code="model_not_found",
            )
        return route, inner or None

    def model_ids(self) -> list[str]:
        """Every route's name, and ``ROUTE/MODEL`` for the models it lists:
        those of the config's ``[models]``, else the provider's own list, else
        (an OpenAI-compatible server) the server's ``GET /models``, asked now.
        """
        ids: list[str] = []
        for route in self.routes.values():
            ids.append(route.name)
            models = route.models or self._served_models(route)
            ids.extend(f"{route.name}/{model}" for model in models)
        return ids

    def _served_models(self, route: Route) -> list[str]:
        list_models = getattr(route.client, "list_models", None)
        if list_models is None:
            return []
        try:
            return list(list_models())
        except ChatProvidersError:  # a server down lists nothing, not a 500
            return []

    def readiness(self, timeout: float = 5.0) -> dict[str, Any]:
        """Each route's status from live checks, at most one run per
        ``health_interval`` (the last results are reused in between).
        """
        from .._health.check import check

        with self._check_lock:
            now = time.monotonic()
            if now - self._checked_at >= self.config.health_interval:
                names = list(self.clients)
                results = check([self.clients[n] for n in names], timeout=timeout)
                self._health = {n: r.status for n, r in zip(names, results)}
                self._checked_at = time.monotonic()
            health = dict(self._health)
        routes = {}
        for route in self.routes.values():
            members = {m: health.get(m, "unknown") for m in route.members}
            ok = any(status == "ok" for status in members.values())
            routes[route.name] = {"ready": ok, "providers": members}
        return routes

    def close(self) -> None:
        """Close every client: their open streams end."""
        for client in self.clients.values():
            client.close()

    def _client(self, name: str) -> Client:
        if name in self.clients:
            return self.clients[name]
        try:
            cls = get_provider(name)
        except ChatProvidersError as exc:
            raise ConfigError(f"route member {name!r}: {exc.message}") from None
        options: dict[str, Any] = {}
        config = self.config
        if name in config.base_urls:
            options["base_url"] = config.base_urls[name]
        if name in config.api_keys:
            if "api_key" not in inspect.signature(cls.__init__).parameters:
                raise ConfigError(f"api_keys.{name}: {cls.name()} takes no API key")
            options["api_key"] = config.api_keys[name]
        if config.max_retries is not None:
            options["max_retries"] = config.max_retries
        if config.timeout is not None:
            options["timeout"] = config.timeout
        try:
            client = cls(**options)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"provider {name!r}: {exc}") from None
        self.clients[name] = client
        return client
