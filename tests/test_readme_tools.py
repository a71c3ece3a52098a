"""The code of README's "Tools, usage and reasoning" section runs, as written,
against the openai emulator (only the server's URL is replaced)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chatproviders.testing import serve
from tests.constants import README

URL = "http://localhost:11434/v1"


def section_code(title: str) -> list[str]:
    """The ``.. code-block:: python`` blocks of a README section, dedented."""
    lines = README.read_text("utf-8").splitlines()
    start = lines.index(title)
    end = next(
        (i for i in range(start + 2, len(lines) - 1) if set(lines[i + 1]) == {"-"}),
        len(lines),
    )
    blocks: list[str] = []
    body = iter(lines[start:end])
    for line in body:
        if line.strip() != ".. code-block:: python":
            continue
        code: list[str] = []
        for text in body:
            if text and not text.startswith("    "):
                break
            code.append(text[4:])
        blocks.append("\n".join(code).strip() + "\n")
    return blocks


def test_the_readme_tool_loop_and_events_run(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The tool loop asks, runs get_weather with the model's arguments, sends
    the tool message back and prints the answer; the events example then
    shows reasoning and the call as they arrive."""
    loop, events = section_code("Tools, usage and reasoning")
    assert loop.count(URL) == 1 and events.count(URL) == 1
    with serve("openai", models=["llama3.2"]) as server:
        server.queue_reply(
            tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}]
        )
        server.queue_reply(
            text="It is 18 degrees in Paris.", usage={"prompt_tokens": 30}
        )
        server.queue_reply(
            reasoning="Paris again.",
            tool_calls=[{"name": "get_weather", "arguments": '{"city": "Paris"}'}],
            tool_call_fragments=4,
        )
        namespace: dict[str, Any] = {}
        exec(compile(loop.replace(URL, server.url), "README loop", "exec"), namespace)
        assert capsys.readouterr().out == "It is 18 degrees in Paris.\n36 tokens\n"
        exec(
            compile(events.replace(URL, server.url), "README events", "exec"), namespace
        )
        printed = capsys.readouterr().out
        requests = [request.json for request in server.requests]
    assert printed.startswith("(Paris again.)[calling get_weather]\ntool_calls Usage(")
    assert [r["model"] for r in requests] == ["llama3.2", "llama3.2", "llama3.2"]
    answer = requests[1]["messages"]
    assert answer[1]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert answer[2] == {
        "role": "tool",
        "tool_call_id": "call_0",
        "content": json.dumps({"city": "Paris", "celsius": 18}),
    }
    assert all(r["tools"][0]["function"]["name"] == "get_weather" for r in requests)
