"""``POST /v1/responses``: OpenAI's Responses API, passed to a route's
``client.responses`` (an :class:`~chatproviders.OpenAICompatible`, or a
:class:`~chatproviders.FallbackProvider` of them).

The rules are the chat endpoint's: ``model`` is ``ROUTE`` or
``ROUTE/MODEL``, fallback happens before the first byte, and a failure after
it is one ``error`` event with no ``response.completed`` after it. A
streamed reply is re-encoded from the upstream's events, numbered afresh, so
that every item is added before it is referred to, as OpenAI's SDK needs.
"""

from __future__ import annotations

import itertools
import json
import math
import time
from collections.abc import Iterator
from typing import Any, Optional, cast

from .._responses import OutputItemDone, ResponseReported, ResponsesStream
from .._responses._resource import PARAMETERS
from .._streams.chat_stream import reached_end
from .._streams.events import TextDelta, ToolCallDelta, UsageReported
from ..exceptions import ChatProvidersError
from ._call import Call, Reply, Services, check_items, read_body, route_of, stream_flag
from ._errors import LONE_SURROGATES, GatewayError, from_provider_error
from ._hangup import disconnect_probe
from ._routes import Route

__all__ = ["responses"]

#: What a request may hold: the Responses API's parameters as
#: ``client.responses`` takes them (``extra_body`` is a client's, not a
#: field), and the fields the gateway reads itself.
FIELDS = (PARAMETERS - {"extra_body"}) | {"model", "input", "stream"}


def responses(gateway: Services, call: Call) -> Reply:
    """Answer one Responses request (streamed or not)."""
    body = read_body(call, FIELDS)
    route, model = route_of(gateway, call, body)
    _refuse_without_responses(route)
    check_items(gateway, body, "input")
    data: Any = body.get("input")
    streamed = stream_flag(body)
    params = {k: v for k, v in body.items() if k not in ("model", "input", "stream")}
    prompt_chars = len(json.dumps(data, ensure_ascii=False))
    gateway.keys.admit(call.key)
    api: Any = cast(Any, route.client).responses
    if not streamed:
        # ``api.complete()``, with the stream in hand: its host names the
        # member that answered when two members are of one class
        try:
            stream = route.client.send_prepared(api.prepare(data, model, params, False))
            assert isinstance(stream, ResponsesStream)
            with stream:
                reply = stream.until_done()
        except ChatProvidersError as error:
            raise from_provider_error(error, route.name) from None
        provider = route.member_name(stream.provider, stream.host)
        call.record.provider = provider
        usage = _usage(reply.usage)
        tokens = usage["total_tokens"] if usage else _estimate(prompt_chars, reply.text)
        call.on_close(lambda: _spend(gateway, call, tokens))
        response = {
            "id": reply.id,
            "object": "response",
            "created_at": int(time.time()),
            "status": reply.status or "completed",
            "model": f"{provider}/{model}" if model else provider,
            "output": list(reply.output),
            "usage": usage,
            "error": None,
            "incomplete_details": (
                {"reason": reply.incomplete_reason} if reply.incomplete_reason else None
            ),
        }
        return Reply.json(200, response, [("x-chatproviders-provider", provider)])
    try:
        stream = api.stream(data, model, **params)
    except ChatProvidersError as error:
        raise from_provider_error(error, route.name) from None
    provider = route.member_name(stream.provider, stream.host)
    call.record.provider = provider
    events = _Events(stream, f"{provider}/{model}" if model else provider)
    call.on_close(lambda: _spend(gateway, call, events.tokens(prompt_chars)))
    probe = disconnect_probe(call.environ)
    if probe is not None:
        token = gateway.hangups.watch(probe, events.hang_up)
        call.on_close(lambda: gateway.hangups.unwatch(token))
    call.on_close(stream.close)
    headers = [
        ("x-chatproviders-provider", provider),
        ("Content-Type", "text/event-stream; charset=utf-8"),
        ("Cache-Control", "no-cache"),
        ("X-Accel-Buffering", "no"),  # nginx in front: do not buffer events
    ]
    return Reply(200, headers, events.body(route.name, call))


def _refuse_without_responses(route: Route) -> None:
    """A route none of whose providers has a Responses API is the client's to fix."""
    members = getattr(route.client, "providers", [route.client])
    if not any(hasattr(member, "responses") for member in members):
        names = ", ".join(route.members)
        raise GatewayError(
            400,
            f"route {route.name!r} ({names}) does not serve the Responses API; "
            "use /v1/chat/completions, or a route of OpenAI-compatible providers",
            param="model",
            code="responses_not_supported",
        )


def _spend(gateway: Services, call: Call, tokens: int) -> None:
    call.record.tokens = tokens
    gateway.keys.spend(call.key, tokens)


def _usage(usage: Any) -> Optional[dict[str, int]]:
    if usage is None:
        return None
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
    }


def _estimate(prompt_chars: int, text: str) -> int:
    """About one token per four characters, when the upstream gave no usage."""
    return math.ceil((prompt_chars + len(text)) / 4)


