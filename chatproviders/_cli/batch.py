"""``chatproviders batch IN.jsonl -o OUT.jsonl``: every prompt of a file.

Each input line is a JSON object with ``prompt`` or ``messages``, and
optionally ``id``, ``model`` and call parameters; a ``.txt`` file is one
prompt a line; ``-`` reads JSONL from stdin. The file must be UTF-8 (a bad
byte is named by its line). Without ``-m``, an OpenAI-compatible server's
only model is used, or the command asks for ``-m`` listing the server's.

Each output line is the record of one finished item, written as it finishes
(the batch's checkpoint: running the same command again resumes); when the
batch ends the file is rewritten, one line per input in input order. ``-o -``
writes the records to stdout at the end instead, in input order, and keeps
no checkpoint. The progress bar shows only on a terminal (``--no-progress``:
never). Exit status 0 when every item succeeded, 1 when some failed (a
one-line summary on stderr, with the token totals when the server reports
them), 2 for a bad input line (named by its number), 130 for Ctrl-C (one
line: how many are done, and that the same command resumes).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .._batch import checkpoint as _checkpoint
from .._batch import inputs as _batch_inputs
from .._batch import run as _batch
from ..exceptions import ChatProvidersError, CheckpointError
from ..providers.openai_compatible import OpenAICompatible
from . import arguments
from .chat import add_client_arguments, choose_model, client_of
from .common import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, UsageError, say

__all__ = ["HELP", "NAME", "add_arguments", "run"]

NAME = "batch"
HELP = "send every prompt of a JSONL file"

STDIO = "-"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's arguments."""
    parser.add_argument(
        "input",
        metavar="IN",
        help="a JSONL file (one JSON object a line), a .txt file (one prompt a "
        "line), or - for JSONL on stdin",
    )
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT.jsonl",
        help="one record a finished item; the same file again resumes; "
        "- writes the records to stdout at the end",
    )
    parser.add_argument(
        "-p",
        "--provider",
        type=arguments.provider,
        required=True,
        metavar="NAME",
        help="a name from `chatproviders list`, or openai",
    )
    parser.add_argument(
        "-m",
        "--model",
        help="for lines that name none (default: the provider's, or the "
        "server's only model)",
    )
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
    parser.add_argument(
        "--no-progress",
        dest="progress",
        action="store_false",
        help="no progress bar (it shows only on a terminal anyway)",
    )
    add_client_arguments(parser)


def run(args: argparse.Namespace) -> int:
    inputs, numbers = _read(args.input)
    to_stdout = args.output == STDIO
    defaults = {"model": args.model} if args.model else {}
    with client_of(args) as client:
        unnamed = any(not _names_a_model(item) for item in inputs)
        if not args.model and isinstance(client, OpenAICompatible) and unnamed:
            defaults["model"] = choose_model(client, None)  # as chat does
        try:
            where = f"{args.input} line {{}}".format
            calls = _batch_inputs.make_calls(
                client, inputs, defaults, lambda index: where(numbers[index])
            )
        except ChatProvidersError as exc:
            raise UsageError(exc.message) from None
        try:
            options = _batch.RunOptions(
                concurrency=args.jobs,
                rate=args.rate,
                checkpoint=None if to_stdout else args.output,
                progress=None if args.progress else False,
            )
            result = _batch.run(client, calls, options)
        except KeyboardInterrupt as exc:
            partial = _batch.BatchResult(getattr(exc, "partial", ()))
            if to_stdout:
                _write_records(partial, calls, client)
                how = "-o - keeps no checkpoint: pass -o FILE to resume"
            else:
                how = "run the same command again to resume"
            say(
                f"chatproviders batch: {len(partial.succeeded)} of {len(calls)} "
                f"done; {how}"
            )
            return EXIT_INTERRUPTED
        except CheckpointError as exc:
            hint = "; -o - writes to stdout" if "regular file" in str(exc) else ""
            say(f"chatproviders batch: error: {exc}{hint}")
            return EXIT_ERROR
        except ValueError as exc:  # a checkpoint of other inputs or client
            raise UsageError(str(exc)) from None
        if to_stdout:
            _write_records(result, calls, client)
    failed = len(result.failed)
    usage = result.usage
    tokens = (
        ""
        if usage is None
        else f"{usage.total_tokens} tokens ({usage.prompt_tokens} prompt, "
        f"{usage.completion_tokens} completion); "
    )
    records = "on stdout" if to_stdout else f"in {args.output}"
    say(
        f"chatproviders batch: {len(result) - failed} of {len(result)} succeeded, "
        f"{failed} failed; {tokens}records {records}"
    )
    return EXIT_ERROR if failed else EXIT_OK


def _names_a_model(item: Any) -> bool:
    return isinstance(item, dict) and bool(item.get("model"))


def _write_records(
    items: _batch.BatchResult, calls: list[_batch_inputs.Call], client: Any
) -> None:
    """The items' records on stdout, in input order, as -o FILE would hold them."""
    described = _batch_inputs.describe_client(client)
    out = sys.stdout.buffer
    for item in items:
        record = item.record(calls[item.index].fingerprint, described)
        out.write(_checkpoint.encode(record))
    out.flush()


def _read(path: str) -> tuple[list[Any], list[int]]:
    """The inputs, and the line number of each (blank lines skipped): JSON
    objects, or for a ``.txt`` file one prompt a line.
    """
    text_lines = path.lower().endswith(".txt")
    try:
        if path == STDIO:
            data = sys.stdin.buffer.read()
        else:
            with open(path, "rb") as file:
                data = file.read()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    if data.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte order mark
        data = data[3:]
    inputs: list[Any] = []
    numbers: list[int] = []
    for number, raw in enumerate(data.split(b"\n"), 1):
        line = _decode(path, number, raw.rstrip(b"\r"))
        if not line.strip():
            continue
        inputs.append(line if text_lines else _parse(path, number, line))
        numbers.append(number)
    return inputs, numbers


def _decode(path: str, number: int, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        column = len(raw[: exc.start].decode("utf-8", "replace")) + 1
        raise UsageError(
            f"{path} line {number} is not UTF-8 text (byte "
            f"{raw[exc.start]:#04x} at column {column}): save the file as UTF-8"
        ) from None


def _parse(path: str, number: int, line: str) -> Any:
    try:
        item = json.loads(line)
    except ValueError as exc:
        raise UsageError(f"{path} line {number} is not JSON: {exc}") from None
    if not isinstance(item, dict):
        raise UsageError(
            f"{path} line {number} must be a JSON object with "
            f'"prompt" or "messages", got {type(item).__name__}'
        )
    return item
