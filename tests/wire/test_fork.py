"""A forked child never hangs in chatproviders' after-fork hooks.

``os.fork()`` runs the hooks in the child, which has one thread: a lock
another parent thread held at the fork stays held there for good. So no hook
may take a lock the parent's threads use (urllib3's pool-manager and pool
locks among them). Every test here forks for real, with the parent's
threads holding those locks or busy calling the client; a child that does
not report back in time is killed and fails the test, never hangs the suite.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Callable

import pytest

from chatproviders import Cromicle
from chatproviders.testing import EmulatorServer, serve
from tests.loopback import WAIT

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
HI = [{"role": "user", "content": "hello"}]


@pytest.fixture
def cromicle() -> Iterator[EmulatorServer]:
    with serve("cromicle", text="ok") as server:
        yield server


def fork_and_report(work: Callable[[], bytes]) -> tuple[int, bytes]:
    """Fork; the child writes the byte ``work()`` gives and leaves with
    os._exit. Returns (pid, byte), the byte ``b""`` when the child did not
    report within WAIT (it is then killed)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: no cleanup, no pytest, whatever happens
        status = b"0"
        try:
            status = work()
        finally:
            os.write(write, status)
            os._exit(0)
    os.close(write)
    try:
        ready, _, _ = select.select([read], [], [], WAIT)
        got = os.read(read, 1) if ready else b""
    finally:
        os.close(read)
    if not got:
        os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return pid, got


def test_a_fork_while_another_thread_holds_the_pool_manager_lock(
    cromicle: EmulatorServer,
) -> None:
    """A parent thread inside urllib3's pool-manager lock at the fork: the
    child neither hangs nor is stuck later; it sends on a pool of its own."""
    client = Cromicle(cromicle.url, total_timeout=WAIT)
    assert client.complete(HI).text == "ok"  # a pooled connection to forget
    manager = client.session.get_adapter(cromicle.url).poolmanager
    held, done = threading.Event(), threading.Event()

    def hold() -> None:
        with manager.pools.lock:
            held.set()
            done.wait(WAIT)

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    assert held.wait(WAIT)
    try:
        _, got = fork_and_report(
            lambda: b"1" if client.complete(HI).text == "ok" else b"0"
        )
    finally:
        done.set()
        holder.join(WAIT)
    assert got == b"1"
    client.close()


#: The stress run, in a fresh interpreter: a small process forks faster than
#: this one (pytest and everything the tests import), and a hang there is
#: counted and killed, never left in the test process. It prints
#: "forks hangs calls errors failed-calls".
STRESS = """
import os, select, signal, sys, threading
from chatproviders import ChatProvidersError, Cromicle
from chatproviders.testing import serve

FORKS, BUSY, WAIT = (float(arg) for arg in sys.argv[1:])
HI = [{"role": "user", "content": "hello"}]
with serve("cromicle", text="ok") as server:
    client = Cromicle(server.url, total_timeout=WAIT)
    stop = threading.Event()
    calls, errors, failed = [0], [], [0]

    def busy():
        try:
            while not stop.is_set():
                try:
                    client.complete(HI)
                    calls[0] += 1
                except ChatProvidersError as error:  # a machine too busy, say
                    failed[0] += 1
                    print(repr(error), file=sys.stderr)
        except BaseException as error:
            errors.append(error)
            print(repr(error), file=sys.stderr)

    threads = [threading.Thread(target=busy, daemon=True) for _ in range(int(BUSY))]
    for thread in threads:
        thread.start()
    sys.setswitchinterval(1e-4)  # the forking thread gets its turn quickly
    hangs, exiting = 0, []
    for _ in range(int(FORKS)):
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.write(write, b"1")
            os._exit(0)
        os.close(write)
        if not select.select([read], [], [], WAIT)[0]:
            hangs += 1
            os.kill(pid, signal.SIGKILL)
        os.close(read)
        exiting.append(pid)  # reaped later: its exit overlaps the next fork
        if len(exiting) == 32:
            for pid in exiting:
                os.waitpid(pid, 0)
            exiting.clear()
    for pid in exiting:
        os.waitpid(pid, 0)
    stop.set()
    for thread in threads:
        thread.join(WAIT)
    client.close()
    print(int(FORKS), hangs, calls[0], len(errors), failed[0])
"""


@pytest.mark.slow
def test_3000_forks_under_8_threads_calling_the_client() -> None:
    """3,000 real forks while 8 threads keep calling one client: every child
    (one that never uses chatproviders, as a fork pool's) gets past the
    hooks and exits; 0 hangs."""
    done = subprocess.run(
        [sys.executable, "-c", STRESS, "3000", "8", str(WAIT)],
        capture_output=True,
        text=True,
        timeout=900,  # the bound if everything hung: 3000 * WAIT is far more
        check=False,
    )
    assert done.returncode == 0, done.stderr
    forks, hangs, calls, errors, failed = map(int, done.stdout.split())
    assert (forks, errors) == (3000, 0), done.stderr
    assert calls > 10 * failed  # the threads really were busy, and answered
    assert hangs == 0


def test_a_forked_child_closes_its_copies_of_the_pooled_sockets(
    cromicle: EmulatorServer,
) -> None:
    """The child closes its copy of each pooled socket at once (the parent's
    stays open and usable), so no connection lives on in a child that never
    uses it."""
    client = Cromicle(cromicle.url, total_timeout=WAIT)
    assert client.complete(HI).text == "ok"
    manager = client.session.get_adapter(cromicle.url).poolmanager
    pools = [manager.pools.get(key) for key in manager.pools.keys()]  # noqa: SIM118
    (fd,) = [c.sock.fileno() for p in pools for c in p.pool.queue if c and c.sock]

    def closed_in_child() -> bytes:
        try:
            os.fstat(fd)
        except OSError:
            return b"1"
        return b"0"

    _, got = fork_and_report(closed_in_child)
    assert got == b"1"
    os.fstat(fd)  # the parent's own is open
    assert client.complete(HI).text == "ok"
    client.close()
