"""Link the private paths of public names to their documented entries.

Autodoc writes a type hint as the class's ``__module__`` path, such as
``chatproviders._streaming.ChatStream``, while the reference documents it where
users import it from, ``chatproviders.ChatStream``. A reference that does not
resolve, such as one to a private module's path, is resolved to the public
module whose ``__all__`` names it; any other stays an error under ``-n``.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any, Optional

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment

#: The public modules, most specific last: a name is looked up in each.
PUBLIC = (
    "chatproviders",
    "chatproviders.exceptions",
    "chatproviders.decoders",
    "chatproviders.testing",
)


def _public_targets(target: str) -> list[str]:
    """``chatproviders._x.Name.attr`` -> the public paths that may hold it.

    The longest importable module prefix of ``target`` is cut off, and the
    rest looked up in the ``__all__`` of each public module but that one.
    """
    parts = target.split(".")
    if parts[0] != "chatproviders":  # a bare name, as in :class:`Reply`
        return [f"{public}.{target}" for public in PUBLIC if _exports(public, parts[0])]
    for cut in range(len(parts) - 1, 0, -1):
        module = ".".join(parts[:cut])
        try:
            importlib.import_module(module)
        except ImportError:
            continue
        break
    else:
        return []
    rest = parts[cut:]
    found = []
    for public in PUBLIC:
        if public == module:
            continue
        if _exports(public, rest[0]):
            found.append(".".join([public, *rest]))
    return found


def _exports(module: str, name: str) -> bool:
    return name in getattr(importlib.import_module(module), "__all__", ())


def _is_public(cls: type) -> bool:
    return any(
        _exports(module, cls.__name__)
        and getattr(importlib.import_module(module), cls.__name__) is cls
        for module in PUBLIC
    )


def drop_private_bases(
    app: Sphinx, name: str, obj: object, options: Any, bases: list[Any]
) -> None:
    """Show only the bases a reader can look up: ours when public, and others'."""
    bases[:] = [
        base
        for base in bases
        if not (
            isinstance(base, type)
            and base.__module__.startswith("chatproviders")
            and not _is_public(base)
        )
    ]


def resolve_private(
    app: Sphinx, env: BuildEnvironment, node: Any, contnode: nodes.Element
) -> nodes.Element | None:
    if node.get("refdomain") != "py":
        return None
    domain = env.get_domain("py")
    for target in _public_targets(node["reftarget"]):
        node["reftarget"] = target
        found = domain.resolve_xref(
            env, node["refdoc"], app.builder, node["reftype"], target, node, contnode
        )
        if found is not None:
            return found
    return None


def constructor_signature(
    app: Sphinx,
    what: str,
    name: str,
    obj: object,
    options: Any,
    signature: Optional[str],
    return_annotation: Optional[str],
) -> Optional[tuple[str, Optional[str]]]:
    """A class whose ``__new__`` takes ``(*args, **kwargs)`` (the clients', to
    track their instances) is shown with its ``__init__``'s parameters, as
    ``inspect.signature`` shows it, rather than ``(*args, **kwargs)``."""
    if what not in ("class", "exception") or signature != "(*args, **kwargs)":
        return None
    try:
        found = inspect.signature(obj)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    params = found.parameters.values()
    bare = [param.replace(annotation=param.empty) for param in params]
    plain = found.replace(parameters=bare, return_annotation=inspect.Signature.empty)
    return str(plain), return_annotation


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("missing-reference", resolve_private)
    app.connect("autodoc-process-bases", drop_private_bases)
    app.connect("autodoc-process-signature", constructor_signature)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
