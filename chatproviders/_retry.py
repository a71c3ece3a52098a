"""Retrying, in pure helpers: what may be retried, and how long to wait.

The loop that uses them is ``Provider._open``; it sleeps through
:func:`sleep`, which tests replace.
"""

from __future__ import annotations

import email.utils
import random
import re
import threading
import time
from typing import Optional

from ._constants import (
    INITIAL_RETRY_DELAY,
    MAX_RETRY_AFTER,
    MAX_RETRY_DELAY,
    RETRY_STATUSES,
)
from .exceptions import APIConnectionError, APIError, APIStatusError, APITimeoutError

__all__ = ["backoff_delay", "is_retryable", "parse_retry_after", "sleep"]


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
        return error.status_code in RETRY_STATUSES and not too_long
    if isinstance(error, APITimeoutError):
        return error.limit == "connect"
    return isinstance(error, APIConnectionError)


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
