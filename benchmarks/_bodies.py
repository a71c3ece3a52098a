"""The reply bodies the benchmarks serve, built the same way in every process.

Both kinds carry the same reply text, cut into pieces of a few characters, as
a model streams it: ``text`` is that text as raw UTF-8 (Cromicle, Acytoo,
GPROChat); ``sse`` is one OpenAI-style ``chat.completion.chunk`` event per
piece, ending with ``data: [DONE]`` (CodeLinkAva, OpenAI-compatible servers).
"""

from __future__ import annotations

import json
from typing import NamedTuple

CONTENT_TYPES = {"text": "text/plain; charset=utf-8", "sse": "text/event-stream"}

#: A few characters each, mostly ASCII, as tokens are; one is not.
PIECES = (
    "The",
    " quick",
    " brown",
    " fox",
    " jumps",
    " over",
    " the",
    " lazy",
    " dog",
    ".",
    " Caf\u00e9",
    " time",
    "!\n",
)

#: An event as OpenAI-compatible servers send it; the content goes in {}.
EVENT = (
    'data: {{"id":"chatcmpl-bench","object":"chat.completion.chunk",'
    '"created":1700000000,"model":"gpt-3.5-turbo","choices":[{{"index":0,'
    '"delta":{{"content":{}}},"finish_reason":null}}]}}\n\n'
)
DONE = b"data: [DONE]\n\n"


class Body(NamedTuple):
    data: bytes  # the body on the wire
    text: str  # the reply text it carries
    pieces: int  # how many pieces of text (events, for sse)


def event(text: str) -> bytes:
    """One ``chat.completion.chunk`` event carrying ``text``."""
    return EVENT.format(json.dumps(text, ensure_ascii=False)).encode()


def body(kind: str, size: int) -> Body:
    """A body of about ``size`` bytes (at least one cycle of pieces)."""
    if kind == "text":
        cycle = "".join(PIECES).encode()
        count = max(1, size // len(cycle))
        return Body(cycle * count, "".join(PIECES) * count, count * len(PIECES))
    if kind == "sse":
        cycle = b"".join(event(piece) for piece in PIECES)
        count = max(1, size // len(cycle))
        return Body(cycle * count + DONE, "".join(PIECES) * count, count * len(PIECES))
    raise ValueError(f"unknown body kind {kind!r}")
