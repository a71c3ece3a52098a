"""A batch's checkpoint: a JSONL file with one line per finished item.

Each line is written with one ``os.write`` of the whole line on a file opened
for appending, the moment its item finishes, so a crash (even SIGKILL) leaves
only whole lines, and at most a torn last one, which is ignored and cut off
before anything more is appended. Every line carries ``input_sha``, a hash of
its item (index, id, messages, model, parameters): a file written for other
inputs is refused rather than mixed with them.

A line::

    {"index": 0, "id": "row-1", "text": "...", "error": null,
     "provider": "Cromicle", "model": "gpt-3.5-turbo", "input_sha": "..."}

``usage`` is added when the reply has one; ``error`` is ``"ErrorClass: message"``
for an item that failed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any, Union

__all__ = ["Checkpoint", "PathLike"]

PathLike = Union[str, "os.PathLike[str]"]


class Checkpoint:
    """The finished items of one batch, read back and appended to."""

    def __init__(self, path: PathLike, fingerprints: Sequence[str]) -> None:
        self.path = os.fspath(path)
        self._fingerprints = fingerprints
        self._fd = -1

    def read(self) -> dict[int, dict[str, Any]]:
        """The records of the items that succeeded, by index; cuts a torn last
        line off. Raises ValueError for a file written for other inputs.
        """
        try:
            with open(self.path, "rb") as file:
                data = file.read()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise ValueError(f"cannot read the checkpoint {self.path}: {exc}") from None
        *lines, torn = data.split(b"\n")
        succeeded: dict[int, dict[str, Any]] = {}
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            record = self._check(number, line)
            if record["error"] is None:
                succeeded[record["index"]] = record
        if torn:  # the crash came in the middle of a write
            os.truncate(self.path, len(data) - len(torn))
        return succeeded

    def open(self) -> None:
        """Open the file for appending (creating it): before anything is sent,
        so that a path that cannot be written fails first.
        """
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_BINARY", 0)
        try:
            self._fd = os.open(self.path, flags, 0o644)
        except OSError as exc:
            raise ValueError(
                f"cannot write the checkpoint {self.path}: {exc.strerror}"
            ) from None

    def _check(self, number: int, line: bytes) -> dict[str, Any]:
        where = f"checkpoint {self.path} line {number}"
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if (
            not isinstance(record, Mapping)
            or not {
                "index",
                "input_sha",
                "error",
            }
            <= record.keys()
        ):
            raise ValueError(
                f"{where} is not a batch record: is this file a batch checkpoint?"
            )
        index = record["index"]
        if (
            not isinstance(index, int)
            or not 0 <= index < len(self._fingerprints)
            or self._fingerprints[index] != record["input_sha"]
        ):
            raise ValueError(
                f"{where} is item {index} of a different input list; use another "
                "checkpoint file, or delete this one to start again"
            )
        return dict(record)

    def write(self, record: Mapping[str, Any]) -> None:
        """Append ``record`` as one line, in one write."""
        line = json.dumps(record, ensure_ascii=False, default=str) + "\n"
        data = line.encode("utf-8")
        if self._fd < 0:
            self.open()
        written = os.write(self._fd, data)
        while written < len(data):  # a short write (a full disk, a signal)
            written += os.write(self._fd, data[written:])

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
