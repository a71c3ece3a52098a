"""Offline emulators of the providers' wire protocols, for demos and tests.

Each emulator is a real HTTP/1.1 server on 127.0.0.1 (a free port by default),
running in daemon threads, that checks requests the way the provider did and answers
with a configurable :class:`Reply`: text cut into chunks, a framing, delays, and
faults (error statuses, stalls, resets, split UTF-8 characters and CRLFs)::

    from chatproviders.testing import serve

    with serve("cromicle", text="Hi there", chunk_size=3, framing="length") as server:
        ...  # point a client at server.url
        assert server.requests[0].json["message"] == "hello"
        server.queue_reply(status=429, headers={"Retry-After": "1"}, body="slow down")

Providers: every registered provider that names an ``emulator``: cromicle, acytoo,
gprochat, codelinkava, and openai (an OpenAI-compatible ``/v1/chat/completions`` and
``/v1/models``, which answers a request for JSON with :func:`instance_of` its schema);
``serve(LlamaCppServer)`` is openai refusing ``json_schema`` as llama.cpp's server does.
pytest fixtures live in :mod:`chatproviders.testing.pytest_plugin`.

The emulator of your own provider is a :class:`Protocol` subclass: its route, the
fields its body must have (:class:`Kind` values such as ``STRING``), and ``encode``,
which turns a :class:`Reply` into an :class:`Answer` (status, headers, the body as
separate writes). ``serve(YourProtocol)`` runs it; naming it in your provider's
``emulator`` attribute makes ``serve("yourname")`` and the command line find it.
"""

from __future__ import annotations

from typing import Any

from chatproviders.testing._checks import (
    BOOLEAN,
    INTEGER,
    MESSAGES,
    NULL,
    NUMBER,
    STRING,
    TRUE,
    Kind,
)
from chatproviders.testing._protocols import LlamaCppServer, Protocol
from chatproviders.testing._reply import Reply
from chatproviders.testing._server import EmulatorServer
from chatproviders.testing._structured import instance_of
from chatproviders.testing._traffic import Answer, RecordedRequest

__all__ = [
    "BOOLEAN",
    "INTEGER",
    "MESSAGES",
    "NULL",
    "NUMBER",
    "STRING",
    "TRUE",
    "Answer",
    "EmulatorServer",
    "Kind",
    "LlamaCppServer",
    "Protocol",
    "RecordedRequest",
    "Reply",
    "instance_of",
    "serve",
]


def serve(
    provider: str | type[Protocol] | Protocol,
    reply: Reply | None = None,
    **options: Any,
) -> EmulatorServer:
    """Start an emulator of ``provider`` (a registered provider's name, or a
    :class:`Protocol` class or instance); stop it with ``with`` or ``.stop()``.

    ``options`` are :class:`EmulatorServer`'s (``host``, ``port``, ``api_key``
    and ``models`` for openai) and :class:`Reply` fields (``text``,
    ``chunk_size``, ``framing``, ...) of the default reply.
    """
    return EmulatorServer(provider, reply, **options).start()
