"""``chatproviders chat --schema FILE.json``: a reply checked against a JSON Schema."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .._messages import Messages
from .._provider import Provider
from .common import EXIT_ERROR, EXIT_OK, UsageError, say

__all__ = ["load_schema", "print_parsed"]


def load_schema(path: str) -> dict[str, Any]:
    """The JSON Schema in the file at ``path``; a usage error naming what is wrong."""
    try:
        with open(path, "rb") as file:
            schema = json.loads(file.read().decode("utf-8-sig"))
    except OSError as exc:
        raise UsageError(f"--schema {path}: {exc.strerror or exc}") from None
    except ValueError as exc:  # not UTF-8, or not JSON
        raise UsageError(f"--schema {path} is not a JSON file: {exc}") from None
    if not isinstance(schema, dict):
        raise UsageError(f"--schema {path} must hold a JSON object, a JSON Schema")
    return schema


def print_parsed(
    client: Provider, messages: Messages, model: str, args: argparse.Namespace
) -> int:
    """Ask for the schema's JSON, then print it validated, indented, on stdout."""
    schema = load_schema(args.schema)
    try:
        parsed = client.parse(messages, schema, model=model)
    except ImportError as exc:  # the structured extra is not installed
        say(f"chatproviders: error: {exc}")
        return EXIT_ERROR
    except ValueError as exc:  # the file holds no valid JSON Schema
        raise UsageError(f"--schema {args.schema}: {exc}") from None
    if parsed.refusal is not None:
        say(f"chatproviders: the model refused: {parsed.refusal}")
        return EXIT_ERROR
    sys.stdout.write(json.dumps(parsed.parsed, indent=2, ensure_ascii=False) + "\n")
    return EXIT_OK
