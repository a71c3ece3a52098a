"""The blocking client every provider shares.

A provider module subclasses :class:`Provider` and states only what is its
own: class attributes from its protocol table, :meth:`Provider.payload`
(the JSON body), and, when the reply is not raw UTF-8 text,
:meth:`Provider.iter_text`. Everything else happens here: checking the
arguments, sending with a timeout, mapping errors, streaming the reply.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import logging
import re
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Optional, Union
from urllib.parse import urlsplit

import requests
import urllib3.util

from . import __version__, _retry
from ._async_bridge import AsyncReply
from ._background import BackgroundStream
from ._closing import Closing
from ._constants import (
    BACKGROUND_QUEUE_SIZE,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    ERROR_BODY_EXCERPT,
    MAX_TIMEOUT,
    USER_AGENT_PREFIX,
)
from ._decoders import iter_text
from ._messages import Messages, validate_messages
from ._retry import backoff_delay, is_retryable
from ._streaming import ChatResponse, ChatStream
from ._transport import (
    Body,
    looks_like_html,
    read_error_body,
    status_error,
    total_timeout_error,
    translate_exception,
)
from .exceptions import (
    APIError,
    APIStatusError,
    APITimeoutError,
    InvalidMessagesError,
    ModelNotSupportedError,
    ResponseFormatError,
    UnsupportedParameterError,
)

__all__ = ["CLIENT_OPTIONS", "Provider", "Timeout"]

Timeout = Union[float, tuple[float, float]]
Proxy = Union[str, Mapping[str, str]]

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

#: gpt4free's facade options, accepted and not needed by a class used directly.
FACADE_OPTIONS = frozenset({"ignore_working", "ignored"})

logger = logging.getLogger("chatproviders")


class _Params:
    """``Provider.params``: the call's arguments and defaults, readable."""

    def __get__(self, obj: object, cls: type[Provider]) -> str:
        args = [
            "model: str",
            "messages: list[dict[str, str]]",
            "stream: bool = True",
            "proxy: str = None",
            "timeout: float = None",
        ]
        args += [
            f"{name} = None"
            if default is None
            else f"{name}: {type(default).__name__} = {default!r}"
            for name, default in cls.parameters.items()
        ]
        return f"chatproviders.{cls.__name__} supports: ({', '.join(args)})"


@dataclass(frozen=True)
class PreparedChat:
    """One request, checked and encoded, ready to send."""

    url: str
    headers: dict[str, str] = field(repr=False)  # may hold an API key
    body: bytes
    model: str


