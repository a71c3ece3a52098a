"""Several providers behind one client interface, tried in turn."""

from __future__ import annotations

import logging
import random
import sys
import threading
import time
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Callable, Optional

from .._client import Client
from .._constants import DEFAULT_CHECK_TIMEOUT
from .._messages import Messages, validate_messages
from .._numbers import check_seconds
from .._streams import chat_stream as _streaming
from .._streams.chat_stream import ChatStream
from ..exceptions import (
    AllProvidersFailedError,
    APIStatusError,
    APITimeoutError,
    Attempt,
    ChatProvidersError,
    ModelNotSupportedError,
    UnsupportedParameterError,
)

if TYPE_CHECKING:
    from .._responses import Responses
    from .check import CheckResult

__all__ = ["FallbackProvider", "wait_interval", "watch"]

logger = logging.getLogger("chatproviders")

#: The keywords of FallbackProvider's own; with_options passes the rest on.
_OWN_OPTIONS = frozenset({"shuffle", "cooldown", "total_timeout", "health_interval"})


class FallbackProvider(Client):
    """Ask ``providers`` in turn until one starts answering.

    ``providers`` are clients: provider clients, or other FallbackProviders
    (a nested one counts as one provider here, and tries its own in turn).

    A provider that fails before its first chunk (after its own retries) is
    skipped for ``cooldown`` seconds, unless every provider is cooling down.
    Once a chunk has arrived the stream belongs to that provider: a later
    failure is raised, never spliced with another provider's answer. When all
    fail, :class:`AllProvidersFailedError` lists every attempt. A provider
    that does not take the ``model`` or a parameter is passed over.
    ``total_timeout`` bounds the whole call, every provider included. One
    instance may be shared between threads. With ``health_interval``, a daemon
    thread runs :meth:`check` every that many seconds, until :meth:`close` or
    until the object is collected, so that a recovered provider comes back;
    each probe ends by its own deadline whatever a provider's session, a
    provider is probed once at a time, and :meth:`close` ends the probes in
    flight.
    """

    def __init__(
        self,
        providers: Iterable[Client],
        shuffle: bool = False,
        cooldown: float = 60.0,
        total_timeout: Optional[float] = None,
        health_interval: Optional[float] = None,
    ) -> None:
        clients = list(providers) if isinstance(providers, Iterable) else []
        if not clients or not all(isinstance(p, Client) for p in clients):
            raise TypeError(
                "providers must be a non-empty sequence of client instances, "
                "e.g. [Cromicle(base_url=...), Acytoo(base_url=...)]"
            )
        if not isinstance(shuffle, bool):
            raise TypeError(f"shuffle must be True or False, got {shuffle!r}")
        check_seconds(cooldown, "cooldown", zero=True)
        if total_timeout is not None:
            check_seconds(total_timeout, "total_timeout")
        self.providers = clients
        self._arguments["providers"] = clients  # a generator is spent by now
        self.shuffle = shuffle
        self.cooldown = cooldown
        self.total_timeout = total_timeout
        self._failed_at: dict[int, float] = {}
        self._lock = threading.Lock()
        self.health_interval = health_interval
        self._stop_checks = threading.Event()
        if health_interval is not None:
            check_seconds(health_interval, "health_interval")
            weakref.finalize(self, self._stop_checks.set)
            threading.Thread(
                target=watch,
                args=(
                    weakref.ref(self),
                    health_interval,
                    min(health_interval, DEFAULT_CHECK_TIMEOUT),
                    self._stop_checks,
                ),
                name="chatproviders-health",
                daemon=True,
            ).start()

    @property
    def responses(self) -> Responses:
        """The Responses API of the providers that serve it, tried in turn."""
        from .._responses import Responses

        return Responses(self)

    def check(self, timeout: float = DEFAULT_CHECK_TIMEOUT) -> list[CheckResult]:
        """Probe every provider at once (see :func:`chatproviders.check`); those
        not ok cool down, so that calls skip them, and those ok are ready again.
        """
        from .check import check

        results = check(self.providers, timeout=timeout)
        for index, result in enumerate(results):
            self._mark(index, failed=not result.ok)
        return results

    def prepare(
        self, messages: Messages, model: Optional[str], params: Any
    ) -> dict[int, Any]:
        """Each provider's request by index, leaving out those that do not take
        ``model`` or ``params``: they are not tried, and not counted as failed.

        Bad messages, or arguments no provider takes, raise here, before any I/O.
        """
        validate_messages(messages)
        prepared: dict[int, Any] = {}
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

    def send_prepared(
        self,
        prepared: dict[int, Any],
        *,
        deadline: Optional[float] = None,
        on_response: Optional[Callable[[Any], None]] = None,
        cancel: Optional[threading.Event] = None,
        started: Optional[float] = None,
    ) -> ChatStream:
        """The first provider's stream that produced a chunk (or ended cleanly)."""
        if started is None:  # the figures count the failed providers too
            started = _streaming.clock()
        if self.total_timeout is not None:
            own = time.monotonic() + self.total_timeout
            deadline = own if deadline is None else min(deadline, own)
        attempts: list[Attempt] = []
        tries = 0
        for index in self._order(list(prepared)):
            provider = self.providers[index]
            begun = _streaming.clock()
            try:
                stream = provider.send_prepared(
                    prepared[index],
                    deadline=deadline,
                    on_response=on_response,
                    cancel=cancel,
                    started=started,
                )
            except ChatProvidersError as error:
                tries += getattr(error, "tries", 1)
                elapsed = _streaming.clock() - begun
                attempts.append(_attempt(provider, error, elapsed))
                if isinstance(error, APITimeoutError) and error.limit == "total":
                    break
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

    def with_options(self, **changes: Any) -> FallbackProvider:
        """A copy with ``shuffle``, ``cooldown``, ``total_timeout`` or
        ``health_interval`` changed on itself, and every other keyword passed to
        each provider's ``with_options``.
        """
        own = {name: changes.pop(name) for name in _OWN_OPTIONS & changes.keys()}
        arguments = {**self._arguments, **own}
        arguments["providers"] = [p.with_options(**changes) for p in self.providers]
        return type(self)(**arguments)

    @property
    def closed(self) -> bool:
        """True once a provider is closed (as :meth:`close` closes them all):
        a call would be refused."""
        return any(provider.closed for provider in self.providers)

    def close(self) -> None:
        """Close every provider, stop the background checks and end the
        probes they have running.
        """
        self._stop_checks.set()
        for provider in self.providers:
            provider.close()
        health = sys.modules.get(__package__ + ".check")
        if health is not None:  # not loaded: no probe ever ran
            health.stop_probes(self.providers)

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


def _attempt(provider: Client, error: BaseException, elapsed: float) -> Attempt:
    status = error.status_code if isinstance(error, APIStatusError) else None
    return Attempt(provider.name(), error, elapsed, status)


def wait_interval(stop: threading.Event, seconds: float) -> bool:
    """Wait ``seconds`` between background checks; True once ``stop`` is set.
    Tests replace it to run the checks one at a time.
    """
    return stop.wait(seconds)


def watch(
    ref: weakref.ReferenceType[FallbackProvider],
    interval: float,
    timeout: float,
    stop: threading.Event,
) -> None:
    """A :class:`FallbackProvider`'s background checks: every ``interval``
    seconds, until ``stop`` is set or the object is collected. Holds the
    object only while a check runs, so that it can be collected meanwhile.
    """
    while not wait_interval(stop, interval):
        fallback = ref()
        if fallback is None:
            return
        try:
            fallback.check(timeout=timeout)
        except Exception:  # a bug must not end the checks for good
            logger.exception("background check of %r failed", fallback)
        del fallback
