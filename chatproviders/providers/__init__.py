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
