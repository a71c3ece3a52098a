"""Every Python example in README.rst runs as written, against the emulators.

The rules, for whoever writes a section of the README:

1. A Python example is a ``.. code-block:: python`` block, and each is a test
   of its own, named by its first line in README.rst. A literal ``::`` block
   is for shell commands and other text: one that compiles as Python and
   imports, calls, assigns, defines or opens a ``with`` fails
   ``test_python_is_never_a_literal_block`` (make it a code-block).
2. Each block runs alone, in a fresh namespace that holds only the names of
   :data:`CONTEXT`, as if an earlier example had made them (``messages``,
   ``server``, ``client``, ``url``...). Everything else, chatproviders'
   classes included, the block imports itself, so that it can be copied.
3. Before it runs, these addresses in its text become emulators' URLs:
   ``http://127.0.0.1:8000`` (Cromicle) and ``http://localhost:11434/v1``
   (the OpenAI-compatible emulator, serving ``llama3.2`` and
   ``gpt-4o-mini``). The seed providers' class attributes point at their
   emulators too, so a block that names no server reaches none outside
   127.0.0.1.
4. Top-level ``await``, ``async with`` and ``async for`` run in an event loop.
5. A block whose first line is a comment naming a Python file, such as
   ``# echo_provider.py``, is that file too: every such block is written to
   a folder on ``sys.path`` before each block runs, so that another block
   can import it (``from echo_provider import Echo``).
6. A block that cannot run here follows a reST comment (invisible on the
   page) ``.. readme-test: skip: REASON``; pytest reports it skipped, with
   REASON.
7. chatproviders objects and ``requests`` sessions a block leaves open are
   closed after it, and the modules of rule 5 are forgotten.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import re
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import pytest
import requests

import chatproviders
from chatproviders.testing import EmulatorServer, serve
from tests.constants import README, ROOT

#: The names every block finds, and what they are.
CONTEXT = {
    "messages": "one user message",
    "server": "a Cromicle emulator",
    "client": "a Cromicle client of that emulator",
    "url": "an Acytoo emulator's URL",
    "url1": "a Cromicle emulator's URL",
    "url2": "an Acytoo emulator's URL",
    "url3": "a GPROChat emulator's URL",
    "my_session": "a requests.Session",
}
CROMICLE_ADDRESS = "http://127.0.0.1:8000"
OPENAI_ADDRESS = "http://localhost:11434/v1"
SKIP = re.compile(r"^\.\. readme-test: skip: (?P<reason>.+)$")
MODULE = re.compile(r"# (?P<name>[A-Za-z_]\w*)\.py$")
PYTHON = (".. code-block:: python", ".. code:: python", ".. sourcecode:: python")


@dataclass
class Block:
    """One literal or Python block of a reST text."""

    line: int  # of its first line of code, counted from 1
    python: bool  # a code-block:: python, not a literal :: block
    code: str  # dedented
    skip: Optional[str]  # the reason of a readme-test: skip comment


def extract(text: str) -> list[Block]:
    """The ``::`` and ``.. code-block:: python`` blocks of ``text``, in order."""
    lines = text.splitlines()
    blocks = []
    index = 0
    while index < len(lines):
        stripped = lines[index].strip()
        python = stripped in PYTHON
        if not python and not (stripped.endswith("::") and stripped[:3] != ".. "):
            index += 1
            continue
        indent = _indent(lines[index])
        end = index + 1
        while end < len(lines) and (
            not lines[end].strip() or _indent(lines[end]) > indent
        ):
            end += 1
        body = lines[index + 1 : end]
        if python:  # the directive's options (:linenos: ...) are no code
            while body and body[0].strip().startswith(":"):
                body.pop(0)
        code = textwrap.dedent("\n".join(body))
        first = index + 1 + len(lines[index + 1 : end]) - len(body)
        first += len(code) - len(code.lstrip("\n")) + 1 if code.strip() else 1
        blocks.append(Block(first, python, code.strip("\n"), _skip(lines, index)))
        index = end
    return blocks


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _skip(lines: list[str], index: int) -> Optional[str]:
    """The reason of a skip comment above line ``index``, blank lines between."""
    index -= 1
    while index >= 0 and not lines[index].strip():
        index -= 1
    match = SKIP.match(lines[index].strip()) if index >= 0 else None
    return match.group("reason") if match else None


BLOCKS = extract(README.read_text(encoding="utf-8"))
EXAMPLES = [block for block in BLOCKS if block.python]


@pytest.fixture
def modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The blocks that name a file, written to a folder on sys.path; the
    modules imported from them are forgotten afterwards."""
    names = []
    for block in EXAMPLES:
        match = MODULE.match(block.code.partition("\n")[0])
        if match:
            names.append(match.group("name"))
            (tmp_path / f"{names[-1]}.py").write_text(block.code, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    saved = {name: sys.modules[name] for name in names if name in sys.modules}
    yield
    for name in names:
        sys.modules.pop(name, None)
    sys.modules.update(saved)


@pytest.fixture
def context(modules: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The emulators, the names of CONTEXT, and the seed classes pointed at them."""
    servers = {
        name: serve(
            name, models=["llama3.2", "gpt-4o-mini"] if name == "openai" else None
        )
        for name in ("cromicle", "acytoo", "gprochat", "codelinkava", "openai")
    }
    try:
        for name, cls in [("cromicle", chatproviders.Cromicle),
                          ("acytoo", chatproviders.Acytoo)]:  # fmt: skip
            monkeypatch.setattr(cls, "url", servers[name].url)
        for name, cls in [("gprochat", chatproviders.GPROChat),
                          ("codelinkava", chatproviders.CodeLinkAva)]:  # fmt: skip
            monkeypatch.setattr(cls, "api_endpoint", servers[name].url + cls.path)
        session = requests.Session()
        with chatproviders.Cromicle(base_url=servers["cromicle"].url) as client:
            yield {
                "messages": [{"role": "user", "content": "Hello, how are you?"}],
                "server": servers["cromicle"],
                "client": client,
                "url": servers["acytoo"].url,
                "url1": servers["cromicle"].url,
                "url2": servers["acytoo"].url,
                "url3": servers["gprochat"].url,
                "my_session": session,
                "addresses": {
                    CROMICLE_ADDRESS: servers["cromicle"].url,
                    OPENAI_ADDRESS: servers["openai"].url,
                },
            }
        session.close()
    finally:
        for server in servers.values():
            server.stop()


def run_block(block: Block, namespace: dict[str, Any]) -> None:
    """Run ``block`` in ``namespace``; tracebacks name README.rst's lines."""
    tree = ast.parse(block.code, str(README), "exec")
    ast.increment_lineno(tree, block.line - 1)
    code = compile(tree, str(README), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    result = eval(code, namespace)  # a coroutine when the block awaits
    if inspect.iscoroutine(result):
        asyncio.run(result)


def close_what_is_left(namespace: dict[str, Any]) -> None:
    """Close the chatproviders objects and sessions a block left in its names."""
    for value in namespace.values():
        module = type(value).__module__ or ""
        closes = module.startswith("chatproviders") or isinstance(
            value, requests.Session
        )
        if closes and not isinstance(value, EmulatorServer) and hasattr(value, "close"):
            value.close()


@pytest.mark.parametrize(
    "block", EXAMPLES, ids=[f"README.rst:{block.line}" for block in EXAMPLES]
)
def test_a_readme_example_runs(
    block: Block, context: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """The Python block runs without an error against the emulators."""
    if block.skip:
        pytest.skip(block.skip)
    code = block.code
    for address, url in context.pop("addresses").items():
        code = code.replace(address, url)
    namespace = {"__name__": "readme", **context}
    try:
        run_block(Block(block.line, True, code, None), namespace)
    finally:
        close_what_is_left(namespace)


def test_python_is_never_a_literal_block() -> None:
    """A literal :: block that is Python (imports, calls, assigns, defines, a
    with) should be a code-block, or its example would never run."""
    python_nodes = (ast.Import, ast.ImportFrom, ast.Call, ast.Assign,
                    ast.FunctionDef, ast.With)  # fmt: skip
    found = []
    for block in BLOCKS:
        if block.python:
            continue
        try:
            tree = ast.parse(block.code)
        except SyntaxError:
            continue
        if any(isinstance(node, python_nodes) for node in ast.walk(tree)):
            found.append(f"README.rst:{block.line}")
    assert found == []


def test_the_readmes_examples_are_found() -> None:
    """The extraction sees the README's examples (a broken rule finds none)."""
    assert len(EXAMPLES) >= 10
    assert any("display_stream" in block.code for block in EXAMPLES)


def test_extraction_rules() -> None:
    """code-block and :: blocks at any indentation, options dropped, the first
    code line's number, a skip comment's reason; directives are no blocks."""
    text = """\
Intro::

    $ shell

.. readme-test: skip: needs a GPU

.. code-block:: python
   :linenos:

   import os
       os.sep

- item::

      x = 1

.. list-table::

   * - a
"""
    assert extract(text) == [
        Block(3, False, "$ shell", None),
        Block(10, True, "import os\n    os.sep", "needs a GPU"),
        Block(15, False, "x = 1", None),
    ]


def test_ci_runs_the_readmes_test_command() -> None:
    """.ci/run runs exactly the command README.rst gives for the tests."""
    commands = [b.code for b in BLOCKS if not b.python and "pytest" in b.code]
    assert len(commands) == 1
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert commands[0] in ci
