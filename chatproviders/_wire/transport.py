"""Where requests and urllib3 meet chatproviders.

Four jobs, each in one place:

* :func:`send` sends one request within a timeout and a deadline.
* :class:`Body` hands over body bytes the moment they arrive, whatever the
  framing (chunked, Content-Length or close-delimited). requests'
  ``iter_content`` fills a whole buffer before it yields on the latter two.
* :func:`status_error` turns an HTTP error reply into an :class:`APIStatusError`.
* :func:`translate_exception` is the only place a requests, urllib3 or socket
  exception becomes one of ours: nothing above this module sees theirs.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import socket
import time
from collections.abc import Iterable, Iterator
from typing import Any, Optional, Union

import requests
import urllib3.exceptions

from .._constants import (
    ERROR_BODY_EXCERPT,
    ERROR_BODY_LIMIT,
    FINISH_LIMIT,
    FINISH_WAIT,
    READ_CHUNK_SIZE,
)
from ..exceptions import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    IncompleteStreamError,
    InternalServerError,
    RateLimitError,
    ResponseFormatError,
)
from .deadline import Guard, guarding
from .retry import parse_retry_after

__all__ = [
    "Body",
    "error_class_for_status",
    "html_title",
    "looks_like_html",
    "read_error_body",
    "refuse_html",
    "send",
    "shut_down",
    "status_error",
    "total_timeout_error",
    "translate_exception",
]

Timeout = Union[float, tuple[float, float]]


def send(
    session: requests.Session,
    method: str,
    url: str,
    *,
    timeout: Timeout,
    deadline: Optional[float] = None,
    guard: Optional[Guard] = None,
    **kwargs: Any,
) -> requests.Response:
    """Send one request through ``session``, streaming the body; a timeout
    cut short by ``deadline`` (monotonic) that runs out is the total timeout,
    and so is a ``guard`` that expired (see :mod:`.deadline`).
    """
    timeout, deadline_binds = _within(timeout, deadline)
    try:
        with guarding(guard) if guard is not None else contextlib.nullcontext():
            response = session.request(
                method, url, timeout=timeout, stream=True, **kwargs
            )
    except Exception as exc:
        error = translate_exception(exc)
        if error is None:
            raise
        expired = guard is not None and guard.expired
        if expired or (deadline_binds and isinstance(error, APITimeoutError)):
            error = total_timeout_error()
        raise error from exc
    if guard is not None and guard.expired:  # a head cut short may still parse
        response.close()
        raise total_timeout_error()
    return response


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


#: What reading a body can raise, ours (a total timeout) or requests' and below.
READ_ERRORS = (
    APIError,
    OSError,
    requests.RequestException,
    urllib3.exceptions.HTTPError,
)


class Body:
    """The (content-decoded) body of ``response``, handed over as it arrives:
    iterate it for ``bytes``.

    ``read1`` returns as soon as any bytes are available, where ``read`` and
    requests' ``iter_content`` wait for a full buffer unless the body is chunked;
    a chunked body is read chunk by chunk. Reaching the end releases the
    connection back to the pool.

    With a ``deadline`` (a ``time.monotonic()`` value), every read waits at
    most until then, so a server trickling bytes forever cannot outlast it.
    """

    def __init__(
        self,
        response: requests.Response,
        deadline: Optional[float] = None,
        read_timeout: Optional[float] = None,
        size: int = READ_CHUNK_SIZE,
        guard: Optional[Guard] = None,
    ) -> None:
        self.response = response
        self.guard = guard
        self.deadline = deadline
        self.read_timeout = read_timeout
        self.size = size
        self._chunks = self._read()

    def __iter__(self) -> Body:
        return self

    def __next__(self) -> bytes:
        # A plain iterator, with no close(): a decoder that stops at the end of
        # the reply (SSE's [DONE]) and is dropped must not close the read in
        # progress, which would drop the connection before finish() drains it.
        return next(self._chunks)

    def _read(self) -> Iterator[bytes]:
        """The body's bytes; every failure is one of ours."""
        try:
            yield from self._read_raw()
            guard = self.guard
            if guard is not None and guard.expired and not guard.complete:
                raise total_timeout_error()  # a body cut short may look ended
        except Exception as exc:
            if self.guard is not None and self.guard.expired:
                raise total_timeout_error() from exc
            if isinstance(exc, APIError):
                raise
            error = translate_exception(exc, in_body=True)
            if error is None:
                raise
            raise error from exc

    def finish(self, wait: float = FINISH_WAIT, limit: int = FINISH_LIMIT) -> None:
        """Read what is left once the reply has ended before the body (an SSE
        body after ``data: [DONE]``: usually just the chunked terminator), so
        that the connection goes back to the pool.

        Gives up quietly after ``wait`` seconds or ``limit`` bytes, or on any
        error; closing the response then drops the connection, as it would have.
        """
        if self.response.raw.closed:  # the body ended with the reply, as usual
            return
        end = time.monotonic() + wait
        self.deadline = end if self.deadline is None else min(self.deadline, end)
        sock = _socket(self.response)
        if sock is not None:
            sock.settimeout(wait)  # the chunk-by-chunk reads set none of their own
        read = 0
        with contextlib.suppress(*READ_ERRORS):
            for data in self._chunks:
                read += len(data)
                if read > limit or time.monotonic() > end:
                    return

    def _read_raw(self) -> Iterator[bytes]:
        raw = self.response.raw
        # Without a Content-Encoding there is nothing to decode, and urllib3's
        # decoding path copies every read through a buffer: skip it.
        decode = "content-encoding" in raw.headers
        if self.deadline is None and raw.chunked and raw.supports_chunked_reads():
            # Whole HTTP chunks, each as soon as it is complete (servers write
            # a chunk at once): about twice as fast as read1, which returns at
            # most one 8 KB buffer of http.client's at a time.
            try:
                for data in raw.read_chunked(decode_content=decode):
                    if data:
                        yield data
            except urllib3.exceptions.ProtocolError as exc:
                # A chunk cut short: hand over its bytes, as read1 would have.
                partial = None if decode else _partial_chunk(exc)
                if partial:
                    yield partial
                raise
            return
        sock = _socket(self.response)
        while True:
            if raw.length_remaining == 0 and not decode:
                # All of a Content-Length body is in: that is its end, with
                # no read to wait on (nor a deadline that passed meanwhile).
                raw.release_conn()
                return
            deadline_binds = False
            if self.deadline is not None:  # read on each pass: finish() moves it
                remaining = self.deadline - time.monotonic()
                if remaining <= 0:
                    raise total_timeout_error()
                read_timeout = self.read_timeout
                deadline_binds = read_timeout is None or remaining < read_timeout
                if sock is not None:
                    sock.settimeout(remaining if deadline_binds else read_timeout)
            try:
                data = raw.read1(self.size, decode_content=decode)
            except (urllib3.exceptions.ReadTimeoutError, socket.timeout) as exc:
                if deadline_binds:
                    raise total_timeout_error() from exc
                raise
            if not data:
                return
            yield data


