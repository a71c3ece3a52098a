"""A reply growing in place in a Jupyter cell.

>>> from chatproviders.notebook import display_stream
>>> with client.stream(messages) as stream:           # doctest: +SKIP
...     text = display_stream(stream)

In a Jupyter kernel (anything IPython runs with a ``kernel``: JupyterLab,
Notebook, VS Code, Colab), the text is shown in one output area that
``IPython.display`` updates as chunks arrive, rendered as Markdown, or as plain
text with ``markdown=False``. Anywhere else (plain Python, terminal IPython,
no IPython installed) the chunks are printed as they come. IPython is never a
dependency: it is imported only when this function runs.
"""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Iterable
from typing import Any, Callable, Optional, TextIO

from ._numbers import check_seconds

__all__ = ["display_stream"]

#: The least time between two updates of the output area, in seconds.
UPDATE_INTERVAL = 0.05


def display_stream(
    chunks: Iterable[str],
    *,
    markdown: bool = True,
    interval: float = UPDATE_INTERVAL,
    file: Optional[TextIO] = None,
) -> str:
    """Show ``chunks`` (a :class:`~chatproviders.ChatStream`, a background
    stream, any iterable of ``str``) as they arrive; return the whole text.

    In a kernel the output area is updated at most every ``interval`` seconds,
    and once more at the end, so a fast stream cannot flood the browser.
    Elsewhere each chunk is written to ``file`` (default: ``sys.stdout``).
    The stream is closed on return, and on an error or an interrupt.
    """
    if isinstance(chunks, (str, bytes)):
        raise TypeError("chunks must be an iterable of str chunks, not a string")
    check_seconds(interval, "interval", zero=True)
    try:
        show = _kernel_display(markdown)
        if show is None:
            return _print_chunks(chunks, file or sys.stdout)
        return _update_in_place(chunks, show, interval)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


def _kernel_display(markdown: bool) -> Optional[Callable[..., Any]]:
    """``show(text, handle=None)`` when a Jupyter kernel runs this, else None."""
    try:  # imported by name: IPython is optional, and may lack type hints
        ipython = importlib.import_module("IPython")
        ipython_display = importlib.import_module("IPython.display")
    except ImportError:
        return None
    shell = ipython.get_ipython()
    if shell is None or getattr(shell, "kernel", None) is None:
        return None

    def show(text: str, handle: Any = None) -> Any:
        """Display ``text`` in a new output area, or in ``handle``'s."""
        shown = ipython_display.Markdown(text) if markdown else {"text/plain": text}
        if handle is None:
            return ipython_display.display(shown, raw=not markdown, display_id=True)
        handle.update(shown, raw=not markdown)
        return handle

    return show


def _update_in_place(
    chunks: Iterable[str], show: Callable[..., Any], interval: float
) -> str:
    parts: list[str] = []
    handle = show("")
    # When, and how many parts, last shown: the first chunk shows at once, so
    # that the reply's start is not held back through a pause that follows it.
    shown_at, shown = float("-inf"), 0
    try:
        for chunk in chunks:
            parts.append(chunk)
            if time.monotonic() - shown_at >= interval:
                show("".join(parts), handle)
                shown_at, shown = time.monotonic(), len(parts)
    finally:  # the end, or whatever arrived before an error or an interrupt
        if shown != len(parts):
            show("".join(parts), handle)
    return "".join(parts)


def _print_chunks(chunks: Iterable[str], file: TextIO) -> str:
    parts: list[str] = []
    for chunk in chunks:
        parts.append(chunk)
        file.write(chunk)
        file.flush()
    file.write("\n")
    file.flush()
    return "".join(parts)
