"""A command run on a pseudo-terminal and driven as a person at the keyboard.

The child gets the pty's slave end as stdin, stdout and stderr, as its
controlling terminal (so readline works as it does for a person), and SIGINT
at its default. Tests synchronise on output: :meth:`Terminal.expect` reads
until a text appears, bounded by ``WAIT``, never by sleeping.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Optional

from tests.loopback import WAIT

__all__ = ["Terminal"]


def _on_the_terminal() -> None:
    """In the child: a session of its own, the pty as its controlling terminal,
    Ctrl-C at its default (a background job would inherit SIGINT ignored)."""
    import fcntl
    import termios

    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Terminal:
    """``with Terminal(argv) as term:``, then ``expect(...)`` and ``type(...)``."""

    def __init__(self, argv: Sequence[str]) -> None:
        import pty

        master, slave = pty.openpty()
        env = {**os.environ, "TERM": "dumb", "INPUTRC": os.devnull}
        env.pop("PYTHONIOENCODING", None)
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "chatproviders", *argv],
                stdin=slave,
                stdout=slave,
                stderr=slave,
                env=env,
                preexec_fn=_on_the_terminal,
            )
        finally:
            os.close(slave)
        self.master = master
        self.output = ""  # all that the terminal has shown
        self._seen = 0  # where the next expect() starts looking

    def __enter__(self) -> Terminal:
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(WAIT)
        os.close(self.master)

    def type(self, keys: str) -> None:
        """What a person types, control characters included."""
        os.write(self.master, keys.encode())

    def interrupt(self) -> None:
        """Ctrl-C, once the child sleeps waiting for input: SIGINT to it.

        The wait matters at a readline prompt: CPython's readline loop checks
        for signals only when its select() on the terminal is interrupted, so a
        SIGINT landing in the microseconds between echoing a key and calling
        select() again would wait there for the next key. A person cannot type
        that fast; a test can, hence the wait for the child to sleep.
        """
        self.wait_until_sleeping()
        self.process.send_signal(signal.SIGINT)

    def wait_until_sleeping(self) -> None:
        """Poll (Linux) /proc until the child sleeps in a system call (state S)."""
        stat = f"/proc/{self.process.pid}/stat"
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            with open(stat) as file:
                state = file.read().rpartition(")")[2].split()[0]
            if state == "S":
                return
            time.sleep(0.001)  # polls a condition; nothing is timed by it
        raise AssertionError(f"the child never slept waiting (state {state})")

    def expect(self, text: str) -> str:
        """Read until ``text`` shows after the last expected one; return what
        showed up to its end."""
        deadline = time.monotonic() + WAIT
        while self.output.find(text, self._seen) < 0:
            if not self._read(deadline):
                raise AssertionError(
                    f"{text!r} never showed; after the last match: "
                    f"{self.output[self._seen :]!r}"
                )
        end = self.output.index(text, self._seen) + len(text)
        shown, self._seen = self.output[self._seen : end], end
        return shown

    def wait(self) -> int:
        """Read the rest of the output until the child exits; its status."""
        deadline = time.monotonic() + WAIT
        while self._read(deadline):
            pass
        return self.process.wait(max(deadline - time.monotonic(), 0.1))

    def _read(self, deadline: float) -> bool:
        """Read what is there, waiting until ``deadline``; False at the end."""
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([self.master], [], [], remaining)[0]:
            return False
        data = b""
        with contextlib.suppress(OSError):  # EIO: the child closed the terminal
            data = os.read(self.master, 65536)
        self.output += data.decode("utf-8", "replace").replace("\r\n", "\n")
        return bool(data)
