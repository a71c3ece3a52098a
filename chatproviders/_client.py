"""The blocking client every provider shares.

A provider module subclasses :class:`Provider` and states only what is its
own: class attributes from its protocol table, :meth:`Provider.payload`
(the JSON body), and, when the reply is not raw UTF-8 text,
:meth:`Provider.iter_text`. Everything else happens here: checking the
arguments, sending with a timeout, mapping errors, streaming the reply.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar, Optional, Union
from urllib.parse import urlsplit

import requests

from . import __version__
from ._constants import DEFAULT_TIMEOUT, USER_AGENT_PREFIX
from ._decoders import iter_text
from ._messages import Messages, validate_messages
from ._streaming import ChatResponse, ChatStream
from ._transport import (
    iter_raw,
    looks_like_html,
    read_error_body,
    status_error,
    translate_exception,
)
from .exceptions import (
    APIStatusError,
    InvalidMessagesError,
    ModelNotSupportedError,
    ResponseFormatError,
    UnsupportedParameterError,
)

__all__ = ["CLIENT_OPTIONS", "Provider", "Timeout"]

Timeout = Union[float, tuple[float, float]]
Proxy = Union[str, Mapping[str, str]]

#: Keyword arguments that configure the client; they never reach the body.
CLIENT_OPTIONS = frozenset({"base_url", "proxy", "timeout", "session", "headers"})


@dataclass(frozen=True)
class PreparedChat:
    """One request, checked and encoded, ready to send."""

    url: str
    headers: dict[str, str]
    body: bytes
    model: str


class Provider:
    """Base class of the blocking provider clients.

    ``base_url`` replaces the scheme, host, port and any path prefix of the
    provider's endpoint; the endpoint's own path is kept. ``timeout`` is a
    number or a ``(connect, read)`` pair, ``DEFAULT_TIMEOUT`` when omitted.
    ``proxy`` is a URL for both http and https, or a requests-style dict; the
    environment's proxy variables apply as in requests. A ``session`` you pass
    stays yours: the client never closes it.
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

    def __init__(
        self,
        base_url: Optional[str] = None,
        *,
        proxy: Optional[Proxy] = None,
        timeout: Optional[Timeout] = None,
        session: Optional[requests.Session] = None,
        headers: Optional[Mapping[str, str]] = None,
    ) -> None:
        self.base_url = _check_base_url(base_url)
        self.proxies = _proxies(proxy)
        self.timeout = _check_timeout(timeout)
        self.extra_headers = dict(headers or {})
        self._owns_session = session is None
        if session is None:
            session = requests.Session()
            session.headers["User-Agent"] = (
                f"{USER_AGENT_PREFIX}/{__version__} "
                f"{requests.utils.default_user_agent()}"
            )
        self.session = session

    # -- what a provider module states --------------------------------------

    @classmethod
    def name(cls) -> str:
        return cls.__name__

    def payload(self, messages: Messages, model: str, **params: Any) -> dict[str, Any]:
        """The JSON body for ``messages``; ``params`` are filled with defaults."""
        raise NotImplementedError

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

        The request has been answered when this returns: an error status is
        raised here, before any chunk.
        """
        return self._open(self.prepare(messages, model, params))

    def complete(
        self, messages: Messages, model: Optional[str] = None, **params: Any
    ) -> ChatResponse:
        """Send the chat and return the whole reply as a :class:`ChatResponse`."""
        return self.stream(messages, model, **params).until_done()

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
        options = {k: kwargs.pop(k) for k in CLIENT_OPTIONS & kwargs.keys()}
        client = cls(proxy=proxy, timeout=timeout, **options)
        prepared = client.prepare(messages, model, kwargs)
        return client._generate(prepared, stream)

    def close(self) -> None:
        """Close the session if the client made it."""
        if self._owns_session:
            self.session.close()

    def __enter__(self) -> Provider:
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{self.name()} {self.endpoint()}>"

    # -- the machinery ------------------------------------------------------

    @property
    def host(self) -> str:
        return urlsplit(self.endpoint()).netloc

    def prepare(
        self, messages: Messages, model: Optional[str], params: Mapping[str, Any]
    ) -> PreparedChat:
        """Check every argument and encode the request; no I/O."""
        where = {"provider": self.name(), "host": self.host}
        try:
            messages = validate_messages(messages)
        except InvalidMessagesError as exc:
            exc.provider, exc.host = where["provider"], where["host"]
            raise
        if not model:
            model = self.default_model
        elif model not in self.models:
            raise ModelNotSupportedError(
                f"model {model!r} is not supported; "
                f"use one of {', '.join(self.models)}",
                model=model,
                supported=tuple(self.models),
                **where,
            )
        unknown = sorted(params.keys() - self.parameters.keys())
        if unknown:
            accepted = ", ".join(sorted(self.parameters)) or "none"
            raise UnsupportedParameterError(
                f"unsupported parameter(s) {', '.join(unknown)}; "
                f"this provider accepts: {accepted}",
                **where,
            )
        body = self.payload(messages, model, **{**self.parameters, **params})
        headers = {**self.headers, **self.extra_headers}
        return PreparedChat(
            url=self.endpoint(),
            headers=headers,
            body=json.dumps(body).encode("utf-8"),
            model=model,
        )

    def _open(self, prepared: PreparedChat) -> ChatStream:
        """Send ``prepared`` and check the answer's status and kind."""
        started = time.monotonic()
        where: dict[str, Any] = {
            "provider": self.name(),
            "host": urlsplit(prepared.url).netloc,
        }
        try:
            response = self.session.post(
                prepared.url,
                data=prepared.body,
                headers=prepared.headers,
                timeout=self.timeout,
                proxies=self.proxies,
                stream=True,
            )
        except Exception as exc:
            error = translate_exception(exc, **where)
            if error is None:
                raise
            raise error from exc
        content_type = response.headers.get("content-type", "")
        if response.status_code >= 400:
            with response:
                body = read_error_body(response)
            text = body.decode("utf-8", errors="replace")
            raise status_error(
                response,
                body,
                error_class=self.status_error_class(response.status_code, text),
                **where,
            )
        if looks_like_html(content_type, b""):
            with response:
                body = read_error_body(response)
            raise ResponseFormatError(
                f"answered {response.status_code} with an HTML page instead of a "
                "reply (a bot wall or error page?)",
                body=body[:500].decode("utf-8", errors="replace"),
                **where,
            )
        chunks = self.iter_text(_refuse_html(iter_raw(response), where))
        return ChatStream(
            response,
            chunks,
            model=prepared.model,
            started=started,
            **where,
        )

    def _generate(self, prepared: PreparedChat, stream: bool) -> Iterator[str]:
        try:
            with self._open(prepared) as chat:
                if stream:
                    yield from chat
                else:
                    yield chat.until_done().text
        finally:
            self.close()


