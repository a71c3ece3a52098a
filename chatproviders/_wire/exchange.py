"""One try of a prepared call, from the socket up: :class:`Exchange`.

Iterating an exchange sends the request, checks the status and the kind of
reply, and hands the body's bytes to the provider's ``iter_text``, whose
pieces come out the top; every error on the way is one of ours (the
transport translates requests' and urllib3's). The :class:`ChatStream` that
reads it is where every error gets its provider and host.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Optional, Protocol

from .deadline import Guard
from .transport import (
    Body,
    read_error_body,
    refuse_html,
    send,
    shut_down,
    status_error,
)

if TYPE_CHECKING:
    import requests

    from .._options import Options
    from ..exceptions import APIStatusError

__all__ = ["Exchange", "PreparedChat", "Sender"]


@dataclass(frozen=True)
class PreparedChat:
    """One request, checked and encoded, ready to send."""

    url: str = field(repr=False)  # may hold a password
    headers: dict[str, str] = field(repr=False)  # may hold an API key
    body: Optional[bytes]
    model: str
    method: str = "POST"


class Sender(Protocol):
    """What an exchange needs of the client it sends for (a provider)."""

    session: requests.Session
    options: Options

    def status_error_class(
        self, status: int, body: str
    ) -> Optional[type[APIStatusError]]: ...

    def iter_text(self, chunks: Iterable[bytes]) -> Iterator[Any]: ...


class Exchange:
    """One HTTP request and its reply, read once: iterate it for the reply's
    pieces, or :meth:`read_all` for its bytes.

    ``deadline`` (monotonic) bounds every phase; ``on_response`` sees the
    response as soon as its headers are in. ``close()`` releases the
    response, from any state.
    """

    def __init__(
        self,
        provider: Sender,
        prepared: PreparedChat,
        deadline: Optional[float] = None,
        on_response: Optional[Callable[[requests.Response], None]] = None,
    ) -> None:
        self.provider = provider
        self.prepared = prepared
        self.deadline = deadline
        self.on_response = on_response
        self.response: Optional[requests.Response] = None
        self.guard: Optional[Guard] = None

    def __iter__(self) -> Iterator[Any]:
        body = self._start()
        try:
            content_type = body.response.headers.get("content-type", "")
            # A prepared call may bring its own reader (the Responses API's).
            decode = getattr(self.prepared, "decode", None) or self.provider.iter_text
            yield from decode(refuse_html(body, content_type))
            body.finish()
        finally:
            self._end()

    def read_all(self) -> tuple[bytes, str]:
        """Send, and read the whole body: its bytes and its content type."""
        body = self._start()
        try:
            return b"".join(body), body.response.headers.get("content-type", "")
        finally:
            self._end()

    def _start(self) -> Body:
        """Send, check the status, and return the body to read."""
        provider, options = self.provider, self.provider.options
        guard = self.guard = Guard(self.deadline)
        try:
            response = send(
                provider.session,
                self.prepared.method,
                self.prepared.url,
                data=self.prepared.body,
                headers=self.prepared.headers,
                timeout=options.timeout,
                deadline=self.deadline,
                guard=guard,
                proxies=options.proxies,
                allow_redirects=False,
            )
        except BaseException:
            guard.finish()
            raise
        self.response = response
        try:
            if self.on_response is not None:
                self.on_response(response)
            if response.status_code != 200:  # every protocol's one success
                with response:
                    data = read_error_body(
                        response, self.deadline, options.read_timeout
                    )
                text = data.decode("utf-8", errors="replace")
                raise status_error(
                    response,
                    data,
                    error_class=provider.status_error_class(response.status_code, text),
                )
            return Body(response, self.deadline, options.read_timeout, guard=guard)
        except BaseException:
            self._end()
            raise

    def _end(self) -> None:
        if self.guard is not None:
            self.guard.finish()
        if self.response is not None:
            self.response.close()

    def abort(self) -> None:
        """Make a send or read blocked in another thread return at once."""
        if self.guard is not None:
            self.guard.shut()
        if self.response is not None:  # a session without GuardedAdapter
            shut_down(self.response)

    def close(self) -> None:
        if self.response is not None:
            self.response.close()
