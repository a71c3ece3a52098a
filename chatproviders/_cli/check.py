"""``chatproviders check``: which providers answer right now, measured."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Optional, TextIO, Union

from .._constants import DEFAULT_CHECK_TIMEOUT
from .._health.check import CheckResult, check
from .._options import redact
from .._provider import Provider
from . import arguments
from .clients import make_client
from .common import EXIT_ERROR, EXIT_OK, UsageError

__all__ = [
    "HELP",
    "NAME",
    "add_arguments",
    "add_base_url_argument",
    "base_url_clients",
    "format_table",
    "run",
]

NAME = "check"
HELP = "measure which providers answer"

#: ANSI colours of the statuses on a terminal; the rest are red.
COLOURS = {"ok": "32", "timeout": "33", "rate_limited": "33"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's arguments."""
    parser.epilog = (
        "Without NAMES: the providers given with --base-url; with neither, "
        "every provider that has a default URL. Exit status 0 when at least "
        "one answered, 1 when none did."
    )
    parser.add_argument(
        "names",
        nargs="*",
        type=arguments.provider,
        metavar="NAME",
        help="providers to check, by name (see `chatproviders list`)",
    )
    add_base_url_argument(parser)
    parser.add_argument(
        "--timeout",
        type=arguments.seconds,
        default=DEFAULT_CHECK_TIMEOUT,
        metavar="S",
        help="the bound on each probe, all of it (default: %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="a JSON list of results")


def add_base_url_argument(parser: argparse.ArgumentParser) -> None:
    """``--base-url NAME=URL``, repeatable, into ``args.base_url``."""
    parser.add_argument(
        "--base-url",
        action="append",
        default=[],
        type=arguments.provider_and_url,
        metavar="NAME=URL",
        help="check NAME at URL instead of its default one (repeatable)",
    )


def base_url_clients(
    base_urls: list[tuple[type[Provider], str]],
) -> list[Provider]:
    """A client for each ``--base-url NAME=URL``."""
    return [_client(cls, url) for cls, url in base_urls]


def run(args: argparse.Namespace) -> int:
    """Probe, print a table or JSON, and exit 0 when any provider is ok."""
    targets = _targets(args.names, args.base_url)
    try:
        results = check(targets, timeout=args.timeout)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    finally:
        for target in targets or ():
            if isinstance(target, Provider):
                target.close()
    if args.json:
        json.dump([result.to_dict() for result in results], sys.stdout, indent=2)
        print()
    else:
        print(format_table(results, colour=_is_terminal(sys.stdout)))
    return EXIT_OK if any(result.ok for result in results) else EXIT_ERROR


def format_table(results: list[CheckResult], colour: bool = False) -> str:
    """An aligned table of ``results``; statuses coloured when ``colour``."""
    rows = [["provider", "status", "first chunk", "total", "url", "error"]]
    rows += [
        [
            result.provider,
            result.status,
            _seconds(result.ttft),
            _seconds(result.elapsed),
            result.url or "-",
            result.error or "",
        ]
        for result in results
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for number, row in enumerate(rows):
        cells = [cell.ljust(width) for cell, width in zip(row, widths)]
        if colour and number:
            code = COLOURS.get(row[1], "31")
            cells[1] = f"\x1b[{code}m{cells[1]}\x1b[0m"
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines)


def _targets(
    names: list[type[Provider]], base_urls: list[tuple[type[Provider], str]]
) -> Optional[list[Union[Provider, type[Provider]]]]:
    """Each named class, or its clients at the ``--base-url`` URLs given for it;
    then the other ``--base-url`` clients. None (every provider) without either.
    """
    if not names and not base_urls:
        return None
    targets: list[Union[Provider, type[Provider]]] = []
    placed: set[int] = set()
    for cls in names:
        mine = [i for i, (given, _) in enumerate(base_urls) if given is cls]
        if not mine:
            targets.append(cls)
        for index in mine:
            if index not in placed:
                targets.append(_client(*base_urls[index]))
                placed.add(index)
    targets += [_client(*pair) for i, pair in enumerate(base_urls) if i not in placed]
    return targets


def _client(cls: type[Provider], url: str) -> Provider:
    try:
        return make_client(cls, url)
    except UsageError as exc:
        raise UsageError(f"--base-url {cls.name()}={redact(url)}: {exc}") from None


def _seconds(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.2f} s"


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and not os.environ.get("NO_COLOR")
