"""Live health: which providers answer right now, measured with a real chat.

:func:`check` sends each target one short chat request, concurrently, and
returns a :class:`CheckResult` per target, in the order given. A probe is
never retried, is bounded as a whole by ``timeout`` (connect, wait and
read), reads up to the reply's first chunk of text and then closes the
response, which drops its connection.

The ``status`` of a result is read from the error the probe raised:

=============  ==========================================================
ok             a chunk of text, reasoning or a tool call arrived
down           no connection: refused, DNS, reset before an answer
timeout        ``timeout`` passed before the first chunk
auth           401 or 403
rate_limited   429, or a reply saying its quota is exceeded
blocked        an HTML page (a bot wall or challenge), whatever the status
bad_reply      a body that breaks the protocol, or an empty answer
error          any other status, or a target that cannot be probed
=============  ==========================================================
"""

from __future__ import annotations

import copy as _copy
import logging
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Optional, Union

import requests
import requests.adapters

from .._client import Client
from .._constants import DEFAULT_CHECK_TIMEOUT
from .._messages import Messages
from .._numbers import check_seconds
from .._options import without_credentials
from .._provider import Provider
from .._registry import get_provider, providers_with_default_url
from .._streams.chat_stream import ChatStream
from .._streams.events import ReasoningDelta, StreamEvent, TextDelta, ToolCallDelta
from .._wire.deadline import GuardedAdapter
from ..exceptions import (
    AllProvidersFailedError,
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    ChatProvidersError,
    IncompleteStreamError,
    RateLimitError,
    ResponseFormatError,
)

__all__ = [
    "DEFAULT_CHECK_TIMEOUT",
    "DEFAULT_PROMPT",
    "STATUSES",
    "CheckResult",
    "check",
    "classify",
]

#: What a probe asks. No token limit is set: a reasoning model may think first.
DEFAULT_PROMPT = "Reply with the word OK."
#: Every status a result may have, best first.
STATUSES = (
    "ok",
    "down",
    "timeout",
    "auth",
    "rate_limited",
    "blocked",
    "bad_reply",
    "error",
)
#: How long past ``timeout`` :func:`check` waits for a probe before it reports
#: a timeout without it (a DNS lookup, for one, obeys no socket timeout).
GRACE = 2.0
#: An error line is cut to this many characters.
ERROR_LINE = 300

logger = logging.getLogger("chatproviders")

#: The clock of ``ttft`` and ``elapsed``; tests replace it.
clock: Callable[[], float] = time.monotonic


def utcnow() -> datetime:
    """When a probe starts (``checked_at``); tests replace it."""
    return datetime.now(timezone.utc)


Target = Union[Client, type[Provider], str]


@dataclass(frozen=True)
class CheckResult:
    """How one provider answered one probe."""

    #: The provider's name, e.g. ``"Cromicle"``.
    provider: str
    #: The endpoint probed, without any ``user:password@``; ``""`` if none.
    url: str
    #: One of "ok", "down", "timeout", "auth", "rate_limited", "blocked",
    #: "bad_reply" or "error", best first.
    status: str
    #: Seconds to the first chunk of text; None if none came.
    ttft: Optional[float]
    #: Seconds the whole probe took.
    elapsed: float
    #: What went wrong, one line; None when ``ok``.
    error: Optional[str]
    #: When the probe started (UTC).
    checked_at: datetime
    #: The model asked; ``""`` if none could be chosen.
    model: str

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        """The fields (and ``ok``) as JSON values; ``checked_at`` in ISO 8601."""
        return {
            "provider": self.provider,
            "url": self.url,
            "ok": self.ok,
            "status": self.status,
            "ttft": self.ttft,
            "elapsed": self.elapsed,
            "error": self.error,
            "checked_at": self.checked_at.isoformat(),
            "model": self.model,
        }


