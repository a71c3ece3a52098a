"""The site builds with -W -n and documents every public name; the sdist and
wheel build without deprecation warnings, pass ``twine check --strict``, and
the sdist holds a suite that passes from it.

Each test here runs a build in a subprocess (seconds to a minute), so all are
marked slow; the builds happen once per run, in module-scoped fixtures.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
import zlib
from pathlib import Path

import pytest

import chatproviders
import chatproviders.decoders
import chatproviders.exceptions
import chatproviders.testing

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow

#: Set in the run from the unpacked sdist, so that it does not build again.
INSIDE_SDIST = "CHATPROVIDERS_TESTING_THE_SDIST"


def run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args,
        capture_output=True,
        text=True,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **env},
        timeout=600,
        check=False,
    )


def inventory(path: Path) -> dict[str, str]:
    """``{name: role}`` of a Sphinx ``objects.inv`` (version 2: four header
    lines, then zlib-compressed ``name domain:role priority uri dispname``)."""
    data = path.read_bytes()
    header = data.split(b"\n", 4)
    assert header[0] == b"# Sphinx inventory version 2", header[0]
    entries = {}
    for line in zlib.decompress(header[4]).decode("utf-8").splitlines():
        match = re.match(r"(?x)(.+?)\s+(\S+:\S+)\s+(-?\d+)\s+(\S+)\s+(.*)", line)
        if match:
            entries[match.group(1)] = match.group(2)
    return entries


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built as ``tox -e docs`` builds it."""
    if os.environ.get(INSIDE_SDIST):
        pytest.skip("the run from the sdist checks its files, not the builds")
    out = tmp_path_factory.mktemp("html")
    done = run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-E",
            "-W",
            "-n",
            "--keep-going",
            "-q",
            "-b",
            "html",
            "docs",
            str(out),
        ],
        ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def test_the_docs_build_with_warnings_as_errors(site: Path) -> None:
    """sphinx-build -W -n passes: no warning, every cross-reference resolves;
    the CLI reference names every command of the parser."""
    cli = (site / "reference" / "cli.html").read_text(encoding="utf-8")
    from chatproviders._cli import _parser

    commands = next(
        action.choices
        for action in _parser()._actions
        if isinstance(action.choices, dict)
    )
    assert len(commands) >= 5
    for command in commands:
        assert f'id="chatproviders-{command}"' in cli, command


def test_every_public_name_has_an_entry_in_the_reference(site: Path) -> None:
    """objects.inv holds ``chatproviders.NAME`` for every name of
    chatproviders.__all__, and the names of testing, decoders and exceptions
    (an exception may be documented under chatproviders, where it is imported)."""
    entries = inventory(site / "objects.inv")
    missing = [
        f"chatproviders.{name}"
        for name in chatproviders.__all__
        if f"chatproviders.{name}" not in entries
    ]
    for module in (
        chatproviders.testing,
        chatproviders.decoders,
        chatproviders.exceptions,
    ):
        for name in module.__all__:
            here, there = f"{module.__name__}.{name}", f"chatproviders.{name}"
            if here not in entries and not (
                name in chatproviders.__all__ and there in entries
            ):
                missing.append(here)
    assert missing == []
    assert entries["chatproviders.Cromicle"] == "py:class"


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The sdist and wheel, and what ``python -m build`` printed."""
    if os.environ.get(INSIDE_SDIST):
        pytest.skip("the run from the sdist checks its files, not the builds")
    out = tmp_path_factory.mktemp("dist")
    done = run([sys.executable, "-m", "build", "--outdir", str(out)], ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    return out, done.stdout + done.stderr


def test_the_build_warns_of_nothing_deprecated(dist: tuple[Path, str]) -> None:
    """python -m build makes an sdist and a wheel and no deprecation warning."""
    folder, output = dist
    assert sorted(path.suffix for path in folder.iterdir()) == [".gz", ".whl"]
    assert not re.search(r"(?i)deprecat", output), output


def test_twine_check_strict_passes(dist: tuple[Path, str]) -> None:
    """The README renders on the package index: twine check --strict."""
    folder, _ = dist
    files = sorted(str(path) for path in folder.iterdir())
    done = run([sys.executable, "-m", "twine", "check", "--strict", *files], ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("PASSED") == 2


@pytest.fixture(scope="module")
def unpacked(dist: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder, _ = dist
    (sdist,) = folder.glob("*.tar.gz")
    into = tmp_path_factory.mktemp("sdist")
    with tarfile.open(sdist) as archive:
        if hasattr(tarfile, "data_filter"):  # Python 3.12, and 3.9.17+ etc.
            archive.extractall(into, filter="data")
        else:
            archive.extractall(into)
    (top,) = into.iterdir()
    return top


def test_the_sdist_holds_what_the_tests_and_docs_read(unpacked: Path) -> None:
    """LICENSE, the changelog, CI's runner, the tests' data, the docs and the
    example runner are in the sdist."""
    names = ["LICENSE", "CHANGELOG.rst", "README.rst", ".ci/run", "conftest.py",
             "pyproject.toml", "setup.cfg", "tests/data/openai_chat_streams.json",
             "docs/conf.py", "docs/tutorial.rst",
             "benchmarks/concurrency.png"]  # fmt: skip
    for name in names:
        assert (unpacked / name).is_file(), name
    assert not (unpacked / "docs" / "_build").exists()


def test_the_suite_passes_from_the_sdist(unpacked: Path) -> None:
    """From the unpacked sdist, with its own copy of chatproviders first on the
    path, the suite passes: the tests, the README and the docs' examples. The
    slow tests are left out: this one among them would build again."""
    env = {"PYTHONPATH": str(unpacked), INSIDE_SDIST: "1"}
    where = run(
        [sys.executable, "-c", "import chatproviders; print(chatproviders.__file__)"],
        unpacked,
        **env,
    )
    assert Path(where.stdout.strip()).parent.parent == unpacked, where
    subset = ["tests", "docs", "README.rst"]  # the whole suite, as a packager runs it
    done = run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-m",
            "not slow",
            *subset,
        ],
        unpacked,
        **env,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert re.search(r"\d+ passed", done.stdout)
