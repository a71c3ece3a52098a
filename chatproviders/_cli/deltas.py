"""What ``chatproviders chat`` shows besides the answer: the model's reasoning,
and the tool calls it asks for.

Reasoning goes to stdout, dimmed, when stdout is a terminal; otherwise to
stderr, so that a pipe gets the answer alone. Tool calls are printed to stdout
as JSON once the reply has ended.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import IO, Any

from .._streams.events import ToolCall

__all__ = ["ReasoningPrinter", "show_tool_calls"]

DIM, RESET = "\x1b[2m", "\x1b[0m"


class ReasoningPrinter:
    """Writes reasoning as it arrives, and a line break before the answer."""

    def __init__(self, out: IO[str]) -> None:
        self.terminal = out.isatty()
        self.out = out if self.terminal else sys.stderr
        self.open = False  # reasoning written, the answer not begun

    def reasoning(self, text: str) -> None:
        if self.terminal and not self.open:
            self.out.write(DIM)
        self.out.write(text)
        self.out.flush()
        self.open = True

    def end(self) -> None:
        """Close the reasoning (undim, a line break), once, before the answer."""
        if self.open:
            self.out.write(f"{RESET}\n\n" if self.terminal else "\n")
            self.out.flush()
            self.open = False


def show_tool_calls(calls: Sequence[ToolCall], out: IO[str]) -> None:
    """The calls as a JSON list; arguments that are JSON are shown decoded."""
    shown: list[dict[str, Any]] = []
    for call in calls:
        try:
            arguments: Any = json.loads(call.function.arguments)
        except ValueError:
            arguments = call.function.arguments
        shown.append(
            {"id": call.id, "name": call.function.name, "arguments": arguments}
        )
    out.write(json.dumps({"tool_calls": shown}, indent=2, ensure_ascii=False))
    out.write("\n")
    out.flush()
