"""What the scenarios share: their outcome, emulators that echo a token, and
views of this process's threads and sockets.

Every prompt a scenario sends carries a token (``chaos-...``); the echo
emulators answer it with :func:`echo`, a text of its own, so a reply that
reached the wrong caller, or arrived cut or doubled, cannot pass for right.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import chatproviders
from chatproviders.testing import Protocol, RecordedRequest, Reply

TOKEN = re.compile(r"chaos-[a-z0-9-]+")


@dataclass
class Outcome:
    """What one scenario did (``figures``) and found wrong (``problems``)."""

    scenario: str
    headline: str = ""  # its figures in a few words, for the summary
    figures: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    def problem(self, text: str) -> None:
        self.problems.append(text)


def prompt(token: str) -> str:
    """The prompt that carries ``token``: non-ASCII, as prompts often are."""
    return f"Answer {token}, s'il vous pla\u00eet \u2014 \u00fc\u00df"


def echo(token: str) -> str:
    """The reply the echo emulators send to ``token``'s prompt: multi-byte
    characters, so that cutting the text into writes splits some of them.
    """
    return f"Reply to {token}: \u00e7a va \u2713 \u2014 \U0001f600 done."


def token_of(request: RecordedRequest) -> Optional[str]:
    found = TOKEN.search(request.body.decode("utf-8", errors="replace"))
    return found.group() if found else None


class Echo(Protocol):
    """Mixed in before a provider's emulator: a prompt with a token is
    answered with :func:`echo` of it; any other, as the emulator would.
    """

    def render(self, reply: Reply, request: RecordedRequest) -> Any:
        token = token_of(request)
        if token is not None and not reply.replaces_answer:
            reply = dataclasses.replace(reply, text=echo(token), chunks=None)
        return super().render(reply, request)


def emulator_of(provider: type[chatproviders.Provider]) -> type[Protocol]:
    """The emulator class a provider names in its ``emulator`` attribute."""
    assert provider.emulator is not None, f"{provider.name()} has no emulator"
    module, _, name = provider.emulator.partition(":")
    found: type[Protocol] = getattr(importlib.import_module(module), name)
    return found


def echo_emulator(provider: type[chatproviders.Provider]) -> type[Protocol]:
    """``provider``'s emulator, answering each token with :func:`echo`."""
    base = emulator_of(provider)
    return type(f"Echo{base.__name__}", (Echo, base), {})


# -- waiting -------------------------------------------------------------------


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` passes: for states no
    event announces (a thread's end, a socket's close); True if it held.
    """
    deadline = time.monotonic() + timeout
    pause = 0.001
    while not condition():
        if time.monotonic() >= deadline:
            return condition()
        time.sleep(pause)
        pause = min(pause * 2, 0.05)
    return True


# -- what this process holds ----------------------------------------------------


def thread_names() -> list[str]:
    return sorted(thread.name for thread in threading.enumerate())


def extra_threads(before: list[str]) -> list[str]:
    """The threads alive now that were not in ``before`` (names, with repeats)."""
    left = list(before)
    extra = []
    for name in thread_names():
        if name in left:
            left.remove(name)
        else:
            extra.append(name)
    return extra


def socket_fds() -> int:
    """How many of this process's file descriptors are sockets."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                count += 1
        except OSError:  # closed meanwhile (the listdir's own among them)
            pass
    return count


def fds() -> int:
    return len(os.listdir("/proc/self/fd")) - 1  # less the listdir's own


def tcp_ends(port: int) -> tuple[int, int]:
    """This process's open TCP sockets to and from 127.0.0.1:``port``: (client
    ends, server ends), the listener left out. Read from /proc, so only the
    kernel's word counts: what a library believes it closed does not.
    """
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            link = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[len("socket:[") : -1])
    clients = servers = 0
    with open("/proc/net/tcp", encoding="ascii") as table:
        next(table)
        for line in table:
            fields = line.split()
            local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
            if inode not in inodes or state == "0A":  # 0A: LISTEN
                continue
            if int(remote.split(":")[1], 16) == port:
                clients += 1
            elif int(local.split(":")[1], 16) == port:
                servers += 1
    return clients, servers


def refused_url() -> str:
    """A loopback URL where nothing listens (a port bound, then let go)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
