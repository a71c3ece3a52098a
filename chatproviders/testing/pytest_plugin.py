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

from chatproviders.providers import BUILT_IN as _BUILT_IN
from chatproviders.testing import EmulatorServer, Protocol, serve
from chatproviders.testing._protocols import emulator_name as _emulator_name


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


def _server_fixture(provider: str, title: str) -> Any:
    """A fixture named ``{provider}_server``: a started emulator of ``provider``."""

    def started() -> Iterator[EmulatorServer]:
        with serve(provider) as server:
            yield server

    started.__doc__ = f"A started {title} emulator."
    return pytest.fixture(started, name=f"{provider}_server")


# One fixture per built-in provider, from the registry's list: acytoo_server,
# codelinkava_server, cromicle_server, gprochat_server and openai_server (no
# API key; its ``url`` ends in ``/v1``).
for _cls in _BUILT_IN:
    if _cls.emulator is not None:
        _name = _emulator_name(_cls)
        globals()[f"{_name}_server"] = _server_fixture(_name, _cls.name())