def shut_down(response: requests.Response) -> None:
    """Make a read of ``response`` blocked in another thread return, where
    urllib3 can: not under ``responses`` (ValueError), once the connection
    went back to the pool (RuntimeError) or once the socket is closed (OSError).
    """
    with contextlib.suppress(AttributeError, OSError, RuntimeError, ValueError):
        response.raw.shutdown()


def _partial_chunk(exc: BaseException) -> Optional[bytes]:
    """The bytes of a chunk cut short, from the IncompleteRead urllib3 wraps."""
    cause = exc.__cause__
    if isinstance(cause, http.client.IncompleteRead):
        return cause.partial
    return None


def _socket(response: requests.Response) -> Optional[socket.socket]:
    """The socket under ``response``, while it has one."""
    sock = getattr(getattr(response.raw, "connection", None), "sock", None)
    return sock if isinstance(sock, socket.socket) else None


def total_timeout_error() -> APITimeoutError:
    return APITimeoutError(
        "total timeout: the call ran past its total_timeout", limit="total"
    )


#: A web page starts so (after at most 512 bytes of white space); bounded, so
#: that whether a body starts a page depends on its bytes, never its reads.
_HTML_START = re.compile(
    rb"\s{0,512}(?:<!doctype\s{1,64}html|<html|<head|<body)", re.IGNORECASE
)
#: What a page's start may still become: every proper prefix of the above.
_HTML_PREFIX = re.compile(
    rb"\s{0,512}(?:<(?:!(?:d(?:o(?:c(?:t(?:y(?:p(?:e\s{0,64}(?:h(?:t(?:m)?)?)?)?)?)?)?)?)?)?"
    rb"|h(?:t(?:m)?)?|h(?:e(?:a)?)?|b(?:o(?:d)?)?)?)?\Z",
    re.IGNORECASE,
)
_HTML_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def looks_like_html(content_type: str, body: bytes) -> bool:
    """True for a web page (a bot wall, a challenge, an error page)."""
    return "text/html" in content_type.lower() or bool(_HTML_START.match(body))


