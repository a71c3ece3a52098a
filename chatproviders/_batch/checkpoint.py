"""A batch's checkpoint: a JSONL file with one line per finished item.

Each line is written with one ``os.write`` of the whole line on a file opened
for appending, the moment its item finishes, so a crash (even SIGKILL) leaves
only whole lines, and at most a torn last one, which is ignored and cut off
before anything more is appended. When the batch ends, the file is rewritten
(a new file renamed over it) with one line per item, in input order.

Every line carries ``input_sha``, a hash of its item (index, id, messages,
model, parameters), and ``client``, what of the client changes an answer
(its class, base URL without credentials, model and parameters, a
FallbackProvider's members): a file written for other inputs or another
client is refused, naming what changed, rather than mixed with them.

The file is a regular file, locked for the whole run (``flock`` on POSIX,
``msvcrt.locking`` on Windows): a second process on the same file gets a
:class:`~chatproviders.CheckpointError` at once, before it sends anything.

A line::

    {"index": 0, "id": "row-1", "text": "...", "error": null,
     "provider": "Cromicle", "model": "gpt-3.5-turbo",
     "usage": {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21},
     "client": {"provider": "...", "base_url": "...", ...}, "input_sha": "..."}

``usage`` is there when the reply had one; ``error`` is
``"ErrorClass: message"`` for an item that failed. Any ``str`` round-trips, a
lone surrogate (``"\\ud83d"``) included: it is written as its JSON escape.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Optional, Union

from ..exceptions import CheckpointError

__all__ = ["Checkpoint", "PathLike", "encode"]

PathLike = Union[str, "os.PathLike[str]"]


def encode(record: Mapping[str, Any]) -> bytes:
    """``record`` as one JSON line in UTF-8. A lone surrogate, which UTF-8
    cannot hold, can only stand inside a JSON string there, so it becomes its
    own ``\\uXXXX`` escape, which reads back as the same ``str``. (A high
    surrogate right before a low one reads back as the one character the pair
    encodes, as in any JSON; no decoder makes such a ``str``.)
    """
    line = json.dumps(record, ensure_ascii=False, default=str) + "\n"
    return line.encode("utf-8", "backslashreplace")


class Checkpoint:
    """The finished items of one batch: locked, read back, appended to."""

    def __init__(
        self,
        path: PathLike,
        fingerprints: Sequence[str],
        client: Optional[Mapping[str, Any]] = None,
        models: Optional[Sequence[Optional[str]]] = None,
    ) -> None:
        """``models``: the model each item asks for, named when a line of
        another input list came from another one.
        """
        self.path = os.fspath(path)
        self._fingerprints = fingerprints
        self._models = models
        self._client = None if client is None else dict(client)
        self._fd = -1

    def error(self, what: str, exc: Optional[OSError] = None) -> CheckpointError:
        reason = f": {exc.strerror or exc}" if exc is not None else ""
        return CheckpointError(f"{what} {self.path}{reason}", path=self.path)

    def open(self) -> None:
        """Open (creating it) and lock the file, before anything is read or
        sent: a path that cannot be written, is no regular file, or is held
        by another process fails first.
        """
        try:
            mode = os.stat(self.path).st_mode
        except FileNotFoundError:
            mode = stat.S_IFREG
        except OSError as exc:
            raise self.error("cannot read the checkpoint", exc) from None
        if not stat.S_ISREG(mode):
            raise self.error("the checkpoint is not a regular file:")
        flags = os.O_RDWR | os.O_CREAT | os.O_APPEND | getattr(os, "O_BINARY", 0)
        flags |= getattr(os, "O_NONBLOCK", 0)  # a FIFO put there meanwhile
        try:
            fd = os.open(self.path, flags, 0o644)
        except OSError as exc:
            raise self.error("cannot write the checkpoint", exc) from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise self.error("the checkpoint is not a regular file:")
            _lock(fd, self)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self._remove_leftovers()

    def _temporary_name(self) -> tuple[str, str]:
        """The folder, and the prefix of this file's rewrites in it."""
        path = os.path.abspath(self.path)
        return os.path.dirname(path), f".{os.path.basename(path)}."

    def _remove_leftovers(self) -> None:
        """Remove the rewrites of this file that a killed run left behind:
        with the file locked, none of them is in progress."""
        folder, prefix = self._temporary_name()
        with contextlib.suppress(OSError):
            for name in os.listdir(folder):
                rest = name[len(prefix) :]
                if name.startswith(prefix) and _TEMPORARY.fullmatch(rest):
                    _remove(os.path.join(folder, name))

    def read(self) -> dict[int, dict[str, Any]]:
        """The records of the items that succeeded, by index; cuts a torn last
        line off. Raises ValueError for a file written for other inputs or
        another client.
        """
        if self._fd < 0:
            self.open()
        try:
            data = _read_all(self._fd)
        except OSError as exc:
            raise self.error("cannot read the checkpoint", exc) from None
        *lines, torn = data.split(b"\n")
        succeeded: dict[int, dict[str, Any]] = {}
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            record = self._check(number, line)
            if record["error"] is None:
                succeeded[record["index"]] = record
        if torn:  # the crash came in the middle of a write
            os.ftruncate(self._fd, len(data) - len(torn))
        return succeeded

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
                f"{where} is item {index} of a different input list"
                f"{self._model_hint(index, record.get('model'))}; use another "
                "checkpoint file, or delete this one to start again"
            )
        if self._client is not None and record.get("client") != self._client:
            raise ValueError(
                f"{where} was written by another client: "
                f"{_changes(record.get('client'), self._client)}; use another "
                "checkpoint file, or delete this one to start again"
            )
        return dict(record)

    def _model_hint(self, index: Any, written: Any) -> str:
        """Where the model changed (-m on the command line, say): the hint."""
        if not isinstance(index, int) or self._models is None:
            return ""
        if not 0 <= index < len(self._models):
            return ""
        asked = self._models[index]
        if not written or not asked or written == asked:
            return ""
        return f" (its reply came from model {written!r}; this run asks for {asked!r})"

    def write(self, record: Mapping[str, Any]) -> None:
        """Append ``record`` as one line, in one write; CheckpointError if the
        disk refuses it.
        """
        data = encode(record)
        try:
            written = os.write(self._fd, data)
            while written < len(data):  # a short write (a full disk, a signal)
                written += os.write(self._fd, data[written:])
        except OSError as exc:
            raise self.error("cannot write the checkpoint", exc) from exc

    def rewrite(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Replace the file by ``records``, one line each: a new file in the
        same folder, renamed over the old one, so a crash leaves one or the
        other, whole.
        """
        folder, prefix = self._temporary_name()
        try:
            fd, temporary = tempfile.mkstemp(
                prefix=prefix, suffix=".tmp", dir=folder, text=False
            )
        except OSError as exc:
            raise self.error("cannot write the checkpoint", exc) from exc
        try:
            with os.fdopen(fd, "wb") as file:
                for record in records:
                    file.write(encode(record))
                file.flush()
                os.fsync(file.fileno())
            os.chmod(temporary, 0o644)
            if os.name == "nt":  # a file open there cannot be replaced
                self.close()
            os.replace(temporary, self.path)
        except OSError as exc:
            _remove(temporary)
            raise self.error("cannot write the checkpoint", exc) from exc
        except BaseException:
            _remove(temporary)
            raise

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # releases the lock too
            self._fd = -1


def _read_all(fd: int) -> bytes:
    os.lseek(fd, 0, os.SEEK_SET)
    pieces: list[bytes] = []
    while True:
        piece = os.read(fd, 1 << 20)
        if not piece:
            return b"".join(pieces)
        pieces.append(piece)


def _lock(fd: int, book: Checkpoint) -> None:
    """An exclusive lock on the open file, or CheckpointError at once."""
    try:
        import fcntl
    except ImportError:  # Windows: lock the first byte, whatever the size
        import msvcrt

        os.lseek(fd, 0, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
        except OSError:
            raise book.error("the checkpoint is in use by another process:") from None
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise book.error("the checkpoint is in use by another process:") from None
    except OSError as exc:
        raise book.error("cannot lock the checkpoint", exc) from None


#: What ``tempfile.mkstemp`` adds to a rewrite's prefix: 8 characters of its
#: own and the suffix.
_TEMPORARY = re.compile(r"[a-z0-9_]{8}\.tmp")


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.remove(path)


def _changes(written: Any, now: Mapping[str, Any]) -> str:
    """What differs between the client a record names and ``now``'s."""
    if not isinstance(written, Mapping):
        return "the file names no client (written before chatproviders 0.3)"
    names = sorted(
        {*written, *now} - {name for name in now if written.get(name) == now[name]}
    )
    return ", ".join(
        f"{name} {'were' if name == 'members' else 'was'} {written.get(name)!r}, "
        f"now {now.get(name)!r}"
        for name in names
    )
