"""``POST /v1/chat/completions``: a request in OpenAI's shape, to a route, and back.

The upstream is always streamed: the reply's status and headers go out once
its first chunk is in hand, so every failure before it (and every fallback)
happens before the first byte and gets its own status. After it, a failure
is one SSE event ``data: {"error": {...}}`` and the stream ends without
``data: [DONE]``: clients see an error, never a short answer passed off as a
whole one. A non-streamed request gets the whole reply as one
``chat.completion`` object.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Iterator
from typing import Any, Optional

from .._streams.chat_stream import ChatStream, reached_end
from .._streams.events import (
    FinishReported,
    ReasoningDelta,
    RefusalDelta,
    TextDelta,
    ToolCallDelta,
    UsageReported,
)
from ..exceptions import ChatProvidersError
from ..providers.openai_compatible import OpenAICompatible
from ._call import Call, Reply, Services, check_items, read_body, route_of, stream_flag
from ._errors import LONE_SURROGATES as _LONE
from ._errors import GatewayError, from_provider_error
from ._hangup import disconnect_probe

__all__ = ["OPENAI_PARAMETERS", "chat_completions"]

#: Body fields the gateway reads itself.
GATEWAY_FIELDS = frozenset({"model", "messages", "stream", "stream_options"})
#: Every field of OpenAI's chat-completions request; any other is refused, as
#: OpenAI refuses it. Whether the route's provider takes one is its own check.
OPENAI_PARAMETERS = (
    frozenset(OpenAICompatible.parameters) - {"extra_body", "stream"}
) | GATEWAY_FIELDS


def chat_completions(gateway: Services, call: Call) -> Reply:
    """Answer one chat-completions request (streamed or not)."""
    body = read_body(call, OPENAI_PARAMETERS)
    _refuse_uncarried(body)
    route, model = route_of(gateway, call, body)
    check_items(gateway, body, "messages")
    streamed = stream_flag(body)
    messages: Any = body.get("messages")
    include_usage = _include_usage(body.get("stream_options"), streamed)
    params = {k: v for k, v in body.items() if k not in GATEWAY_FIELDS}
    gateway.keys.admit(call.key)
    try:
        stream = route.client.stream(messages, model, **params)
    except ChatProvidersError as error:
        raise from_provider_error(error, route.name) from None
    provider = route.member_name(stream.provider, stream.host)
    call.record.provider = provider
    reply = _Reply(
        stream,
        model=f"{provider}/{model}" if model else provider,
        prompt_chars=len(json.dumps(messages, ensure_ascii=False)),
    )
    headers = [("x-chatproviders-provider", provider)]
    call.on_close(lambda: _account(gateway, call, reply))
    if not streamed:
        try:
            data = reply.whole()
        except ChatProvidersError as error:
            raise from_provider_error(error, route.name) from None
        finally:
            stream.close()
        return Reply.json(200, data, headers)
    probe = disconnect_probe(call.environ)
    if probe is not None:
        token = gateway.hangups.watch(probe, reply.hang_up)
        call.on_close(lambda: gateway.hangups.unwatch(token))
    call.on_close(stream.close)
    headers += [
        ("Content-Type", "text/event-stream; charset=utf-8"),
        ("Cache-Control", "no-cache"),
        ("X-Accel-Buffering", "no"),  # nginx in front: do not buffer events
    ]
    return Reply(200, headers, reply.events(route.name, include_usage, call))


def _refuse_uncarried(body: dict[str, Any]) -> None:
    """Parameters whose answer the gateway cannot carry back are refused:
    the client would get ``logprobs: null`` or no audio, as if none were made.
    """
    if body.get("logprobs") or body.get("top_logprobs") is not None:
        param = "logprobs" if body.get("logprobs") else "top_logprobs"
        raise GatewayError(
            400, "logprobs are not passed back by this gateway", param=param
        )
    if body.get("audio") is not None:
        raise GatewayError(
            400, "audio is not passed back by this gateway", param="audio"
        )


def _include_usage(options: Any, stream: bool) -> bool:
    if options is None:
        return False
    if not stream:
        raise GatewayError(
            400,
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            param="stream_options",
        )
    if not isinstance(options, dict) or not set(options) <= {"include_usage"}:
        raise GatewayError(
            400,
            "stream_options must be an object with only include_usage",
            param="stream_options",
        )
    include = options.get("include_usage", False)
    if not isinstance(include, bool):
        raise GatewayError(400, "include_usage must be true or false")
    return include


def _account(gateway: Services, call: Call, reply: _Reply) -> None:
    """After the reply: its tokens in the log and against the key's limit."""
    tokens = reply.tokens()
    call.record.tokens = tokens
    gateway.keys.spend(call.key, tokens)


