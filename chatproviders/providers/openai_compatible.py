"""OpenAICompatible: any server that speaks OpenAI's chat completions API.

=============  ==========================================================
request        ``POST {base_url}/chat/completions``
headers        ``Content-Type: application/json``;
               ``Authorization: Bearer KEY`` when ``api_key`` is given
body           ``{"model": MODEL, "messages": M, "stream": S, ...}``, then
               every chat-completions parameter the caller set (``tools``,
               ``tool_choice``, ``response_format``, ``max_tokens``...),
               as given, then the keys of ``extra_body``
S              ``true`` from :meth:`~Provider.stream`, with
               ``"stream_options": {"include_usage": true}`` unless
               ``include_usage=False``; ``false`` from
               :meth:`OpenAICompatible.complete`
response       ``data: {json}`` events, text in ``choices[0].delta.content``,
               up to ``data: [DONE]``; or one ``chat.completion`` object,
               text in ``choices[0].message.content``; tool calls, usage,
               reasoning and the finish reason beside (``_streams/openai_chunks``)
models         ``GET {base_url}/models``: ``{"data": [{"id": ...}, ...]}``
errors         ``{"error": {"message", "type", "code"}}``; the status picks
               the class, ``error.message`` is the message
=============  ==========================================================

``base_url`` is the API root, ending in ``/v1``: Ollama
``http://localhost:11434/v1``, llama.cpp server ``http://localhost:8080/v1``,
vLLM ``http://localhost:8000/v1``, LM Studio ``http://localhost:1234/v1``.
Any model name is accepted; there is no default, so pass ``model`` to the
client or to each call. A keyword that is not one of OpenAI's parameters is
refused (a typo should not vanish); vendor fields such as Ollama's
``options`` or vLLM's ``guided_json`` go in ``extra_body={...}``. The API
key is never part of a ``repr()``, an error or a log record: if a server
echoes it back, it is replaced by ``***``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Optional

from .._constants import ERROR_BODY_EXCERPT
from .._messages import Messages
from .._options import redact
from .._provider import CLIENT_OPTIONS, Provider
from .._streams.chat_stream import ChatResponse
from .._streams.events import Piece
from .._streams.openai_chunks import iter_chat_reply_events
from .._wire.exchange import Exchange, PreparedChat
from .._wire.transport import looks_like_html
from ..exceptions import (
    APIStatusError,
    ChatProvidersError,
    ModelNotSupportedError,
    ResponseFormatError,
    UnsupportedParameterError,
)

if TYPE_CHECKING:
    from .._responses import Responses

__all__ = ["OpenAICompatible"]

BASE_URLS = {
    "Ollama": "http://localhost:11434/v1",
    "llama.cpp server": "http://localhost:8080/v1",
    "vLLM": "http://localhost:8000/v1",
    "LM Studio": "http://localhost:1234/v1",
}


def check_api_key(api_key: Optional[str]) -> None:
    """Refuse a key that cannot go in a header; the error never quotes it."""
    if api_key is not None and not (
        isinstance(api_key, str)
        and api_key.isascii()
        and api_key.isprintable()
        and " " not in api_key
    ):
        raise ValueError(
            "api_key must be a str of ASCII letters, digits and punctuation"
        )


class OpenAICompatible(Provider):
    url = ""  # none: base_url is required
    path = "/chat/completions"
    emulator = "chatproviders.testing._protocols:OpenAICompatible"
    working = True
    supports_stream = True
    supports_message_history = True
    supports_gpt_35_turbo = False
    aliases = ("openai",)
    default_model = ""  # none: any name the server knows, see list_models()
    models = []  # open: any name
    headers = {"Content-Type": "application/json"}
    client_options = CLIENT_OPTIONS | {"api_key", "include_usage", "model"}
    #: OpenAI's chat-completions parameters, and min_p and top_k that most local
    #: servers take; each is sent as given, and only when given (``None``
    #: means "the server's default"). ``extra_body`` is merged into the body;
    #: ``stream`` is sent always (``complete()`` asks for one JSON reply).
    parameters = {"stream": True} | dict.fromkeys(
        [
            "audio",
            "extra_body",
            "frequency_penalty",
            "function_call",
            "functions",
            "logit_bias",
            "logprobs",
            "max_completion_tokens",
            "max_tokens",
            "metadata",
            "min_p",
            "modalities",
            "n",
            "parallel_tool_calls",
            "prediction",
            "presence_penalty",
            "prompt_cache_key",
            "reasoning_effort",
            "response_format",
            "safety_identifier",
            "seed",
            "service_tier",
            "stop",
            "store",
            "stream_options",
            "temperature",
            "tool_choice",
            "tools",
            "top_k",
            "top_logprobs",
            "top_p",
            "user",
            "verbosity",
            "web_search_options",
        ]
    )

    def __init__(
        self,
        base_url: Optional[str] = None,
        api_key: Optional[str] = None,
        *,
        model: Optional[str] = None,
        headers: Optional[Mapping[str, str]] = None,
        include_usage: bool = True,
        **options: Any,
    ) -> None:
        """``include_usage=False`` stops asking streams for token counts, for a
        server that refuses ``stream_options``.
        """
        if base_url is None:
            servers = ", ".join(f"{url} ({name})" for name, url in BASE_URLS.items())
            raise ValueError(
                f"OpenAICompatible needs base_url, the server's API root: {servers}"
            )
        check_api_key(api_key)
        auth = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        super().__init__(base_url, headers={**auth, **(headers or {})}, **options)
        if not isinstance(include_usage, bool):
            raise TypeError(f"include_usage must be a bool, got {include_usage!r}")
        self.api_key = api_key
        self.model = model
        self.include_usage = include_usage

    def choose_model(self, model: Optional[str]) -> str:
        chosen = model or self.model
        if chosen and not isinstance(chosen, str):
            raise ModelNotSupportedError(
                f"model must be a str, got {type(chosen).__name__}"
            )
        if not chosen:
            raise ModelNotSupportedError(
                "needs a model: pass model= to the call or to OpenAICompatible(); "
                "list_models() names the server's"
            )
        return chosen

    def payload(self, messages: Messages, model: str, **params: Any) -> dict[str, Any]:
        extra = params.pop("extra_body", None)
        if extra is not None and not (
            isinstance(extra, Mapping) and all(isinstance(key, str) for key in extra)
        ):
            raise self._parameter_error(
                f"extra_body must be a dict of str keys, got {type(extra).__name__}"
            )
        n = params.get("n")
        if n is not None and (type(n) is not int or n != 1):
            raise self._parameter_error(
                f"n={params['n']!r}: a reply here holds one choice; send n "
                "requests for n replies"
            )
        stream = params.pop("stream")
        body: dict[str, Any] = {"model": model, "messages": messages, "stream": stream}
        if stream and self.include_usage:
            body["stream_options"] = {"include_usage": True}
        body.update((key, value) for key, value in params.items() if value is not None)
        body.update(extra or {})
        return body

    def iter_text(self, chunks: Iterable[bytes]) -> Iterator[Piece]:
        # Text, and events for tool calls, usage, reasoning... (see ChatStream).
        return iter_chat_reply_events(chunks)

    def complete(
        self, messages: Messages, model: Optional[str] = None, **params: Any
    ) -> ChatResponse:
        """Send the chat with ``"stream": false`` and return the whole reply."""
        return super().complete(messages, model, **{**params, "stream": False})

    def hint(self, error: ChatProvidersError) -> str:
        if not isinstance(error, APIStatusError):
            return ""
        if error.status_code == 404 and not (self.base_url or "").endswith("/v1"):
            return "base_url is the API root, which usually ends in /v1"
        if (
            error.status_code == 400
            and "stream_options" in error.message
            and self.include_usage
        ):
            return (
                "this server refuses stream_options, which asks for token "
                "counts: pass include_usage=False to OpenAICompatible"
            )
        return ""

    def secrets(self) -> tuple[str, ...]:
        return (*super().secrets(), *([self.api_key] if self.api_key else []))

    def probe_model(self, timeout: float) -> str:
        """The client's model, or else the first one its server lists."""
        try:
            return super().probe_model(timeout)
        except ModelNotSupportedError:
            pass
        with self.with_options(max_retries=0, total_timeout=timeout) as lister:
            models = lister.list_models()
        if not models:
            raise ModelNotSupportedError("serves no model (its model list is empty)")
        return models[0]

    @property
    def responses(self) -> Responses:
        """The Responses API (``POST {base_url}/responses``): ``stream``,
        ``complete`` and ``stream_in_background``, as chat has.
        """
        from .._responses import Responses

        return Responses(self)

    def list_models(self) -> list[str]:
        """The ids of the models the server serves (``GET {base_url}/models``)."""
        self._check_open()
        try:
            return self._list_models()
        except ChatProvidersError as error:
            self.locate(error)
            raise

    def _list_models(self) -> list[str]:
        deadline = None
        if self.total_timeout is not None:
            deadline = time.monotonic() + self.total_timeout
        request = PreparedChat(
            url=f"{self.base_url}/models",
            headers={"Accept": "application/json", **self.options.headers},
            body=None,
            model="",
            method="GET",
        )
        body, content_type = Exchange(self, request, deadline).read_all()
        excerpt = body[:ERROR_BODY_EXCERPT].decode("utf-8", errors="replace")
        if looks_like_html(content_type, body):
            raise ResponseFormatError(
                "sent an HTML page, not a model list: is base_url the API "
                "root (it usually ends in /v1)?",
                body=excerpt,
            )
        try:
            return [str(model["id"]) for model in json.loads(body)["data"]]
        except (ValueError, KeyError, TypeError, RecursionError):
            raise ResponseFormatError(
                f"sent a model list without data[].id: {excerpt[:200]!r}",
                body=excerpt,
            ) from None

    def _parameter_error(self, message: str) -> UnsupportedParameterError:
        return UnsupportedParameterError(message)

    def __repr__(self) -> str:
        model = f" model={self.model!r}" if self.model else ""
        return f"<{self.name()} {redact(self.base_url or '')}{model}>"