class Provider(Closing):
    """Base class of the blocking provider clients.

    ``base_url`` replaces the scheme, host, port and any path prefix of the
    provider's endpoint; the endpoint's own path is kept. ``timeout`` is a
    number or a ``(connect, read)`` pair, ``DEFAULT_TIMEOUT`` when omitted.
    ``proxy`` is a URL for both http and https, or a requests-style dict; the
    environment's proxy variables apply as in requests. A ``session`` you pass
    stays yours: the client never closes it. ``max_retries`` (default 2)
    retries a call that failed before its first chunk; ``total_timeout``
    bounds a whole call, retries included.
    """

    #: The provider's site; with ``path`` it makes the endpoint (see :meth:`endpoint`).
    url: ClassVar[str]
    #: The endpoint's path, kept when ``base_url`` replaces the rest.
    path: ClassVar[str]
    working: ClassVar[bool] = False
    supports_stream: ClassVar[bool] = True
    supports_message_history: ClassVar[bool] = False
    supports_gpt_35_turbo: ClassVar[bool] = False
    default_model: ClassVar[str]
    models: ClassVar[list[str]]
    #: Request headers exactly as the protocol sends them.
    headers: ClassVar[Mapping[str, str]] = {}
    #: Body parameters the caller may set, with their defaults.
    parameters: ClassVar[Mapping[str, Any]] = {}
    #: Keywords of the gpt4free entry points that configure the client.
    client_options: ClassVar[frozenset[str]] = CLIENT_OPTIONS
    #: What the provider accepts, as gpt4free's ``params`` described it.
    params: ClassVar[str] = _Params()  # type: ignore[assignment]

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
        self.base_url = _check_base_url(base_url)
        self.proxies = _proxies(proxy)
        self.timeout = _check_timeout(timeout)
        if not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"max_retries must be an int >= 0, got {max_retries!r}")
        self.max_retries = max_retries
        if total_timeout is not None:
            _check_timeout(total_timeout, "total_timeout")
        self.total_timeout = total_timeout
        self.extra_headers = check_headers(headers)
        if session is not None and not isinstance(session, requests.Session):
            raise TypeError(
                f"session must be a requests.Session, got {type(session).__name__}"
            )
        self._owns_session = session is None
        if session is None:
            session = requests.Session()
            session.headers["User-Agent"] = (
                f"{USER_AGENT_PREFIX}/{__version__} "
                f"{requests.utils.default_user_agent()}"
            )
        self.session = session
        self._closed = False

    # -- what a provider module states --------------------------------------

    @classmethod
    def name(cls) -> str:
        return cls.__name__

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
                provider=self.name(),
                host=self.host,
            )
        return model

    def iter_text(self, chunks: Iterable[bytes]) -> Iterator[str]:
        """Turn the body's bytes into text pieces. Default: raw UTF-8."""
        return iter_text(chunks)

    def status_error_class(
        self, status: int, body: str
    ) -> Optional[type[APIStatusError]]:
        """A provider's own reading of an error reply; ``None`` for the usual one."""
        return None

    # -- the public calls ---------------------------------------------------

    def endpoint(self) -> str:
        """The URL requests go to, read from the class attributes at call time."""
        if self.base_url is not None:
            return self.base_url + self.path
        api_endpoint = getattr(type(self), "api_endpoint", None)
        return api_endpoint or self.url.rstrip("/") + self.path

    def stream(
        self, messages: Messages, model: Optional[str] = None, **params: Any
    ) -> ChatStream:
        """Send the chat and return the reply as a :class:`ChatStream`.

        It returns once the first chunk is in hand (or the reply ended), so
        an error status, and any failure before the first chunk that retries
        did not cure, is raised here rather than from the iteration.
        """
        return self._open(self.prepare(messages, model, params))

    def complete(
        self, messages: Messages, model: Optional[str] = None, **params: Any
    ) -> ChatResponse:
        """Send the chat and return the whole reply as a :class:`ChatResponse`."""
        return self.stream(messages, model, **params).until_done()

    def stream_in_background(
        self,
        messages: Messages,
        model: Optional[str] = None,
        maxsize: int = BACKGROUND_QUEUE_SIZE,
        **params: Any,
    ) -> BackgroundStream:
        """Stream the reply on a worker thread; returns at once.

        The arguments are checked here (bad ones raise now); the request is
        sent from the worker. At most ``maxsize`` chunks wait in memory. One
        client may serve background streams from many threads at once.
        """
        prepared = self.prepare(messages, model, params)
        return BackgroundStream._of_request(
            functools.partial(self._open, prepared), maxsize
        )

    @classmethod
    def create_completion(
        cls,
        model: Optional[str],
        messages: Messages,
        stream: bool = True,
        proxy: Optional[Proxy] = None,
        timeout: Optional[Timeout] = None,
        **kwargs: Any,
    ) -> Iterator[str]:
        """gpt4free's entry point: an iterator of ``str`` (one piece if not ``stream``).

        Arguments are checked now; the request is sent on the first ``next()``.
        Client options (``base_url``, ``session``, ``headers``) may be given
        as keywords; every other keyword is a body parameter.
        """
        kwargs["timeout"] = timeout
        client, prepared = cls._from_gpt4free_call(model, messages, proxy, kwargs)
        return client._generate(prepared, stream)

    @classmethod
    def _from_gpt4free_call(
        cls,
        model: Optional[str],
        messages: Messages,
        proxy: Optional[Proxy],
        kwargs: dict[str, Any],
    ) -> tuple[Provider, PreparedChat]:
        """A client and a checked request from gpt4free-style arguments."""
        options = {k: kwargs.pop(k) for k in cls.client_options & kwargs.keys()}
        for name in FACADE_OPTIONS & kwargs.keys():
            del kwargs[name]  # gpt4free's facade options; a class used directly runs
        client = cls(proxy=proxy, **options)
        try:
            return client, client.prepare(messages, model, kwargs)
        except BaseException:
            client.close()
            raise

    @classmethod
    def create_async_generator(
        cls,
        model: Optional[str],
        messages: Messages,
        proxy: Optional[Proxy] = None,
        **kwargs: Any,
    ) -> AsyncReply:
        """gpt4free's async entry point: ``async for chunk in ...``.

        A thin bridge: arguments are checked now, and the request runs on a
        background thread once iteration starts, so the event loop is never
        blocked. Keywords are taken as by :meth:`create_completion`.
        """
        kwargs.pop("stream", None)  # gpt4free passes it; the reply always streams
        client, prepared = cls._from_gpt4free_call(model, messages, proxy, kwargs)
        send = functools.partial(client._generate, prepared, True)
        return AsyncReply(
            lambda: BackgroundStream._of_request(send, BACKGROUND_QUEUE_SIZE)
        )

    def close(self) -> None:
        """Close the session if the client made it; the client is done with."""
        self._closed = True
        if self._owns_session:
            self.session.close()

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(
                f"this {self.name()} client is closed; make a new one to send more"
            )

    def __repr__(self) -> str:
        return f"<{self.name()} {_redact(self.endpoint())}>"

    # -- the machinery ------------------------------------------------------

    @property
    def host(self) -> str:
        return _host(self.endpoint())

    def prepare(
        self, messages: Messages, model: Optional[str], params: Mapping[str, Any]
    ) -> PreparedChat:
        """Check every argument and encode the request; no I/O."""
        self._check_open()
        where = {"provider": self.name(), "host": self.host}
        try:
            messages = validate_messages(messages)
        except InvalidMessagesError as exc:
            exc.provider, exc.host = where["provider"], where["host"]
            raise
        model = self.choose_model(model)
        unknown = sorted(params.keys() - self.parameters.keys())
        if unknown:
            accepted = ", ".join(sorted(self.parameters)) or "none"
            raise UnsupportedParameterError(
                f"unsupported parameter(s) {', '.join(unknown)}; "
                f"this provider accepts: {accepted}",
                **where,
            )
        encoded = _json(self.payload(messages, model, **{**self.parameters, **params}))
        if encoded is None:  # find the value JSON cannot carry, to name it
            takes = "JSON takes str, numbers (not NaN or infinity), bools, None, "
            takes += "lists and dicts"
            for name, value in params.items():
                if _json(value) is None:
                    raise UnsupportedParameterError(
                        f"parameter {name}={value!r} cannot be sent: {takes}",
                        **where,
                    )
            raise InvalidMessagesError(f"messages cannot be sent: {takes}", **where)
        return PreparedChat(
            url=self.endpoint(),
            headers={**self.headers, **self.extra_headers},
            body=encoded,
            model=model,
        )

    def _open(
        self,
        prepared: PreparedChat,
        deadline: Optional[float] = None,
        on_response: Optional[Callable[[requests.Response], None]] = None,
        cancel: Optional[threading.Event] = None,
    ) -> ChatStream:
        """Send ``prepared`` until its first chunk arrives, retrying what may be.

        A failure before the first chunk (see ``_retry.is_retryable``) is tried
        again up to ``max_retries`` times; after it, never, since that would
        send the prompt twice and repeat text. ``deadline`` (monotonic) bounds
        everything, retries included; ``on_response`` sees each response as
        soon as its headers are in, so another thread can shut it down;
        once ``cancel`` is set, nothing is retried and a backoff wait ends.
        """
        started = time.monotonic()
        if deadline is None and self.total_timeout is not None:
            deadline = started + self.total_timeout
        retries = 0
        while True:
            try:
                stream = self._attempt(prepared, started, deadline, on_response)
            except APIError as error:
                error.tries = retries + 1
                if retries >= self.max_retries or not is_retryable(error):
                    raise
                if cancel is not None and cancel.is_set():
                    raise
                delay = backoff_delay(retries + 1, getattr(error, "retry_after", None))
                if deadline is not None and time.monotonic() + delay >= deadline:
                    raise
                retries += 1
                logger.info(
                    "%s: retry %d of %d in %.2f s after: %s",
                    self.name(),
                    retries,
                    self.max_retries,
                    delay,
                    error,
                )
                _retry.sleep(delay, cancel)
                if cancel is not None and cancel.is_set():  # closed while waiting
                    raise
                continue
            stream.attempts = retries + 1
            return stream

    def _attempt(
        self,
        prepared: PreparedChat,
        started: float,
        deadline: Optional[float],
        on_response: Optional[Callable[[requests.Response], None]],
    ) -> ChatStream:
        """One try: send, check the status and kind, wait for the first chunk."""
        where: dict[str, Any] = {
            "provider": self.name(),
            "host": _host(prepared.url),
        }
        timeout, deadline_binds = _within(self.timeout, deadline)
        try:
            response = self._send(
                "POST",
                prepared.url,
                data=prepared.body,
                headers=prepared.headers,
                timeout=timeout,
                stream=True,
            )
        except APITimeoutError as error:
            if not deadline_binds:
                raise
            total = total_timeout_error()
            total.provider, total.host = where["provider"], where["host"]
            raise total from error.__cause__
        if on_response is not None:
            on_response(response)
        read_timeout = (
            self.timeout[1] if isinstance(self.timeout, tuple) else self.timeout
        )
        if response.status_code >= 400:
            with response:
                data = read_error_body(response, deadline, read_timeout)
            text = data.decode("utf-8", errors="replace")
            raise status_error(
                response,
                data,
                error_class=self.status_error_class(response.status_code, text),
                **where,
            )
        body = Body(response, deadline=deadline, read_timeout=read_timeout)
        content_type = response.headers.get("content-type", "")
        chunks = self.iter_text(_refuse_html(iter(body), content_type))
        stream = ChatStream(
            response,
            _then_finish(chunks, body),
            model=prepared.model,
            started=started,
            **where,
        )
        stream._read_first_chunk()
        return stream

    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """Send one request through the session; its exceptions become ours."""
        try:
            return self.session.request(method, url, proxies=self.proxies, **kwargs)
        except Exception as exc:
            error = translate_exception(exc, provider=self.name(), host=_host(url))
            if error is None:
                raise
            raise error from exc

    def _generate(
        self, prepared: PreparedChat, stream: bool, **hooks: Any
    ) -> Iterator[str]:
        """The reply's chunks (or its whole text, one piece), then close the
        client: for the gpt4free entry points, which make one client a call.
        """
        try:
            with self._open(prepared, **hooks) as chat:
                if stream:
                    yield from chat
                else:
                    yield chat.until_done().text
        finally:
            self.close()


