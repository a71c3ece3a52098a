"""pytest fixtures: a started emulator per provider, stopped after the test.

Registered through the ``pytest11`` entry point
``chatproviders = chatproviders.testing.pytest_plugin``; without the installed package,
add ``pytest_plugins = ["chatproviders.testing.pytest_plugin"]`` to a conftest.py::

    def test_hello(cromicle_server):
        client = Cromicle(base_url=cromicle_server.url)
        cromicle_server.set_reply(text="Hi", chunk_size=1)
        ...
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

import pytest

from chatproviders.testing import EmulatorServer, Protocol, serve


def _serve(provider: str) -> Iterator[EmulatorServer]:
    with serve(provider) as server:
        yield server


@pytest.fixture
def emulator() -> Iterator[Callable[..., EmulatorServer]]:
    """Start emulators by provider name (any registered provider with an
    emulator, plugins included) or :class:`Protocol`; all stop after the test::

        def test_echo(emulator):
            server = emulator("echo", text="Hi")
    """
    with contextlib.ExitStack() as stack:

        def start(
            provider: str | type[Protocol] | Protocol, **kw: Any
        ) -> EmulatorServer:
            return stack.enter_context(serve(provider, **kw))

        yield start


@pytest.fixture
def acytoo_server() -> Iterator[EmulatorServer]:
    """A started Acytoo emulator."""
    yield from _serve("acytoo")


@pytest.fixture
def codelinkava_server() -> Iterator[EmulatorServer]:
    """A started CodeLinkAva emulator."""
    yield from _serve("codelinkava")


@pytest.fixture
def cromicle_server() -> Iterator[EmulatorServer]:
    """A started Cromicle emulator."""
    yield from _serve("cromicle")


@pytest.fixture
def gprochat_server() -> Iterator[EmulatorServer]:
    """A started GPROChat emulator."""
    yield from _serve("gprochat")


@pytest.fixture
def openai_server() -> Iterator[EmulatorServer]:
    """A started OpenAI-compatible emulator (no API key; ``url`` ends in ``/v1``)."""
    yield from _serve("openai")
