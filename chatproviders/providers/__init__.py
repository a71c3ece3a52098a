"""The provider clients, one module each."""

from __future__ import annotations

from .acytoo import Acytoo
from .codelinkava import CodeLinkAva
from .cromicle import Cromicle
from .gprochat import GPROChat
from .openai_compatible import OpenAICompatible

__all__ = [
    "PROVIDERS",
    "Acytoo",
    "CodeLinkAva",
    "Cromicle",
    "GPROChat",
    "OpenAICompatible",
]

#: The seed providers, by name: what the gpt4free-style facade chooses from.
#: OpenAICompatible is not among them: it needs a base_url and serves any model
#: name, so it cannot be picked by model; pass the class as ``provider=``.
PROVIDERS = (Acytoo, CodeLinkAva, Cromicle, GPROChat)