def check(
    targets: Union[Target, Iterable[Target], None] = None,
    *,
    timeout: float = DEFAULT_CHECK_TIMEOUT,
    prompt: str = DEFAULT_PROMPT,
) -> list[CheckResult]:
    """Probe each target with one short real chat, all at once; one result each,
    in the order given.

    A target is a client (probed at its ``base_url``, with its model, headers
    and session; a ``FallbackProvider`` by one chat through it), a provider
    class or a registered name (probed at its default URL). Without targets:
    every registered provider that has a default URL (``OpenAICompatible``
    has none: pass a client of it). A class without a default URL, and a
    closed client (it refuses to send), give an ``error`` result saying so.
    A provider is asked for its default model, whether or not it lists
    models; an ``OpenAICompatible`` client without a model asks for the first
    model its server lists. Unknown names and bad arguments raise before any
    request.

    Each probe ends by ``timeout`` whatever the client's session: requests'
    own ``HTTPAdapter`` is swapped for a :class:`GuardedAdapter` for the
    probe (an adapter of another kind is used as it is). A client is probed
    once at a time: while its last probe still runs, its result is a
    ``timeout`` saying so, and nothing is sent.
    """
    check_seconds(timeout, "timeout")
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError(f"prompt must be a non-empty str, got {prompt!r}")
    clients = [_resolve(target) for target in _targets(targets)]
    slots: list[Optional[CheckResult]] = [None] * len(clients)
    threads = []
    for index, client in enumerate(clients):
        thread = threading.Thread(
            target=_run,
            args=(slots, index, client, prompt, timeout),
            name=f"chatproviders-check-{index}",
            daemon=True,
        )
        if isinstance(client, Client) and not _start_probe(client, thread):
            slots[index] = _late(client, timeout, "the last probe has not ended yet")
            continue
        thread.start()
        threads.append(thread)
    end = time.monotonic() + timeout + GRACE
    for thread in threads:
        thread.join(max(0.0, end - time.monotonic()))
    return [
        slot if slot is not None else _late(client, timeout)
        for slot, client in zip(slots, clients)
    ]


def classify(error: BaseException) -> str:
    """The status for the error a probe raised (see the module's table); for
    a FallbackProvider's, the one its attempts share, else ``error``.
    """
    if isinstance(error, AllProvidersFailedError) and error.attempts:
        statuses = {classify(attempt.error) for attempt in error.attempts}
        return statuses.pop() if len(statuses) == 1 else "error"
    if isinstance(error, APITimeoutError):
        return "timeout"
    if isinstance(error, IncompleteStreamError):
        return "bad_reply"
    if isinstance(error, APIConnectionError):
        return "down"
    if _is_html_page(error):
        return "blocked"
    if isinstance(error, AuthenticationError) or (
        isinstance(error, APIStatusError) and error.status_code in (401, 403)
    ):
        return "auth"
    if isinstance(error, RateLimitError) or _says_quota(error):
        return "rate_limited"
    if isinstance(error, ResponseFormatError):
        return "bad_reply"
    return "error"


# -- one probe ---------------------------------------------------------------


@dataclass(frozen=True)
class _Unprobeable:
    """A target that cannot be probed, and why: an ``error`` result."""

    provider: str
    reason: str


Resolved = Union[Client, type[Provider], _Unprobeable]


def _targets(targets: object) -> list[object]:
    if targets is None:
        return [cls for cls in providers_with_default_url()]
    if isinstance(targets, (str, type, Client)):
        return [targets]
    if not isinstance(targets, Iterable):
        raise TypeError(_WHAT_TARGETS + f", got {type(targets).__name__}")
    return list(targets)


_WHAT_TARGETS = "targets must be clients, provider classes or names (or a list of them)"


def _resolve(target: object) -> Resolved:
    """A client or class to probe; raises for what is not a provider at all."""
    if isinstance(target, Client):
        return target
    if isinstance(target, str) or (
        isinstance(target, type) and issubclass(target, Provider)
    ):
        cls = get_provider(target)
        if cls.default_endpoint() is None:
            return _Unprobeable(
                cls.name(),
                "has no default URL: give it a base_url "
                "(on the command line, --base-url NAME=URL)",
            )
        return cls
    raise TypeError(_WHAT_TARGETS + f", got {type(target).__name__}")


