"""A JSON Schema made strict, exactly as the OpenAI SDK makes it for ``parse()``.

OpenAI's strict ``json_schema`` mode wants every object closed
(``additionalProperties: false``) and every property required (an optional
field stays optional through its ``null`` variant). :func:`strict_schema`
applies the same transform as ``openai.lib._pydantic.to_strict_json_schema``,
step for step, so the request body is the same as the SDK's for the same
model: close objects that do not say otherwise, require every property,
recurse into ``$defs``, ``definitions``, ``items``, ``anyOf`` and ``allOf``
(a single ``allOf`` entry is merged in), drop ``"default": null``, and
inline a ``$ref`` that has sibling keys. It works on a copy; nothing here
imports pydantic.
"""

from __future__ import annotations

import copy
from typing import Any
from urllib.parse import unquote

__all__ = ["strict_schema"]


def strict_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A strict copy of ``schema`` (the caller's dict is left as it was)."""
    root = copy.deepcopy(schema)
    strict: dict[str, Any] = _strict(root, path=(), root=root)
    return strict


def _strict(node: object, *, path: tuple[str, ...], root: dict[str, Any]) -> Any:
    if isinstance(node, bool):  # true/false: a schema with nothing to close
        return node
    if not isinstance(node, dict):
        raise TypeError(f"Expected {node} to be a dictionary; path={path}")
    for key in ("$defs", "definitions"):
        defs = node.get(key)
        if isinstance(defs, dict):
            for name, definition in defs.items():
                _strict(definition, path=(*path, key, name), root=root)
    if node.get("type") == "object" and "additionalProperties" not in node:
        node["additionalProperties"] = False
    properties = node.get("properties")
    if isinstance(properties, dict):
        node["required"] = list(properties)
        node["properties"] = {
            key: _strict(value, path=(*path, "properties", key), root=root)
            for key, value in properties.items()
        }
    items = node.get("items")
    if isinstance(items, dict):
        node["items"] = _strict(items, path=(*path, "items"), root=root)
    any_of = node.get("anyOf")
    if isinstance(any_of, list):
        node["anyOf"] = [
            _strict(variant, path=(*path, "anyOf", str(i)), root=root)
            for i, variant in enumerate(any_of)
        ]
    all_of = node.get("allOf")
    if isinstance(all_of, list):
        if len(all_of) == 1:
            node.update(_strict(all_of[0], path=(*path, "allOf", "0"), root=root))
            node.pop("allOf")
        else:
            node["allOf"] = [
                _strict(entry, path=(*path, "allOf", str(i)), root=root)
                for i, entry in enumerate(all_of)
            ]
    if "default" in node and node["default"] is None:
        node.pop("default")
    ref = node.get("$ref")
    if ref and len(node) > 1:  # a $ref with siblings: inline what it names
        if not isinstance(ref, str):
            raise TypeError(f"Received non-string $ref - {ref}")
        resolved = _resolve(root, ref)
        node.update({**resolved, **node})
        node.pop("$ref")
        return _strict(node, path=path, root=root)
    return node


def _resolve(root: dict[str, Any], ref: str) -> dict[str, Any]:
    if not ref.startswith("#/"):
        raise ValueError(f"Unexpected $ref format {ref!r}; Does not start with #/")
    resolved: Any = root
    for key in ref[2:].split("/"):  # a URI fragment: %XX, then ~1 and ~0
        resolved = resolved.get(unquote(key).replace("~1", "/").replace("~0", "~"))
        if not isinstance(resolved, dict):
            raise ValueError(f"Expected `$ref: {ref}` to resolve to a dictionary")
    return dict(resolved)
