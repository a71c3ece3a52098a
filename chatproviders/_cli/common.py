"""What every command shares: exit statuses, usage errors, one-line messages."""

from __future__ import annotations

import os
import sys

__all__ = [
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "UsageError",
    "say",
    "silence_stdout",
]

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(Exception):
    """A mistake in the command line: exit status 2."""


def say(text: str = "") -> None:
    """``text`` as one line on stderr (an empty one ends a half-written line)."""
    print(" ".join(text.split()), file=sys.stderr, flush=True)


def silence_stdout() -> None:
    """After a broken pipe, point stdout at devnull so that exit stays quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
