"""gpt4free's entry points on every provider class: ``create_completion``,
``create_async_generator`` and ``params``.

Each call makes a client, sends one request and closes the client, as
``requests.get`` does with a Session. This is the only module that imports
the async bridge.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar, Optional

from .._constants import BACKGROUND_QUEUE_SIZE
from .._messages import Messages
from .._options import Proxy, Timeout
from .._streams.background import background_request
from .async_bridge import AsyncReply

if TYPE_CHECKING:
    # The one import circle left: gpt4free calls its entry points on the
    # provider class (Cromicle.create_completion), so Provider inherits them
    # from here, and they make and type the very provider they are called on.
    from .._provider import Provider
    from .._wire.exchange import PreparedChat

__all__ = ["FACADE_OPTIONS", "Gpt4freeEntryPoints"]

#: gpt4free's facade options, accepted and not needed by a class used directly.
FACADE_OPTIONS = frozenset({"ignore_working", "ignored"})


class _Params:
    """``Provider.params``: the call's arguments and defaults, readable."""

    def __get__(self, obj: object, cls: type[Provider]) -> str:
        args = [
            "model: str",
            "messages: list[dict[str, str]]",
            "stream: bool = True",
            "proxy: str = None",
            "timeout: float = None",
        ]
        named = {arg.split(":")[0] for arg in args}
        args += [
            f"{name} = None"
            if default is None
            else f"{name}: {type(default).__name__} = {default!r}"
            for name, default in cls.parameters.items()
            if name not in named  # OpenAICompatible's stream, say: once
        ]
        module = cls.__module__
        where = "chatproviders" if module.startswith("chatproviders.") else module
        return f"{where}.{cls.__qualname__} supports: ({', '.join(args)})"


class Gpt4freeEntryPoints:
    """The classmethods gpt4free code calls on a provider class."""

    #: What the provider accepts, as gpt4free's ``params`` described it.
    params: ClassVar[str] = _Params()  # type: ignore[assignment]

    @classmethod
    def create_completion(
        cls: Any,
        model: Optional[str],
        messages: Messages,
        stream: bool = True,
        proxy: Optional[Proxy] = None,
        timeout: Optional[Timeout] = None,
        **kwargs: Any,
    ) -> Iterator[str]:
        """gpt4free's entry point: an iterator of ``str`` (one piece if not ``stream``).

        Arguments are checked now; the request is sent on the first ``next()``.
        Client options (``base_url``, ``session``, ``headers``) may be given
        as keywords; every other keyword is a body parameter.
        """
        if timeout is not None:
            kwargs["timeout"] = timeout
        client, prepared = _from_call(cls, model, messages, proxy, kwargs)
        return _generate(client, prepared, stream)

    @classmethod
    def create_async_generator(
        cls: Any,
        model: Optional[str],
        messages: Messages,
        proxy: Optional[Proxy] = None,
        **kwargs: Any,
    ) -> AsyncReply:
        """gpt4free's async entry point: ``async for chunk in ...``.

        A thin bridge: arguments are checked now, and the request runs on a
        background thread once iteration starts, so the event loop is never
        blocked. Keywords are taken as by :meth:`create_completion`.
        """
        kwargs.pop("stream", None)  # gpt4free passes it; the reply always streams
        client, prepared = _from_call(cls, model, messages, proxy, kwargs)
        send = functools.partial(_generate, client, prepared, True)
        return AsyncReply(lambda: background_request(send, BACKGROUND_QUEUE_SIZE))


def _from_call(
    cls: type[Provider],
    model: Optional[str],
    messages: Messages,
    proxy: Optional[Proxy],
    kwargs: dict[str, Any],
) -> tuple[Provider, PreparedChat]:
    """A client and a checked request from gpt4free-style arguments."""
    options = {k: kwargs.pop(k) for k in cls.client_options & kwargs.keys()}
    for name in FACADE_OPTIONS & kwargs.keys():
        del kwargs[name]  # gpt4free's facade options; a class used directly runs
    client = cls(proxy=proxy, **options)
    try:
        return client, client.prepare(messages, model, kwargs)
    except BaseException:
        client.close()
        raise


def _generate(
    client: Provider, prepared: PreparedChat, stream: bool, **hooks: Any
) -> Iterator[str]:
    """The reply's chunks (or its whole text, one piece), then close the client."""
    try:
        with client.send_prepared(prepared, **hooks) as chat:
            if stream:
                yield from chat
            else:
                yield chat.until_done().text
    finally:
        client.close()
