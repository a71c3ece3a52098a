"""Schemas for parse(): strict as the OpenAI SDK makes them, and what is refused."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Annotated, Any, Optional

import pytest

import chatproviders
from chatproviders._structured._modes import request
from chatproviders._structured._schema import SchemaMismatch, Target
from chatproviders._structured._strict import strict_schema
from tests.structured.models import SDK_MODELS, Customer, Line, Movie, Node, Person

HI = [{"role": "user", "content": "hi"}]
#: openai's SDK (in the [test] extra) supports Python 3.10 and later only.
needs_sdk = pytest.mark.skipif(
    sys.version_info < (3, 10), reason="openai's SDK needs Python 3.10+"
)


@needs_sdk
@pytest.mark.parametrize("model", SDK_MODELS, ids=lambda m: m.__name__)
def test_response_format_is_the_sdks(model: Any) -> None:
    """The json_schema request for a model is the SDK's, key order included."""
    from openai.lib._parsing._completions import type_to_response_format_param

    ours = request("json_schema", Target.of(model), HI, {})[1]["response_format"]
    theirs = type_to_response_format_param(model)
    assert ours == theirs
    assert json.dumps(ours) == json.dumps(theirs)


@pytest.mark.parametrize("model", SDK_MODELS[:-1], ids=lambda m: m.__name__)
@needs_sdk
def test_pydantic_function_tool_is_the_sdks(model: Any) -> None:
    """pydantic_function_tool builds the SDK's dict, for every model."""
    import openai

    ours = chatproviders.pydantic_function_tool(model)
    assert ours == openai.pydantic_function_tool(model)
    named = chatproviders.pydantic_function_tool(model, name="f", description="d")
    assert named == openai.pydantic_function_tool(model, name="f", description="d")


@needs_sdk
def test_strict_transform_on_hand_written_schemas() -> None:
    """The transform agrees with the SDK's on schemas pydantic never writes:
    definitions, a one-entry allOf, a $ref with siblings, null defaults."""
    import pydantic
    from openai.lib._pydantic import to_strict_json_schema

    schema = {
        "type": "object",
        "definitions": {
            "A": {"type": "object", "properties": {"x": {"type": "integer"}}}
        },
        "properties": {
            "a": {"$ref": "#/definitions/A", "description": "an A"},
            "b": {
                "allOf": [{"type": "object", "properties": {"y": {"type": "string"}}}]
            },
            "c": {"type": ["string", "null"], "default": None},
            "d": {"type": "array", "items": {"type": "object"}},
            "e": {"allOf": [{"type": "string"}, {"minLength": 1}]},
        },
    }
    original = json.dumps(schema)

    class Adapter(pydantic.TypeAdapter):  # type: ignore[type-arg]
        def json_schema(self, *args: Any, **kwargs: Any) -> Any:
            return json.loads(original)

    theirs = to_strict_json_schema(Adapter(int))
    assert strict_schema(schema) == theirs
    assert json.dumps(schema) == original  # the caller's dict is left alone


def test_types_beyond_the_sdks() -> None:
    """A TypedDict, a stdlib dataclass and list[Model] make schemas and validate."""
    movies = Target.of(list[Person])
    assert movies.json_schema["type"] == "array"
    assert movies.validate('[{"name": "A", "age": 1, "member": true}]') == [
        Person(name="A", age=1, member=True)
    ]
    assert Target.of(Movie).validate('{"title": "M", "year": 1999}') == {
        "title": "M",
        "year": 1999,
    }
    assert Target.of(Line).name == "Line"
    assert Target.of(Line) is Target.of(Line)  # made once: a batch reuses it
    unhashable = Annotated[int, {"note": "a dict in the metadata"}]
    assert Target.of(unhashable).validate("3") == 3
    assert Target.of(Line).validate('{"start": 1, "end": 2}') == Line(1, 2)


