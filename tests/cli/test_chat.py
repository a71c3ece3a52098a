"""``chatproviders chat`` shows reasoning (dimmed, or on stderr when piped) and
the tool calls a model asks for, as JSON."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator

import pytest

from chatproviders.cli import main
from chatproviders.testing import EmulatorServer, serve

DIM, RESET = "\x1b[2m", "\x1b[0m"


class TerminalOut(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def server() -> Iterator[EmulatorServer]:
    with serve("openai", models=["tiny"], text="Four.", chunk_size=2) as started:
        yield started


@pytest.fixture(autouse=True)
def no_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    monkeypatch.delenv("CHATPROVIDERS_API_KEY", raising=False)


@pytest.mark.parametrize("stream", [[], ["--no-stream"]])
def test_reasoning_goes_to_stderr_when_stdout_is_a_pipe(
    server: EmulatorServer, capsys: pytest.CaptureFixture[str], stream: list[str]
) -> None:
    """Piped, stdout gets the answer alone and stderr the reasoning."""
    server.set_reply(text="Four.", chunk_size=2, reasoning="Two and two.")
    assert main(["chat", "--base-url", server.url, *stream, "2+2?"]) == 0
    out, err = capsys.readouterr()
    assert out == "Four.\n"
    assert err == "Two and two.\n"


def test_reasoning_is_dimmed_on_a_terminal(
    server: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a terminal the reasoning is streamed dimmed, then the answer after
    a blank line."""
    server.set_reply(text="Four.", chunk_size=2, reasoning="Two and two.")
    terminal = TerminalOut()
    monkeypatch.setattr(sys, "stdout", terminal)
    assert main(["chat", "--base-url", server.url, "2+2?"]) == 0
    shown = terminal.getvalue()
    assert shown.startswith(f"{DIM}Two and two.{RESET}\n\nFour.")
    assert shown.endswith("Four.\n")


@pytest.mark.parametrize("stream", [[], ["--no-stream"]])
def test_tool_calls_are_shown_as_json(
    server: EmulatorServer, capsys: pytest.CaptureFixture[str], stream: list[str]
) -> None:
    """A reply of tool calls prints them as JSON, arguments decoded."""
    server.set_reply(
        tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}],
        tool_call_fragments=3,
    )
    assert main(["chat", "--base-url", server.url, *stream, "Weather?"]) == 0
    out, _ = capsys.readouterr()
    assert json.loads(out) == {
        "tool_calls": [
            {"id": "call_0", "name": "get_weather", "arguments": {"city": "Paris"}}
        ]
    }
