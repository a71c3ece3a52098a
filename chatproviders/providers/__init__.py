"""The provider clients, one module each."""

from __future__ import annotations

from .acytoo import Acytoo
from .codelinkava import CodeLinkAva
from .cromicle import Cromicle
from .gprochat import GPROChat

__all__ = ["PROVIDERS", "Acytoo", "CodeLinkAva", "Cromicle", "GPROChat"]

#: Every provider chatproviders ships, by name.
PROVIDERS = (Acytoo, CodeLinkAva, Cromicle, GPROChat)