def test_json_schema_dict_is_checked_and_validated() -> None:
    """A dict is a JSON Schema: checked first, then validated with jsonschema."""
    schema = {
        "title": "My thing!",
        "type": "object",
        "required": ["n"],
        "properties": {"n": {"type": "integer"}},
    }
    target = Target.of(schema)
    assert target.name == "My_thing_"
    assert target.validate('{"n": 3}') == {"n": 3}
    with pytest.raises(SchemaMismatch) as caught:
        target.validate('{"n": "3"}')
    assert caught.value.errors == ["n: '3' is not of type 'integer'"]
    with pytest.raises(SchemaMismatch, match="not valid JSON"):
        target.validate("{n: 3}")
    with pytest.raises(ValueError, match=r"not a valid JSON Schema \(type\)"):
        Target.of({"type": "no such type"})


def test_pydantic_errors_name_the_field() -> None:
    """Validation errors are one line per problem, naming where."""
    with pytest.raises(SchemaMismatch) as caught:
        Target.of(Customer).validate('{"name": "A", "score": 11}')
    assert "score: Input should be less than or equal to 10" in caught.value.errors
    assert "home: Field required" in caught.value.errors


@pytest.mark.parametrize("bad", ["Person", 3, None, [Person]])
def test_what_is_not_a_schema(bad: Any) -> None:
    """A value that is no type and no dict is a TypeError naming what is taken."""
    with pytest.raises(TypeError, match="pydantic model class"):
        Target.of(bad)


def test_recursive_model_round_trips() -> None:
    """A model that refers to itself validates and dumps back."""
    target = Target.of(Node)
    value = target.validate('{"value": 1, "children": [{"value": 2}]}')
    assert target.to_json(value) == {
        "value": 1,
        "children": [{"value": 2, "children": []}],
    }
    assert target.from_json(target.to_json(value)) == value


def test_a_model_with_no_json_schema_is_refused_before_any_request() -> None:
    """A model pydantic can validate but not describe (a Callable field) is a
    TypeError naming the schema, not pydantic's error from deep inside."""
    import pydantic

    class Hook(pydantic.BaseModel):
        call: Optional[Callable[[], int]] = None

    with pytest.raises(TypeError, match=r"schema .*Hook.* cannot be used"):
        Target.of(Hook)


@pytest.mark.parametrize(
    "schema",
    [
        {"$ref": "#/$defs/missing"},
        {"$ref": "#/$defs/missing", "description": "a $ref with a sibling"},
        {"type": "object", "properties": {"a": {"$ref": "#/nowhere"}}},
        {"properties": {"a": {"$ref": "#/x", "title": "t"}}, "x": [1]},
    ],
)
def test_a_ref_that_leads_nowhere_is_refused_before_any_request(
    schema: dict[str, Any],
) -> None:
    """A local $ref that names nothing is a ValueError naming it, before the
    request is paid for, not jsonschema's error when the reply is validated."""
    with pytest.raises(ValueError, match=r"\$ref .*#/"):
        Target.of(schema)


def test_a_ref_in_percent_and_tilde_escapes_is_followed() -> None:
    """A $ref is a URI fragment: %20 and ~1 in it name a key with a space and
    a slash, and the schema is taken."""
    schema = {
        "type": "object",
        "properties": {
            "a": {"$ref": "#/$defs/a%20b"},
            "c": {"$ref": "#/$defs/c~1d"},
        },
        "$defs": {"a b": {"type": "string"}, "c/d": {"type": "integer"}},
    }
    assert Target.of(schema).validate('{"a": "x", "c": 1}') == {"a": "x", "c": 1}
    schema["properties"]["a"]["description"] = "a $ref with a sibling is inlined"
    strict = Target.of(schema).strict_schema
    assert strict["properties"]["a"]["type"] == "string"


def test_a_true_or_false_subschema_stays_as_it_is_when_made_strict() -> None:
    """``true`` is a valid JSON Schema (anything): strict mode leaves it to the
    server to accept or refuse, it does not crash on it."""
    schema = {"type": "object", "properties": {"a": True, "b": False}}
    strict = request("json_schema", Target.of(schema), HI, {})[1]
    sent = strict["response_format"]["json_schema"]["schema"]
    assert sent["properties"] == {"a": True, "b": False}
    assert sent["required"] == ["a", "b"]