def refuse_html(chunks: Iterable[bytes], content_type: str) -> Iterator[bytes]:
    """Pass a reply's body through, unless it is a web page.

    A body declared ``text/html`` is a page. A body of another declared type
    is what the server says it is: a model asked to write HTML answers with
    HTML. A body of no declared type is a page if it starts as one; bytes
    are held back only while they could still start a page, so a reply's
    first chunk is never delayed, and the verdict does not depend on how the
    body was cut into reads.
    """
    chunks = iter(chunks)
    declared = content_type.split(";")[0].strip().lower()
    head = b""
    verdict: Optional[bool] = declared == "text/html" if declared else None
    while verdict is None:
        data = next(chunks, None)
        head += data or b""
        if _HTML_START.match(head):
            verdict = True
        elif data is None or not _HTML_PREFIX.match(head):
            verdict = False
    if verdict:
        while len(head) < ERROR_BODY_LIMIT and b"</title>" not in head.lower():
            data = next(chunks, None)  # up to the page's title, and no further
            if data is None:
                break
            head += data
        text = head[:ERROR_BODY_LIMIT].decode("utf-8", errors="replace")
        title = html_title(text)
        page = "an HTML page" + (f" titled {title!r}" if title else "")
        raise ResponseFormatError(
            f"sent {page} instead of a reply (a bot wall or error page?)",
            body=text[:ERROR_BODY_EXCERPT],
            html=True,
        )
    if head:
        yield head
    yield from chunks


def html_title(text: str) -> str:
    """The ``<title>`` of an HTML page, whitespace folded, or ``""``."""
    found = _HTML_TITLE.search(text)
    return " ".join(found.group(1).split()) if found else ""


_STATUS_CLASSES = {
    400: BadRequestError,
    401: AuthenticationError,
    403: AuthenticationError,
    404: BadRequestError,
    422: BadRequestError,
    429: RateLimitError,
}


def error_class_for_status(status: int) -> type[APIStatusError]:
    """The exception class for an HTTP error status."""
    if status >= 500:
        return InternalServerError
    return _STATUS_CLASSES.get(status, APIStatusError)


def read_error_body(
    response: requests.Response,
    deadline: Optional[float] = None,
    read_timeout: Optional[float] = None,
) -> bytes:
    """Read at most ``ERROR_BODY_LIMIT`` bytes of an error reply, never raising:
    what came before a failure, or before ``deadline``, is what there is.
    """
    data = bytearray()
    with contextlib.suppress(*READ_ERRORS):
        for chunk in Body(response, deadline=deadline, read_timeout=read_timeout):
            data += chunk
            if len(data) >= ERROR_BODY_LIMIT:
                break
    return bytes(data[:ERROR_BODY_LIMIT])


