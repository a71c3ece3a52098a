"""What passes between the HTTP layer and the protocols: request in, answer out."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping
from urllib.parse import urlsplit


@dataclass(frozen=True)
class RecordedRequest:
    """One request an emulator received, as it arrived."""

    method: str
    path: str  # with the query string, if any
    headers: Mapping[str, str]  # lower-cased names; repeated ones joined with ", "
    body: bytes
    json: Any  # the parsed JSON body, or None when the body is not JSON

    @property
    def route(self) -> str:
        """The path without the query string."""
        return urlsplit(self.path).path


@dataclass(frozen=True)
class Answer:
    """A response before framing: status, content headers, the body as writes."""

    status: int
    headers: dict[str, str]
    writes: list[bytes]

    def with_header(self, name: str, value: str) -> Answer:
        return replace(self, headers={**self.headers, name: value})
