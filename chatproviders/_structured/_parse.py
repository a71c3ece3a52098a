"""``parse()`` and ``stream(schema=...)``: ask, validate, tell the model what was
wrong and ask again, step down a mode when the server refuses one.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Callable, Optional, TypeVar

from .._messages import Messages, validate_messages
from .._numbers import check_count
from .._streams.chat_stream import ChatStream, when_ended
from ..exceptions import ChatProvidersError, StructuredOutputError
from . import _modes
from ._response import ParsedResponse
from ._schema import SchemaMismatch, Target

__all__ = ["extract_json", "open_stream", "parse"]

_T = TypeVar("_T")

logger = logging.getLogger("chatproviders")

#: Finish reasons after which the text cannot be the whole answer.
CUT_SHORT = {
    "length": "the reply was cut at max_tokens before the JSON ended; raise "
    "max_tokens (or max_completion_tokens)",
    "content_filter": "the reply was withheld by the server's content filter",
}

RETRY_INSTRUCTION = (
    "That reply is not valid: {errors}. Answer again with the JSON value only, "
    "valid against the schema."
)

_FENCED = re.compile(r"```[A-Za-z0-9_-]*[ \t]*\r?\n(.*?)```", re.DOTALL)


def parse(
    client: Any,
    messages: Messages,
    schema: Any,
    *,
    mode: str,
    max_parse_retries: int,
    model: Optional[str],
    params: dict[str, Any],
) -> ParsedResponse[Any]:
    """See :meth:`chatproviders.Client.parse`."""
    check_count(max_parse_retries, "max_parse_retries")
    messages = validate_messages(messages)  # as the caller wrote them
    target = Target.of(schema)

    def attempt(mode: str) -> ParsedResponse[Any]:
        return _parse_in(
            client, mode, target, messages, model, params, max_parse_retries
        )

    return _in_the_best_mode(client, mode, model, params, attempt)


def open_stream(
    client: Any,
    messages: Messages,
    model: Optional[str],
    schema: Any,
    params: dict[str, Any],
) -> ChatStream:
    """The reply streamed as it comes; ``stream.parsed`` is set at its end."""
    messages = validate_messages(messages)  # as the caller wrote them
    target = Target.of(schema)

    def attempt(mode: str) -> ChatStream:
        sent, sent_params = _modes.request(mode, target, messages, params)
        stream: ChatStream = client.send_prepared(
            client.prepare(sent, model, sent_params)
        )

        def on_end(stream: ChatStream) -> None:
            if stream.refusal is None:
                stream.parsed = _validate(target, stream, mode)

        when_ended(stream, on_end)
        return stream

    mode = params.pop("mode", "auto")
    return _in_the_best_mode(client, mode, model, params, attempt)


def _in_the_best_mode(
    client: Any,
    mode: str,
    model: Optional[str],
    params: dict[str, Any],
    attempt: Callable[[str], _T],
) -> _T:
    """``attempt(mode)`` in ``mode``, or with ``"auto"`` in each mode the
    client takes, best first, stepping down while the server refuses the
    request as such; the mode that worked is remembered.
    """
    key, candidates = _candidates(client, mode, model, params)
    for number, candidate in enumerate(candidates):
        try:
            result = attempt(candidate)
        except ChatProvidersError as error:
            if not _step_down(error, candidate, candidates[number + 1 :], client):
                raise
            continue
        if mode == "auto":
            _modes.remember(client, key, candidate)
        return result
    raise AssertionError("unreachable: the last mode raises")


def _candidates(
    client: Any, mode: str, model: Optional[str], params: dict[str, Any]
) -> tuple[Optional[str], tuple[str, ...]]:
    """The key the mode is remembered by, and the modes to try, in order."""
    if "response_format" in params:
        raise TypeError(
            "response_format is set by the schema; pass the schema alone "
            "(and mode='json_schema', 'json_object' or 'prompt' to choose)"
        )
    supported = _modes.supported_modes(client)
    if mode == "auto":
        key = _model_key(client, model)
        known = _modes.remembered(client, key)
        start = supported.index(known) if known in supported else 0
        return key, supported[start:]
    if mode not in _modes.MODES:
        raise ValueError(
            f"mode must be 'auto', {', '.join(map(repr, _modes.MODES))}; got {mode!r}"
        )
    if mode not in supported:
        raise ValueError(
            f"{client.name()} takes no response_format, so mode={mode!r} cannot "
            "be sent; use mode='prompt' (or 'auto')"
        )
    return None, (mode,)


def _model_key(client: Any, model: Optional[str]) -> Optional[str]:
    choose = getattr(client, "choose_model", None)
    return choose(model) if choose is not None else model


def _step_down(
    error: ChatProvidersError, mode: str, rest: tuple[str, ...], client: Any
) -> bool:
    """True when ``error`` refused ``mode`` itself and another mode is left."""
    if not rest or not _modes.refuses_format(error):
        return False
    logger.info(
        "%s refused response mode %s (%s); trying %s",
        client.name(),
        mode,
        error,
        rest[0],
    )
    return True


def _parse_in(
    client: Any,
    mode: str,
    target: Target,
    messages: Messages,
    model: Optional[str],
    params: dict[str, Any],
    retries: int,
) -> ParsedResponse[Any]:
    """Ask in ``mode``, up to ``retries`` more times while the reply is invalid."""
    history = list(messages)
    attempts = 0
    for turn in range(retries + 1):
        sent, sent_params = _modes.request(mode, target, history, params)
        reply = client.complete(sent, model, **sent_params)
        attempts += reply.attempts
        if reply.refusal is not None:
            return ParsedResponse.of(reply, None, mode, attempts=attempts)
        try:
            value = _validate(target, reply, mode)
        except StructuredOutputError as error:
            if error.finish_reason in CUT_SHORT or turn == retries:
                raise
            logger.info(
                "%s: invalid structured reply, asking again: %s", client.name(), error
            )
            errors = "; ".join(error.errors)
            history += [
                {"role": "assistant", "content": reply.text},
                {"role": "user", "content": RETRY_INSTRUCTION.format(errors=errors)},
            ]
            continue
        return ParsedResponse.of(reply, value, mode, attempts=attempts)
    raise AssertionError("unreachable: the last turn returns or raises")


def _validate(target: Target, reply: Any, mode: str) -> Any:
    """The value of ``reply``'s text, or StructuredOutputError saying why not."""
    reason = reply.finish_reason
    where = {"provider": reply.provider}
    if reason in CUT_SHORT:
        raise StructuredOutputError(
            CUT_SHORT[reason], text=reply.text, mode=mode, finish_reason=reason, **where
        )
    try:
        return target.validate(extract_json(reply.text))
    except SchemaMismatch as mismatch:
        errors = tuple(mismatch.errors)
        shown = "; ".join(errors)
        if len(shown) > 300:
            shown = shown[:297] + "..."
        raise StructuredOutputError(
            f"the reply does not match the schema {target.name}: {shown}",
            text=reply.text,
            errors=errors,
            mode=mode,
            finish_reason=reason,
            **where,
        ) from None


def extract_json(text: str) -> str:
    """``text``, or the inside of its first fenced code block when the text
    itself is not JSON (models like to wrap JSON in one).
    """
    stripped = text.strip()
    if stripped[:1] in ("{", "[", '"') or not stripped:
        return text
    found = _FENCED.search(text)
    return found.group(1) if found else text
