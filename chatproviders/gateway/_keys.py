"""Client keys: who is calling (compared in constant time), and their limits.

Limits go through the ``limits`` library: in memory by default (one
process), or in Redis (``redis://HOST:PORT``), shared by every worker and
machine that points at it. Each key has a fixed one-minute window of
requests and one of tokens; a request is refused with 429 and
``Retry-After`` (the seconds until the window resets) when either is spent.
Tokens are counted after the reply (the usage the upstream reported, else an
estimate), so the call that crosses the limit finishes and the next waits.
"""

from __future__ import annotations

import hmac
import logging
import math
import time
from collections.abc import Sequence
from typing import Any, Optional

from .._options import redact
from ._config import ConfigError, KeySpec
from ._errors import GatewayError, retry_after_header

__all__ = ["KeyRing"]

logger = logging.getLogger("chatproviders.gateway")


class KeyRing:
    """The keys of a gateway and their limits in ``storage`` (a ``limits`` URI)."""

    def __init__(self, keys: Sequence[KeySpec], storage: str = "memory://") -> None:
        self.keys = list(keys)
        self._limiter: Any = None
        self._items: dict[tuple[str, str], Any] = {}
        if any(k.requests_per_minute or k.tokens_per_minute for k in self.keys):
            try:
                from limits import RateLimitItemPerMinute
                from limits import storage as storages
                from limits.strategies import FixedWindowRateLimiter
            except ImportError as exc:  # pragma: no cover - the serve extra has it
                raise RuntimeError(
                    "key limits need the limits package: "
                    "pip install 'chatproviders[serve]'"
                ) from exc
            try:
                backend = storages.storage_from_string(storage)
            except Exception as exc:  # limits' ConfigurationError, a missing redis
                shown = redact(storage)  # a password in the URL is never shown
                reason = str(exc).replace(storage, shown)
                raise ConfigError(f"limits_storage {shown!r}: {reason}") from None
            self._limiter = FixedWindowRateLimiter(backend)
            for spec in self.keys:
                for kind in ("requests", "tokens"):
                    amount = getattr(spec, f"{kind}_per_minute")
                    if amount:
                        self._items[spec.name, kind] = RateLimitItemPerMinute(
                            amount, namespace=f"chatproviders-{kind}"
                        )

    @property
    def required(self) -> bool:
        """True when clients must send a key."""
        return bool(self.keys)

    def authenticate(self, authorization: Optional[str]) -> Optional[KeySpec]:
        """The key an ``Authorization: Bearer ...`` header names; None when no
        keys are configured. Raises 401 otherwise. Every key is compared, in
        constant time, so the time taken says nothing of which came close.
        """
        if not self.keys:
            return None
        scheme, _, token = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise GatewayError(
                401,
                "You didn't provide an API key. Send it in the Authorization "
                "header: 'Authorization: Bearer YOUR_KEY'.",
                code="invalid_api_key",
            )
        given = token.strip().encode("utf-8", "surrogateescape")
        found = None
        for spec in self.keys:
            if hmac.compare_digest(given, spec.key.encode("utf-8")):
                found = spec
        if found is None:
            raise GatewayError(
                401, "Incorrect API key provided.", code="invalid_api_key"
            )
        return found

    def allow(self, key: Optional[KeySpec], route: str) -> None:
        """Raise 403 when ``key`` may not use ``route``."""
        if key is not None and key.models is not None and route not in key.models:
            raise GatewayError(
                403,
                f"the key {key.name!r} may not use the model {route!r}",
                type="permission_error",
                code="model_not_allowed",
            )

    def admit(self, key: Optional[KeySpec]) -> None:
        """Count one request of ``key``; 429 with Retry-After when over a limit,
        503 when the limits' storage cannot be reached (limits hold, or nothing).
        """
        if key is None or self._limiter is None:
            return
        try:
            self._admit(key)
        except GatewayError:
            raise
        except Exception as exc:  # Redis down: refuse rather than run unlimited
            logger.warning("the limits storage failed: %r", exc)
            raise GatewayError(
                503,
                "the gateway cannot count this key's limits now; try again",
                type="server_error",
                code="limits_unavailable",
                headers=retry_after_header(1),
            ) from None

    def _admit(self, key: KeySpec) -> None:
        tokens = self._items.get((key.name, "tokens"))
        if tokens is not None and not self._limiter.test(tokens, key.name):
            raise self._refusal(tokens, key, "tokens per minute")
        requests = self._items.get((key.name, "requests"))
        if requests is not None and not self._limiter.hit(requests, key.name):
            raise self._refusal(requests, key, "requests per minute")

    def spend(self, key: Optional[KeySpec], tokens: int) -> None:
        """Count ``tokens`` against ``key``'s tokens per minute."""
        item = None if key is None else self._items.get((key.name, "tokens"))
        if item is None or tokens <= 0 or key is None:
            return
        try:
            self._limiter.hit(item, key.name, cost=tokens)  # even past the limit
        except Exception as exc:  # the reply is out already: not the client's fault
            logger.warning("the limits storage failed: %r", exc)

    def _refusal(self, item: Any, key: KeySpec, what: str) -> GatewayError:
        stats = self._limiter.get_window_stats(item, key.name)
        wait = max(1.0, math.ceil(stats.reset_time - time.time()))
        return GatewayError(
            429,
            f"Rate limit reached for key {key.name!r}: {item.amount} {what}. "
            f"Try again in {wait:.0f}s.",
            type="requests",
            code="rate_limit_exceeded",
            headers=retry_after_header(wait),
        )
