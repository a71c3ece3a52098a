"""The checks of every numeric option: one set of limits, one shape of message.

Each public function and constructor checks its numbers with these, before
any I/O, so ``timeout=2e6`` or ``concurrency=True`` is a ``ValueError``
naming the option wherever it is given. A bool is never a number here, and
NaN fails every comparison.
"""

from __future__ import annotations

import math
from typing import Any, Optional

from ._constants import MAX_TIMEOUT

__all__ = ["MAX_TIMEOUT", "check_count", "check_rate", "check_seconds"]


def check_seconds(
    value: Any, name: str, *, zero: bool = False, maximum: float = MAX_TIMEOUT
) -> float:
    """``value`` if it is a number of seconds above 0 (or 0 itself, with
    ``zero``) and at most ``maximum`` (``math.inf``: any, infinity included).
    """
    what = "a number of seconds >= 0" if zero else "a positive number of seconds"
    high = "" if maximum == math.inf else f" up to {maximum:g}"
    if not _is_number(value) or not (
        (value >= 0 if zero else value > 0) and value <= maximum
    ):
        raise ValueError(f"{name} must be {what}{high}, got {value!r}")
    return value  # type: ignore[no-any-return]


def check_count(
    value: Any, name: str, *, minimum: int = 0, maximum: Optional[int] = None
) -> int:
    """``value`` if it is an int from ``minimum`` to ``maximum`` (no bound: None)."""
    high = "" if maximum is None else f" and at most {maximum}"
    if (
        not isinstance(value, int)
        or isinstance(value, bool)
        or value < minimum
        or (maximum is not None and value > maximum)
    ):
        raise ValueError(f"{name} must be an int >= {minimum}{high}, got {value!r}")
    return value


def check_rate(value: Any, name: str) -> float:
    """``value`` if it is a finite number of events per second above 0."""
    if not _is_number(value) or not 0 < value < math.inf:
        raise ValueError(f"{name} must be a number per second above 0, got {value!r}")
    return value  # type: ignore[no-any-return]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
