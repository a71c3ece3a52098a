"""The layout: the table of docs/explanation/architecture.rst matches the tree,
and the tests mirror the package."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.constants import ROOT

PACKAGE = ROOT / "chatproviders"
TESTS = ROOT / "tests"
PAGE = ROOT / "docs" / "explanation" / "architecture.rst"


def documented() -> list[str]:
    """The paths in the first column of the page's table, in order."""
    return re.findall(r"^   \* - ``([^`]+)``$", PAGE.read_text("utf-8"), re.M)


def built() -> set[str]:
    """Every folder and module of the package, as the table names them: a
    folder as ``name/``; a folder's ``__init__.py`` is the folder itself."""
    paths = set()
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        if relative.parent != Path(".") and relative.name == "__init__.py":
            paths.add(f"{relative.parent.as_posix()}/")
        else:
            paths.add(relative.as_posix())
    return paths


def test_the_architecture_table_lists_every_folder_and_module_once() -> None:
    """Each folder and module has one row, and each row is one that exists."""
    rows = documented()
    assert len(rows) == len(set(rows)), "a path has two rows"
    assert set(rows) == built()


def test_the_table_reads_folder_by_folder() -> None:
    """A folder's modules follow its row, so the table shows the tree."""
    rows = documented()
    for index, row in enumerate(rows):
        if "/" in row.rstrip("/"):
            folder = row.rsplit("/", 1)[0] + "/"
            start = rows.index(folder)
            assert start < index, row
            assert all(r.startswith(folder) for r in rows[start:index]), row


def test_every_test_folder_is_a_folder_of_the_package() -> None:
    """tests/wire holds the tests of chatproviders/_wire, and so on: a reader
    finds a module's tests by its name."""
    folders = {p.name.lstrip("_") for p in PACKAGE.iterdir() if p.is_dir()}
    folders.discard("pycache")
    mirrors = {p.name for p in TESTS.iterdir() if (p / "__init__.py").exists()}
    extra = {"llamacpp", "litellm", "tools"}  # optional server runs; tools/
    assert mirrors - extra <= folders


def test_no_test_file_imports_another() -> None:
    """Shared helpers live in modules of their own (constants, loopback...)."""
    offenders = []
    for path in TESTS.rglob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            if any(name.rsplit(".", 1)[-1].startswith("test_") for name in names):
                offenders.append(path.relative_to(ROOT).as_posix())
    assert offenders == []
