"""``client.responses``: the Responses API's three calls, on the chat machinery.

=============  ==========================================================
request        ``POST {base_url}/responses``
body           ``{"model": MODEL, "input": INPUT, "stream": S, ...}``, then
               each parameter given (``instructions``, ``tools``...), then
               the keys of ``extra_body``
S              ``true`` from :meth:`Responses.stream` and
               :meth:`Responses.stream_in_background`, ``false`` from
               :meth:`Responses.complete`
response       typed server-sent events up to ``response.completed``, or one
               response object (see :mod:`._events`)
=============  ==========================================================

A call is prepared here (checked and encoded, no I/O) into a
:class:`PreparedResponses`, which tells the client's one-try exchange how to
read the reply and which stream to make of it; sending, retrying, deadlines,
closing and fallback are the chat calls' own.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Optional, Union

from .._constants import BACKGROUND_QUEUE_SIZE
from .._provider import PreparedChat, encode_body
from ..exceptions import (
    ChatProvidersError,
    InvalidMessagesError,
    ModelNotSupportedError,
    UnsupportedParameterError,
)
from ._events import iter_response_events
from ._stream import ResponsesBackgroundStream, ResponsesReply, ResponsesStream

if TYPE_CHECKING:
    from .._client import Client

__all__ = ["PARAMETERS", "PreparedResponses", "Responses"]

#: What ``input`` may be: a string, or a list of input items.
Input = Union[str, Sequence[Mapping[str, Any]]]

#: The Responses API's parameters a call may set (``input``, ``model`` and
#: ``stream`` are the call's own); each is sent as given, and only when given.
PARAMETERS = frozenset(
    {
        "extra_body",
        "include",
        "instructions",
        "max_output_tokens",
        "max_tool_calls",
        "metadata",
        "parallel_tool_calls",
        "previous_response_id",
        "prompt_cache_key",
        "reasoning",
        "safety_identifier",
        "service_tier",
        "store",
        "temperature",
        "text",
        "tool_choice",
        "tools",
        "top_logprobs",
        "top_p",
        "truncation",
        "user",
    }
)


@dataclass(frozen=True)
class PreparedResponses(PreparedChat):
    """A prepared Responses call: read with ``decode``, into a ``stream_class``."""

    decode: Callable[..., Any] = iter_response_events
    stream_class: type = ResponsesStream


class Responses:
    """The Responses API of a client (``POST {base_url}/responses``), with the
    same three calls as chat and the same guarantees: retries (and a
    :class:`~chatproviders.FallbackProvider`'s next provider) only before the
    first text, reasoning or tool-call event; ``total_timeout`` over it all;
    a stream that stops before ``response.completed`` raises
    :class:`~chatproviders.IncompleteStreamError`.
    """

    def __init__(self, client: Client) -> None:
        self._client = client

    def stream(
        self, input: Input, model: Optional[str] = None, **params: Any
    ) -> ResponsesStream:
        """Send ``input`` with ``"stream": true``; returns a :class:`ResponsesStream`
        once the first text, reasoning or tool call is in (or the reply ended).
        """
        stream = self._client.send_prepared(self.prepare(input, model, params, True))
        assert isinstance(stream, ResponsesStream)
        return stream

    def complete(
        self, input: Input, model: Optional[str] = None, **params: Any
    ) -> ResponsesReply:
        """Send ``input`` with ``"stream": false`` and return the whole reply."""
        prepared = self.prepare(input, model, params, False)
        stream = self._client.send_prepared(prepared)
        assert isinstance(stream, ResponsesStream)
        return stream.until_done()

    def stream_in_background(
        self,
        input: Input,
        model: Optional[str] = None,
        maxsize: int = BACKGROUND_QUEUE_SIZE,
        **params: Any,
    ) -> ResponsesBackgroundStream:
        """Stream the reply's text on a worker thread; returns at once (see
        :class:`~chatproviders.BackgroundStream`, ``async for`` included), and
        :meth:`ResponsesBackgroundStream.response` gives the whole reply.
        """
        prepared = self.prepare(input, model, params, True)
        send: Any = functools.partial(self._client.send_prepared, prepared)
        return ResponsesBackgroundStream._of_responses(send, maxsize)

    def prepare(
        self,
        input: Input,
        model: Optional[str],
        params: Mapping[str, Any],
        stream: bool,
    ) -> Any:
        """The call checked and encoded, for the client's ``send_prepared()``
        (as :meth:`~chatproviders.Client.prepare` is for a chat): bad input
        or parameters raise here, before any I/O.
        """
        client = self._client
        providers = getattr(client, "providers", None)
        if providers is None:
            return _prepare_one(client, input, model, params, stream)
        prepared: dict[int, Any] = {}  # a FallbackProvider: each provider's call
        refused: list[ChatProvidersError] = []
        for index, provider in enumerate(providers):
            try:
                prepared[index] = Responses(provider).prepare(
                    input, model, params, stream
                )
            except (ModelNotSupportedError, UnsupportedParameterError) as error:
                refused.append(error)
        if not prepared:
            raise refused[0]
        return prepared

    def __repr__(self) -> str:
        return f"<Responses of {self._client!r}>"


def _prepare_one(
    client: Any,
    input: Input,
    model: Optional[str],
    params: Mapping[str, Any],
    stream: bool,
) -> PreparedResponses:
    if not hasattr(client, "include_usage"):  # not an OpenAI-compatible client
        raise UnsupportedParameterError(
            f"{client.name()} does not serve the Responses API; OpenAICompatible does"
        )
    try:
        check_input(input)
        return _encode(client, input, client.choose_model(model), params, stream)
    except ChatProvidersError as error:
        client.locate(error)
        raise


def _encode(
    client: Any, input: Input, chosen: str, params: Mapping[str, Any], stream: bool
) -> PreparedResponses:
    unknown = sorted(params.keys() - PARAMETERS)
    if unknown:
        raise UnsupportedParameterError(
            f"unsupported parameter(s) {', '.join(unknown)}; the Responses API "
            f"takes: {', '.join(sorted(PARAMETERS))}"
        )
    given = {name: value for name, value in params.items() if value is not None}
    check_parameters(given)
    body: dict[str, Any] = {"model": chosen, "input": input, "stream": stream}
    extra = given.pop("extra_body", {})
    body.update(given)
    body.update(extra)
    encoded = encode_body(body, params, "input")
    headers = {**client.headers, **client.options.headers}
    base = client.base_url or ""
    return PreparedResponses(
        url=f"{base}/responses", headers=headers, body=encoded, model=chosen
    )


def check_input(input: Any) -> None:
    """Refuse an ``input`` that is not a non-empty string or list of items."""
    if isinstance(input, str):
        if not input:
            raise InvalidMessagesError("input is an empty string")
        return
    if not isinstance(input, (list, tuple)) or not input:
        raise InvalidMessagesError(
            "input must be a non-empty string or a non-empty list of input items "
            f"(messages, function_call_output items...), got {type(input).__name__}"
        )
    for number, item in enumerate(input):
        if not isinstance(item, Mapping):
            raise InvalidMessagesError(
                f"input[{number}] must be a dict (an input item), "
                f"got {type(item).__name__}"
            )
        if "role" in item:
            content = item.get("content")
            if not isinstance(content, (str, list)):
                raise InvalidMessagesError(
                    f"input[{number}]['content'] must be a str or a list of content "
                    f"parts, got {type(content).__name__}"
                )
        elif not isinstance(item.get("type"), str):
            raise InvalidMessagesError(
                f"input[{number}] needs a 'role' (a message) or a 'type' "
                "(function_call_output...)"
            )
        elif item["type"] == "function_call_output" and not isinstance(
            item.get("call_id"), str
        ):
            raise InvalidMessagesError(
                f"input[{number}] is a function_call_output without a str call_id "
                "(the ToolCall's id it answers)"
            )


def check_parameters(given: Mapping[str, Any]) -> None:
    """Refuse the parameter values the server would refuse less clearly."""
    extra = given.get("extra_body", {})
    if not (isinstance(extra, Mapping) and all(isinstance(key, str) for key in extra)):
        raise UnsupportedParameterError(
            f"extra_body must be a dict of str keys, got {type(extra).__name__}"
        )
    for name in ("max_output_tokens", "max_tool_calls", "top_logprobs"):
        value = given.get(name)
        if value is not None and (type(value) is not int or value < 0):
            raise UnsupportedParameterError(
                f"{name} must be an int >= 0, got {value!r}"
            )
    for name in ("temperature", "top_p"):
        value = given.get(name)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, (int, float))
        ):
            raise UnsupportedParameterError(f"{name} must be a number, got {value!r}")
    for name in ("instructions", "previous_response_id"):
        value = given.get(name)
        if value is not None and not isinstance(value, str):
            raise UnsupportedParameterError(f"{name} must be a str, got {value!r}")
    for name in ("reasoning", "text", "metadata"):
        value = given.get(name)
        if value is not None and not isinstance(value, Mapping):
            raise UnsupportedParameterError(f"{name} must be a dict, got {value!r}")
    tools = given.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise UnsupportedParameterError(
                f"tools must be a list, got {type(tools).__name__}"
            )
        for number, tool in enumerate(tools):
            if not isinstance(tool, Mapping) or not isinstance(tool.get("type"), str):
                raise UnsupportedParameterError(
                    f"tools[{number}] must be a dict with a 'type'"
                )
            if tool["type"] == "function" and "function" in tool and "name" not in tool:
                raise UnsupportedParameterError(
                    f"tools[{number}] is shaped for chat completions: the Responses "
                    "API takes {'type': 'function', 'name': ..., 'parameters': ...}, "
                    "without the 'function' wrapper"
                )
            if tool["type"] == "function" and not isinstance(tool.get("name"), str):
                raise UnsupportedParameterError(f"tools[{number}] needs a str 'name'")
