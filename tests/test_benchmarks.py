"""The benchmarks still import what they measure.

They are run by hand, so nothing else notices when a module they import
moves: every script is imported in a process of its own, and every
``from chatproviders... import NAME`` in it, at the top or inside a
function, must name something that exists.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
SCRIPTS = sorted(path.stem for path in BENCHMARKS.glob("*.py"))


def imported_names(path: Path) -> list[tuple[str, str]]:
    """(module, name) of each ``from chatproviders... import name`` in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        (node.module, alias.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        and node.module
        and node.module.split(".")[0] == "chatproviders"
        for alias in node.names
    ]


def test_there_are_benchmarks() -> None:
    assert {"concurrency", "gateway", "responses", "run"} <= set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_name_a_benchmark_imports_exists(script: str) -> None:
    missing = []
    for module, name in imported_names(BENCHMARKS / f"{script}.py"):
        found = importlib.import_module(module)
        if not hasattr(found, name):
            try:
                importlib.import_module(f"{module}.{name}")
            except ImportError:
                missing.append(f"{module}.{name}")
    assert missing == []


def test_every_benchmark_imports() -> None:
    code = (
        "import importlib, sys\n"
        f"sys.path.insert(0, {str(BENCHMARKS)!r})\n"
        "for name in sys.argv[1:]:\n"
        "    importlib.import_module(name)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, *SCRIPTS],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