def _json(value: Any) -> Optional[bytes]:
    """``value`` as strict JSON (no NaN or infinity), or None if it has no JSON."""
    try:
        return json.dumps(value, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError):  # ValueError: NaN, infinity, a cycle
        return None


def _then_finish(text: Iterator[str], body: Body) -> Iterator[str]:
    """The reply's text; once it has ended, the rest of the body (see
    :meth:`Body.finish`), so that an SSE reply's connection can be reused.
    """
    yield from text
    body.finish()


def _refuse_html(chunks: Iterator[bytes], content_type: str) -> Iterator[bytes]:
    """Pass the body through, unless it is a web page (by its type or first bytes)."""
    first = next(chunks, b"")
    if looks_like_html(content_type, first):
        raise ResponseFormatError(
            "sent an HTML page instead of a reply (a bot wall or error page?)",
            body=first[:ERROR_BODY_EXCERPT].decode("utf-8", errors="replace"),
        )
    if first:
        yield first
    yield from chunks


def _check_base_url(base_url: Optional[str]) -> Optional[str]:
    if base_url is None:
        return None
    if not isinstance(base_url, str):
        raise TypeError(f"base_url must be a str, got {type(base_url).__name__}")
    shown = _redact(base_url)
    try:
        parts = urlsplit(base_url)
        parts.port  # noqa: B018 (raises for a port out of range or not a number)
        requests.PreparedRequest().prepare_url(base_url, None)  # requests' checks
    except ValueError as exc:  # requests' InvalidURL is a ValueError too
        raise ValueError(f"base_url is not a valid URL ({exc}): {shown!r}") from None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(
            f"base_url must be an http:// or https:// URL with a host, got {shown!r}"
        )
    if not parts.netloc.isprintable() or " " in parts.netloc:  # older urllib3s
        raise ValueError(f"base_url has a space or control character: {shown!r}")
    if parts.query or parts.fragment:
        raise ValueError(f"base_url must not have a query or fragment: {shown!r}")
    return base_url.rstrip("/")


