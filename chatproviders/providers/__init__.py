"""The provider clients, one module each.

A new built-in provider is a module here and its class in ``BUILT_IN``.
"""

from __future__ import annotations

from .._provider import Provider
from .acytoo import Acytoo
from .codelinkava import CodeLinkAva
from .cromicle import Cromicle
from .gprochat import GPROChat
from .openai_compatible import OpenAICompatible

__all__ = [
    "BUILT_IN",
    "SEEDS",
    "Acytoo",
    "CodeLinkAva",
    "Cromicle",
    "GPROChat",
    "OpenAICompatible",
]

#: What the registry starts with (see chatproviders.register_provider).
BUILT_IN: tuple[type[Provider], ...] = (
    Acytoo,
    CodeLinkAva,
    Cromicle,
    GPROChat,
    OpenAICompatible,
)

#: The four seed providers, whose public services are offline.
SEEDS: tuple[type[Provider], ...] = (Acytoo, CodeLinkAva, Cromicle, GPROChat)


def not_working_reason(cls: type[Provider]) -> str:
    """Why ``cls`` is marked not working: a seed's service is gone; of any
    other provider, all that is known is its flag."""
    if cls in SEEDS:
        return "its public service is offline"
    return f"{cls.name()} sets working = False"