def _run(
    slots: list[Optional[CheckResult]],
    index: int,
    target: Resolved,
    prompt: str,
    timeout: float,
) -> None:
    slots[index] = _probe(target, prompt, timeout)


def _probe(target: Resolved, prompt: str, timeout: float) -> CheckResult:
    checked_at, started = utcnow(), clock()
    deadline = time.monotonic() + timeout
    if isinstance(target, _Unprobeable):
        return CheckResult(
            target.provider, "", "error", None, 0.0, target.reason, checked_at, ""
        )
    name, url, model, ttft = target.name(), _url_of(target), "", None
    if isinstance(target, Client) and target.closed:
        line = "the client is closed: it refuses to send"
        return CheckResult(name, url, "error", None, 0.0, line, checked_at, "")
    messages: Messages = [{"role": "user", "content": prompt}]
    made: list[Any] = []  # what this probe opened, closed when it ends
    try:
        if isinstance(target, Client):
            client = target
        else:  # a class: at its default URL, with a session of its own
            client = target(max_retries=0, total_timeout=timeout)
            made.append(client)
        probe = _probe_copy(client, deadline, made)
        made.append(probe)
        _adopt(target, probe)
        chosen = None
        if isinstance(probe, Provider):
            model = probe.probe_model(_left(deadline))
            if model != probe.default_model:  # one its server lists: by name
                chosen = model
        prepared = probe.prepare(messages, chosen, {})
        with probe.send_prepared(prepared, deadline=deadline) as stream:
            if next(_first_delta(stream), None) is None:
                raise ResponseFormatError("answered with no text")
            ttft = clock() - started  # text, reasoning or a tool call
            model = stream.model
    except (ChatProvidersError, ValueError, TypeError, RuntimeError) as error:
        # RuntimeError: the client was closed while the probe ran.
        logger.debug("check of %s failed", name, exc_info=True)
        line = _one_line(_describe(error))
        status = classify(error)
        return CheckResult(
            name, url, status, ttft, clock() - started, line, checked_at, model
        )
    finally:
        for thing in reversed(made):
            thing.close()
    return CheckResult(
        name, url, "ok", ttft, clock() - started, None, checked_at, model
    )


def _first_delta(stream: ChatStream) -> Iterator[StreamEvent]:
    """The reply's deltas that show a model at work: text, reasoning (a model
    that thinks first) or a tool call."""
    wanted = (TextDelta, ReasoningDelta, ToolCallDelta)
    return (event for event in stream.events() if isinstance(event, wanted))


def _probe_copy(client: Client, deadline: float, made: list[Any]) -> Client:
    """A copy of ``client`` for one probe: no retries, done by ``deadline``
    whatever its session, and (a FallbackProvider's) no background checks.

    A session's requests ``HTTPAdapter`` cannot bound a server that trickles
    its reply, so the copy has the session's settings with a
    :class:`GuardedAdapter` in its place; an adapter of another kind is kept
    (nothing outside it can bound it). What is made is put in ``made``.
    """
    members = getattr(client, "providers", None)  # a FallbackProvider's
    if isinstance(members, list):
        copies = [_probe_copy(member, deadline, made) for member in members]
        return client.with_options(
            providers=copies, health_interval=None, total_timeout=_left(deadline)
        )
    options: dict[str, Any] = {"max_retries": 0, "total_timeout": _left(deadline)}
    session = getattr(client, "session", None)
    if isinstance(session, requests.Session):
        guarded = _guarded(session, made)
        if guarded is not session:
            options["session"] = guarded
    return client.with_options(**options)


