"""``chatproviders emulate NAME``: serve one emulator until Ctrl-C."""

from __future__ import annotations

import argparse
import time
from typing import Any

from . import arguments
from .common import EXIT_ERROR, EXIT_OK, UsageError, say

__all__ = ["HELP", "NAME", "add_arguments", "run", "wait_for_interrupt"]

NAME = "emulate"
HELP = "serve one emulator"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's arguments."""
    parser.add_argument(
        "provider", type=str.lower, help="a provider's name, as `list` shows it"
    )
    parser.add_argument(
        "--port", type=arguments.port, default=0, help="default: a free one"
    )
    parser.add_argument("--text", help="the reply's text")
    parser.add_argument(
        "--chunk-size", type=arguments.positive, metavar="N", help="characters"
    )
    parser.add_argument(
        "--delay",
        type=arguments.seconds,
        default=0.0,
        metavar="S",
        help="between chunks",
    )
    parser.add_argument("--api-key", help="require this Bearer key (openai only)")
    parser.add_argument(
        "--models",
        type=_names,
        metavar="A,B",
        help="the models it lists and accepts (openai only), e.g. llama3.2,qwen3",
    )


def run(args: argparse.Namespace) -> int:
    """Serve one emulator in the foreground until Ctrl-C."""
    from ..testing import serve

    fields: dict[str, Any] = {"delay": args.delay}
    if args.text is not None:
        fields["text"] = args.text
    if args.chunk_size is not None:
        fields["chunk_size"] = args.chunk_size
    try:
        server = serve(
            args.provider,
            port=args.port,
            api_key=args.api_key,
            models=args.models,
            **fields,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        say(f"chatproviders: error: cannot listen on port {args.port}: {exc}")
        return EXIT_ERROR
    first = args.models[0] if args.models else "gpt-4o-mini"  # a listed one
    model = f" -m {first}" if args.provider == "openai" else ""
    key = "CHATPROVIDERS_API_KEY=... " if args.api_key else ""
    with server:
        try:
            print(f"{server.provider} emulator on {server.url} (Ctrl-C stops it)")
            print(
                f"try: {key}chatproviders chat -p {args.provider} "
                f'--base-url {server.url}{model} "Hello"',
                flush=True,
            )
            wait_for_interrupt()
        except KeyboardInterrupt:
            say("stopped")
    return EXIT_OK


def wait_for_interrupt() -> None:
    """Block until Ctrl-C; tests replace it. (On Windows, before Python 3.14, a
    lock wait such as ``Event().wait()`` does not wake for Ctrl-C; sleep does.)
    """
    while True:
        time.sleep(3600)


def _names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"{text!r} names no model")
    return names
