"""Retrying: the loop, and pure helpers for what may be retried and how long to wait.

:func:`retrying` is the one retry loop; it sleeps through :func:`sleep`,
which tests replace.
"""

from __future__ import annotations

import email.utils
import logging
import random
import re
import threading
import time
from typing import Callable, Optional, TypeVar

from .._constants import (
    INITIAL_RETRY_DELAY,
    MAX_RETRY_AFTER,
    MAX_RETRY_DELAY,
    RETRY_STATUSES,
)
from ..exceptions import APIConnectionError, APIError, APIStatusError, APITimeoutError

__all__ = ["backoff_delay", "is_retryable", "parse_retry_after", "retrying", "sleep"]

logger = logging.getLogger("chatproviders")

_T = TypeVar("_T")


def retrying(
    once: Callable[[], _T],
    *,
    max_retries: int,
    deadline: Optional[float] = None,
    cancel: Optional[threading.Event] = None,
    name: str = "",
) -> tuple[_T, int]:
    """Call ``once`` until it returns, and how many tries that took.

    An :class:`APIError` that :func:`is_retryable` is tried again up to
    ``max_retries`` times, after :func:`backoff_delay`; never past
    ``deadline`` (monotonic), and never once ``cancel`` is set (a wait
    between two tries ends when it is). The error raised says its ``tries``.
    """
    retries = 0
    while True:
        try:
            return once(), retries + 1
        except APIError as error:
            error.tries = retries + 1
            if retries >= max_retries or not is_retryable(error):
                raise
            if cancel is not None and cancel.is_set():
                raise
            delay = backoff_delay(retries + 1, getattr(error, "retry_after", None))
            if deadline is not None and time.monotonic() + delay >= deadline:
                raise
            retries += 1
            logger.info(
                "%s: retry %d of %d in %.2f s after: %s",
                name,
                retries,
                max_retries,
                delay,
                error,
            )
            sleep(delay, cancel)
            if cancel is not None and cancel.is_set():  # closed while waiting
                raise


def sleep(seconds: float, cancel: Optional[threading.Event] = None) -> None:
    """The one sleep retries take (tests replace it); ``cancel`` cuts it short."""
    if cancel is None:
        time.sleep(seconds)
    else:
        cancel.wait(seconds)


def is_retryable(error: APIError) -> bool:
    """True for failures worth another try before any text reached the caller.

    Not when the server asked for a longer wait than ``MAX_RETRY_AFTER``: the
    error then says how long (``retry_after``), and the caller decides.
    """
    if isinstance(error, APIStatusError):
        too_long = error.retry_after is not None and error.retry_after > MAX_RETRY_AFTER
        # llama-cpp-python's server refuses a response_format it does not
        # take with a 500 naming it: the same request would fail again.
        refused = "response_format" in f"{error.message} {error.body}"
        return error.status_code in RETRY_STATUSES and not too_long and not refused
    if isinstance(error, APITimeoutError):
        return error.limit == "connect"
    return isinstance(error, APIConnectionError) and not error.permanent


def backoff_delay(
    retry: int, retry_after: Optional[float] = None, jitter: float = 0.25
) -> float:
    """Seconds to wait before retry number ``retry`` (1, 2, ...).

    A server's ``retry_after`` wins; otherwise exponential backoff, capped,
    less up to ``jitter`` of itself at random.
    """
    if retry_after is not None:
        return retry_after
    delay: float = min(INITIAL_RETRY_DELAY * 2.0 ** (retry - 1), MAX_RETRY_DELAY)
    return delay * (1 - jitter * random.random())


_TRY_AGAIN = re.compile(
    r"(?:try again|retry)\s+(?:in|after)\s+(\d+(?:\.\d+)?)\s*"
    r"(ms|milliseconds?|s|secs?|seconds?|m|mins?|minutes?)?\b",
    re.IGNORECASE,
)


def parse_retry_after(
    header: Optional[str], body: str = "", now: Optional[float] = None
) -> Optional[float]:
    """Seconds to wait, from a ``Retry-After`` header or a "try again in N s" body.

    The header may hold seconds or an HTTP date; a date in the past means 0.
    Returns ``None`` when neither says anything usable.
    """
    if header:
        value = header.strip()
        try:
            seconds = float(value)
        except ValueError:
            parsed = email.utils.parsedate_tz(value)
            if parsed is not None:
                when = email.utils.mktime_tz(parsed)
                return max(0.0, when - (time.time() if now is None else now))
        else:
            if seconds >= 0:
                return seconds
    found = _TRY_AGAIN.search(body)
    if found:
        return float(found.group(1)) * _unit_seconds(found.group(2) or "s")
    return None


def _unit_seconds(unit: str) -> float:
    unit = unit.lower()
    if unit == "ms" or unit.startswith("milli"):
        return 0.001
    return 60.0 if unit.startswith("m") else 1.0