def status_error(
    response: requests.Response,
    body: bytes,
    *,
    error_class: Optional[type[APIStatusError]] = None,
) -> APIStatusError:
    """Build the error for a reply that is not the protocol's ``200``, whose body
    (or its start) is ``body``. A redirect is named, never followed: it would
    take the prompt and the headers (a key among them) to another host.
    """
    status = response.status_code
    text = body.decode("utf-8", errors="replace")
    excerpt = text[:ERROR_BODY_EXCERPT]
    reason = f"{status} {response.reason}".strip() if response.reason else str(status)
    location = response.headers.get("location")
    html = looks_like_html(response.headers.get("content-type", ""), body)
    if 300 <= status < 400:
        where = f" to {location!r}" if location else " without a Location"
        message = f"answered {reason}, a redirect{where} (not followed)"
    elif status < 300:
        message = f"answered {reason}, not a reply"
    elif html:
        title = html_title(text)
        detail = "an HTML page" + (f" titled {title!r}" if title else "")
        message = f"answered {reason} with {detail} (a bot wall or error page?)"
    else:
        summary = " ".join((_error_message(text) or excerpt).split())[:200]
        message = f"answered {reason}" + (f": {summary}" if summary else "")
    cls = error_class or error_class_for_status(status)
    return cls(
        message,
        status_code=status,
        body=excerpt,
        html=html,
        retry_after=parse_retry_after(response.headers.get("retry-after"), text),
    )


def _error_message(text: str) -> str:
    """``error.message`` (and ``error.code``) of an OpenAI-style ``{"error": {...}}``
    body, or ``""``.
    """
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return ""
    error = data.get("error") if isinstance(data, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    if not isinstance(message, str):
        return ""
    code = error.get("code") if isinstance(error, dict) else None
    return message + (f" ({code})" if isinstance(code, str) else "")


def translate_exception(
    exc: BaseException, *, in_body: bool = False
) -> Optional[APIError]:
    """Our error for a requests, urllib3 or socket exception, else ``None``.

    ``in_body`` says the failure came while reading the reply's body, where a
    broken connection means the reply is incomplete.
    """
    if isinstance(
        exc, (requests.ConnectTimeout, urllib3.exceptions.ConnectTimeoutError)
    ):
        return APITimeoutError(
            "connect timeout: no connection within the connect timeout",
            limit="connect",
        )
    if isinstance(
        exc,
        (requests.Timeout, urllib3.exceptions.ReadTimeoutError, socket.timeout),
    ):
        return APITimeoutError(
            "read timeout: the server sent nothing within the read timeout",
            limit="read",
        )
    if isinstance(
        exc, (requests.exceptions.ContentDecodingError, urllib3.exceptions.DecodeError)
    ):
        return ResponseFormatError(f"could not decode the body: {exc}")
    if in_body and isinstance(
        exc,
        (
            requests.exceptions.ChunkedEncodingError,
            requests.ConnectionError,
            urllib3.exceptions.ProtocolError,
            OSError,
        ),
    ):
        return IncompleteStreamError(
            f"the connection broke before the reply was complete ({_reason(exc)})",
        )
    if isinstance(exc, (requests.exceptions.SSLError, urllib3.exceptions.SSLError)):
        # A refused certificate or handshake does not heal by trying again.
        return APIConnectionError(f"TLS failed ({_reason(exc)})", permanent=True)
    if isinstance(
        exc,
        (
            requests.RequestException,
            urllib3.exceptions.HTTPError,
            OSError,
        ),
    ):
        return APIConnectionError(f"connection failed ({_reason(exc)})")
    return None


def _reason(exc: BaseException) -> str:
    """The innermost useful reason of a (possibly wrapped) network exception."""
    seen: set[int] = set()
    while True:
        seen.add(id(exc))
        inner = getattr(exc, "reason", None)
        if not isinstance(inner, BaseException):
            args = getattr(exc, "args", ())
            inner = next((a for a in args if isinstance(a, BaseException)), None)
        if inner is None:
            inner = exc.__cause__  # urllib3 raises NewConnectionError from it
        if inner is None or id(inner) in seen:
            break
        exc = inner
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
