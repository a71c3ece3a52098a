"""The ``chatproviders`` command; ``main(argv)`` returns its exit status.

Run ``chatproviders --help`` (or ``python -m chatproviders --help``). The
commands live in the private package ``chatproviders._cli``.
"""

from __future__ import annotations

from ._cli import main

__all__ = ["main"]
