"""The access log: one line per request, written when the reply has ended.

::

    2026-12-07T02:30:00Z POST /v1/chat/completions status=200 route=fast
    provider=cromicle duration=0.412 ttfb=0.013 tokens=57 key=alice

(one line; ``-`` for what does not apply). The key's name is logged, never
the key.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Optional, TextIO

__all__ = ["AccessLog", "AccessRecord"]


@dataclass
class AccessRecord:
    """What one request's log line says; filled in as the request goes."""

    method: str
    path: str
    started: float = field(default_factory=time.monotonic)
    status: int = 0
    route: Optional[str] = None
    provider: Optional[str] = None
    key: Optional[str] = None
    ttfb: Optional[float] = None
    tokens: Optional[int] = None
    outcome: Optional[str] = None  # "hangup", "error", "shutdown"

    def first_byte(self) -> None:
        if self.ttfb is None:
            self.ttfb = time.monotonic() - self.started

    def line(self) -> str:
        duration = time.monotonic() - self.started
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        fields = [
            stamp,
            self.method,
            self.path,
            f"status={self.status}",
            f"route={self.route or '-'}",
            f"provider={self.provider or '-'}",
            f"duration={duration:.3f}",
            f"ttfb={'-' if self.ttfb is None else f'{self.ttfb:.3f}'}",
            f"tokens={'-' if self.tokens is None else self.tokens}",
            f"key={self.key or '-'}",
        ]
        if self.outcome:
            fields.append(f"outcome={self.outcome}")
        return " ".join(fields)


class AccessLog:
    """Writes each record's line to ``stream`` (None: nowhere), one at a time."""

    def __init__(self, stream: Optional[TextIO]) -> None:
        self.stream = stream
        self._lock = threading.Lock()

    def write(self, record: AccessRecord) -> None:
        if self.stream is None:
            return
        line = _printable(record.line()) + "\n"
        with self._lock:
            try:
                self.stream.write(line)
                self.stream.flush()
            except (OSError, ValueError):  # a closed stderr must not fail a reply
                pass


def _printable(text: str) -> str:
    """No line break or control character from a path can forge a log line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else "?" for c in text)
