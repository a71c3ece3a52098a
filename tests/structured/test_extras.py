"""Structured outputs beyond parse(): batch, tools, the CLI, the emulator, the extra."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import pytest
from pydantic import BaseModel

import chatproviders
from chatproviders import (
    Function,
    OpenAICompatible,
    StructuredOutputError,
    ToolCall,
    batch,
    pydantic_function_tool,
)
from chatproviders.cli import main
from chatproviders.testing import EmulatorServer, instance_of, serve
from tests.structured.models import Customer, Node, Person

ANN = {"name": "Ann", "age": 31, "member": True}


@pytest.fixture
def server() -> Iterator[EmulatorServer]:
    with serve("openai") as server:
        yield server


# -- batch ------------------------------------------------------------------


def test_batch_parses_each_item_and_checkpoints_the_value(
    server: EmulatorServer, tmp_path: Path
) -> None:
    """Each item gets parsed; the checkpoint keeps it as JSON and a second
    run reads it back as the model, sending nothing."""
    rows = ["Ann, 31, member", "Bob, 40"]
    checkpoint = tmp_path / "people.jsonl"
    client = OpenAICompatible(server.url, model="gpt-4o-mini")
    server.queue_reply(text=json.dumps(ANN))
    server.queue_reply(refusal="No.")
    first = batch(client, rows, schema=Person, checkpoint=checkpoint, concurrency=1)
    assert first.parsed == [Person(**ANN), None]
    assert [item.ok for item in first] == [True, True]
    records = [json.loads(line) for line in checkpoint.read_text().splitlines()]
    assert [r["parsed"] for r in records] == [ANN, None]
    again = batch(client, rows, schema=Person, checkpoint=checkpoint)
    assert again.parsed == [Person(**ANN), None]
    assert isinstance(again[0].parsed, Person)
    assert len(server.requests) == 2


def test_batch_item_that_never_validates_fails_alone(server: EmulatorServer) -> None:
    """An item whose replies stay invalid fails with StructuredOutputError."""
    client = OpenAICompatible(server.url, model="gpt-4o-mini")
    server.queue_reply(text="no")
    server.queue_reply(text="still no")
    result = batch(client, ["a", "b"], schema=Person, concurrency=1)
    assert isinstance(result[0].error, StructuredOutputError)
    assert isinstance(result[1].parsed, Person)


def test_batch_refuses_a_bad_schema_before_sending(server: EmulatorServer) -> None:
    """schema=42 is a TypeError before any request."""
    client = OpenAICompatible(server.url, model="gpt-4o-mini")
    with pytest.raises(TypeError, match="schema must be"):
        batch(client, ["a"], schema=42)
    assert server.requests == []


def test_checkpoint_of_a_batch_without_schema_is_sent_again(
    server: EmulatorServer, tmp_path: Path
) -> None:
    """Records without a parsed value are not trusted for a schema batch."""
    client = OpenAICompatible(server.url, model="gpt-4o-mini")
    checkpoint = tmp_path / "c.jsonl"
    batch(client, ["a"], checkpoint=checkpoint)
    result = batch(client, ["a"], schema=Person, checkpoint=checkpoint)
    assert isinstance(result[0].parsed, Person)
    assert len(server.requests) == 2


class Name(BaseModel):
    """Only a name: every Person value fits it."""

    name: str


def test_checkpoint_of_a_batch_with_another_schema_is_sent_again(
    server: EmulatorServer, tmp_path: Path
) -> None:
    """A value parsed for another schema is not this schema's answer, even
    when it happens to validate: the model was asked for something else."""
    client = OpenAICompatible(server.url, model="gpt-4o-mini")
    checkpoint = tmp_path / "c.jsonl"
    server.queue_reply(text=json.dumps(ANN))
    batch(client, ["Ann, 31"], schema=Person, checkpoint=checkpoint)
    server.queue_reply(text=json.dumps({"name": "Ann Smith"}))
    result = batch(client, ["Ann, 31"], schema=Name, checkpoint=checkpoint)
    assert result.parsed == [Name(name="Ann Smith")]
    assert len(server.requests) == 2
    again = batch(client, ["Ann, 31"], schema=Name, checkpoint=checkpoint)
    assert again.parsed == [Name(name="Ann Smith")]
    assert len(server.requests) == 2


def test_checkpoint_of_a_batch_with_a_schema_is_sent_again_without_one(
    server: EmulatorServer, tmp_path: Path
) -> None:
    """A reply asked for in a schema's shape is not the answer to the plain
    prompt: a batch without the schema asks again."""
    client = OpenAICompatible(server.url, model="gpt-4o-mini")
    checkpoint = tmp_path / "c.jsonl"
    server.queue_reply(text=json.dumps(ANN))
    batch(client, ["Ann, 31"], schema=Person, checkpoint=checkpoint)
    server.queue_reply(text="Ann is 31.")
    result = batch(client, ["Ann, 31"], checkpoint=checkpoint)
    assert result.texts == ["Ann is 31."]
    assert len(server.requests) == 2


# -- tools ------------------------------------------------------------------


class GetWeather(BaseModel):
    """Get the weather in a city."""

    city: str
    unit: Optional[str] = None


def test_tool_call_round_trip(server: EmulatorServer) -> None:
    """A pydantic tool goes out strict; its call's arguments parse back."""
    server.queue_reply(
        tool_calls=[{"name": "GetWeather", "arguments": {"city": "Oslo", "unit": None}}]
    )
    with OpenAICompatible(server.url, model="gpt-4o-mini") as client:
        reply = client.complete(
            [{"role": "user", "content": "Weather?"}],
            tools=[pydantic_function_tool(GetWeather)],
        )
    sent = server.requests[0].json["tools"][0]["function"]
    assert (
        sent["strict"] is True and sent["description"] == "Get the weather in a city."
    )
    assert reply.tool_calls[0].parse_arguments(GetWeather) == GetWeather(city="Oslo")


