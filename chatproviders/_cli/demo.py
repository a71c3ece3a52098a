"""``chatproviders demo``: every protocol, offline, through the real clients.

The emulators of :mod:`chatproviders.testing` run on 127.0.0.1 in this
process; each client streams one reply from its own with ``client.stream``,
as user code would; then one more in background mode.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Iterable
from typing import Any, TextIO

from .. import __version__
from .._messages import Messages
from .._provider import Provider
from ..providers import BUILT_IN
from . import arguments
from .common import EXIT_OK

__all__ = ["HELP", "NAME", "add_arguments", "run", "run_demo"]

NAME = "demo"
HELP = "stream a reply from every emulator"

PROMPT: Messages = [{"role": "user", "content": "Say hello, and what you are."}]
DEMO_KEY = "demo-key"

#: Each emulator's reply: what its protocol put on the wire.
REPLIES = {
    "cromicle": "Hello! The prompt went in signed with sha256; raw UTF-8 text "
    "streams back.",
    "acytoo": "Hello! The whole history went in as JSON; raw UTF-8 text streams back.",
    "gprochat": "Hello! A signed Gemini-style turn went in; raw UTF-8 text streams "
    "back.",
    "codelinkava": "Hello! OpenAI-style server-sent events, read up to data: [DONE].",
    "openai": "Hello! Bearer auth, /v1/chat/completions, SSE chunks: what Ollama, "
    "llama.cpp, vLLM and LM Studio speak.",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's arguments."""
    parser.add_argument(
        "--delay",
        type=arguments.seconds,
        default=0.015,
        metavar="S",
        help="the emulators' pause between chunks (default: %(default)s)",
    )


def run(args: argparse.Namespace) -> int:
    """Stream a reply from every emulator to stdout."""
    return run_demo(sys.stdout, delay=args.delay)


def run_demo(out: TextIO, delay: float = 0.015) -> int:
    """Stream a reply from every emulator to ``out``; 0 when all answered."""
    # only this command needs the emulators
    from ..testing import serve
    from ..testing._protocols import emulator_name

    out.write(
        f"chatproviders {__version__} demo: five protocol emulators on 127.0.0.1, "
        "each streamed through its real client\n\n"
    )
    with contextlib.ExitStack() as stack:
        clients: list[Provider] = []
        for cls in BUILT_IN:  # the registry's list, OpenAICompatible last
            if cls.emulator is None:
                continue
            name = emulator_name(cls)
            key = DEMO_KEY if name == "openai" else None
            text = REPLIES.get(name, f"Hello from the {cls.name()} emulator.")
            server = serve(name, text=text, chunk_size=5, delay=delay, api_key=key)
            url = stack.enter_context(server).url
            options: dict[str, Any] = (
                {"api_key": key, "model": "gpt-4o-mini"} if key else {}
            )
            clients.append(stack.enter_context(cls(base_url=url, **options)))
        width = max(len(client.name()) for client in clients) + 2
        for client in clients:
            started = time.monotonic()
            with client.stream(PROMPT) as stream:
                _show(out, client.name().ljust(width), stream, started)
        out.write("\nIn background mode (a worker thread reads the reply):\n")
        started = time.monotonic()
        with clients[-1].stream_in_background(PROMPT) as chunks:
            _show(out, clients[-1].name().ljust(width), chunks, started)
    out.write(
        "\nEvery reply above arrived chunk by chunk over HTTP. Next: "
        "`chatproviders list`, `chatproviders chat --help`.\n"
    )
    out.flush()
    return EXIT_OK


def _show(out: TextIO, label: str, chunks: Iterable[str], started: float) -> None:
    """``label``, the time to the first chunk, then the chunks as they arrive."""
    out.write(label)
    out.flush()
    for index, chunk in enumerate(chunks):
        if index == 0:
            first = getattr(chunks, "time_to_first_chunk", None)
            first = first or time.monotonic() - started
            out.write(f"first chunk {first * 1000:5.1f} ms | ")
        out.write(chunk)
        out.flush()
    out.write("\n")
