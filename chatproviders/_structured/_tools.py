"""Tools described by pydantic models, and tool calls read back into them."""

from __future__ import annotations

from typing import Any, Optional

from ..exceptions import StructuredOutputError
from ._imports import require
from ._schema import SchemaMismatch, Target
from ._strict import strict_schema

__all__ = ["parse_arguments", "pydantic_function_tool"]


def pydantic_function_tool(
    model: Any, *, name: Optional[str] = None, description: Optional[str] = None
) -> dict[str, Any]:
    """The ``tools`` entry for a function whose arguments are ``model``.

    The same dict as ``openai.pydantic_function_tool(model)``: the name is
    the class's unless given, the description its docstring unless given,
    and the parameters its JSON Schema made strict (``"strict": true``).
    Read the call back with :meth:`ToolCall.parse_arguments
    <chatproviders.ToolCall.parse_arguments>`.
    """
    pydantic = require("pydantic", "pydantic_function_tool()")
    if not (isinstance(model, type) and issubclass(model, pydantic.BaseModel)):
        raise TypeError(f"model must be a pydantic model class, got {model!r}")
    model_class: Any = model
    if description is None:
        description = model.__doc__  # not getdoc(): no pydantic docstring
    function: dict[str, Any] = {
        "name": name or model.__name__,
        "strict": True,
        "parameters": strict_schema(model_class.model_json_schema()),
    }
    if description is not None:
        function["description"] = description
    return {"type": "function", "function": function}


def parse_arguments(call: Any, schema: Any) -> Any:
    """``call``'s arguments (a :class:`~chatproviders.ToolCall`) validated
    into ``schema``."""
    target = Target.of(schema, "ToolCall.parse_arguments()")
    try:
        return target.validate(call.function.arguments)
    except SchemaMismatch as mismatch:
        raise StructuredOutputError(
            f"the arguments of {call.function.name} ({call.id}) do not match "
            f"{target.name}: {'; '.join(mismatch.errors)}"[:500],
            text=call.function.arguments,
            errors=tuple(mismatch.errors),
        ) from None