def test_parse_arguments_errors_and_dict_schemas() -> None:
    """Bad arguments raise naming the call; a dict schema validates too."""
    call = ToolCall("call_1", Function("GetWeather", '{"unit": "C"}'))
    with pytest.raises(
        StructuredOutputError, match=r"GetWeather .call_1.*city: Field required"
    ):
        call.parse_arguments(GetWeather)
    schema = {"type": "object", "properties": {"unit": {"enum": ["C", "F"]}}}
    assert call.parse_arguments(schema) == {"unit": "C"}


def test_pydantic_function_tool_refuses_what_is_no_model() -> None:
    """Only a pydantic model class describes a tool."""
    with pytest.raises(TypeError, match="pydantic model class"):
        pydantic_function_tool(dict)  # type: ignore[arg-type]


# -- the command line -------------------------------------------------------


class Pipe(io.StringIO):
    def isatty(self) -> bool:
        return False


@pytest.fixture(autouse=True)
def empty_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command line sees an empty pipe on stdin."""
    monkeypatch.setattr(sys, "stdin", Pipe(""))


def test_chat_schema_prints_the_validated_json(
    server: EmulatorServer, tmp_path: Path, capsys: Any
) -> None:
    """chat --schema FILE.json prints the reply's JSON, indented."""
    schema_file = tmp_path / "person.json"
    schema_file.write_text(json.dumps(Person.model_json_schema()))
    server.queue_reply(text=f"```json\n{json.dumps(ANN)}\n```")
    argv = ["chat", "--base-url", server.url, "-m", "gpt-4o-mini"]
    status = main([*argv, "--schema", str(schema_file), "Ann is 31"])
    assert server.requests[0].json["response_format"]["type"] == "json_schema"
    out, err = capsys.readouterr()
    assert (status, err) == (0, "")
    assert json.loads(out) == ANN and out.startswith('{\n  "name": "Ann"')


