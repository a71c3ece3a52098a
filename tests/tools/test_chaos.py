"""tools/chaos.py, the chaos run: the judges of its kill-resume scenario see
what a kill may leave in a checkpoint, and what it must not."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from types import ModuleType

import pytest

from tests.constants import ROOT


@pytest.fixture(scope="module")
def chaos() -> ModuleType:
    """tools/_chaos/kill_resume.py (tools/ is no package; _chaos is one)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(ROOT / "tools"))
        return importlib.import_module("_chaos.kill_resume")


TOKENS = ["chaos-t-i0", "chaos-t-i1", "chaos-t-i2"]


def line(chaos: ModuleType, index: int, text: str = "", error: str = "") -> bytes:
    """A checkpoint line as a batch writes it (the fields the judges read)."""
    record = {
        "index": index,
        "text": None if error else text or chaos.echo(TOKENS[index]),
        "error": error or None,
        "input_sha": "x",
    }
    return json.dumps(record).encode() + b"\n"


def test_a_torn_last_line_is_allowed_and_a_bad_whole_line_is_not(
    chaos: ModuleType, tmp_path: Path
) -> None:
    """After a kill: whole lines count, a torn last one is noted; a whole line
    that is no record, or a success with another item's text, is a problem."""
    path = tmp_path / "run.jsonl"
    path.write_bytes(line(chaos, 0) + line(chaos, 1, error="E: x") + b'{"ind')
    assert chaos.read_checkpoint(path, TOKENS) == ({0}, 1, [])
    path.write_bytes(line(chaos, 0) + b"garbage\n" + line(chaos, 2, text="other"))
    done, torn, problems = chaos.read_checkpoint(path, TOKENS)
    assert (done, torn, len(problems)) == ({0, 2}, 0, 2)


def test_a_finished_file_needs_every_item_once_in_order_with_its_text(
    chaos: ModuleType, tmp_path: Path
) -> None:
    """The file a run ends with: one success per item, in input order."""
    path = tmp_path / "run.jsonl"
    path.write_bytes(b"".join(line(chaos, i) for i in range(3)))
    assert chaos.check_final(path, TOKENS) == (0, [])
    path.write_bytes(line(chaos, 0) + line(chaos, 2) + line(chaos, 1, error="E: x"))
    lost, problems = chaos.check_final(path, TOKENS)
    assert lost == 1 and len(problems) == 2
