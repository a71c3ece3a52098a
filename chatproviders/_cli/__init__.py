"""The ``chatproviders`` command line: the parser, and errors as exit statuses.

::

    chatproviders demo                   every protocol, offline, streamed
    chatproviders chat [-p NAME] ...     one prompt, stdin, or an interactive chat
    chatproviders batch IN -o OUT ...    every prompt of a JSONL file, resumable
    chatproviders list                   the providers and their endpoints
    chatproviders check [NAME...]        which providers answer now, measured
    chatproviders emulate NAME           serve one emulator until Ctrl-C
    chatproviders serve ROUTE...         an OpenAI-compatible gateway (waitress)

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
from typing import Callable, Optional

from .. import __version__
from ..exceptions import (
    ChatProvidersError,
    InvalidMessagesError,
    ModelNotSupportedError,
)
from . import batch, chat, check, demo, emulate, list_providers, serve
from .common import (
    EXIT_BROKEN_PIPE,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    UsageError,
    say,
    silence_stdout,
)

__all__ = ["COMMANDS", "main"]

Command = Callable[[argparse.Namespace], int]

#: The commands, in the order the help lists them. Each module has its
#: ``NAME``, a one-line ``HELP``, ``add_arguments(parser)`` and
#: ``run(args) -> exit status``: a new command is a module and a line here.
COMMANDS = (demo, chat, batch, list_providers, check, emulate, serve)


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
    for command in COMMANDS:
        text: str = command.HELP
        sub = commands.add_parser(
            command.NAME, help=text, description=text[0].upper() + text[1:] + "."
        )
        sub.set_defaults(command=command.run, name=command.NAME, command_parser=sub)
        command.add_arguments(sub)
    return parser