def test_chat_schema_errors(
    server: EmulatorServer, tmp_path: Path, capsys: Any
) -> None:
    """A missing file, a file that is no schema, and replies that never fit."""
    argv = ["chat", "--base-url", server.url, "-m", "gpt-4o-mini", "--schema"]
    assert main([*argv, str(tmp_path / "none.json"), "x"]) == 2
    (tmp_path / "list.json").write_text("[1]")
    assert main([*argv, str(tmp_path / "list.json"), "x"]) == 2
    schema = tmp_path / "s.json"
    schema.write_text('{"type": "object", "required": ["n"]}')
    server.queue_reply(text="{}")
    server.queue_reply(text="{}")
    assert main([*argv, str(schema), "x"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert "No such file" in err[0]
    assert "must hold a JSON object" in err[1]
    assert (
        "does not match the schema response: the value: 'n' is a required property"
        in err[2]
    )


# -- the emulator's JSON ----------------------------------------------------


def test_instance_of_is_valid_and_deterministic() -> None:
    """instance_of builds a valid value for nested, recursive, enum schemas."""
    for model in (Customer, Node, Person):
        schema = model.model_json_schema()
        value = instance_of(schema)
        model.model_validate(value)
        assert instance_of(schema) == value
    jsonschema = pytest.importorskip("jsonschema")
    schema = {
        "type": "object",
        "properties": {
            "when": {"type": "string", "format": "date-time"},
            "code": {"type": "string", "minLength": 6, "maxLength": 8},
            "n": {"type": "integer", "exclusiveMinimum": 3, "maximum": 9},
            "x": {"type": "number", "minimum": -2.5},
            "pair": {"type": "array", "prefixItems": [{"const": 1}, {"type": "null"}]},
            "many": {"type": "array", "items": {"type": "boolean"}, "minItems": 2},
            "either": {"oneOf": [{"type": "null"}, {"type": "string"}]},
        },
    }
    value = instance_of(schema)
    jsonschema.validate(value, schema)
    assert value["n"] == 4 and value["x"] == -2.5 and value["many"] == [True, True]


def test_set_text_is_sent_as_it_is(server: EmulatorServer) -> None:
    """A reply whose text was set is not replaced by the schema's JSON."""
    server.set_reply(text="plain words")
    with OpenAICompatible(server.url, model="gpt-4o-mini") as client:
        with pytest.raises(StructuredOutputError):
            client.parse(
                [{"role": "user", "content": "x"}], Person, max_parse_retries=0
            )


# -- the optional extra -----------------------------------------------------


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )


BLOCK = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("pydantic", "jsonschema"):
            raise ImportError(f"no {name} here")
sys.meta_path.insert(0, Block())
"""


@pytest.mark.slow
def test_missing_extra_names_the_install_command() -> None:
    """Without pydantic or jsonschema, parse() says what to install; the rest works."""
    code = (
        BLOCK
        + """
import chatproviders
from chatproviders.testing import serve
from dataclasses import dataclass
@dataclass
class P:
    n: int
with serve("openai") as server:
    client = chatproviders.OpenAICompatible(server.url, model="gpt-4o-mini")
    print(client.complete([{"role": "user", "content": "hi"}]).text[:5])
    for schema in (P, {"type": "object"}):
        try:
            client.parse([{"role": "user", "content": "hi"}], schema)
        except ImportError as exc:
            print(exc)
    print(len(server.requests))
"""
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    hello, no_pydantic, no_jsonschema, sent = result.stdout.splitlines()
    assert hello == "Hello"
    install = "pip install 'chatproviders[structured]'"
    assert no_pydantic == f"parse() needs pydantic, which is not installed: {install}"
    assert (
        no_jsonschema == f"parse() needs jsonschema, which is not installed: {install}"
    )
    assert sent == "1"


@pytest.mark.slow
def test_import_loads_neither_pydantic_nor_jsonschema() -> None:
    """import chatproviders (and its testing package) leaves both unimported."""
    code = "import sys, chatproviders, chatproviders.testing\n"
    code += "print(sorted(m for m in sys.modules if m.split('.')[0] in "
    code += "('pydantic', 'jsonschema', 'openai')))"
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_public_names_are_exported() -> None:
    """The new public names resolve from the package and have docstrings."""
    for name in (
        "ParsedResponse",
        "StructuredOutputError",
        "pydantic_function_tool",
        "RefusalDelta",
    ):
        assert name in chatproviders.__all__
        assert getattr(chatproviders, name).__doc__
