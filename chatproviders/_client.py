"""What every client does, provider or fallback: the three calls, copies, pickling.

A client knows how to :meth:`~Client.prepare` a call (check and encode it,
no I/O) and how to :meth:`~Client.send_prepared` it (send it, retrying,
until the first chunk). :class:`Client` builds the public calls on those two:
:meth:`~Client.stream`, :meth:`~Client.complete` and
:meth:`~Client.stream_in_background`, so anything that is a client, a
:class:`~chatproviders.FallbackProvider` included, goes wherever a client does.
"""

from __future__ import annotations

import functools
import threading
from typing import TYPE_CHECKING, Any, Callable, Optional, TypeVar, overload

from ._constants import BACKGROUND_QUEUE_SIZE
from ._messages import Messages
from ._streams.background import BackgroundStream, background_request
from ._streams.chat_stream import ChatResponse, ChatStream
from ._streams.closing import Closing

if TYPE_CHECKING:
    from ._structured import ParsedResponse

__all__ = ["Client"]

_Self = TypeVar("_Self", bound="Client")
T = TypeVar("T")


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
        """True once ``close()`` was called: the client refuses to send."""
        return False

    # -- what a client implements -------------------------------------------

    def prepare(self, messages: Messages, model: Optional[str], params: Any) -> Any:
        """Check every argument and encode the call; no I/O."""
        raise NotImplementedError

    def send_prepared(
        self,
        prepared: Any,
        *,
        deadline: Optional[float] = None,
        on_response: Optional[Callable[[Any], None]] = None,
        cancel: Optional[threading.Event] = None,
        started: Optional[float] = None,
    ) -> ChatStream:
        """Send a call that :meth:`prepare` made, until its first chunk arrives,
        retrying what may be: the seam a FallbackProvider, a background stream
        and the gpt4free entry points send through.

        ``deadline`` (monotonic) bounds everything; ``on_response`` sees each
        response as soon as its headers are in, so that another thread can
        shut it down; once ``cancel`` is set, nothing more is tried.
        ``started`` is the clock reading (``time.monotonic``) the stream's
        figures count from, when the call began earlier (in a fallback, with
        the providers that failed before).
        """
        raise NotImplementedError

    # -- the public calls ---------------------------------------------------

    def stream(
        self,
        messages: Messages,
        model: Optional[str] = None,
        *,
        schema: Any = None,
        **params: Any,
    ) -> ChatStream:
        """Send the chat and return the reply as a :class:`ChatStream`.

        It returns once the first chunk is in hand (or the reply ended), so
        an error status, and any failure before the first chunk that retries
        did not cure, is raised here rather than from the iteration.

        With ``schema`` (and optionally ``mode``), the request asks for it as
        :meth:`parse` does; the text streams as it comes, and once the reply
        has ended the stream's ``parsed`` holds the value, or the iteration's
        end raises :class:`~chatproviders.StructuredOutputError` (there are no
        retries in a stream).
        """
        if schema is not None:
            from ._structured import open_stream

            return open_stream(self, messages, model, schema, params)
        return self.send_prepared(self.prepare(messages, model, params))

    @overload
    def parse(
        self,
        messages: Messages,
        schema: type[T],
        *,
        mode: str = ...,
        max_parse_retries: int = ...,
        model: Optional[str] = ...,
        **params: Any,
    ) -> ParsedResponse[T]: ...

    @overload
    def parse(
        self,
        messages: Messages,
        schema: Any,
        *,
        mode: str = ...,
        max_parse_retries: int = ...,
        model: Optional[str] = ...,
        **params: Any,
    ) -> ParsedResponse[Any]: ...

    def parse(
        self,
        messages: Messages,
        schema: Any,
        *,
        mode: str = "auto",
        max_parse_retries: int = 1,
        model: Optional[str] = None,
        **params: Any,
    ) -> ParsedResponse[Any]:
        """Send the chat asking for ``schema`` and return the reply read into it.

        ``schema`` is a pydantic model class (``.parsed`` is an instance), a
        type pydantic's ``TypeAdapter`` takes (a dataclass, a ``TypedDict``,
        ``list[Model]``), or a JSON Schema ``dict`` (``.parsed`` is the
        validated JSON). Needs ``pip install 'chatproviders[structured]'``.

        ``mode``: ``"json_schema"`` (OpenAI's strict ``response_format``, as
        the OpenAI SDK sends it), ``"json_object"`` (JSON mode with the schema
        alongside, as llama.cpp's server reads it), ``"prompt"`` (the schema
        in a system message: any provider), or ``"auto"``: the best the
        client takes, stepping down when the server refuses the request as
        such (a 400 or 422, or a 5xx naming ``response_format``), and
        remembering per client and model the mode that worked.

        A reply that is not valid JSON for the schema is asked again, up to
        ``max_parse_retries`` times, with what was wrong; then
        :class:`~chatproviders.StructuredOutputError`. A refusal sets
        ``.refusal`` and leaves ``.parsed`` None; a reply cut at
        ``max_tokens`` raises at once. JSON in a fenced code block is read.
        """
        from ._structured import parse

        return parse(
            self,
            messages,
            schema,
            mode=mode,
            max_parse_retries=max_parse_retries,
            model=model,
            params=params,
        )

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
        return background_request(
            functools.partial(self.send_prepared, prepared), maxsize
        )

    # -- copies -------------------------------------------------------------

    def with_options(self: _Self, **changes: Any) -> _Self:
        """A new client built like this one but for ``changes`` (constructor
        keywords: ``max_retries=0``, ``total_timeout=5``, ``base_url=...``).

        The copy shares this client's ``requests.Session`` (and so its
        connection pool) unless ``session`` is among the changes; closing
        the copy never closes a session it did not make, and closing the
        client that made the session closes the copy too.
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
