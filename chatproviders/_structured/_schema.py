"""What ``parse()`` is asked to produce: a pydantic model, a type, or a JSON Schema.

A :class:`Target` holds the three things every mode needs from the caller's
``schema``: its name, its JSON Schema (plain, and strict as OpenAI wants it)
and a validator that turns the reply's text into the value. A pydantic model
class is validated with ``model_validate_json`` (as the OpenAI SDK does), any
other type through pydantic's ``TypeAdapter``, and a ``dict`` is a JSON
Schema, checked first and then validated with ``jsonschema``.
"""

from __future__ import annotations

import functools
import json
import re
import typing
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import unquote

from ._imports import require
from ._strict import strict_schema

__all__ = ["SchemaMismatch", "Target"]

#: What OpenAI takes as a ``json_schema`` name.
_NAME = re.compile(r"[^a-zA-Z0-9_-]")


class SchemaMismatch(Exception):
    """A reply that is not valid JSON, or not valid against the schema."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class Target:
    """The caller's ``schema``, made ready: name, schemas, validation."""

    schema: Any = field(repr=False)
    name: str
    json_schema: dict[str, Any] = field(repr=False)
    _validate: Callable[[str], Any] = field(repr=False)
    _to_python: Callable[[Any], Any] = field(repr=False)
    _to_json: Callable[[Any], Any] = field(repr=False)

    @classmethod
    def of(cls, schema: Any, why: str = "parse()") -> Target:
        """The target for ``schema``; TypeError or ValueError for one that is
        not a model, a type or a valid JSON Schema (before any I/O).
        """
        if isinstance(schema, Target):
            return schema
        if isinstance(schema, dict):
            return cls._of_json_schema(schema, why)
        if not _is_type(schema):
            raise TypeError(
                "schema must be a pydantic model class, a type pydantic's "
                "TypeAdapter takes (a dataclass, a TypedDict, list[Model]) or a "
                f"JSON Schema dict, got {type(schema).__name__}"
            )
        require("pydantic", why)
        try:
            return _of_type(schema)
        except TypeError as exc:  # unhashable (an Annotated with a dict...)
            if "unhashable" not in str(exc):
                raise
            return cls._of_type(schema)

    @classmethod
    def _of_type(cls, schema: Any) -> Target:
        import pydantic

        if isinstance(schema, type) and issubclass(schema, pydantic.BaseModel):
            model: Any = schema
            try:
                json_schema = model.model_json_schema()
            except pydantic.PydanticUserError as exc:  # a Callable field...
                raise TypeError(f"schema {schema!r} cannot be used: {exc}") from None
            return cls(
                schema,
                schema.__name__,
                json_schema,
                model.model_validate_json,
                model.model_validate,
                lambda value: value.model_dump(mode="json"),
            )
        try:
            adapter = (
                schema
                if isinstance(schema, pydantic.TypeAdapter)
                else pydantic.TypeAdapter(schema)
            )
            json_schema = adapter.json_schema()
        except pydantic.PydanticUserError as exc:  # not a type it can describe
            raise TypeError(f"schema {schema!r} cannot be used: {exc}") from None
        name = getattr(schema, "__name__", None)
        if not isinstance(schema, type) or not name:
            name = json_schema.get("title") or "response"
        return cls(
            schema,
            _NAME.sub("_", str(name))[:64],
            json_schema,
            adapter.validate_json,
            adapter.validate_python,
            lambda value: adapter.dump_python(value, mode="json"),
        )

    @classmethod
    def _of_json_schema(cls, schema: dict[str, Any], why: str) -> Target:
        jsonschema = require("jsonschema", why)
        validator_class = jsonschema.validators.validator_for(schema)
        try:
            validator_class.check_schema(schema)
        except jsonschema.SchemaError as exc:
            where = "/".join(map(str, exc.path)) or "the top"
            raise ValueError(
                f"schema is not a valid JSON Schema ({where}): {exc.message}"
            ) from None
        _check_refs(schema, schema)
        validator = validator_class(schema)

        def validate_python(value: Any) -> Any:
            errors = [_describe(error) for error in validator.iter_errors(value)]
            if errors:
                raise SchemaMismatch(sorted(errors))
            return value

        def validate_json(text: str) -> Any:
            try:
                value = json.loads(text)
            except ValueError as exc:
                raise SchemaMismatch([f"not valid JSON: {exc}"]) from None
            return validate_python(value)

        title = schema.get("title")
        name = _NAME.sub("_", title)[:64] if isinstance(title, str) else ""
        return cls(
            schema,
            name or "response",
            schema,
            validate_json,
            validate_python,
            lambda value: value,
        )

    @property
    def strict_schema(self) -> dict[str, Any]:
        """The schema as OpenAI's strict mode wants it (see :mod:`._strict`)."""
        return strict_schema(self.json_schema)

    def validate(self, text: str) -> Any:
        """The value ``text`` holds; :class:`SchemaMismatch` listing why not."""
        pydantic = require("pydantic", "parse()") if self._is_pydantic else None
        try:
            return self._validate(text)
        except SchemaMismatch:
            raise
        except Exception as exc:
            if pydantic is not None and isinstance(exc, pydantic.ValidationError):
                raise SchemaMismatch(_pydantic_errors(exc)) from None
            raise

    def from_json(self, value: Any) -> Any:
        """A value read back as JSON (from a checkpoint) as the target's type."""
        try:
            return self._to_python(value)
        except Exception as exc:
            raise SchemaMismatch([str(exc)]) from None

    def to_json(self, value: Any) -> Any:
        """``value`` as plain JSON data (dicts, lists, str, numbers...)."""
        return self._to_json(value)

    @property
    def _is_pydantic(self) -> bool:
        return not isinstance(self.schema, dict)


@functools.lru_cache(maxsize=128)
def _of_type(schema: Any) -> Target:
    """A type's target, made once: a TypeAdapter is costly to build, and a
    batch needs the same one for every item."""
    return Target._of_type(schema)


def _is_type(schema: Any) -> bool:
    """A class, a generic alias (``list[Model]``), a typing construct, or a
    TypeAdapter: what pydantic's TypeAdapter is meant for.
    """
    if isinstance(schema, type) or typing.get_origin(schema) is not None:
        return True
    return type(schema).__name__ == "TypeAdapter" or type(schema).__module__ in (
        "typing",
        "typing_extensions",
    )


def _pydantic_errors(exc: Any) -> list[str]:
    errors = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error.get("loc", ())) or "the value"
        errors.append(f"{where}: {error.get('msg', 'invalid')}")
    return errors


def _describe(error: Any) -> str:
    where = "/".join(str(part) for part in error.absolute_path) or "the value"
    return f"{where}: {error.message}"


def _check_refs(node: Any, root: dict[str, Any]) -> None:
    """Every local ``$ref`` (``#/...``) must lead to a schema: found now,
    before a request is paid for, not when the reply is validated."""
    if isinstance(node, list):
        for item in node:
            _check_refs(item, root)
        return
    if not isinstance(node, dict):
        return
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        found: Any = root
        for part in ref[2:].split("/"):
            part = unquote(part).replace("~1", "/").replace("~0", "~")
            if isinstance(found, dict) and part in found:
                found = found[part]
            else:
                found = None
                break
        if not isinstance(found, (dict, bool)):
            raise ValueError(f"schema's $ref {ref!r} leads to no schema")
    for key, value in node.items():
        if key not in ("const", "enum", "default", "examples"):
            _check_refs(value, root)
