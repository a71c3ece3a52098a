"""The base class of the provider clients: what a provider module states.

A provider module subclasses :class:`Provider` and states only what is its
own: class attributes from its protocol table, :meth:`Provider.payload`
(the JSON body), and, when the reply is not raw UTF-8 text,
:meth:`Provider.iter_text`. The rest is shared: options are checked in
:mod:`._options`, one try is :class:`~._wire.exchange.Exchange`, the retry
loop is :func:`~._wire.retry.retrying`, and the public calls come from
:class:`~._client.Client`.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import weakref
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Callable, ClassVar, Optional
from urllib.parse import urlsplit

import requests

from ._client import Client
from ._constants import DEFAULT_MAX_RETRIES, USER_AGENT_PREFIX
from ._gpt4free.entry_points import Gpt4freeEntryPoints
from ._messages import Messages, validate_messages
from ._numbers import check_seconds
from ._options import Options, Proxy, Timeout, host_of, redact
from ._streams import chat_stream as _streaming
from ._streams.chat_stream import ChatStream, read_first_chunk
from ._streams.events import Piece
from ._version import __version__
from ._wire.deadline import GuardedAdapter
from ._wire.exchange import Exchange, PreparedChat
from ._wire.retry import retrying
from .decoders import iter_text
from .exceptions import (
    APIError,
    APIStatusError,
    ChatProvidersError,
    InvalidMessagesError,
    ModelNotSupportedError,
    UnsupportedParameterError,
)

__all__ = ["CLIENT_OPTIONS", "PreparedChat", "Provider"]

#: Keyword arguments that configure the client; they never reach the body.
CLIENT_OPTIONS = frozenset(
    {
        "base_url",
        "proxy",
        "timeout",
        "session",
        "headers",
        "max_retries",
        "total_timeout",
    }
)

#: Class attributes a concrete provider must state.
REQUIRED_ATTRIBUTES = ("url", "path", "default_model")

#: Secrets shorter than this are not hidden: ``api_key="ollama"`` is a
#: placeholder that local servers document, and hiding it garbles text.
MIN_SECRET_LENGTH = 8


class Provider(Gpt4freeEntryPoints, Client):
    """Base class of the blocking provider clients.

    ``base_url`` replaces the scheme, host, port and any path prefix of the
    provider's endpoint; the endpoint's own path is kept. ``timeout`` is a
    number or a ``(connect, read)`` pair, ``DEFAULT_TIMEOUT`` when omitted.
    ``proxy`` is a URL for both http and https, or a requests-style dict; the
    environment's proxy variables apply as in requests. A ``session`` you pass
    stays yours: the client never closes it. ``max_retries`` (default 2)
    retries a call that failed before its first chunk; ``total_timeout``
    bounds a whole call, retries included.

    A subclass that states a protocol must set ``url``, ``path`` and
    ``default_model``; one meant only as a base for others says so with
    ``class Base(Provider, abstract=True)``.
    """

    #: The provider's site; with ``path`` it makes the endpoint
    #: (see :meth:`Provider.endpoint`).
    url: ClassVar[str]
    #: The endpoint's path, kept when ``base_url`` replaces the rest.
    path: ClassVar[str]
    #: The whole endpoint, for a provider whose API is not at ``url`` +
    #: ``path`` (another host); set it to send elsewhere without a ``base_url``.
    api_endpoint: ClassVar[Optional[str]] = None
    #: False marks a provider whose service is gone: the gpt4free-style
    #: facade then refuses it unless told ``ignore_working=True``.
    working: ClassVar[bool] = True
    supports_stream: ClassVar[bool] = True
    supports_message_history: ClassVar[bool] = False
    supports_gpt_35_turbo: ClassVar[bool] = False
    default_model: ClassVar[str]
    models: ClassVar[list[str]] = []
    #: Request headers exactly as the protocol sends them. A JSON body gets
    #: ``Content-Type: application/json`` unless they name another type.
    headers: ClassVar[Mapping[str, str]] = {}
    #: Body parameters the caller may set, with their defaults.
    parameters: ClassVar[Mapping[str, Any]] = {}
    #: Keywords of the gpt4free entry points that configure the client.
    client_options: ClassVar[frozenset[str]] = CLIENT_OPTIONS
    #: Other names the registry finds this provider by (any case).
    aliases: ClassVar[tuple[str, ...]] = ()
    #: Where its offline emulator is, as ``"module:attribute"`` (a
    #: :class:`chatproviders.testing.Protocol` class), or None.
    emulator: ClassVar[Optional[str]] = None

    def __init_subclass__(cls, abstract: bool = False, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        aliases: object = cls.aliases
        if isinstance(aliases, str):  # "wx" would be the names w and x
            raise TypeError(
                f"provider {cls.__name__}: aliases must be a tuple of names, "
                f"e.g. ({aliases!r},), not a str"
            )
        if abstract:
            return
        missing = [name for name in REQUIRED_ATTRIBUTES if not hasattr(cls, name)]
        if missing:
            raise TypeError(
                f"provider {cls.__name__} must set {', '.join(missing)} "
                "(or be declared with abstract=True)"
            )

    def __init__(
        self,
        base_url: Optional[str] = None,
        *,
        proxy: Optional[Proxy] = None,
        timeout: Optional[Timeout] = None,
        session: Optional[requests.Session] = None,
        headers: Optional[Mapping[str, str]] = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        total_timeout: Optional[float] = None,
    ) -> None:
        self.options = Options.check(
            base_url,
            proxy=proxy,
            timeout=timeout,
            headers=headers,
            max_retries=max_retries,
            total_timeout=total_timeout,
        )
        if session is not None and not isinstance(session, requests.Session):
            raise TypeError(
                f"session must be a requests.Session, got {type(session).__name__}"
            )
        self._owns_session = session is None
        if session is None:
            session = requests.Session()
            for prefix in ("http://", "https://"):  # deadlines in every phase
                session.mount(prefix, GuardedAdapter())
            session.headers["User-Agent"] = (
                f"{USER_AGENT_PREFIX}/{__version__} "
                f"{requests.utils.default_user_agent()}"
            )
        self.session = session
        self._closed = False
        self._streams: weakref.WeakSet[ChatStream] = weakref.WeakSet()
        self._cancels: weakref.WeakSet[threading.Event] = weakref.WeakSet()
        self._closing = threading.Event()
        _users.setdefault(session, weakref.WeakSet()).add(self)

    # -- the options, as attributes -----------------------------------------

    @property
    def base_url(self) -> Optional[str]:
        return self.options.base_url

    @property
    def timeout(self) -> Timeout:
        return self.options.timeout

    @property
    def max_retries(self) -> int:
        return self.options.max_retries

    @property
    def total_timeout(self) -> Optional[float]:
        return self.options.total_timeout

    # -- what a provider module states --------------------------------------

    def payload(self, messages: Messages, model: str, **params: Any) -> dict[str, Any]:
        """The JSON body for ``messages``; ``params`` are filled with defaults."""
        raise NotImplementedError

    def choose_model(self, model: Optional[str]) -> str:
        """The model to send: ``model`` if listed in ``models``, else the default.

        Raises :class:`ModelNotSupportedError`. Override for open model lists.
        """
        if not model:
            return self.default_model
        if model not in self.models:
            raise ModelNotSupportedError(
                f"model {model!r} is not supported; "
                f"use one of {', '.join(self.models)}",
                model=model,
                supported=tuple(self.models),
            )
        return model

    def probe_model(self, timeout: float) -> str:
        """The model a health check asks for: the default one. A provider with
        an open model list may ask its server, within ``timeout`` seconds.
        """
        check_seconds(timeout, "timeout")
        return self.choose_model(None)

    def iter_text(self, chunks: Iterable[bytes]) -> Iterator[Piece]:
        """Turn the body's bytes into text pieces. Default: raw UTF-8.

        It may also yield events (:mod:`chatproviders` ``ToolCallDelta``,
        ``ReasoningDelta``, ``UsageReported``...): the stream keeps those in
        its fields and hands out only the ``str`` pieces as the answer.
        """
        return iter_text(chunks)

    def status_error_class(
        self, status: int, body: str
    ) -> Optional[type[APIStatusError]]:
        """A provider's own reading of an error reply; ``None`` for the usual one."""
        return None

    def hint(self, error: ChatProvidersError) -> str:
        """A provider's advice to add to ``error``'s message, or ``""``."""
        return ""

    def secrets(self) -> tuple[str, ...]:
        """Values never to show in an error (an API key, the password of
        ``base_url`` or a proxy URL), should a server echo one: ``***`` instead.
        """
        proxies = self.options.proxies or {}
        urls = [self.base_url or ""]
        urls += [url for key, url in proxies.items() if key != "no_proxy"]
        return tuple(password for password in map(_password, urls) if password)

    # -- calls --------------------------------------------------------------

    @classmethod
    def default_endpoint(cls) -> Optional[str]:
        """Where requests go without a ``base_url``, read from the class
        attributes at call time; None for a provider that has no default URL.
        """
        if cls.api_endpoint:
            return cls.api_endpoint
        return cls.url.rstrip("/") + cls.path if cls.url else None

    def endpoint(self) -> str:
        """The URL requests go to: ``base_url`` + ``path``, or the default."""
        if self.base_url is not None:
            return self.base_url + self.path
        return self.default_endpoint() or self.path

    @property
    def host(self) -> str:
        return host_of(self.endpoint())

    def prepare(
        self, messages: Messages, model: Optional[str], params: Mapping[str, Any]
    ) -> PreparedChat:
        """Check every argument and encode the request; no I/O. A parameter
        given as ``None`` takes its default, as one not given does.
        """
        self._check_open()
        try:
            return self._prepare(messages, model, params)
        except ChatProvidersError as error:
            self.locate(error)
            raise

    def _prepare(
        self, messages: Messages, model: Optional[str], params: Mapping[str, Any]
    ) -> PreparedChat:
        messages = validate_messages(messages)
        model = self.choose_model(model)
        unknown = sorted(params.keys() - self.parameters.keys())
        if unknown:
            accepted = ", ".join(sorted(self.parameters)) or "none"
            raise UnsupportedParameterError(
                f"unsupported parameter(s) {', '.join(unknown)}; "
                f"this provider accepts: {accepted}"
            )
        given = {name: value for name, value in params.items() if value is not None}
        payload = self.payload(messages, model, **{**self.parameters, **given})
        encoded = encode_body(payload, params, "messages")
        headers = {**self.headers, **self.options.headers}
        if not any(name.lower() == "content-type" for name in headers):
            headers["Content-Type"] = "application/json"
        return PreparedChat(
            url=self.endpoint(), headers=headers, body=encoded, model=model
        )

    def send_prepared(
        self,
        prepared: PreparedChat,
        *,
        deadline: Optional[float] = None,
        on_response: Optional[Callable[[requests.Response], None]] = None,
        cancel: Optional[threading.Event] = None,
        started: Optional[float] = None,
    ) -> ChatStream:
        own_start = _streaming.clock()
        started = own_start if started is None else started
        if deadline is None and self.total_timeout is not None:
            deadline = time.monotonic() + self.total_timeout
        if cancel is None:
            cancel = self._closing  # close() ends a wait between two tries
        else:
            self._cancels.add(cancel)  # a background stream's, ended likewise

        def once() -> ChatStream:
            self._check_open()  # closed during a wait between two tries
            exchange = Exchange(self, prepared, deadline, on_response)
            # A prepared call may name its own kind of stream (the Responses API's).
            stream_class = getattr(prepared, "stream_class", ChatStream)
            stream = stream_class(
                exchange,
                provider=self.name(),
                model=prepared.model,
                host=host_of(prepared.url),
                started=started,
                locate=self.locate,
            )
            self._streams.add(stream)
            read_first_chunk(stream)
            self._check_open()  # closed while waiting for the first chunk
            return stream

        stream, tries = retrying(
            once,
            max_retries=self.max_retries,
            deadline=deadline,
            cancel=cancel,
            name=self.name(),
        )
        stream.attempts = tries
        return stream

    def locate(
        self, error: ChatProvidersError, partial_text: str = ""
    ) -> ChatProvidersError:
        """Give ``error`` its context: the one place every error of this
        client gets its provider, host, partial text and advice, and loses
        any secret it quotes.
        """
        error.provider = error.provider or self.name()
        error.host = error.host or self.host
        if isinstance(error, APIError) and not error.partial_text:
            error.partial_text = partial_text
        message = error.message
        for secret in self.secrets():
            if len(secret) >= MIN_SECRET_LENGTH:
                message = _hide(message, secret)
                body = getattr(error, "body", None)
                if isinstance(body, str):
                    error.body = _hide(body, secret)  # type: ignore[attr-defined]
        hint = self.hint(error)  # after hiding: a cut secret ends the text there
        if hint and hint not in message:
            message += f" ({hint})"
        error.message, error.args = message, (message,)
        return error

    def close(self) -> None:
        """End the client's open streams (from any thread), and close the
        session if the client made it; the client is done with.
        """
        self._closed = True
        self._closing.set()
        for cancel in list(self._cancels):
            cancel.set()
        for stream in list(self._streams):
            stream.close()
        if self._owns_session:
            _close_pools(self.session)
            self.session.close()
            for other in list(_users.get(self.session, ())):
                if other is not self:  # a copy (with_options) on this session
                    other.close()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called: the client refuses to send."""
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(
                f"this {self.name()} client is closed; make a new one to send more"
            )

    def __repr__(self) -> str:
        return f"<{self.name()} {redact(self.endpoint())}>"


def encode_body(body: Any, params: Mapping[str, Any], what: str) -> bytes:
    """``body`` as strict JSON in UTF-8; when JSON cannot carry it, the error
    names the parameter of ``params`` at fault, or else ``what`` (the
    messages, the input).
    """
    encoded = _json(body)
    if encoded is not None:
        return encoded
    takes = "JSON takes str, numbers (not NaN or infinity), bools, None, "
    takes += "lists and dicts"
    for name, value in params.items():
        if _json(value) is None:
            raise UnsupportedParameterError(
                f"parameter {name}={value!r} cannot be sent: {takes}"
            )
    raise InvalidMessagesError(f"{what} cannot be sent: {takes}")


def _json(value: Any) -> Optional[bytes]:
    """``value`` as strict JSON in UTF-8 (no NaN or infinity), or None if none."""
    try:
        return json.dumps(value, allow_nan=False, ensure_ascii=False).encode("utf-8")
    except (TypeError, ValueError):  # ValueError: NaN, infinity, a cycle
        return None


def _password(url: str) -> Optional[str]:
    # base_url and the proxies were parsed so when the client was made
    return urlsplit(url).password


def _hide(text: str, secret: str) -> str:
    """``text`` with ``secret`` replaced by ``***``, and also any start of it
    long enough to give it away (an excerpt may cut through it).
    """
    text = text.replace(secret, "***")
    for size in range(len(secret) - 1, MIN_SECRET_LENGTH - 1, -1):
        if text.endswith(secret[:size]):
            return text[:-size] + "***"
    return text


#: Every session a client uses, and its clients. A child process must not
#: share the parent's pooled sockets, so after a fork each pool is emptied
#: (closing only the child's copies of the sockets); closing the client that
#: made a session closes the others on it (``with_options`` copies, a
#: batch's among them).
_users: weakref.WeakKeyDictionary[requests.Session, weakref.WeakSet[Provider]] = (
    weakref.WeakKeyDictionary()
)


def _forget_connections() -> None:
    """In a forked child, which has one thread: drop every pool without taking
    a lock. Another parent thread may have held a pool manager's or a pool's
    lock at the fork; held it stays, and ``PoolManager.clear()`` would wait
    for it forever.
    """
    for session in list(_users):
        for manager in _managers(session):
            _drop_pools(manager)


def _managers(session: requests.Session) -> list[Any]:
    """The pool managers of ``session``'s adapters, proxies' included."""
    managers = []
    for adapter in list(session.adapters.values()):
        managers.append(getattr(adapter, "poolmanager", None))
        managers += getattr(adapter, "proxy_manager", {}).values()
    return [manager for manager in managers if manager is not None]


def _close_pools(session: requests.Session) -> None:
    """Close every pool of ``session`` now: its idle connections at once, the
    ones in use when they come back. urllib3 2's ``PoolManager.clear()``
    (what ``Session.close()`` calls) only forgets the pools, whose sockets
    then close when nothing refers to them, and any response held does.
    """
    for manager in _managers(session):
        # urllib3's container refuses iteration (not thread-safe); keys() copies
        for key in manager.pools.keys():  # noqa: SIM118
            pool = manager.pools.get(key)
            if pool is not None:
                pool.close()


def _drop_pools(manager: Any) -> None:
    """Give ``manager`` a new, empty pool container (with a lock of its own)
    and close the child's copies of the pooled sockets, reading the old
    containers directly: with one thread, nothing changes them meanwhile.
    """
    pools = manager.pools
    old = list(pools._container.values())
    manager.pools = type(pools)(pools._maxsize, dispose_func=pools.dispose_func)
    for pool in old:
        for conn in list(getattr(getattr(pool, "pool", None), "queue", ())):
            sock = getattr(conn, "sock", None)
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.close()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_connections)
