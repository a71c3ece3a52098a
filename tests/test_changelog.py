"""CHANGELOG.rst: newest first, the unreleased part on top, the version in it."""

from __future__ import annotations

import re
from pathlib import Path

import chatproviders

CHANGELOG = Path(__file__).resolve().parent.parent / "CHANGELOG.rst"
KINDS = {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}


def sections(text: str, underline: str) -> list[str]:
    """The titles underlined with ``underline`` characters."""
    lines = text.splitlines()
    return [
        title
        for title, below in zip(lines, lines[1:])
        if title.strip() and re.fullmatch(re.escape(underline) + "{3,}", below)
    ]


def version(title: str) -> tuple[int, ...]:
    return tuple(int(part) for part in title.split()[0].split("."))


def test_versions_newest_first_with_the_unreleased_part_on_top() -> None:
    """The first section is Unreleased or __version__, then versions descending,
    __version__ among them; each change is filed under a known kind."""
    text = CHANGELOG.read_text(encoding="utf-8")
    titles = sections(text, "-")
    released = titles[1:] if titles[0] == "Unreleased" else titles
    assert all(re.match(r"\d+\.\d+\.\d+( |$)", title) for title in released)
    assert [version(t) for t in released] == sorted(
        (version(t) for t in released), reverse=True
    )
    assert chatproviders.__version__ in [title.split()[0] for title in released]
    assert set(sections(text, "~")) <= KINDS
