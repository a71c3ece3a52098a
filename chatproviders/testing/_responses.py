"""The openai emulator's ``POST /v1/responses``: the Responses API, streamed or not.

A :class:`~chatproviders.testing.Reply` becomes a response as OpenAI's
server shapes it (every event with its ``sequence_number``,
``output_index``, ``content_index`` and ``item_id``): the reasoning as one
reasoning item with a summary, the text as one message item, each tool call
as a ``function_call`` item (its ``id`` is the ``call_id``), then
``response.completed`` with the usage. ``finish_reason="length"`` (or
``"content_filter"``) answers ``response.incomplete``; ``failure={"code",
"message"}`` answers ``response.failed`` after the text. Like Ollama and
llama.cpp's server, the emulator keeps no responses: a request with
``previous_response_id`` is refused (400).
"""

from __future__ import annotations

import itertools
import time
import uuid
from typing import Any, Callable, Mapping, Optional

from chatproviders.testing import _encode
from chatproviders.testing._reply import Reply
from chatproviders.testing._traffic import Answer

ROUTE = "/v1/responses"

#: ``input`` item types this emulator reads (besides messages, which have a role).
INPUT_ITEMS = ("message", "function_call", "function_call_output", "reasoning")


def request_problem(body: Any) -> Optional[tuple[str, Optional[str]]]:
    """What is wrong with a Responses request body, and the parameter; or None."""
    if not isinstance(body, dict):
        return "the body must be a JSON object", None
    if not isinstance(body.get("model"), str):
        return "model must be a string", "model"
    if body.get("previous_response_id") is not None:
        return (
            "this server keeps no responses: previous_response_id is not "
            "supported; send the earlier output items as input",
            "previous_response_id",
        )
    data = body.get("input")
    if isinstance(data, str):
        pass
    elif not isinstance(data, list) or not data:
        return "input must be a string or a non-empty array of items", "input"
    else:
        for number, item in enumerate(data):
            problem = _item_problem(item)
            if problem:
                return f"input[{number}]: {problem}", "input"
    for name in ("stream", "store", "parallel_tool_calls"):
        if name in body and not isinstance(body[name], bool):
            return f"{name} must be a boolean", name
    if "max_output_tokens" in body and not (
        type(body["max_output_tokens"]) is int and body["max_output_tokens"] >= 16
    ):
        return "max_output_tokens must be an integer >= 16", "max_output_tokens"
    tools = body.get("tools", [])
    if not isinstance(tools, list) or not all(
        isinstance(tool, dict) and isinstance(tool.get("type"), str) for tool in tools
    ):
        return "tools must be an array of tool objects", "tools"
    for number, tool in enumerate(tools):
        if tool["type"] == "function" and not isinstance(tool.get("name"), str):
            return f"Missing required parameter: 'tools[{number}].name'.", "tools"
    return None


def _item_problem(item: Any) -> Optional[str]:
    if not isinstance(item, dict):
        return "an item must be an object"
    if "role" in item:
        if item["role"] not in ("user", "assistant", "system", "developer"):
            return f"unknown role {item['role']!r}"
        if not isinstance(item.get("content"), (str, list)):
            return "content must be a string or an array"
        return None
    kind = item.get("type")
    if kind not in INPUT_ITEMS:
        return f"unknown item type {kind!r}"
    if kind in ("function_call", "function_call_output") and not isinstance(
        item.get("call_id"), str
    ):
        return f"a {kind} item needs a call_id"
    return None


def encode(reply: Reply, body: dict[str, Any]) -> Answer:
    """The reply to a valid request: one response object, or its events."""
    if not body.get("stream"):
        response = _response(reply, body, _items(reply), _final_status(reply))
        return _encode.json_answer(200, response)
    return _events(reply, body)


def _final_status(reply: Reply) -> str:
    if reply.failure is not None:
        return "failed"
    return (
        "incomplete"
        if reply.finish_reason in ("length", "content_filter")
        else ("completed")
    )


def _items(reply: Reply) -> list[dict[str, Any]]:
    """The output items of the whole reply, finished."""
    items: list[dict[str, Any]] = []
    if reply.reasoning:
        items.append(_reasoning_item(reply.reasoning))
    if reply.text:
        items.append(_message_item(reply.text, "completed"))
    items += [
        _call_item(call, call["arguments"], "completed") for call in reply.tool_calls
    ]
    return items


def _reasoning_item(text: str) -> dict[str, Any]:
    summary = [{"type": "summary_text", "text": text}] if text else []
    return {"id": "rs_0", "type": "reasoning", "summary": summary}


def _message_item(text: Optional[str], status: str) -> dict[str, Any]:
    content = [] if text is None else [_text_part(text)]
    return {
        "id": "msg_0",
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": content,
    }


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _call_item(call: Mapping[str, Any], arguments: str, status: str) -> dict[str, Any]:
    return {
        "id": f"fc_{call['id']}",
        "type": "function_call",
        "status": status,
        "call_id": call["id"],
        "name": call["name"],
        "arguments": arguments,
    }


def _usage(reply: Reply) -> dict[str, Any]:
    counts = _encode._usage(reply)
    given = dict(reply.usage or {})
    made = given.get("output_tokens", counts["completion_tokens"])
    taken = given.get("input_tokens", counts["prompt_tokens"])
    return {
        "input_tokens": taken,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": made,
        "output_tokens_details": {
            "reasoning_tokens": given.get(
                "reasoning_tokens", len((reply.reasoning or "").split())
            )
        },
        "total_tokens": given.get("total_tokens", taken + made),
    }


