"""Response bodies as lists of separate writes: raw text, SSE, JSON, error pages."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from chatproviders.testing._exchange import Answer
from chatproviders.testing._reply import Reply

TEXT_PLAIN = "text/plain; charset=utf-8"
JSON = "application/json"


def raw_text(reply: Reply) -> Answer:
    """Raw UTF-8 text, one write per text chunk (Cromicle, Acytoo, GPROChat)."""
    writes = [chunk.encode() for chunk in reply.text_chunks()]
    return Answer(200, {"Content-Type": TEXT_PLAIN}, writes)


def sse(reply: Reply, model: str) -> Answer:
    """OpenAI chat-chunk events, one write each, then ``data: [DONE]``.

    The first event carries the ``{"role": "assistant"}`` delta, then comes one event
    per text chunk, then an empty delta with ``finish_reason: "stop"``.
    """
    base = {
        "id": _id(),
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
    }
    deltas: list[tuple[dict[str, str], str | None]] = [({"role": "assistant"}, None)]
    deltas += [({"content": chunk}, None) for chunk in reply.text_chunks()]
    deltas.append(({}, "stop"))
    events = [
        _json({**base, "choices": [{"index": 0, "delta": d, "finish_reason": f}]})
        for d, f in deltas
    ]
    events.append("[DONE]")
    newline = "\r\n" if reply.split_crlf else "\n"
    writes: list[bytes] = []
    for data in events:
        event = f"data: {data}{newline}{newline}".encode()
        if reply.split_crlf:
            cut = event.index(b"\r\n") + 1  # between the CR and the LF
            writes += [event[:cut], event[cut:]]
        else:
            writes.append(event)
    headers = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    return Answer(200, headers, writes)


def completion(text: str, model: str) -> dict[str, Any]:
    """A non-streamed OpenAI ``chat.completion`` (usage counts words)."""
    words = len(text.split())
    usage = {"prompt_tokens": 0, "completion_tokens": words, "total_tokens": words}
    message = {"role": "assistant", "content": text}
    return {
        "id": _id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": usage,
    }


def json_answer(status: int, payload: Any) -> Answer:
    return Answer(status, {"Content-Type": JSON}, [_json(payload).encode()])


def plain(status: int, message: str) -> Answer:
    return Answer(status, {"Content-Type": TEXT_PLAIN}, [f"{message}\n".encode()])


def custom(status: int, body: str | bytes) -> Answer:
    """A fault body, Content-Type guessed: ``<`` HTML, ``{``/``[`` JSON, else text."""
    data = body.encode() if isinstance(body, str) else body
    start = data.lstrip()[:1]
    if start == b"<":
        content_type = "text/html; charset=utf-8"
    elif start in (b"{", b"["):
        content_type = JSON
    else:
        content_type = TEXT_PLAIN
    return Answer(status, {"Content-Type": content_type}, [data])


def _id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"


def _json(payload: Any) -> str:
    return json.dumps(payload, ensure_ascii=False)
