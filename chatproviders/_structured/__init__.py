"""Structured outputs: replies read into a pydantic model, a type or a JSON Schema.

:func:`parse` and :func:`open_stream` are what ``Client.parse`` and
``Client.stream(schema=...)`` run; :mod:`._modes` says what each mode sends,
:mod:`._strict` makes a schema strict as the OpenAI SDK does, and
:mod:`._schema` validates. pydantic and jsonschema are imported on first use
only (see :mod:`._imports`).
"""

from __future__ import annotations

from ._parse import open_stream, parse
from ._response import ParsedResponse
from ._tools import parse_arguments, pydantic_function_tool

__all__ = [
    "ParsedResponse",
    "open_stream",
    "parse",
    "parse_arguments",
    "pydantic_function_tool",
]
