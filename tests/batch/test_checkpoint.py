"""The checkpoint file on its own: it is locked while open and released on
close, a torn line is cut off before the next append, records are checked,
and a rewrite is atomic, hidden while it lasts, and cleans up after itself."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chatproviders._batch import checkpoint as _checkpoint
from chatproviders._batch.checkpoint import Checkpoint, encode
from chatproviders.exceptions import CheckpointError

RECORD = {"index": 0, "input_sha": "aa", "error": None}


def test_close_releases_the_lock_for_the_next_run(tmp_path: Path) -> None:
    """After close(), a second checkpoint on the file opens; before, it is refused."""
    path = tmp_path / "c.jsonl"
    first = Checkpoint(path, ["aa"])
    first.open()
    with pytest.raises(CheckpointError, match="in use by another process"):
        Checkpoint(path, ["aa"]).open()
    first.close()
    second = Checkpoint(path, ["aa"])
    second.open()
    second.close()


def test_a_checkpoint_on_descriptor_zero_is_read_and_closed(tmp_path: Path) -> None:
    """With stdin closed the file gets descriptor 0: it is used and closed like any
    other."""
    path = tmp_path / "c.jsonl"
    path.write_bytes(encode(RECORD))
    saved = os.dup(0)
    try:
        os.close(0)
        book = Checkpoint(path, ["aa"])
        book.open()
        assert book._fd == 0
        assert book.read() == {0: RECORD}  # not opened (and locked) a second time
        book.close()
        Checkpoint(path, ["aa"]).open()  # the lock went with descriptor 0
        os.close(0)
    finally:
        os.dup2(saved, 0)
        os.close(saved)


def test_a_torn_last_line_is_cut_off_before_the_next_record(tmp_path: Path) -> None:
    """A crash mid-write leaves half a line: read() drops it, so the next write starts a
    line."""
    path = tmp_path / "c.jsonl"
    torn = encode({"index": 1, "input_sha": "bb", "error": None})[:-9]
    path.write_bytes(encode(RECORD) + torn)
    book = Checkpoint(path, ["aa", "bb"])
    assert book.read() == {0: RECORD}
    second = {"index": 1, "input_sha": "bb", "error": None, "text": "x"}
    book.write(second)
    book.close()
    assert path.read_bytes() == encode(RECORD) + encode(second)
    assert Checkpoint(path, ["aa", "bb"]).read() == {0: RECORD, 1: second}


def test_a_record_with_only_the_required_keys_is_read(tmp_path: Path) -> None:
    """index, input_sha and error are all a record needs."""
    path = tmp_path / "c.jsonl"
    path.write_bytes(encode(RECORD))
    assert Checkpoint(path, ["aa"]).read() == {0: RECORD}


@pytest.mark.parametrize("line", [b"not json", b"[1, 2]", b'{"index": 0}'])
def test_a_line_that_is_no_record_is_named_as_such(tmp_path: Path, line: bytes) -> None:
    """Not JSON, not an object, or keys missing: the same question, with the line
    number."""
    path = tmp_path / "c.jsonl"
    path.write_bytes(encode(RECORD) + line + b"\n")
    with pytest.raises(ValueError, match=r"line 2 is not a batch record") as caught:
        Checkpoint(path, ["aa"]).read()
    assert not isinstance(caught.value, json.JSONDecodeError)


def test_every_changed_client_setting_is_named(tmp_path: Path) -> None:
    """Two settings changed: both are named, one after the other."""
    path = tmp_path / "c.jsonl"
    path.write_bytes(encode({**RECORD, "client": {"a": 1, "b": 2, "c": 3}}))
    book = Checkpoint(path, ["aa"], client={"a": 9, "b": 8, "c": 3})
    with pytest.raises(ValueError) as caught:
        book.read()
    assert "another client: a was 1, now 9, b was 2, now 8; use" in str(caught.value)


def test_an_unreadable_path_is_refused_naming_why(tmp_path: Path) -> None:
    """A path under a regular file cannot be looked at: CheckpointError with
    the reason."""
    (tmp_path / "file").write_text("")
    path = tmp_path / "file" / "c.jsonl"
    with pytest.raises(CheckpointError) as caught:
        Checkpoint(path, []).open()
    assert str(caught.value) == (
        f"cannot read the checkpoint {path}: {os.strerror(20)}"  # ENOTDIR
    )


def test_a_fifo_put_there_after_the_first_look_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No file at the first look, a FIFO by the open: refused, and nothing left open."""
    path = tmp_path / "c.jsonl"
    real_stat = os.stat

    def stat_before_the_fifo(target: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        if os.fspath(target) == str(path):
            os.mkfifo(path)  # appears between the look and the open
            monkeypatch.setattr(_checkpoint.os, "stat", real_stat)
            raise FileNotFoundError(2, "No such file or directory")
        return real_stat(target, *args, **kwargs)

    monkeypatch.setattr(_checkpoint.os, "stat", stat_before_the_fifo)
    before = set(os.listdir("/proc/self/fd"))
    with pytest.raises(CheckpointError) as caught:
        Checkpoint(path, []).open()
    assert str(caught.value) == f"the checkpoint is not a regular file: {path}"
    assert stat.S_ISFIFO(os.stat(path).st_mode)
    assert set(os.listdir("/proc/self/fd")) == before


def _rewrite(book: Checkpoint, records: Any) -> None:
    book.open()
    try:
        book.rewrite(records)
    finally:
        book.close()


def test_a_rewrite_replaces_the_file_readable_by_all(tmp_path: Path) -> None:
    """The new file holds exactly the records, with the usual 0o644 mode."""
    path = tmp_path / "c.jsonl"
    path.write_bytes(encode(RECORD) + encode(RECORD))
    _rewrite(Checkpoint(path, ["aa"]), [RECORD])
    assert path.read_bytes() == encode(RECORD)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert os.listdir(tmp_path) == ["c.jsonl"]


def test_a_rewrite_in_progress_is_a_hidden_file(tmp_path: Path) -> None:
    """While records are written, the only new file in the folder is a dot file."""
    path = tmp_path / "c.jsonl"
    seen: list[str] = []

    def records() -> Iterator[dict[str, Any]]:
        seen.extend(set(os.listdir(tmp_path)) - {"c.jsonl"})
        yield RECORD

    _rewrite(Checkpoint(path, ["aa"]), records())
    assert len(seen) == 1 and seen[0].startswith(".c.jsonl."), seen
    assert seen[0].endswith(".tmp")


KILLED_REWRITE = """
import sys, threading
from chatproviders._batch.checkpoint import Checkpoint
book = Checkpoint(sys.argv[1], ["aa"])
book.open()
def records():
    yield {"index": 0, "input_sha": "aa", "error": None}
    print("writing", flush=True)
    threading.Event().wait()  # until the kill
book.rewrite(records())
"""


def test_a_rewrite_a_kill_left_behind_is_removed_by_the_next_open(
    tmp_path: Path,
) -> None:
    """SIGKILL in the middle of a rewrite leaves its temporary file; the next
    run that opens the checkpoint removes it, and the file is the old one."""
    import signal
    import subprocess
    import sys

    path = tmp_path / "c.jsonl"
    path.write_bytes(encode(RECORD) + encode(RECORD))
    tree = str(Path(_checkpoint.__file__).resolve().parents[2])  # under test
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_REWRITE, str(path)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": tree},
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "writing\n"
    finally:
        child.kill()
        child.wait(60)
        assert child.stdout is not None
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    (left,) = set(os.listdir(tmp_path)) - {"c.jsonl"}
    assert left.startswith(".c.jsonl.") and left.endswith(".tmp")
    book = Checkpoint(path, ["aa"])
    book.open()
    book.close()
    assert os.listdir(tmp_path) == ["c.jsonl"]
    assert path.read_bytes() == encode(RECORD) + encode(RECORD)


def test_only_this_files_own_leftover_rewrites_are_removed(tmp_path: Path) -> None:
    """Opening c.jsonl removes .c.jsonl.XXXXXXXX.tmp alone: not another
    checkpoint's rewrites (c.jsonl.b's, other.jsonl's) nor other files."""
    path = tmp_path / "c.jsonl"
    mine = ".c.jsonl.ab_12cd3.tmp"
    others = [
        ".c.jsonl.b.ab_12cd3.tmp",
        ".other.jsonl.ab_12cd3.tmp",
        "c.jsonl.ab_12cd3.tmp",
        ".c.jsonl.short.tmp",
        ".c.jsonl.ab_12cd3.tmp.keep",
    ]
    for name in [mine, *others]:
        (tmp_path / name).write_bytes(b"x")
    book = Checkpoint(path, ["aa"])
    book.open()
    book.close()
    assert sorted(os.listdir(tmp_path)) == sorted(["c.jsonl", *others])


def test_a_rewrite_that_fails_midway_leaves_no_temporary_file(tmp_path: Path) -> None:
    """An error while the records are produced: it propagates, the old file stays, no
    litter."""
    path = tmp_path / "c.jsonl"
    path.write_bytes(encode(RECORD))

    def records() -> Iterator[dict[str, Any]]:
        yield RECORD
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        _rewrite(Checkpoint(path, ["aa"]), records())
    assert os.listdir(tmp_path) == ["c.jsonl"]
    assert path.read_bytes() == encode(RECORD)


def test_a_rewrite_whose_folder_is_gone_raises_checkpoint_error(tmp_path: Path) -> None:
    """The folder removed under a running batch: CheckpointError naming the file."""
    folder = tmp_path / "sub"
    folder.mkdir()
    path = folder / "c.jsonl"
    book = Checkpoint(path, ["aa"])
    book.open()
    try:
        path.unlink()
        folder.rmdir()
        with pytest.raises(
            CheckpointError, match="cannot write the checkpoint"
        ) as caught:
            book.rewrite([RECORD])
        assert caught.value.path == str(path)
    finally:
        book.close()


def test_a_blank_line_between_records_is_skipped_not_the_end(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    second = {**RECORD, "index": 1, "input_sha": "bb"}
    path.write_bytes(encode(RECORD) + b"\n  \n" + encode(second))
    book = Checkpoint(path, ["aa", "bb"])
    try:
        assert sorted(book.read()) == [0, 1]
    finally:
        book.close()


def test_a_read_error_is_a_checkpoint_error_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "c.jsonl"
    path.write_bytes(encode(RECORD))

    def broken(fd: int, size: int) -> bytes:
        raise OSError(5, "Input/output error")

    book = Checkpoint(path, ["aa"])
    book.open()
    monkeypatch.setattr(_checkpoint.os, "read", broken)
    try:
        with pytest.raises(CheckpointError, match="cannot read the checkpoint"):
            book.read()
    finally:
        book.close()


@pytest.mark.parametrize("models", [None, ["m1"]])
def test_a_line_of_another_input_list_names_no_model_when_none_changed(
    tmp_path: Path, models: Any
) -> None:
    """Without models, or with the same model on both sides, the error says
    only that the input list differs."""
    path = tmp_path / "c.jsonl"
    path.write_bytes(encode({**RECORD, "input_sha": "old", "model": "m1"}))
    book = Checkpoint(path, ["new"], models=models)
    try:
        with pytest.raises(ValueError) as refused:
            book.read()
    finally:
        book.close()
    message = str(refused.value)
    assert "is item 0 of a different input list; use another" in message
    assert "None" not in message


def test_a_file_that_names_no_client_says_so(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_bytes(encode(RECORD))
    book = Checkpoint(path, ["aa"], client={"class": "Cromicle"})
    try:
        with pytest.raises(ValueError, match=r"names no client \(written before"):
            book.read()
    finally:
        book.close()


@pytest.mark.parametrize("failing", ["write", "fsync"])
def test_a_write_error_names_the_file_and_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    """An append (os.write) or a rewrite (os.fsync) the disk refuses:
    CheckpointError naming the file; a rewrite's new file is removed."""
    path = tmp_path / "c.jsonl"
    book = Checkpoint(path, ["aa"])
    book.open()

    def full(*args: Any) -> Any:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_checkpoint.os, failing, full)
    try:
        with pytest.raises(CheckpointError, match="cannot write the checkpoint"):
            book.write(RECORD) if failing == "write" else book.rewrite([RECORD])
    finally:
        monkeypatch.undo()
        book.close()
    assert os.listdir(tmp_path) == ["c.jsonl"]