def _host(url: str) -> str:
    """The host and port of ``url``, without any ``user:password@``."""
    return urlsplit(url).netloc.rpartition("@")[2]


def _redact(url: str) -> str:
    """``url`` with any ``user:password@`` shown as ``***@``; for any string."""
    return _USERINFO.sub("//***@", url)


_USERINFO = re.compile(r"//[^/@]*@")


def check_headers(headers: Optional[Mapping[str, str]]) -> dict[str, str]:
    """``headers`` as a dict, each one sendable as it is; the values are never
    quoted in the error, since they may hold a key.
    """
    if headers is not None and not isinstance(headers, Mapping):
        raise TypeError(
            f"headers must be a mapping of str to str, got {type(headers).__name__}"
        )
    checked = dict(headers or {})
    for name, value in checked.items():
        try:
            requests.utils.check_header_validity((name, value))
            value.encode("latin-1")
        except (ValueError, TypeError, AttributeError):
            raise ValueError(
                f"header {name!r} cannot be sent: names and values must be str "
                "of Latin-1 characters, without line breaks or surrounding spaces"
            ) from None
    return checked


def _check_timeout(
    timeout: Optional[Timeout], name: str = "timeout"
) -> Union[float, tuple[float, float]]:
    if timeout is None:
        return DEFAULT_TIMEOUT
    pairs_allowed = name == "timeout"
    values = timeout if isinstance(timeout, tuple) and pairs_allowed else (timeout,)
    if len(values) != (2 if isinstance(timeout, tuple) else 1) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v <= MAX_TIMEOUT
        for v in values
    ):
        pair = " or a (connect, read) pair of them" if pairs_allowed else ""
        raise ValueError(
            f"{name} must be a positive number of seconds up to {MAX_TIMEOUT:.0e}"
            f"{pair}, got {timeout!r}"
        )
    return timeout


