"""Several providers behind one client interface, tried in turn."""

from __future__ import annotations

import functools
import random
import threading
import time
from collections.abc import Iterable
from typing import Any, Optional

from ._background import BackgroundStream
from ._client import PreparedChat, Provider, _check_timeout
from ._closing import Closing
from ._constants import BACKGROUND_QUEUE_SIZE
from ._messages import Messages, validate_messages
from ._streaming import ChatResponse, ChatStream
from .exceptions import (
    AllProvidersFailedError,
    APIStatusError,
    APITimeoutError,
    Attempt,
    ChatProvidersError,
    ModelNotSupportedError,
    UnsupportedParameterError,
)

__all__ = ["FallbackProvider"]


class FallbackProvider(Closing):
    """Ask ``providers`` in turn until one starts answering.

    A provider that fails before its first chunk (after its own retries) is
    skipped for ``cooldown`` seconds, unless every provider is cooling down.
    Once a chunk has arrived the stream belongs to that provider: a later
    failure is raised, never spliced with another provider's answer. When all
    fail, :class:`AllProvidersFailedError` lists every attempt. A provider
    that does not take the ``model`` or a parameter is passed over.
    ``total_timeout`` bounds the whole call, every provider included. One
    instance may be shared between threads.
    """

    def __init__(
        self,
        providers: Iterable[Provider],
        shuffle: bool = False,
        cooldown: float = 60.0,
        total_timeout: Optional[float] = None,
    ) -> None:
        clients = list(providers) if isinstance(providers, Iterable) else []
        if not clients or not all(isinstance(p, Provider) for p in clients):
            raise TypeError(
                "providers must be a non-empty sequence of client instances, "
                "e.g. [Cromicle(base_url=...), Acytoo(base_url=...)]"
            )
        if not isinstance(shuffle, bool):
            raise TypeError(f"shuffle must be True or False, got {shuffle!r}")
        if not isinstance(cooldown, (int, float)) or not 0 <= cooldown < float("inf"):
            raise ValueError(f"cooldown must be seconds >= 0, got {cooldown!r}")
        if total_timeout is not None:
            _check_timeout(total_timeout, "total_timeout")
        self.providers = clients
        self.shuffle = shuffle
        self.cooldown = cooldown
        self.total_timeout = total_timeout
        self._failed_at: dict[int, float] = {}
        self._lock = threading.Lock()

    def stream(
        self, messages: Messages, model: Optional[str] = None, **params: Any
    ) -> ChatStream:
        """The first provider's stream that produced a chunk (or ended cleanly)."""
        return self._stream(self._prepare(messages, model, params))

    def stream_in_background(
        self,
        messages: Messages,
        model: Optional[str] = None,
        maxsize: int = BACKGROUND_QUEUE_SIZE,
        **params: Any,
    ) -> BackgroundStream:
        """As :meth:`Provider.stream_in_background`, over every provider."""
        prepared = self._prepare(messages, model, params)
        return BackgroundStream._of_request(
            functools.partial(self._stream, prepared), maxsize
        )

    def _prepare(
        self, messages: Messages, model: Optional[str], params: dict[str, Any]
    ) -> dict[int, PreparedChat]:
        """Each provider's request by index, leaving out those that do not take
        ``model`` or ``params``: they are not tried, and not counted as failed.

        Bad messages, or arguments no provider takes, raise here, before any I/O.
        """
        validate_messages(messages)
        prepared: dict[int, PreparedChat] = {}
        refused: list[ChatProvidersError] = []
        for index, provider in enumerate(self.providers):
            try:
                prepared[index] = provider.prepare(messages, model, params)
            except (ModelNotSupportedError, UnsupportedParameterError) as error:
                refused.append(error)
        if len(refused) == 1 and not prepared:
            raise refused[0]
        if not prepared:  # each provider's reason, not just the first one's
            reasons = "; ".join(str(error) for error in refused)
            raise type(refused[0])(f"no provider takes this call: {reasons}")
        return prepared

    def _stream(self, prepared: dict[int, PreparedChat], **hooks: Any) -> ChatStream:
        started = time.monotonic()
        deadline = started + self.total_timeout if self.total_timeout else None
        attempts: list[Attempt] = []
        tries = 0
        for index in self._order(list(prepared)):
            provider = self.providers[index]
            begun = time.monotonic()
            try:
                stream = provider._open(prepared[index], deadline=deadline, **hooks)
            except ChatProvidersError as error:
                tries += getattr(error, "tries", 1)
                attempts.append(_attempt(provider, error, time.monotonic() - begun))
                if isinstance(error, APITimeoutError) and error.limit == "total":
                    break
                cancel = hooks.get("cancel")
                if cancel is not None and cancel.is_set():
                    raise
                self._mark(index, failed=True)
                continue
            self._mark(index, failed=False)
            stream.attempts += tries
            return stream
        raise AllProvidersFailedError(
            f"all {len(attempts)} provider attempt(s) failed:", attempts=tuple(attempts)
        )

    def complete(
        self, messages: Messages, model: Optional[str] = None, **params: Any
    ) -> ChatResponse:
        """The whole reply of the first provider that answers."""
        return self.stream(messages, model, **params).until_done()

    def close(self) -> None:
        """Close every provider."""
        for provider in self.providers:
            provider.close()

    def __repr__(self) -> str:
        names = ", ".join(p.name() for p in self.providers)
        return f"<FallbackProvider [{names}]>"

    def _order(self, indexes: list[int]) -> list[int]:
        """``indexes`` to try: those not cooling down, or all if every one is."""
        if self.shuffle:
            random.shuffle(indexes)
        now = time.monotonic()
        with self._lock:
            ready = [
                i
                for i in indexes
                if now - self._failed_at.get(i, -self.cooldown) >= self.cooldown
            ]
        return ready or indexes

    def _mark(self, index: int, failed: bool) -> None:
        with self._lock:
            if failed:
                self._failed_at[index] = time.monotonic()
            else:
                self._failed_at.pop(index, None)


def _attempt(provider: Provider, error: BaseException, elapsed: float) -> Attempt:
    status = error.status_code if isinstance(error, APIStatusError) else None
    return Attempt(provider.name(), error, elapsed, status)
