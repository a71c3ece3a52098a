"""``chatproviders batch IN.jsonl -o OUT.jsonl``: every prompt of a file.

Each input line is a JSON object with ``prompt`` or ``messages``, and
optionally ``id``, ``model`` and call parameters. Each output line is the
record of one finished item, written as it finishes (the batch's
checkpoint); running the same command again resumes. Exit status 0 when every
item succeeded, 1 when some failed (a one-line summary on stderr), 2 for a
bad input line (named by its number).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from .._batch import inputs as _batch_inputs
from .._batch import run as _batch
from ..exceptions import ChatProvidersError
from . import arguments
from .chat import add_client_arguments, client_of
from .common import EXIT_ERROR, EXIT_OK, UsageError, say

__all__ = ["HELP", "NAME", "add_arguments", "run"]

NAME = "batch"
HELP = "send every prompt of a JSONL file"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's arguments."""
    parser.add_argument("input", metavar="IN.jsonl", help="one JSON object a line")
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT.jsonl",
        help="one record a finished item; the same file again resumes",
    )
    parser.add_argument(
        "-p",
        "--provider",
        type=arguments.provider,
        required=True,
        metavar="NAME",
        help="a name from `chatproviders list`, or openai",
    )
    parser.add_argument("-m", "--model", help="for lines that name none")
    parser.add_argument(
        "-j",
        "--jobs",
        type=arguments.positive,
        default=4,
        metavar="N",
        help="in flight",
    )
    parser.add_argument(
        "--rate",
        type=arguments.rate,
        metavar="R",
        help="at most R requests start a second",
    )
    add_client_arguments(parser)


def run(args: argparse.Namespace) -> int:
    inputs, numbers = _read(args.input)
    defaults = {"model": args.model} if args.model else {}
    with client_of(args) as client:
        try:
            where = f"{args.input} line {{}}".format
            calls = _batch_inputs.make_calls(
                client, inputs, defaults, lambda index: where(numbers[index])
            )
        except ChatProvidersError as exc:
            raise UsageError(exc.message) from None
        try:
            options = _batch.RunOptions(
                concurrency=args.jobs, rate=args.rate, checkpoint=args.output
            )
            result = _batch.run(client, calls, options)
        except ValueError as exc:  # a checkpoint of other inputs
            raise UsageError(str(exc)) from None
    failed = len(result.failed)
    say(
        f"chatproviders batch: {len(result) - failed} of {len(result)} succeeded, "
        f"{failed} failed; records in {args.output}"
    )
    return EXIT_ERROR if failed else EXIT_OK


def _read(path: str) -> tuple[list[Any], list[int]]:
    """The input objects, and the line number of each (blank lines skipped)."""
    inputs: list[Any] = []
    numbers: list[int] = []
    try:
        with open(path, encoding="utf-8") as file:
            for number, line in enumerate(file, 1):
                if not line.strip():
                    continue
                try:
                    item = json.loads(line)
                except ValueError as exc:
                    raise UsageError(
                        f"{path} line {number} is not JSON: {exc}"
                    ) from None
                if not isinstance(item, dict):
                    raise UsageError(
                        f"{path} line {number} must be a JSON object with "
                        f'"prompt" or "messages", got {type(item).__name__}'
                    )
                inputs.append(item)
                numbers.append(number)
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    return inputs, numbers