def _refuse_html(chunks: Iterator[bytes], where: Mapping[str, str]) -> Iterator[bytes]:
    """Pass bytes through, but refuse a body that opens like a web page."""
    for chunk in chunks:
        if looks_like_html("", chunk):
            raise ResponseFormatError(
                "sent an HTML page instead of a reply (a bot wall or error page?)",
                body=chunk[:500].decode("utf-8", errors="replace"),
                **where,
            )
        yield chunk
        yield from chunks
        return


def _check_base_url(base_url: Optional[str]) -> Optional[str]:
    if base_url is None:
        return None
    if not isinstance(base_url, str):
        raise TypeError(f"base_url must be a str, got {type(base_url).__name__}")
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(
            f"base_url must be an http:// or https:// URL with a host, got {base_url!r}"
        )
    if parts.query or parts.fragment:
        raise ValueError(f"base_url must not have a query or fragment: {base_url!r}")
    return base_url.rstrip("/")


def _check_timeout(timeout: Optional[Timeout]) -> Union[float, tuple[float, float]]:
    if timeout is None:
        return DEFAULT_TIMEOUT
    values = timeout if isinstance(timeout, tuple) else (timeout,)
    if len(values) not in (1, 2) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0
        for v in values
    ):
        raise ValueError(
            "timeout must be a positive number of seconds or a (connect, read) "
            f"pair of them, got {timeout!r}"
        )
    return timeout


def _proxies(proxy: Optional[Proxy]) -> Optional[dict[str, str]]:
    if proxy is None:
        return None
    if isinstance(proxy, Mapping):
        return dict(proxy)
    if not isinstance(proxy, str) or "://" not in proxy:
        raise ValueError(
            "proxy must be a URL such as 'http://127.0.0.1:3128' or a dict, "
            f"got {proxy!r}"
        )
    return {"http": proxy, "https": proxy}