def _within(timeout: Timeout, deadline: Optional[float]) -> tuple[Timeout, bool]:
    """``timeout`` shortened to end by ``deadline``; and whether it was."""
    if deadline is None:
        return timeout, False
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise total_timeout_error()
    connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
    if remaining >= max(connect, read):
        return timeout, False
    return (min(connect, remaining), min(read, remaining)), True


def _proxies(proxy: Optional[Proxy]) -> Optional[dict[str, str]]:
    if proxy is None:
        return None
    if isinstance(proxy, Mapping):
        proxies = dict(proxy)
    elif isinstance(proxy, str) and "://" in proxy:
        proxies = {"http": proxy, "https": proxy}
    else:
        raise ValueError(
            "proxy must be a URL such as 'http://127.0.0.1:3128' or a dict, "
            f"got {proxy!r}"
        )
    for key, url in proxies.items():
        if key == "no_proxy":  # requests' list of hosts to reach directly
            continue
        try:
            parsed = urllib3.util.parse_url(url)
        except (ValueError, TypeError, AttributeError):
            parsed = None
        if parsed is None or parsed.scheme not in PROXY_SCHEMES or not parsed.host:
            shown = _redact(url) if isinstance(url, str) else url
            raise ValueError(
                f"proxy for {key!r} must be an http, https or socks URL with a "
                f"host, got {shown!r}"
            )
        if parsed.scheme.startswith("socks") and not importlib.util.find_spec("socks"):
            raise ValueError(
                "a SOCKS proxy needs PySocks: pip install 'requests[socks]'"
            )
    return proxies


PROXY_SCHEMES = frozenset({"http", "https", "socks4", "socks4a", "socks5", "socks5h"})
