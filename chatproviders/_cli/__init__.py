"""The ``chatproviders`` command line: the parser, and errors as exit statuses.

::

    chatproviders demo                   every protocol, offline, streamed
    chatproviders chat [-p NAME] ...     one prompt, stdin, or an interactive chat
    chatproviders batch IN -o OUT ...    every prompt of a JSONL file, resumable
    chatproviders list                   the providers and their endpoints
    chatproviders check [NAME...]        which providers answer now, measured
    chatproviders emulate NAME           serve one emulator until Ctrl-C

Exit status: 0 done; 1 a provider failed, or stdout refused a write (one line
on stderr); 2 a usage error (a bare ``chatproviders`` prints the help); 130
interrupted by Ctrl-C, after the stream was closed; 141 (128 + SIGPIPE, what a
shell shows for ``yes | head -1``) quietly, when the reader of stdout left.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence
from typing import Any, Callable, Optional

from .. import __version__
from .._provider import Provider
from .._registry import get_provider
from ..exceptions import (
    ChatProvidersError,
    InvalidMessagesError,
    ModelNotSupportedError,
    ProviderNotFoundError,
)
from ..providers.openai_compatible import OpenAICompatible
from . import batch
from .chat import API_KEY_VARIABLE, run_chat
from .check import add_check_arguments, run_check
from .common import (
    EXIT_BROKEN_PIPE,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    UsageError,
    say,
    silence_stdout,
)
from .demo import run_demo
from .tools import run_emulate, run_list

__all__ = ["main"]

Command = Callable[[argparse.Namespace], int]


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); the exit
    status is returned, never raised.
    """
    # A reply may hold characters the terminal's or file's encoding has not
    # (cp1252 on Windows, ascii under LANG=C): shown as ?, not a traceback.
    with contextlib.suppress(AttributeError, ValueError):
        sys.stdout.reconfigure(errors="replace")  # type: ignore[union-attr]
    parser = _parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv:  # as git and pip do: what there is to run, not a bare error
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        args, unknown = parser.parse_known_args(argv)
        if unknown:  # named by the command's own usage, not the top level's
            command_parser = getattr(args, "command_parser", parser)
            command_parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    except SystemExit as exc:  # --help, --version, or a usage error
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    command: Command = args.command
    try:
        status = command(args)
        sys.stdout.flush()  # a broken pipe shows here, not at interpreter exit
        return status
    except (UsageError, ModelNotSupportedError, InvalidMessagesError) as exc:
        say(f"chatproviders {args.name}: error: {exc}")
        return EXIT_USAGE
    except ChatProvidersError as exc:
        say(f"chatproviders: error: {exc}")
        return EXIT_ERROR
    except KeyboardInterrupt:
        say()  # the shell's prompt starts on a line of its own
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader left: `chatproviders demo | head -1`
        silence_stdout()
        return EXIT_BROKEN_PIPE
    except OSError as exc:  # stdout refused a write: a full disk, /dev/full
        silence_stdout()
        say(f"chatproviders: error: cannot write the output: {exc.strerror or exc}")
        return EXIT_ERROR


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chatproviders",
        description="Chat-completion clients on requests, and offline emulators.",
        epilog="Start with: chatproviders demo",
    )
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    commands.required = True

    demo = _command(commands, "demo", _demo, "stream a reply from every emulator")
    demo.add_argument(
        "--delay",
        type=_seconds,
        default=0.015,
        metavar="S",
        help="the emulators' pause between chunks (default: %(default)s)",
    )

    chat = _command(commands, "chat", run_chat, "chat with a provider")
    chat.epilog = (
        f"OpenAICompatible sends ${API_KEY_VARIABLE} as its API key, when set. "
        "The four seed providers are offline: point --base-url at an emulator."
    )
    chat.add_argument(
        "-p",
        "--provider",
        type=_provider,
        default=OpenAICompatible,
        metavar="NAME",
        help="a name from `chatproviders list`, or openai (the default)",
    )
    chat.add_argument("-m", "--model", help="the model (default: the provider's)")
    chat.add_argument("--base-url", metavar="URL", help="the server's URL")
    chat.add_argument("--proxy", metavar="URL", help="an http(s) proxy")
    chat.add_argument(
        "--timeout", type=_seconds, metavar="S", help="connect and read timeout"
    )
    chat.add_argument("--system", metavar="TEXT", help="a system message first")
    chat.add_argument(
        "--no-stream",
        dest="stream",
        action="store_false",
        help="print the reply once it is complete",
    )
    chat.add_argument(
        "--responses",
        action="store_true",
        help="send through the Responses API (POST /responses) of an "
        "OpenAI-compatible server",
    )
    chat.add_argument(
        "prompt",
        nargs="*",
        metavar="PROMPT",
        help="the prompt; piped stdin follows it in the same message, after a "
        "blank line; with neither, an interactive chat on the terminal",
    )

    text = "send every prompt of a JSONL file"
    batch.add_arguments(
        _command(commands, "batch", batch.run, text), _provider, _seconds
    )

    listing = _command(commands, "list", run_list, "list the providers")
    listing.add_argument(
        "-v", "--verbose", action="store_true", help="also the arguments each accepts"
    )
    listing.add_argument("--check", action="store_true", help="also probe each one")
    check = _command(commands, "check", run_check, "measure which providers answer")
    add_check_arguments(check, _provider, _seconds)

    emulate = _command(commands, "emulate", run_emulate, "serve one emulator")
    emulate.add_argument(
        "provider", type=str.lower, help="a provider's name, as `list` shows it"
    )
    emulate.add_argument("--port", type=_port, default=0, help="default: a free one")
    emulate.add_argument("--text", help="the reply's text")
    emulate.add_argument("--chunk-size", type=int, metavar="N", help="characters")
    emulate.add_argument(
        "--delay", type=_seconds, default=0.0, metavar="S", help="between chunks"
    )
    emulate.add_argument("--api-key", help="require this Bearer key (openai only)")
    return parser


def _command(
    commands: Any, name: str, run: Command, text: str
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=text, description=text[0].upper() + text[1:] + "."
    )
    parser.set_defaults(command=run, name=name, command_parser=parser)
    return parser


def _demo(args: argparse.Namespace) -> int:
    return run_demo(sys.stdout, delay=args.delay)


def _provider(name: str) -> type[Provider]:
    try:
        return get_provider(name)
    except ProviderNotFoundError as exc:
        known = ", ".join([*exc.known, "openai"])
        raise argparse.ArgumentTypeError(f"{name!r} is not one of {known}") from None


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds")
    return value


def _port(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number")
    return int(text)