class _Reply:
    """One upstream stream, turned into OpenAI's chunks or completion."""

    def __init__(self, stream: ChatStream, model: str, prompt_chars: int) -> None:
        self.stream = stream
        self.model = model
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.prompt_chars = prompt_chars
        self.usage: Optional[dict[str, int]] = None
        self.hung_up = False

    def hang_up(self) -> None:
        """The client left: end the upstream now (from the watcher's thread)."""
        self.hung_up = True
        self.stream.close()

    def tokens(self) -> int:
        """The upstream's total, else about one token per four characters."""
        if self.usage is not None:
            return self.usage.get("total_tokens", 0)
        return math.ceil((self.prompt_chars + len(self.stream.text)) / 4)

    def whole(self) -> dict[str, Any]:
        response = self.stream.until_done()
        message: dict[str, Any] = {"role": "assistant", "content": response.text}
        if response.tool_calls:
            message["content"] = response.text or None
            message["tool_calls"] = [call.to_dict() for call in response.tool_calls]
        if response.reasoning:
            message["reasoning_content"] = response.reasoning
        if response.refusal is not None:
            message["refusal"] = response.refusal
        finish = response.finish_reason or (
            "tool_calls" if response.tool_calls else "stop"
        )
        data: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": finish,
                    "logprobs": None,
                }
            ],
        }
        if response.usage is not None:
            self.usage = _usage_dict(response.usage)
            data["usage"] = self.usage
        return data

    def events(self, route: str, include_usage: bool, call: Call) -> Iterator[bytes]:
        """The SSE body: a role chunk, the deltas, the finish, usage, ``[DONE]``."""
        yield self._chunk({"role": "assistant", "content": ""})
        finish = None
        indexes = _ToolIndexes()
        try:
            for event in self.stream.events():
                if isinstance(event, TextDelta):
                    delta: dict[str, Any] = {"content": event.text}
                elif isinstance(event, ReasoningDelta):
                    delta = {"reasoning_content": event.text}
                elif isinstance(event, RefusalDelta):
                    delta = {"refusal": event.text}
                elif isinstance(event, ToolCallDelta):
                    delta = {"tool_calls": [indexes.fragment(event)]}
                elif isinstance(event, FinishReported):
                    finish = event.reason
                    continue
                elif isinstance(event, UsageReported):
                    self.usage = _usage_dict(event.usage)
                    continue
                else:
                    continue
                yield self._chunk(delta)
        except ChatProvidersError as error:
            if self.hung_up:
                return
            call.record.outcome = "error"
            failure = from_provider_error(error, route)
            yield b"data: " + json.dumps(failure.to_dict()).encode() + b"\n\n"
            return
        if self.hung_up or not reached_end(self.stream):
            call.record.outcome = "hangup" if self.hung_up else "closed"
            return
        finish = finish or ("tool_calls" if self.stream.tool_calls else "stop")
        yield self._chunk({}, finish)
        if include_usage:
            usage = self.usage or _estimate(self)
            yield _event({**self._head(), "choices": [], "usage": usage})
        yield b"data: [DONE]\n\n"

    def _head(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
        }

    def _chunk(self, delta: dict[str, Any], finish: Optional[str] = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return _event({**self._head(), "choices": [choice]})


class _ToolIndexes:
    """Gives every tool-call fragment the ``index`` OpenAI's clients need."""

    def __init__(self) -> None:
        self.last: Optional[int] = None
        self.last_id: Optional[str] = None
        self.highest = -1

    def fragment(self, delta: ToolCallDelta) -> dict[str, Any]:
        index = delta.index
        if index is None:
            if self.last is None:
                index = 0
            elif delta.id and self.last_id and delta.id != self.last_id:
                index = self.highest + 1
            else:
                index = self.last
        if delta.id:
            self.last_id = delta.id
        self.last, self.highest = index, max(self.highest, index)
        fragment: dict[str, Any] = {"index": index}
        if delta.id:
            fragment["id"] = delta.id
            fragment["type"] = delta.type or "function"
        function = {}
        if delta.name:
            function["name"] = delta.name
        if delta.arguments is not None:
            function["arguments"] = delta.arguments
        if function:
            fragment["function"] = function
        return fragment


def _usage_dict(usage: Any) -> dict[str, int]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }


def _estimate(reply: _Reply) -> dict[str, int]:
    prompt = math.ceil(reply.prompt_chars / 4)
    completion = math.ceil(len(reply.stream.text) / 4)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _event(value: dict[str, Any]) -> bytes:
    text = json.dumps(value, ensure_ascii=False)
    return b"data: " + text.encode("utf-8", _LONE) + b"\n\n"
