"""Pure helpers for retrying: how long the server asked us to wait."""

from __future__ import annotations

import email.utils
import re
import time
from typing import Optional

__all__ = ["parse_retry_after"]

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
