"""``chatproviders chat --responses``: the same output, sent to /v1/responses."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from chatproviders.cli import main
from chatproviders.testing import EmulatorServer, serve


@pytest.fixture
def server() -> Iterator[EmulatorServer]:
    with serve("openai", models=["tiny"], text="Four.", chunk_size=2) as started:
        yield started


@pytest.fixture(autouse=True)
def no_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    monkeypatch.delenv("CHATPROVIDERS_API_KEY", raising=False)


@pytest.mark.parametrize("stream", [[], ["--no-stream"]])
def test_text_and_reasoning_through_responses(
    server: EmulatorServer, capsys: pytest.CaptureFixture[str], stream: list[str]
) -> None:
    """The answer on stdout, reasoning on stderr, the request to /v1/responses."""
    server.set_reply(text="Four.", chunk_size=2, reasoning="Two and two.")
    argv = ["chat", "--responses", "--base-url", server.url, "--system", "Be terse"]
    assert main([*argv, *stream, "2+2?"]) == 0
    out, err = capsys.readouterr()
    assert (out, err) == ("Four.\n", "Two and two.\n")
    request = server.requests[-1]
    assert request.route == "/v1/responses"
    assert request.json["input"] == [
        {"role": "system", "content": "Be terse"},
        {"role": "user", "content": "2+2?"},
    ]
    assert request.json["stream"] is (not stream)


@pytest.mark.parametrize("stream", [[], ["--no-stream"]])
def test_tool_calls_shown_as_with_chat(
    server: EmulatorServer, capsys: pytest.CaptureFixture[str], stream: list[str]
) -> None:
    """Tool calls print as JSON, with the call_id as the id."""
    server.set_reply(
        tool_calls=[
            {"name": "get_weather", "arguments": {"city": "Paris"}, "id": "c9"}
        ],
        tool_call_fragments=3,
    )
    assert main(["chat", "--responses", "--base-url", server.url, *stream, "W?"]) == 0
    out, _ = capsys.readouterr()
    assert json.loads(out) == {
        "tool_calls": [
            {"id": "c9", "name": "get_weather", "arguments": {"city": "Paris"}}
        ]
    }


def test_responses_needs_an_openai_compatible_provider(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Another provider is a usage error naming the fix."""
    argv = ["chat", "--responses", "-p", "cromicle", "--base-url", "http://127.0.0.1:9"]
    assert main([*argv, "hi"]) == 2
    assert "--responses needs -p openai" in capsys.readouterr().err


def test_schema_with_responses_is_a_usage_error(
    server: EmulatorServer, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    """--schema parses through chat completions only: with --responses it is
    refused, not sent to /v1/chat/completions behind the user's back."""
    schema = tmp_path / "s.json"
    schema.write_text('{"type": "object"}')
    argv = ["chat", "--responses", "--base-url", server.url, "--schema", str(schema)]
    assert main([*argv, "hi"]) == 2
    assert "--schema" in capsys.readouterr().err
    assert server.requests == []
