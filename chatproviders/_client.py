"""What every client does, provider or fallback: the three calls, copies, pickling.

A client knows how to :meth:`~Client.prepare` a call (check and encode it,
no I/O) and how to :meth:`~Client._open` a prepared call (send it, retrying,
until the first chunk). :class:`Client` builds the public calls on those two:
:meth:`~Client.stream`, :meth:`~Client.complete` and
:meth:`~Client.stream_in_background`, so anything that is a client, a
:class:`~chatproviders.FallbackProvider` included, goes wherever a client does.
"""

from __future__ import annotations

import functools
import threading
from typing import Any, Callable, Optional, TypeVar

from ._background import BackgroundStream
from ._closing import Closing
from ._constants import BACKGROUND_QUEUE_SIZE
from ._messages import Messages
from ._streaming import ChatResponse, ChatStream

__all__ = ["Client"]

_Self = TypeVar("_Self", bound="Client")


class Client(Closing):
    """Base of every client: :class:`~chatproviders.Provider` and
    :class:`~chatproviders.FallbackProvider`.

    A client pickles (the copy is built anew from the same arguments, with
    connections of its own) and :meth:`with_options` makes a changed copy.
    """

    _arguments: dict[str, Any]
    _varargs: tuple[Any, ...]

    def __new__(cls, *args: Any, **kwargs: Any) -> Client:
        # The constructor's arguments, by name (and any *args): what pickling
        # and with_options build a copy from. Read here so that every
        # subclass gets it for free.
        import inspect  # here, not at import: it is a fifth of the import time

        self = super().__new__(cls)
        signature = _signature(cls.__init__)
        arguments = dict(signature.bind_partial(None, *args, **kwargs).arguments)
        arguments.pop(next(iter(arguments)))  # self
        self._varargs = ()
        for name, parameter in signature.parameters.items():
            if parameter.kind is inspect.Parameter.VAR_KEYWORD:
                arguments.update(arguments.pop(name, {}))
            elif parameter.kind is inspect.Parameter.VAR_POSITIONAL:
                self._varargs = tuple(arguments.pop(name, ()))
        self._arguments = arguments
        return self

    @classmethod
    def name(cls) -> str:
        """The client's name, as errors and the registry show it."""
        return cls.__name__

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called: the client refuses to send."""
        return False

    # -- what a client implements -------------------------------------------

    def prepare(self, messages: Messages, model: Optional[str], params: Any) -> Any:
        """Check every argument and encode the call; no I/O."""
        raise NotImplementedError

    def _open(
        self,
        prepared: Any,
        deadline: Optional[float] = None,
        on_response: Optional[Callable[[Any], None]] = None,
        cancel: Optional[threading.Event] = None,
    ) -> ChatStream:
        """Send ``prepared`` until its first chunk arrives, retrying what may be.

        ``deadline`` (monotonic) bounds everything; ``on_response`` sees each
        response as soon as its headers are in, so that another thread can
        shut it down; once ``cancel`` is set, nothing more is tried.
        """
        raise NotImplementedError

    # -- the public calls ---------------------------------------------------

    def stream(
        self, messages: Messages, model: Optional[str] = None, **params: Any
    ) -> ChatStream:
        """Send the chat and return the reply as a :class:`ChatStream`.

        It returns once the first chunk is in hand (or the reply ended), so
        an error status, and any failure before the first chunk that retries
        did not cure, is raised here rather than from the iteration.
        """
        return self._open(self.prepare(messages, model, params))

    def complete(
        self, messages: Messages, model: Optional[str] = None, **params: Any
    ) -> ChatResponse:
        """Send the chat and return the whole reply as a :class:`ChatResponse`."""
        return self.stream(messages, model, **params).until_done()

    def stream_in_background(
        self,
        messages: Messages,
        model: Optional[str] = None,
        maxsize: int = BACKGROUND_QUEUE_SIZE,
        **params: Any,
    ) -> BackgroundStream:
        """Stream the reply on a worker thread; returns at once.

        The arguments are checked here (bad ones raise now); the request is
        sent from the worker. At most ``maxsize`` chunks wait in memory. One
        client may serve background streams from many threads at once.
        """
        prepared = self.prepare(messages, model, params)
        return BackgroundStream._of_request(
            functools.partial(self._open, prepared), maxsize
        )

    # -- copies -------------------------------------------------------------

    def with_options(self: _Self, **changes: Any) -> _Self:
        """A new client built like this one but for ``changes`` (constructor
        keywords: ``max_retries=0``, ``total_timeout=5``, ``base_url=...``).

        The copy shares this client's ``requests.Session`` (and so its
        connection pool) unless ``session`` is among the changes; closing
        the copy never closes a session it did not make.
        """
        arguments = {**self._arguments, **changes}
        shared = {}
        if "session" not in arguments and hasattr(self, "session"):
            shared["session"] = self.session  # not kept for pickling: a copy
        copy = _rebuild(type(self), {**arguments, **shared}, self._varargs)
        copy._arguments = arguments  # of a copy makes a session of its own
        return copy

    def __reduce__(self) -> tuple[Any, ...]:
        # Built anew from the same arguments: a session the client made is
        # made again, never shared; one you passed travels as requests
        # pickles it (its settings, not its connections).
        return (_rebuild, (type(self), self._arguments, self._varargs))


@functools.cache
def _signature(function: Any) -> Any:
    import inspect

    return inspect.signature(function)


def _rebuild(
    cls: type[_Self], arguments: dict[str, Any], varargs: tuple[Any, ...] = ()
) -> _Self:
    """``cls`` called with ``arguments`` by name, but for those that must go
    by position (positional-only ones, and those before ``*args``).
    """
    import inspect

    keywords = dict(arguments)
    positional: list[Any] = []
    for name, parameter in list(_signature(cls.__init__).parameters.items())[1:]:
        by_position = parameter.kind is inspect.Parameter.POSITIONAL_ONLY or (
            varargs and parameter.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
        )
        if parameter.kind is inspect.Parameter.VAR_POSITIONAL or not by_position:
            break
        if name in keywords:
            positional.append(keywords.pop(name))
    return cls(*positional, *varargs, **keywords)