def _response(
    reply: Optional[Reply],
    body: dict[str, Any],
    output: list[dict[str, Any]],
    status: str,
    response_id: Optional[str] = None,
) -> dict[str, Any]:
    """A response object as OpenAI's SDK types read it."""
    incomplete = None
    error = None
    if reply is not None and status == "incomplete":
        reason = (
            "max_output_tokens" if reply.finish_reason == "length" else "content_filter"
        )
        incomplete = {"reason": reason}
    if reply is not None and status == "failed":
        failure = dict(reply.failure or {})
        error = {
            "code": failure.get("code", "server_error"),
            "message": failure.get("message", "The model failed."),
        }
    return {
        "id": response_id or f"resp_{uuid.uuid4().hex[:24]}",
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "model": body["model"],
        "output": output,
        "usage": None if reply is None or status == "failed" else _usage(reply),
        "error": error,
        "incomplete_details": incomplete,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "metadata": body.get("metadata") or {},
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": None,
        "reasoning": body.get("reasoning") or {"effort": None, "summary": None},
        "store": body.get("store", False),
        "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools", []),
        "top_p": body.get("top_p", 1.0),
        "truncation": "disabled",
    }


def _events(reply: Reply, body: dict[str, Any]) -> Answer:
    """The server-sent events of a streamed reply, one write each."""
    numbers = itertools.count()
    events: list[dict[str, Any]] = []

    def send(kind: str, **fields: Any) -> None:
        events.append({"type": kind, "sequence_number": next(numbers), **fields})

    response_id = f"resp_{uuid.uuid4().hex[:24]}"
    begun = _response(None, body, [], "in_progress", response_id)
    send("response.created", response=begun)
    send("response.in_progress", response=begun)
    done: list[dict[str, Any]] = []
    if reply.reasoning:
        _stream_reasoning(send, reply, len(done))
        done.append(_reasoning_item(reply.reasoning))
    if reply.text:
        _stream_text(send, reply, len(done), reply.failure is not None)
        if reply.failure is None:
            done.append(_message_item(reply.text, "completed"))
    if reply.failure is None:
        for call, pieces in zip(reply.tool_calls, _argument_pieces(reply)):
            _stream_call(send, call, pieces, len(done))
            done.append(_call_item(call, call["arguments"], "completed"))
    status = _final_status(reply)
    final = _response(reply, body, done, status, response_id)
    send(f"response.{status}", response=final)
    return _sse(events, reply.split_crlf)


def _stream_reasoning(send: Callable[..., None], reply: Reply, index: int) -> None:
    key = {"item_id": "rs_0", "output_index": index, "summary_index": 0}
    send("response.output_item.added", output_index=index, item=_reasoning_item(""))
    part = {"type": "summary_text", "text": ""}
    send("response.reasoning_summary_part.added", **key, part=part)
    for piece in reply.reasoning_chunks():
        send("response.reasoning_summary_text.delta", **key, delta=piece)
    text = reply.reasoning or ""
    send("response.reasoning_summary_text.done", **key, text=text)
    part = {"type": "summary_text", "text": text}
    send("response.reasoning_summary_part.done", **key, part=part)
    item = _reasoning_item(text)
    send("response.output_item.done", output_index=index, item=item)


def _stream_text(
    send: Callable[..., None], reply: Reply, index: int, cut_short: bool
) -> None:
    key = {"item_id": "msg_0", "output_index": index, "content_index": 0}
    item = _message_item(None, "in_progress")
    send("response.output_item.added", output_index=index, item=item)
    send("response.content_part.added", **key, part=_text_part(""))
    for piece in reply.text_chunks():
        send("response.output_text.delta", **key, delta=piece, logprobs=[])
    if cut_short:  # failed after the text: the item is never finished
        return
    text = reply.text or ""
    send("response.output_text.done", **key, text=text, logprobs=[])
    send("response.content_part.done", **key, part=_text_part(text))
    item = _message_item(text, "completed")
    send("response.output_item.done", output_index=index, item=item)


def _stream_call(
    send: Callable[..., None], call: Mapping[str, Any], pieces: list[str], index: int
) -> None:
    key = {"item_id": f"fc_{call['id']}", "output_index": index}
    item = _call_item(call, "", "in_progress")
    send("response.output_item.added", output_index=index, item=item)
    for piece in pieces:
        send("response.function_call_arguments.delta", **key, delta=piece)
    arguments = call["arguments"]
    send(
        "response.function_call_arguments.done",
        **key,
        name=call["name"],
        arguments=arguments,
    )
    item = _call_item(call, arguments, "completed")
    send("response.output_item.done", output_index=index, item=item)


def _argument_pieces(reply: Reply) -> list[list[str]]:
    pieces = []
    for call in reply.tool_calls:
        arguments = call["arguments"]
        size = -(-len(arguments) // reply.tool_call_fragments) or 1
        pieces.append([arguments[i : i + size] for i in range(0, len(arguments), size)])
    return pieces


def _sse(events: list[dict[str, Any]], split_crlf: bool) -> Answer:
    newline = "\r\n" if split_crlf else "\n"
    writes: list[bytes] = []
    for event in events:
        data = _encode._json(event)
        frame = (
            f"event: {event['type']}{newline}data: {data}{newline}{newline}".encode()
        )
        if split_crlf:
            cut = frame.index(b"\r\n") + 1
            writes += [frame[:cut], frame[cut:]]
        else:
            writes.append(frame)
    headers = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    return Answer(200, headers, writes)
