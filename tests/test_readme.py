"""README.rst and the pages of docs/: short, rendered, and examples that run.

The examples themselves run as tests of their own, collected by Sybil (see
conftest.py at the top of the checkout); these tests check the rules around
them, and that a broken example does fail.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.constants import README, ROOT

DOCS = ROOT / "docs"
PAGES = sorted(
    path for path in DOCS.rglob("*.rst") if "_build" not in path.relative_to(DOCS).parts
)
#: A directive that opens a Python block, visible or not.
PYTHON = re.compile(
    r"^(?P<indent> *)\.\. (code-block:: python|invisible-code-block: python)\s*$"
)
#: A literal block: a paragraph ending in "::", or a "code-block" of another language.
LITERAL = re.compile(r"^(?P<indent> *)(?!\.\. )\S.*::\s*$")


def blocks(text: str, opener: re.Pattern[str]) -> list[tuple[int, str, str]]:
    """``(line, directive, code)`` of each block ``opener`` starts, dedented."""
    lines = text.splitlines()
    found = []
    for index, line in enumerate(lines):
        match = opener.match(line)
        if not match:
            continue
        indent = len(match.group("indent"))
        end = index + 1
        while end < len(lines) and (
            not lines[end].strip()
            or len(lines[end]) - len(lines[end].lstrip()) > indent
        ):
            end += 1
        body = [
            text for text in lines[index + 1 : end] if not text.strip().startswith(":")
        ]
        found.append(
            (index + 1, line.strip(), textwrap.dedent("\n".join(body)).strip())
        )
    return found


def test_readme_is_the_front_door_not_the_manual() -> None:
    """README.rst stays short (at most about 200 lines) and links to the site."""
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 200
    assert "https://chatproviders.readthedocs.io/" in text


def test_ci_runs_the_readmes_test_command() -> None:
    """.ci/run runs exactly the command README.rst gives for the tests."""
    commands = [
        code
        for _, _, code in blocks(README.read_text(encoding="utf-8"), LITERAL)
        if "pytest" in code
    ]
    assert len(commands) == 1
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert commands[0] in ci


@pytest.mark.parametrize(
    "page", [README, *PAGES], ids=lambda p: str(p.relative_to(ROOT))
)
def test_python_is_never_a_literal_block(page: Path) -> None:
    """A literal :: block that is Python (imports, calls, assigns, defines, a
    with) should be a code-block, or its example would never run."""
    python_nodes = (ast.Import, ast.ImportFrom, ast.Call, ast.Assign,
                    ast.FunctionDef, ast.With)  # fmt: skip
    found = []
    for line, _, code in blocks(page.read_text(encoding="utf-8"), LITERAL):
        try:
            tree = ast.parse(code)
        except SyntaxError:
            continue
        if any(isinstance(node, python_nodes) for node in ast.walk(tree)):
            found.append(f"{page.name}:{line}")
    assert found == []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_a_skipped_example_says_why_on_the_page(page: Path) -> None:
    """Every ``.. skip: next`` follows a visible ``.. note::`` (within the few
    lines above it), so a reader knows the example was not run, and why."""
    lines = page.read_text(encoding="utf-8").splitlines()
    unexplained = [
        f"{page.name}:{index + 1}"
        for index, line in enumerate(lines)
        if line.strip() == ".. skip: next"
        and not any(
            above.strip() == ".. note::" for above in lines[max(0, index - 12) : index]
        )
    ]
    assert unexplained == []


def test_every_page_with_examples_is_collected() -> None:
    """The runner's patterns reach every page that has Python blocks, at any
    depth of docs/, and the README (a pattern that missed one would leave its
    examples unrun without a word)."""
    spec = importlib.util.spec_from_file_location("docs_runner", ROOT / "conftest.py")
    assert spec is not None and spec.loader is not None
    runner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runner)
    with_examples = [
        page
        for page in [README, *PAGES]
        if blocks(page.read_text(encoding="utf-8"), PYTHON)
    ]
    assert len(with_examples) >= 15
    assert [page for page in with_examples if not runner.PAGES.should_parse(page)] == []


def tutorial_script() -> str:
    """The tutorial's visible Python blocks, in order, as one script."""
    text = (DOCS / "tutorial.rst").read_text(encoding="utf-8")
    return "\n\n".join(
        code
        for _, directive, code in blocks(text, PYTHON)
        if "invisible" not in directive
    )


def test_the_tutorial_pasted_into_one_script_runs(tmp_path: Path) -> None:
    """A new user who pastes the tutorial's blocks in order into one file and
    runs it gets no error, and sees the replies the tutorial shows."""
    script = tmp_path / "tutorial.py"
    script.write_text(tutorial_script(), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-W", "error::ResourceWarning", str(script)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert "Hello! I am an emulator. Cromicle gpt-3.5-turbo" in done.stdout
    assert "slow down for 30.0 seconds" in done.stdout


def run_pages(folder: Path) -> subprocess.CompletedProcess[str]:
    """pytest, with this project's example runner, on the pages in ``folder``."""
    (folder / "conftest.py").write_text(
        (ROOT / "conftest.py").read_text(encoding="utf-8"), encoding="utf-8"
    )
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "docs"],
        capture_output=True,
        text=True,
        cwd=folder,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        timeout=120,
        check=False,
    )


@pytest.mark.slow
def test_a_misspelt_attribute_in_the_tutorial_fails_pytest(tmp_path: Path) -> None:
    """The tutorial as it is passes under the runner; with ``reply.text``
    misspelt in its first call, pytest fails, naming the attribute and the page."""
    tutorial = (DOCS / "tutorial.rst").read_text(encoding="utf-8")
    assert tutorial.count("print(reply.text, reply.provider") == 1
    (tmp_path / "docs").mkdir()
    page = tmp_path / "docs" / "tutorial.rst"

    page.write_text(tutorial, encoding="utf-8")
    passed = run_pages(tmp_path)
    assert passed.returncode == 0, passed.stdout + passed.stderr

    page.write_text(
        tutorial.replace(
            "print(reply.text, reply.provider", "print(reply.txt, reply.provider"
        ),
        encoding="utf-8",
    )
    failed = run_pages(tmp_path)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "AttributeError" in failed.stdout
    assert "'txt'" in failed.stdout
    assert "FAILED docs/tutorial.rst::line:" in failed.stdout
