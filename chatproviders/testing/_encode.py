"""Response bodies as lists of separate writes: raw text, SSE, JSON, error pages."""

from __future__ import annotations

import itertools
import json
import time
import uuid
from typing import Any, Mapping

from chatproviders.testing._reply import Reply
from chatproviders.testing._traffic import Answer

TEXT_PLAIN = "text/plain; charset=utf-8"
JSON = "application/json"


def raw_text(reply: Reply) -> Answer:
    """Raw UTF-8 text, one write per text chunk (Cromicle, Acytoo, GPROChat)."""
    writes = [chunk.encode() for chunk in reply.text_chunks()]
    return Answer(200, {"Content-Type": TEXT_PLAIN}, writes)


def sse(reply: Reply, model: str, include_usage: bool = False) -> Answer:
    """OpenAI chat-chunk events, one write each, then ``data: [DONE]``.

    The first event carries the ``{"role": "assistant"}`` delta; then come the
    reasoning deltas, one event per text chunk, the tool-call fragments, an
    empty delta with the finish reason and, when ``include_usage``, a usage
    event with empty ``choices`` (the other events then say ``"usage": null``,
    as OpenAI's do).
    """
    base = {
        "id": _id(),
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
    }
    deltas: list[tuple[dict[str, Any], str | None]] = [({"role": "assistant"}, None)]
    field = reply.reasoning_field
    deltas += [({field: chunk}, None) for chunk in reply.reasoning_chunks()]
    deltas += [({"content": chunk}, None) for chunk in reply.text_chunks()]
    deltas += [({"refusal": chunk}, None) for chunk in reply.refusal_chunks()]
    deltas += [({"tool_calls": [piece]}, None) for piece in _tool_call_pieces(reply)]
    deltas.append(({}, reply.finish))
    if include_usage:
        base["usage"] = None
    events = [
        _json({**base, "choices": [{"index": 0, "delta": d, "finish_reason": f}]})
        for d, f in deltas
    ]
    if include_usage:
        events.append(_json({**base, "choices": [], "usage": _usage(reply)}))
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


def completion(reply: Reply, model: str) -> dict[str, Any]:
    """A non-streamed OpenAI ``chat.completion`` (usage counts words)."""
    text = reply.text or ""
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if reply.reasoning:
        message[reply.reasoning_field] = reply.reasoning
    if reply.tool_calls:
        message["content"] = text or None
        message["tool_calls"] = [_call(call) for call in reply.tool_calls]
    if reply.refusal is not None:
        message["content"] = text or None
        message["refusal"] = reply.refusal
    choice = {"index": 0, "message": message, "finish_reason": reply.finish}
    return {
        "id": _id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [choice],
        "usage": _usage(reply),
    }


def _call(call: Mapping[str, Any]) -> dict[str, Any]:
    function = {"name": call["name"], "arguments": call["arguments"]}
    return {"id": call["id"], "type": "function", "function": function}


def _tool_call_pieces(reply: Reply) -> list[dict[str, Any]]:
    """The tool-call fragments in the order they are sent: for each call, its
    id and name with empty arguments, then the arguments in pieces; with
    ``interleave``, the calls' fragments take turns.
    """
    per_call = []
    for index, call in enumerate(reply.tool_calls):
        first = {**_call(call), "index": index}
        first["function"] = {"name": call["name"], "arguments": ""}
        arguments = call["arguments"]
        size = -(-len(arguments) // reply.tool_call_fragments) or 1
        rest = [
            {"index": index, "function": {"arguments": arguments[i : i + size]}}
            for i in range(0, len(arguments), size)
        ]
        per_call.append([first, *rest])
    if not reply.interleave:
        return [piece for pieces in per_call for piece in pieces]
    turns = itertools.zip_longest(*per_call)
    return [piece for turn in turns for piece in turn if piece is not None]


def _usage(reply: Reply) -> dict[str, int]:
    """The reply's token counts: as given, else its words (prompt: none)."""
    words = len((reply.text or "").split()) + len((reply.reasoning or "").split())
    counts = {"prompt_tokens": 0, "completion_tokens": words}
    counts.update(reply.usage or {})
    counts.setdefault("total_tokens", 0)
    if "total_tokens" not in (reply.usage or {}):
        counts["total_tokens"] = counts["prompt_tokens"] + counts["completion_tokens"]
    return counts


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
