"""What an emulator answers to a chat request: text, chunks, framing, faults."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Mapping, Sequence

from chatproviders._numbers import check_count, check_seconds

Framing = Literal["chunked", "length", "close"]
FRAMINGS: tuple[Framing, ...] = ("chunked", "length", "close")


@dataclass(frozen=True)
class Reply:
    """How the emulator answers a chat request (immutable: make a new one to change).

    Text and delivery:

    - ``text``: the reply text; ``None`` means the provider's greeting.
    - ``chunks``: explicit pieces of text, one write each; the text is their join.
    - ``chunk_size``: cut the text into pieces of this many characters (default: one).
    - ``delay``: seconds the server waits before every write after the first.
    - ``framing``: ``"chunked"`` (Transfer-Encoding: chunked, one HTTP chunk per
      write), ``"length"`` (Content-Length, the body written piece by piece)
      or ``"close"`` (no length, ``Connection: close``, the body ends when
      the connection does).

    Faults:

    - ``status``, ``body``: when ``status != 200`` or ``body`` is set, answer with them
      instead of the protocol's reply. ``body=None`` with a status >= 400
      gives the provider's own error shape. The Content-Type is guessed from
      the body (``<``: HTML, ``{``: JSON, else text) unless ``headers`` set it.
    - ``headers``: extra response headers, added to every reply, fault or not.
    - ``stall_after``: send this many body bytes, then nothing until the client
      closes the connection or the server stops.
    - ``reset_after``: send this many body bytes, then reset the connection (RST).
    - ``split_utf8``: split the first multi-byte UTF-8 character across two writes.
    - ``split_crlf``: SSE replies end lines with CRLF and split each event's first
      CRLF across two writes; ignored by replies that are not SSE.

    OpenAI-style replies (openai, and codelinkava's events), ignored by the
    raw-text protocols:

    - ``tool_calls``: calls the model asks for, each ``{"name": ..., "arguments":
      ...}`` (a JSON string, or a value that is encoded), with an
      optional ``"id"`` (default ``call_0``, ``call_1``...). The text then
      defaults to none.
    - ``tool_call_fragments``: stream each call's arguments in this many pieces,
      after a first fragment with its id and name.
    - ``interleave``: stream the fragments of parallel calls in turn.
    - ``reasoning``: reasoning text, streamed before the answer (cut like the
      text) in ``reasoning_field``: ``"reasoning_content"`` (DeepSeek,
      vLLM) or ``"reasoning"`` (Ollama, OpenRouter).
    - ``usage``: the token counts to report, ``{"prompt_tokens": ...,
      "completion_tokens": ...}``; default: words counted. A stream
      reports them only when the request asks (``stream_options``).
    - ``finish_reason``: default ``"tool_calls"`` with tool calls, else ``"stop"``.
    - ``failure``: the Responses API only (``/v1/responses``): ``{"code": ...,
      "message": ...}`` answers ``response.failed`` after the text.
    """

    text: str | None = None
    chunks: Sequence[str] | None = None
    chunk_size: int | None = None
    delay: float = 0.0
    framing: Framing = "chunked"
    status: int = 200
    body: str | bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    stall_after: int | None = None
    reset_after: int | None = None
    split_utf8: bool = False
    split_crlf: bool = False
    tool_calls: Sequence[Mapping[str, Any]] = ()
    tool_call_fragments: int = 1
    interleave: bool = False
    reasoning: str | None = None
    reasoning_field: Literal["reasoning_content", "reasoning"] = "reasoning_content"
    usage: Mapping[str, int] | None = None
    finish_reason: str | None = None
    #: The model's refusal (OpenAI's ``refusal`` field), cut like the text;
    #: the text then defaults to none. (A request whose ``response_format``
    #: asks for JSON gets JSON built from its schema, unless the text is set.)
    refusal: str | None = None
    failure: Mapping[str, str] | None = None

    def __post_init__(self) -> None:
        if self.chunks is not None:
            chunks = tuple(self.chunks)
            if not all(isinstance(chunk, str) for chunk in chunks):
                raise TypeError("chunks must be strings")
            if self.text is not None and self.text != "".join(chunks):
                raise ValueError("give text or chunks, not both")
            object.__setattr__(self, "chunks", chunks)
            object.__setattr__(self, "text", "".join(chunks))
        object.__setattr__(self, "headers", dict(self.headers))
        object.__setattr__(self, "tool_calls", _tool_calls(self.tool_calls))
        self._validate()

    def _validate(self) -> None:
        if self.text is not None and not isinstance(self.text, str):
            raise TypeError(f"text must be a string, not {type(self.text).__name__}")
        if self.body is not None and not isinstance(self.body, (str, bytes)):
            raise TypeError(
                f"body must be str or bytes, not {type(self.body).__name__}"
                " (encode JSON yourself: body=json.dumps(...))"
            )
        if not all(
            isinstance(k, str) and isinstance(v, str) for k, v in self.headers.items()
        ):
            raise TypeError("headers must map strings to strings")
        for name, value in self.headers.items():  # what would break the HTTP head
            if not _sendable(name) or not _sendable(value):
                raise ValueError(
                    f"header {name!r} cannot be sent: names and values must be "
                    "Latin-1 text without line breaks"
                )
        for what, content in (("text", self.text), ("body", self.body)):
            if isinstance(content, str) and not _utf8(content):
                raise ValueError(
                    f"{what} has a lone surrogate, which UTF-8 cannot hold"
                )
        _check_counts(self, chunk_size=1, tool_call_fragments=1)
        if self.reasoning is not None and not isinstance(self.reasoning, str):
            raise TypeError("reasoning must be a string")
        if self.reasoning_field not in ("reasoning_content", "reasoning"):
            raise ValueError(
                "reasoning_field must be 'reasoning_content' or 'reasoning', "
                f"not {self.reasoning_field!r}"
            )
        if self.usage is not None and not (
            isinstance(self.usage, Mapping)
            and all(type(v) is int and v >= 0 for v in self.usage.values())
        ):
            raise TypeError("usage must map token-count names to ints >= 0")
        if self.finish_reason is not None and not isinstance(self.finish_reason, str):
            raise TypeError("finish_reason must be a string")
        if self.refusal is not None and not isinstance(self.refusal, str):
            raise TypeError("refusal must be a string")
        if self.failure is not None and not (
            isinstance(self.failure, Mapping)
            and all(isinstance(v, str) for v in self.failure.values())
        ):
            raise TypeError("failure must map 'code' and 'message' to strings")
        if self.status is not None:
            check_count(self.status, "status", minimum=200, maximum=599)
        _check_counts(self, stall_after=0, reset_after=0)
        if self.chunks is not None and self.chunk_size is not None:
            raise ValueError("give chunks or chunk_size, not both")
        if self.stall_after is not None and self.reset_after is not None:
            raise ValueError("give stall_after or reset_after, not both")
        check_seconds(self.delay, "delay", zero=True)
        if self.framing not in FRAMINGS:
            raise ValueError(f"framing must be one of {FRAMINGS}, not {self.framing!r}")
        # None is the provider's greeting, which has a non-ASCII character, or
        # with an error status its error shape, which has none.
        content = self.body if self.replaces_answer else self.text
        if content is None:
            multibyte = not self.replaces_answer
        else:
            multibyte = _has_multibyte(content)
        if self.split_utf8 and not multibyte:
            raise ValueError(
                "split_utf8 needs a non-ASCII character in the text or body"
            )

    @property
    def replaces_answer(self) -> bool:
        """True when status/body replace the protocol's normal answer."""
        return self.status != 200 or self.body is not None

    def text_chunks(self) -> list[str]:
        """The text cut into the pieces that are written one by one."""
        if self.chunks is not None:
            return list(self.chunks)
        return _cut(self.text or "", self.chunk_size)

    def reasoning_chunks(self) -> list[str]:
        """The reasoning cut as the text is (``chunk_size``, default one piece)."""
        return _cut(self.reasoning or "", self.chunk_size)

    def refusal_chunks(self) -> list[str]:
        """The refusal cut as the text is."""
        return _cut(self.refusal or "", self.chunk_size)

    @property
    def finish(self) -> str:
        """The finish reason to report."""
        if self.finish_reason is not None:
            return self.finish_reason
        return "tool_calls" if self.tool_calls else "stop"


def make_reply(reply: Reply | None, fields: Mapping[str, Any], greeting: str) -> Reply:
    """``reply`` (or a fresh Reply) with ``fields`` replaced; the text defaults to
    ``greeting``. Replacing ``text`` drops the old chunks and the other way round.
    """
    if reply is None:
        reply, fields = Reply(**fields), {}
    elif not isinstance(reply, Reply):
        raise TypeError(
            f"reply must be a Reply, not {type(reply).__name__}"
            " (for the text, pass text=...)"
        )
    if "chunks" in fields and "text" not in fields:
        fields = {**fields, "text": None}
    if "text" in fields and "chunks" not in fields:
        fields = {**fields, "chunks": None}
    result = replace(reply, **fields)
    if result.text is None:  # a reply of tool calls has no text unless given
        silent = result.tool_calls or result.refusal  # no text unless given
        result = replace(result, text="" if silent else greeting)
    return result


def _cut(text: str, size: int | None) -> list[str]:
    if size is not None:
        return [text[i : i + size] for i in range(0, len(text), size)]
    return [text] if text else []


def _tool_calls(calls: Any) -> tuple[dict[str, str], ...]:
    """Each call as ``{"id", "name", "arguments"}`` strings, ids filled in."""
    if isinstance(calls, (str, bytes, Mapping)) or not isinstance(calls, Sequence):
        raise TypeError("tool_calls must be a list of {'name', 'arguments'} dicts")
    result = []
    for number, call in enumerate(calls):
        if not isinstance(call, Mapping) or not isinstance(call.get("name"), str):
            raise TypeError(f"tool_calls[{number}] needs a string 'name'")
        arguments = call.get("arguments", "{}")
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments)
        call_id = call.get("id", f"call_{number}")
        if not isinstance(call_id, str):
            raise TypeError(f"tool_calls[{number}] 'id' must be a string")
        result.append({"id": call_id, "name": call["name"], "arguments": arguments})
    return tuple(result)


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _has_multibyte(content: str | bytes) -> bool:
    if isinstance(content, bytes):
        return any(byte >= 0x80 for byte in content)
    return not content.isascii()


def _sendable(text: str) -> bool:
    """True for header text that cannot break the HTTP head it goes in."""
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return text.isprintable() or not any(c in text for c in "\r\n\0")


def _check_counts(reply: Reply, **minimums: int) -> None:
    """Each named field, when set, an int of at least its minimum."""
    for name, minimum in minimums.items():
        value = getattr(reply, name)
        if value is not None:
            check_count(value, name, minimum=minimum)