def _guarded(session: requests.Session, made: list[Any]) -> requests.Session:
    """``session``, or a copy whose requests ``HTTPAdapter`` are guarded ones."""
    plain = [
        prefix
        for prefix, adapter in session.adapters.items()
        if type(adapter) is requests.adapters.HTTPAdapter
    ]
    if not plain:
        return session
    copy = _copy.copy(session)  # its settings, shared; adapters of its own
    copy.adapters = OrderedDict(session.adapters)
    for prefix in plain:
        adapter: Any = session.adapters[prefix]
        copy.adapters[prefix] = guarded = GuardedAdapter(
            pool_connections=adapter._pool_connections,
            pool_maxsize=adapter._pool_maxsize,
            max_retries=adapter.max_retries,
            pool_block=adapter._pool_block,
        )
        made.append(guarded)
    return copy


def _left(deadline: float) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise APITimeoutError("the check ran out of time", limit="total")
    return remaining


# -- one probe per client at a time, ended by close() ------------------------


class _InFlight:
    """A client's probe in progress: its thread and the copy it sends with."""

    def __init__(self, thread: threading.Thread) -> None:
        self.thread = thread
        self.copies: list[Client] = []
        self.stopped = False
        self.lock = threading.Lock()


#: The probe of each client now running: a client is probed once at a time
#: (a probe that nothing bounds does not pile up), and close() ends it.
_in_flight: weakref.WeakKeyDictionary[Client, _InFlight] = weakref.WeakKeyDictionary()
_in_flight_lock = threading.Lock()


def _start_probe(client: Client, thread: threading.Thread) -> bool:
    """Record ``thread`` as ``client``'s probe; False if one is still running."""
    with _in_flight_lock:
        running = _in_flight.get(client)
        if running is not None and running.thread.is_alive():
            return False
        _in_flight[client] = _InFlight(thread)
        return True


def _adopt(target: Resolved, copy: Client) -> None:
    """``copy`` sends ``target``'s probe: stop_probes() closes it."""
    with _in_flight_lock:
        running = _in_flight.get(target) if isinstance(target, Client) else None
    if running is None:
        return
    with running.lock:
        running.copies.append(copy)
        stopped = running.stopped
    if stopped:
        copy.close()


def stop_probes(clients: Iterable[Client]) -> None:
    """End the probes of ``clients`` now running (a blocked read returns at
    once); their results say what happened.
    """
    for client in clients:
        with _in_flight_lock:
            running = _in_flight.get(client)
        if running is None:
            continue
        with running.lock:
            running.stopped = True
            copies = list(running.copies)
        for copy in copies:
            copy.close()


def _late(target: Resolved, timeout: float, why: str = "") -> CheckResult:
    """The result of a probe that has not ended by its deadline, or (``why``)
    of one not started."""
    name = target.provider if isinstance(target, _Unprobeable) else target.name()
    return CheckResult(
        name,
        _url_of(target),
        "timeout",
        None,
        0.0 if why else timeout + GRACE,
        why or f"no answer within {timeout:g} s (the probe was left to end by itself)",
        utcnow(),
        "",
    )


def _url_of(target: Resolved) -> str:
    """Where ``target`` is probed, without credentials; ``""`` for no one place
    (a FallbackProvider, or a class without a default URL).
    """
    if isinstance(target, Provider):
        return without_credentials(target.endpoint())
    if isinstance(target, type):
        return without_credentials(target.default_endpoint() or "")
    return ""


def _is_html_page(error: BaseException) -> bool:
    """True for an error made from an HTML page: a status error whose body is
    one, or the client's refusal of a 200 page.
    """
    return isinstance(error, (APIStatusError, ResponseFormatError)) and error.html


def _says_quota(error: BaseException) -> bool:
    if not isinstance(error, APIError):
        return False
    text = f"{error.message} {getattr(error, 'body', '')}".lower()
    return "quota" in text or "rate limit" in text


def _describe(error: BaseException) -> str:
    """What went wrong, without the provider's name (a column of its own)."""
    text = getattr(error, "message", None) or str(error)
    if isinstance(error, AllProvidersFailedError):
        text += " " + "; ".join(str(attempt) for attempt in error.attempts)
    return text


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= ERROR_LINE else line[: ERROR_LINE - 3] + "..."
