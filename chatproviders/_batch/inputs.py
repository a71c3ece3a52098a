"""A batch's inputs, checked: what each item sends.

An input is a prompt ``str``, a messages list, or a dict with ``prompt`` or
``messages`` and optionally ``id``, ``model`` and call parameters. Every one
is checked as the client would check it, before anything is sent.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Callable, Optional, Union

from .._client import Client
from .._messages import Messages, validate_messages
from ..exceptions import ChatProvidersError, InvalidMessagesError

__all__ = ["Call", "Input", "describe_client", "make_calls"]

Input = Union[str, Sequence[Mapping[str, Any]], Mapping[str, Any]]


@dataclass(frozen=True)
class Call:
    """One input, checked: what to send."""

    index: int
    id: Any
    input: Any
    messages: Messages
    model: Optional[str]
    params: dict[str, Any]

    @property
    def fingerprint(self) -> str:
        """A hash of what is sent for this item, kept on its checkpoint line."""
        what = [self.index, self.id, self.messages, self.model, self.params]
        encoded = json.dumps(what, sort_keys=True, default=repr).encode("utf-8")
        return hashlib.sha256(encoded).hexdigest()[:16]


def make_calls(
    client: Any,
    inputs: Iterable[Input],
    call_kwargs: Mapping[str, Any],
    where: Callable[[int], str] = "inputs[{}]".format,
) -> list[Call]:
    """Every input checked as ``client`` would check it; ``where(index)`` names
    a bad one in the error.
    """
    if not callable(getattr(client, "complete", None)):
        raise TypeError(
            f"client must be a chatproviders client, got {type(client).__name__}"
        )
    if isinstance(inputs, (str, bytes, Mapping)) or not isinstance(inputs, Iterable):
        raise TypeError(
            "inputs must be a list of prompts, messages lists or dicts, "
            f"got {type(inputs).__name__}"
        )
    defaults = dict(call_kwargs)
    model = defaults.pop("model", None)
    calls = []
    for index, item in enumerate(inputs):
        try:
            call = _make_call(index, item, model, defaults)
            _check(client, call)
        except ChatProvidersError as exc:
            exc.message = f"{where(index)}: {exc.message}"
            exc.args = (exc.message,)
            raise
        calls.append(call)
    return calls


def _make_call(
    index: int, item: Any, model: Optional[str], defaults: Mapping[str, Any]
) -> Call:
    if isinstance(item, str):
        messages: Any = [{"role": "user", "content": item}]
        return Call(index, None, item, messages, model, dict(defaults))
    if isinstance(item, Mapping):
        fields = dict(item)
        if ("prompt" in fields) == ("messages" in fields):
            raise InvalidMessagesError(
                "a dict input needs 'prompt' or 'messages' (one of them), "
                f"got keys {sorted(map(str, fields))}"
            )
        if "prompt" in fields:
            prompt = fields.pop("prompt")
            if not isinstance(prompt, str):
                raise InvalidMessagesError(
                    f"'prompt' must be a str, got {type(prompt).__name__}"
                )
            messages = [{"role": "user", "content": prompt}]
        else:
            messages = fields.pop("messages")
        item_id = fields.pop("id", None)
        if not (item_id is None or isinstance(item_id, (str, int))):
            raise InvalidMessagesError(
                f"'id' must be a str or an int, got {type(item_id).__name__}"
            )
        item_model = fields.pop("model", model)
        params = {**defaults, **fields}
        return Call(index, item_id, item, messages, item_model, params)
    if isinstance(item, Sequence) and not isinstance(item, bytes):
        return Call(index, None, item, list(item), model, dict(defaults))
    raise InvalidMessagesError(
        "must be a prompt str, a messages list, or a dict with 'prompt' or "
        f"'messages', got {type(item).__name__}"
    )


def _check(client: Any, call: Call) -> None:
    """Refuse what the client would refuse at send time: messages, model, params."""
    if isinstance(client, Client):
        client.prepare(call.messages, call.model, call.params)
    else:
        validate_messages(call.messages)


#: Constructor arguments that never change an answer, or hold a secret: left
#: out of :func:`describe_client`.
_NOT_THE_ANSWER = frozenset(
    {
        "api_key",
        "cooldown",
        "headers",
        "health_interval",
        "include_usage",
        "max_retries",
        "proxy",
        "session",
        "shuffle",
        "timeout",
        "total_timeout",
    }
)


def describe_client(client: Any) -> dict[str, Any]:
    """What of ``client`` changes an answer, as JSON values: its class, base
    URL (credentials stripped), model, other constructor arguments, and a
    :class:`~chatproviders.FallbackProvider`'s members, each described so.
    A batch's checkpoint keeps it, so that a rerun with another client is
    refused rather than mixed in.
    """
    cls = type(client)
    resource = sys.modules.get("chatproviders._responses._resource")
    if resource is not None and isinstance(client, resource.Responses):
        # client.responses: the client it speaks through is what answers
        return {
            "provider": "chatproviders.Responses",
            "client": describe_client(client._client),
        }
    ours = cls.__module__.partition(".")[0] == "chatproviders"  # not where it lives
    name = (
        f"chatproviders.{cls.__qualname__}"
        if ours
        else f"{cls.__module__}.{cls.__qualname__}"
    )
    arguments = dict(getattr(client, "_arguments", {}))
    described: dict[str, Any] = {"provider": name}
    members = getattr(client, "providers", None)
    if isinstance(members, (list, tuple)):
        described["members"] = [describe_client(member) for member in members]
    else:
        url = getattr(client, "base_url", None) or getattr(cls, "url", None)
        described["base_url"] = _without_credentials(url)
        model = getattr(client, "model", None)
        described["model"] = model if isinstance(model, str) else None
    params = {
        key: value
        for key, value in {**_defaults(cls), **arguments}.items()
        if key not in _NOT_THE_ANSWER | {"base_url", "model", "providers"}
    }
    described["params"] = params
    normal: dict[str, Any] = json.loads(json.dumps(described, default=_stable_repr))
    return normal


def _defaults(cls: type) -> dict[str, Any]:
    """The constructor's keyword defaults: left out or passed, the same client."""
    import inspect  # here: it is slow to import, and batch() needs it late

    try:
        parameters = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return {}
    return {
        p.name: p.default
        for p in parameters
        if p.default is not p.empty
        and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }


def _stable_repr(value: Any) -> str:
    """``repr(value)`` without a memory address, which changes every run."""
    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(value))


def _without_credentials(url: Any) -> Any:
    """``url`` without its user:password (a base URL has no query)."""
    if not isinstance(url, str):
        return url
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
