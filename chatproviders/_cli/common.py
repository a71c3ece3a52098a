"""What every command shares: exit statuses, usage errors, one-line messages."""

from __future__ import annotations

import os
import sys

__all__ = [
    "EXIT_BROKEN_PIPE",
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "UsageError",
    "say",
    "silence_stdout",
]

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
#: The reader of stdout went away: 128 + SIGPIPE, the status a shell reports
#: for a coreutils program in the same place (``yes | head -1``).
EXIT_BROKEN_PIPE = 141


class UsageError(Exception):
    """A mistake in the command line: exit status 2."""


def say(text: str = "") -> None:
    """``text`` as one line on stderr (an empty one ends a half-written line)."""
    print(" ".join(text.split()), file=sys.stderr, flush=True)


def silence_stdout() -> None:
    """After a failed write, point stdout at devnull so that exit stays quiet
    (the interpreter flushes what is still buffered as it exits)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
