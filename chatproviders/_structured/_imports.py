"""pydantic and jsonschema, imported on first use, with an error saying what to install.

Neither is imported by ``import chatproviders``: they weigh on every start-up
and most programs never parse. Both come with ``chatproviders[structured]``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["INSTALL", "require"]

INSTALL = "pip install 'chatproviders[structured]'"


def require(name: str, why: str) -> ModuleType:
    """The module ``name`` (``pydantic`` or ``jsonschema``), or an ImportError
    saying what needs it and how to install it.
    """
    try:
        module = importlib.import_module(name)
    except ImportError as exc:
        raise ImportError(
            f"{why} needs {name}, which is not installed: {INSTALL}", name=name
        ) from exc
    if name == "pydantic" and not getattr(module, "VERSION", "1").startswith("2"):
        raise ImportError(
            f"{why} needs pydantic 2, found {module.VERSION}: {INSTALL}", name=name
        )
    return module