class _Events:
    """One upstream :class:`ResponsesStream`, as Responses server-sent events.

    Items are numbered in the order they appear here: a message item opens
    at its first text, a function call at its first fragment, any other item
    (reasoning...) is added and done at once when the upstream has done it.
    """

    def __init__(self, stream: ResponsesStream, model: str) -> None:
        self.stream = stream
        self.model = model
        self.usage: Optional[dict[str, int]] = None
        self.hung_up = False
        self._numbers = itertools.count()
        self._count = 0
        self._text: Optional[tuple[int, str]] = None  # (index, item id)
        self._calls: dict[int, tuple[int, str]] = {}  # upstream index -> ours

    def hang_up(self) -> None:
        """The client left: end the upstream now (from the watcher's thread)."""
        self.hung_up = True
        self.stream.close()

    def tokens(self, prompt_chars: int) -> int:
        if self.usage is not None:
            return self.usage["total_tokens"]
        return _estimate(prompt_chars, self.stream.text)

    def body(self, route: str, call: Call) -> Iterator[bytes]:
        """``response.created``, the items' events, then the upstream's end."""
        stream = self.stream
        yield self._send("response.created", response=self._head("in_progress"))
        final: Optional[dict[str, Any]] = None
        try:
            for event in stream.events():
                if isinstance(event, TextDelta):
                    yield from self._text_delta(event.text)
                elif isinstance(event, ToolCallDelta):
                    yield from self._call_delta(event)
                elif isinstance(event, UsageReported):
                    self.usage = _usage(event.usage)
                elif isinstance(event, OutputItemDone):
                    yield from self._item_done(event.index, event.item)
                elif isinstance(event, ResponseReported) and event.response.get(
                    "status"
                ) in ("completed", "incomplete"):
                    final = event.response
        except ChatProvidersError as error:
            if self.hung_up:
                return
            call.record.outcome = "error"
            failure = from_provider_error(error, route)
            yield self._send(
                "error", code=failure.code, message=failure.message, param=None
            )
            return
        if self.hung_up or final is None or not reached_end(stream):
            call.record.outcome = "hangup" if self.hung_up else "closed"
            return
        status = final.get("status", "completed")
        output = final.get("output") or list(stream.output)
        end = {**final, "model": self.model, "output": output}
        yield self._send(f"response.{status}", response=end)

    def _head(self, status: str) -> dict[str, Any]:
        return {
            "id": self.stream.id,
            "object": "response",
            "created_at": int(time.time()),
            "status": status,
            "model": self.model,
            "output": [],
            "usage": None,
            "error": None,
            "incomplete_details": None,
        }

    def _send(self, kind: str, **fields: Any) -> bytes:
        data = {"type": kind, "sequence_number": next(self._numbers), **fields}
        text = json.dumps(data, ensure_ascii=False)
        return (
            f"event: {kind}\ndata: ".encode()
            + text.encode("utf-8", LONE_SURROGATES)
            + b"\n\n"
        )

    def _added(self, item: dict[str, Any]) -> tuple[int, bytes]:
        index, self._count = self._count, self._count + 1
        return index, self._send(
            "response.output_item.added", output_index=index, item=item
        )

    def _text_delta(self, text: str) -> Iterator[bytes]:
        if self._text is None:
            item_id = f"msg_{self._count}"
            item = {
                "id": item_id,
                "type": "message",
                "status": "in_progress",
                "role": "assistant",
                "content": [],
            }
            index, added = self._added(item)
            yield added
            self._text = (index, item_id)
            yield self._send(
                "response.content_part.added",
                item_id=item_id,
                output_index=index,
                content_index=0,
                part={"type": "output_text", "text": "", "annotations": []},
            )
        index, item_id = self._text
        yield self._send(
            "response.output_text.delta",
            item_id=item_id,
            output_index=index,
            content_index=0,
            delta=text,
            logprobs=[],
        )

    def _call_delta(self, delta: ToolCallDelta) -> Iterator[bytes]:
        upstream = delta.index if delta.index is not None else -1
        if upstream not in self._calls:
            item_id = f"fc_{delta.id or self._count}"
            item = {
                "id": item_id,
                "type": "function_call",
                "status": "in_progress",
                "call_id": delta.id,
                "name": delta.name,
                "arguments": "",
            }
            index, added = self._added(item)
            yield added
            self._calls[upstream] = (index, item_id)
        index, item_id = self._calls[upstream]
        if delta.arguments:
            yield self._send(
                "response.function_call_arguments.delta",
                item_id=item_id,
                output_index=index,
                delta=delta.arguments,
            )

    def _item_done(self, upstream: int, item: dict[str, Any]) -> Iterator[bytes]:
        kind = item.get("type")
        if kind == "message" and self._text is not None:
            index, item_id = self._text
            self._text = None
            text = self._item_text(item)
            key = {"item_id": item_id, "output_index": index, "content_index": 0}
            yield self._send("response.output_text.done", **key, text=text)
            part = {"type": "output_text", "text": text, "annotations": []}
            yield self._send("response.content_part.done", **key, part=part)
        elif kind == "function_call" and upstream in self._calls:
            index, item_id = self._calls.pop(upstream)
            yield self._send(
                "response.function_call_arguments.done",
                item_id=item_id,
                output_index=index,
                name=item.get("name"),
                arguments=item.get("arguments"),
            )
        else:
            index, added = self._added(item)
            yield added
        yield self._send("response.output_item.done", output_index=index, item=item)

    @staticmethod
    def _item_text(item: dict[str, Any]) -> str:
        content = item.get("content")
        return "".join(
            part.get("text", "")
            for part in (content if isinstance(content, list) else ())
            if isinstance(part, dict) and part.get("type") == "output_text"
        )
