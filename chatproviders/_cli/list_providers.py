"""``chatproviders list``: the providers, their flags and endpoints."""

from __future__ import annotations

import argparse

from .._provider import Provider
from .._registry import list_providers, plugin_errors
from .common import EXIT_OK, say

__all__ = ["HELP", "NAME", "add_arguments", "run"]

NAME = "list"
HELP = "list the providers"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's arguments."""
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="also the arguments each accepts"
    )
    parser.add_argument("--check", action="store_true", help="also probe each one")


def run(args: argparse.Namespace) -> int:
    """An aligned table of every provider class."""
    rows = [["name", "working", "streaming", "history", "default model", "endpoint"]]
    classes = list_providers()
    measured = _measure(classes) if args.check else {}
    if args.check:
        rows[0].insert(2, "measured")
    for name, reason in plugin_errors().items():
        say(f"chatproviders list: warning: plugin {name!r} did not load: {reason}")
    for cls in classes:
        rows.append(
            [
                cls.name(),
                _yes(cls.working),
                *([measured.get(cls, "-")] if args.check else []),
                _yes(cls.supports_stream),
                _yes(cls.supports_message_history),
                cls.default_model or "any (-m)",
                cls.default_endpoint() or "BASE_URL" + cls.path,
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths)]
        print("  ".join([*cells, row[-1]]))
    if args.verbose:
        print()
        for cls in classes:
            print(cls.params)
    return EXIT_OK


def _measure(classes: list[type[Provider]]) -> dict[type[Provider], str]:
    """The status of a probe of each class that has a default URL."""
    probed = [cls for cls in classes if cls.default_endpoint() is not None]
    from .._health.check import check

    return {cls: result.status for cls, result in zip(probed, check(probed))}


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"
