"""Every Python example of the site (``docs/``) and of README.rst runs in
pytest, in page order, by Sybil.

The rules, for whoever writes a page:

1. Each ``.. code-block:: python`` block is executed, in the order of the page,
   in one namespace per page that starts empty: a page imports what it uses and
   starts its own emulator, visibly (``server = serve("cromicle")``), and stops
   it at its end. Blocks of other languages (``console``, ``ini``) are shown,
   not run.
2. Setup a reader need not see goes in ``.. invisible-code-block: python``.
3. A block that cannot run here is preceded by ``.. skip: next`` *and* a
   visible ``.. note::`` saying why (a Ray cluster, a GPU...).
4. Top-level ``await``, ``async with`` and ``async for`` run in an event loop,
   as they do in a notebook or ``python -m asyncio``; the page says so.
5. A block whose first line is a comment naming a Python file
   (``# echo_provider.py``) is also written to a folder on ``sys.path``, so a
   later block can import it.
6. After the page, what it left open is closed (emulators, clients, streams),
   the modules of rule 5 are forgotten and providers it registered removed;
   relying on that is no excuse for a page not to close its own things.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from sybil import Example, Sybil
from sybil.evaluators.python import pad
from sybil.parsers.rest import CodeBlockParser, SkipParser

#: The first line of a block that is also a file (rule 5).
FILE = re.compile(r"#\s*(?P<name>[A-Za-z_]\w*)\.py\s*$")


def run_python(example: Example) -> None:
    """Run one block in its page's namespace; await it when it awaits."""
    __tracebackhide__ = True
    first_line = str(example.parsed).lstrip().partition("\n")[0]
    match = FILE.match(first_line)
    if match:
        folder = Path(example.namespace["__docs_folder__"])
        (folder / f"{match.group('name')}.py").write_text(
            str(example.parsed), encoding="utf-8"
        )
    source = pad(str(example.parsed), example.line + example.parsed.line_offset)
    code = compile(
        source,
        str(example.path),
        "exec",
        flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT,
        dont_inherit=True,
    )
    result = eval(code, example.namespace)  # a coroutine when the block awaits
    if inspect.iscoroutine(result):
        asyncio.run(result)
    example.namespace.pop("__builtins__", None)


def setup(namespace: dict[str, Any]) -> None:
    """A folder on sys.path for the page's files; the registry remembered."""
    from chatproviders import _registry

    folder = tempfile.mkdtemp(prefix="chatproviders-docs-")
    sys.path.insert(0, folder)
    namespace["__docs_folder__"] = folder
    namespace["__docs_registry__"] = dict(_registry._registered)


def teardown(namespace: dict[str, Any]) -> None:
    """Close what the page left open; forget its files and registrations."""
    from chatproviders import _registry
    from chatproviders.testing import EmulatorServer

    folder = namespace.pop("__docs_folder__")
    registered = namespace.pop("__docs_registry__")
    for value in list(namespace.values()):
        module = type(value).__module__ or ""
        if isinstance(value, EmulatorServer):
            value.stop()
        elif module.startswith("chatproviders") and hasattr(value, "close"):
            value.close()
    names = [path.stem for path in Path(folder).glob("*.py")]
    for name in names:
        sys.modules.pop(name, None)
    sys.path.remove(folder)
    shutil.rmtree(folder, ignore_errors=True)
    with _registry._lock:
        for key in set(_registry._registered) - set(registered):
            del _registry._registered[key]
        for alias, key in list(_registry._aliases.items()):
            if key not in _registry._registered:
                del _registry._aliases[alias]


#: The pages whose examples run: the site's, and the README.
PAGES = Sybil(
    parsers=[CodeBlockParser("python", run_python), SkipParser()],
    patterns=["docs/*.rst", "docs/*/*.rst", "docs/*/*/*.rst"],
    filenames=["README.rst"],
    excludes=["docs/_build/*", "docs/_build/*/*"],
    setup=setup,
    teardown=teardown,
)
pytest_collect_file = PAGES.pytest()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Keep each page's examples in page order, whatever shuffled the items
    (pytest-randomly): each block goes on from the ones above it."""
    slots: dict[str, list[int]] = {}
    for index, item in enumerate(items):
        example = getattr(item, "example", None)
        if isinstance(example, Example):
            slots.setdefault(str(example.path), []).append(index)
    for indexes in slots.values():
        ordered = sorted(
            (items[i] for i in indexes),
            key=lambda item: item.example.start,  # type: ignore[attr-defined]
        )
        for index, item in zip(indexes, ordered):
            items[index] = item
