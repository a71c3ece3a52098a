"""tools/mutate.py, the mutation run: its mutants are real, single changes and
its sample depends only on the seed."""

from __future__ import annotations

import ast
import importlib.util
import sys
from types import ModuleType

import pytest

from tests.constants import ROOT


@pytest.fixture(scope="module")
def mutate() -> ModuleType:
    """The tool, imported from its file (tools/ is no package)."""
    spec = importlib.util.spec_from_file_location(
        "mutate", ROOT / "tools" / "mutate.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["mutate"] = module  # dataclasses look their module up
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules["mutate"]
    return module


@pytest.mark.slow
@pytest.mark.parametrize(
    "path", ["chatproviders/_wire/retry.py", "chatproviders/_messages.py"]
)
def test_every_mutant_compiles_and_changes_the_code(
    mutate: ModuleType, path: str
) -> None:
    """Each mutant is valid Python that differs from the original, and the
    operators the run promises all occur."""
    source = (ROOT / path).read_text(encoding="utf-8")
    original = ast.unparse(ast.parse(source))
    found = mutate.mutants(path)
    texts = [mutate.mutated_source(source, m) for m in found]
    for mutant, text in zip(found, texts):
        compile(text, path, "exec")
        assert text != original, mutant.key
    assert len(set(texts)) == len(texts)
    operators = {m.operator for m in mutate.mutants("chatproviders/_wire/retry.py")}
    assert {"compare", "boolean", "arithmetic", "constant", "return-none"} <= operators


def test_docstrings_log_calls_and_all_are_left_alone(mutate: ModuleType) -> None:
    """No mutant touches a docstring, a log call or ``__all__``."""
    keys = [m.key for m in mutate.mutants("chatproviders/_streams/background.py")]
    assert keys
    assert not [k for k in keys if "logger" in k or "__all__" in k]
    assert not [k for k in keys if "Cancel like" in k or "A stream read" in k]


def test_the_sample_depends_only_on_the_seed(
    mutate: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same seed lists the same mutants; another seed, others."""
    listed = []
    for seed in ("1", "1", "2"):
        args = [
            "chatproviders/_wire/retry.py",
            "--list",
            "--sample",
            "8",
            "--seed",
            seed,
        ]
        assert mutate.main(args) == 0
        listed.append(capsys.readouterr().out.splitlines())
    assert len(listed[0]) == 8
    assert listed[0] == listed[1] != listed[2]
