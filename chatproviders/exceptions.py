"""Every error chatproviders raises, in one tree.

::

    ChatProvidersError
    ├── InvalidMessagesError          (also a ValueError; raised before any I/O)
    ├── UnsupportedParameterError     (also a TypeError; raised before any I/O)
    ├── ModelNotSupportedError        (also a ValueError; raised before any I/O)
    ├── ProviderNotFoundError         (also a LookupError)
    ├── ProviderNotWorkingError
    ├── CheckpointError               (also a ValueError; a batch's checkpoint file)
    ├── StructuredOutputError         (a reply parse() could not validate)
    └── APIError                      (something went wrong talking to a provider)
        ├── APIConnectionError        (no usable connection, or it broke)
        │   ├── APITimeoutError       (connect, read or total deadline passed)
        │   └── IncompleteStreamError (the reply ended before the protocol said so)
        ├── AllProvidersFailedError   (a FallbackProvider ran out; see .attempts)
        ├── APIStatusError            (the server answered with an error status)
        │   ├── BadRequestError       (400, 404, 422)
        │   ├── AuthenticationError   (401, 403)
        │   ├── RateLimitError        (429, and "Quota exceeded" replies)
        │   └── InternalServerError   (500 and above)
        └── ResponseFormatError       (a body that breaks the provider's protocol)

Every error carries the ``provider`` name and the ``host`` it talked to, and
``partial_text``: the reply text received before things went wrong, so nothing
is lost. An error's data are its class's annotated fields, each with a
default, set by keyword (``APIStatusError(msg, status_code=429)``); so errors
pickle: the message is the one argument, and the fields travel in
``__dict__``. No error ever holds a request's headers, so an API key cannot
leak through ``str()`` or ``repr()``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AllProvidersFailedError",
    "Attempt",
    "AuthenticationError",
    "BadRequestError",
    "ChatProvidersError",
    "CheckpointError",
    "IncompleteStreamError",
    "InternalServerError",
    "InvalidMessagesError",
    "ModelNotSupportedError",
    "ProviderNotFoundError",
    "ProviderNotWorkingError",
    "RateLimitError",
    "ResponseFormatError",
    "StructuredOutputError",
    "UnsupportedParameterError",
]


class ChatProvidersError(Exception):
    """Root of every error raised by chatproviders."""

    provider: Optional[str] = None
    host: Optional[str] = None

    def __init__(self, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        for name, value in fields.items():
            if name.startswith("_") or name not in _fields(type(self)):
                raise TypeError(f"{type(self).__name__} has no field {name!r}")
            setattr(self, name, value)

    def __str__(self) -> str:
        where = self.provider or ""
        if self.host:
            where = f"{where} at {self.host}" if where else self.host
        return f"{where}: {self.message}" if where else self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


def _fields(cls: type) -> set[str]:
    """The names an error class annotates, its bases' included."""
    return {
        name for klass in cls.__mro__ for name in vars(klass).get("__annotations__", {})
    }


class InvalidMessagesError(ChatProvidersError, ValueError):
    """The ``messages`` argument is not a non-empty list of role/content dicts."""


class UnsupportedParameterError(ChatProvidersError, TypeError):
    """A keyword argument the provider's protocol does not understand."""


class ModelNotSupportedError(ChatProvidersError, ValueError):
    """The provider has a fixed model list and the name is not on it."""

    model: Optional[str] = None
    supported: tuple[str, ...] = ()


class ProviderNotFoundError(ChatProvidersError, LookupError):
    """No provider is registered under that name."""

    name: Optional[str] = None
    known: tuple[str, ...] = ()


class ProviderNotWorkingError(ChatProvidersError):
    """The facade refuses a provider marked ``working = False``.

    Pass ``ignore_working=True``, or use the client class directly.
    """


class CheckpointError(ChatProvidersError, ValueError):
    """A batch's checkpoint cannot be used: it is not a regular file, another
    process holds it, or it cannot be read or written (a full disk).

    ``path`` names the file. Raised mid-batch (a write failed), nothing more
    is sent and ``partial`` is the :class:`~chatproviders.BatchResult` of the
    items finished so far; raised before anything is sent, ``partial`` is
    None. Also a ValueError, as 0.2 raised for a checkpoint it could not open.
    """

    path: Optional[str] = None
    partial: Any = None


class StructuredOutputError(ChatProvidersError):
    """The reply could not be read as the schema asked of it.

    Raised by ``parse()`` once the retries (``max_parse_retries``) are spent,
    by a stream opened with ``schema=`` at its end, and at once for a reply
    cut short (``finish_reason`` ``"length"``, ``max_tokens`` reached) or
    withheld by a content filter. ``text`` is the last reply's text,
    ``errors`` what was wrong with it (one line each), ``mode`` the mode
    that asked for it, ``finish_reason`` as the server said.
    """

    text: str = ""
    errors: tuple[str, ...] = ()
    mode: Optional[str] = None
    finish_reason: Optional[str] = None


class APIError(ChatProvidersError):
    """Talking to the provider failed.

    ``partial_text`` holds the text that did arrive; ``tries`` how many
    requests the call made (retries included) before giving up; ``code`` the
    server's own error code where it sent one in the reply (a Responses
    ``error`` or ``response.failed`` event: ``"server_error"``...).
    """

    partial_text: str = ""
    tries: int = 1
    code: Optional[str] = None


class APIConnectionError(APIError):
    """The connection could not be made, or broke; ``permanent`` when trying
    again cannot help (a TLS certificate refused).
    """

    permanent: bool = False


class APITimeoutError(APIConnectionError):
    """A deadline passed; ``limit`` says which one (``"connect"``, ``"read"``...)."""

    limit: Optional[str] = None


class IncompleteStreamError(APIConnectionError):
    """The reply ended before its protocol said it was complete."""


class ResponseFormatError(APIError):
    """The body does not follow the provider's protocol (or is an HTML page:
    then ``html`` is true).
    """

    body: str = ""
    html: bool = False


class APIStatusError(APIError):
    """The server answered with an error status; ``body`` is a short excerpt,
    and ``html`` is true when it is a web page (a bot wall, a challenge).
    """

    status_code: int = 0
    body: str = ""
    html: bool = False
    retry_after: Optional[float] = None


class BadRequestError(APIStatusError):
    """400, 404 or 422: the request itself was refused."""


class AuthenticationError(APIStatusError):
    """401 or 403: credentials refused, or a bot wall."""


class RateLimitError(APIStatusError):
    """429, or a provider's own "quota exceeded"; see ``retry_after``."""


class InternalServerError(APIStatusError):
    """500 or above."""


@dataclass(frozen=True)
class Attempt:
    """One try of a :class:`FallbackProvider`: who, what went wrong, how long."""

    provider: str
    error: BaseException
    elapsed: float
    status_code: Optional[int] = None

    def __str__(self) -> str:
        status = f" [{self.status_code}]" if self.status_code else ""
        reason = getattr(self.error, "message", None) or str(self.error)
        kind = type(self.error).__name__
        return f"{self.provider}{status}: {kind}: {reason} ({self.elapsed:.2f} s)"


class AllProvidersFailedError(APIError):
    """Every provider of a FallbackProvider failed; ``attempts`` says how."""

    attempts: tuple[Attempt, ...] = ()

    def __str__(self) -> str:
        lines = [super().__str__()]
        lines += [f"  {attempt}" for attempt in self.attempts]
        return "\n".join(lines)
