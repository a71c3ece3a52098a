"""``chatproviders list``: the providers, their flags and endpoints."""

from __future__ import annotations

import argparse
from typing import Any

from .._provider import Provider
from .._registry import list_providers, plugin_errors
from .check import add_base_url_argument, base_url_clients
from .common import EXIT_ERROR, EXIT_OK, say

__all__ = ["HELP", "NAME", "add_arguments", "run"]

NAME = "list"
HELP = "list the providers"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's arguments."""
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="also the arguments each accepts"
    )
    parser.add_argument("--check", action="store_true", help="also probe each one")
    add_base_url_argument(parser)
    parser.epilog = (
        "With --check, exit status 1 when no provider answered, as `check`'s."
    )


def run(args: argparse.Namespace) -> int:
    """An aligned table of every provider class; with ``--check``, exit status
    1 when none answered."""
    rows = [["name", "working", "streaming", "history", "default model", "endpoint"]]
    classes = list_providers()
    measured = _measure(classes, args.base_url) if args.check else {}
    if args.check:
        rows[0].insert(2, "measured")
    for name, reason in plugin_errors().items():
        dist = name[: -len(" (distribution)")]
        if name.endswith(" (distribution)"):  # no entry point could be read
            say(f"chatproviders list: warning: distribution {dist!r} skipped: {reason}")
        else:
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
    if args.check and "ok" not in measured.values():
        return EXIT_ERROR
    return EXIT_OK


def _measure(
    classes: list[type[Provider]], base_urls: list[tuple[type[Provider], str]]
) -> dict[type[Provider], str]:
    """The status of a probe of each class: at its ``--base-url`` if given
    one (the last given wins), else at its default URL if it has one."""
    from .._health.check import check

    given = {
        cls: client for client, (cls, _) in zip(base_url_clients(base_urls), base_urls)
    }
    targets: list[Any] = [
        given.get(cls, cls)
        for cls in classes
        if cls in given or cls.default_endpoint() is not None
    ]
    try:
        results = check(targets)
    finally:
        for client in given.values():
            client.close()
    return {
        type(target) if isinstance(target, Provider) else target: result.status
        for target, result in zip(targets, results)
    }


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"
