"""A batch's progress: tqdm's bar (its ``auto`` flavour), or a callback.

Unasked (``progress=None``), the bar is drawn only where a person watches:
stderr is a terminal, or the code runs in a Jupyter kernel. Never into a
``2> log`` file or a CI log.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .items import BatchItem

__all__ = ["PROGRESS_DELAY", "Progress", "watched"]

#: How long a bar waits before showing itself when ``progress`` is None.
PROGRESS_DELAY = 2.0


class Progress:
    """The bar (tqdm's ``auto`` flavour) or the caller's callback."""

    def __init__(self, progress: Any, total: int, initial: int) -> None:
        self.callback = progress if callable(progress) else None
        self.failed = 0
        self.bar: Any = None
        if progress is True or (progress is None and watched()):
            try:
                tqdm = importlib.import_module("tqdm.auto").tqdm
            except ImportError:
                if progress:
                    raise ImportError(
                        "progress=True needs tqdm: "
                        "pip install 'chatproviders[progress]'"
                    ) from None
                return
            try:
                self.bar = tqdm(
                    total=total,
                    initial=initial,
                    unit="item",
                    desc="batch",
                    delay=0 if progress else PROGRESS_DELAY,
                    postfix={"failed": 0},
                )
            except (TypeError, KeyError):  # a tqdm before 4.60, without delay=
                if progress:
                    raise ImportError(
                        "progress=True needs tqdm 4.60 or later"
                    ) from None

    def __call__(self, item: BatchItem) -> None:
        if item.error is not None:
            self.failed += 1
        if self.bar is not None:
            if item.error is not None:
                self.bar.set_postfix(failed=self.failed, refresh=False)
            self.bar.update(1)
        if self.callback is not None:
            self.callback(item)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def watched() -> bool:
    """True when stderr is a terminal, or in a Jupyter kernel (where tqdm's
    ``auto`` flavour draws a widget); IPython is never imported here.
    """
    try:
        if sys.stderr is not None and sys.stderr.isatty():
            return True
    except (AttributeError, ValueError):  # replaced, or closed
        pass
    ipython = sys.modules.get("IPython")
    get_ipython = getattr(ipython, "get_ipython", None)
    shell = get_ipython() if callable(get_ipython) else None
    return getattr(shell, "kernel", None) is not None
