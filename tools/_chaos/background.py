"""background: many background streams at once, a quarter of them cancelled.

Each round starts ``streams`` ``client.stream_in_background(...)`` calls at
once against an emulator of another provider and framing, each prompt with a
token the emulator echoes. A quarter of the streams are closed: right after
the call (before the first chunk, maybe before the request), after a few
chunks, after the end, or from another thread while the consumer iterates;
the rest are read to the end, by iteration, ``result()`` or ``poll()``, by
eight consumer threads. Checked, each round:

- every stream read to the end has its own text, whole; a closed one has a
  start of it; no stream raises (the server is healthy); no consumer hangs;
- no worker thread is left: once every stream is closed, the threads alive
  are those before the round, the emulator's aside (a bounded wait);
- no socket is left: every client socket still open to the server is one
  idle in the client's pool, and the server holds as many; once the client
  is closed, this process has as many sockets as before the round, and the
  kernel lists none to or from the server's port; and no socket was left to
  the garbage collector to close (a ``ResourceWarning``).
"""

from __future__ import annotations

import collections
import gc
import logging
import queue
import random
import threading
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Optional

import chatproviders
from chatproviders import CodeLinkAva, Cromicle, GPROChat, OpenAICompatible
from chatproviders.testing import EmulatorServer, serve

from .common import (
    Outcome,
    echo,
    echo_emulator,
    extra_threads,
    prompt,
    socket_fds,
    tcp_ends,
    thread_names,
    wait_until,
)

#: Each round's provider and framing, in turn.
ROUNDS: list[tuple[type[chatproviders.Provider], str]] = [
    (OpenAICompatible, "chunked"),
    (Cromicle, "close"),
    (CodeLinkAva, "length"),
    (GPROChat, "chunked"),
]
#: How the cancelled quarter ends, evenly; and how the rest is read.
CANCELS = ("before the first chunk", "mid-stream", "after the end", "from a thread")
READS = ("iterate", "result", "poll")
CONSUMERS = 8
#: Bounds on the waits: a round's reading, and a thread's or socket's end.
ROUND_LIMIT = 180.0
SETTLE = 10.0


@dataclass
class Job:
    """One stream, and what its consumer does with it."""

    token: str
    fate: str  # one of CANCELS, or of READS
    chunks: int  # mid-stream: how many to take before closing
    delay: float  # from a thread: how long after the first chunk it closes
    stream: Any = None
    text: str = ""
    error: Optional[BaseException] = None
    finished: bool = False


@dataclass
class Tally:
    streams: int = 0
    whole: int = 0
    fates: collections.Counter[str] = field(default_factory=collections.Counter)
    threads_left: int = 0
    sockets_left: int = 0
    collected: int = 0  # sockets the garbage collector closed
    discarded: int = 0  # connections urllib3's full pool closed
    seconds: list[float] = field(default_factory=list)


def background(rng: random.Random, rounds: int = 4, streams: int = 320) -> Outcome:
    """``rounds`` rounds of ``streams`` background streams each."""
    outcome = Outcome("background")
    tally = Tally()
    with _PoolFullCounter() as full, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        for number in range(1, rounds + 1):
            provider, framing = ROUNDS[(number - 1) % len(ROUNDS)]
            began = time.monotonic()
            one_round(number, provider, framing, streams, rng, outcome, tally)
            tally.seconds.append(time.monotonic() - began)
        gc.collect()
        unclosed = [w for w in caught if issubclass(w.category, ResourceWarning)]
    tally.collected = len(unclosed)
    for warning in unclosed[:5]:
        outcome.problem(f"left to the garbage collector: {warning.message}")
    tally.discarded = full.count
    outcome.figures.update(_figures(tally, rounds))
    outcome.headline = (
        f"{tally.streams} streams, {tally.threads_left} threads and "
        f"{tally.sockets_left} sockets left"
    )
    return outcome


def one_round(
    number: int,
    provider: type[chatproviders.Provider],
    framing: str,
    streams: int,
    rng: random.Random,
    outcome: Outcome,
    tally: Tally,
) -> None:
    where = f"round {number} ({provider.name()}, {framing})"
    with serve(
        echo_emulator(provider), chunk_size=3, delay=0.004, framing=framing
    ) as server:
        threads, sockets = thread_names(), socket_fds()
        client = _client(provider, server.url)
        jobs = plan(number, streams, rng)
        for job in jobs:
            messages = [{"role": "user", "content": prompt(job.token)}]
            job.stream = client.stream_in_background(messages)
            if job.fate == "before the first chunk":
                job.stream.close()
        rng.shuffle(jobs)
        if not consume(jobs):
            outcome.problem(f"{where}: consumers still busy after {ROUND_LIMIT:g} s")
        judge(jobs, where, outcome, tally)
        leftovers(client, server, threads, sockets, where, outcome, tally)


def _client(provider: type[chatproviders.Provider], url: str) -> chatproviders.Client:
    if provider is OpenAICompatible:
        return OpenAICompatible(url, model="gpt-4o-mini")
    return provider(base_url=url)


def plan(number: int, streams: int, rng: random.Random) -> list[Job]:
    """A job per stream: a quarter cancelled (each way as often), the rest
    read whole, each way as often.
    """
    cancelled = streams // 4
    fates = [CANCELS[i % len(CANCELS)] for i in range(cancelled)]
    fates += [READS[i % len(READS)] for i in range(streams - cancelled)]
    rng.shuffle(fates)
    return [
        Job(f"chaos-b{number}-s{i}", fate, rng.randint(1, 4), rng.uniform(0, 0.01))
        for i, fate in enumerate(fates)
    ]


def consume(jobs: list[Job]) -> bool:
    """Do every job on consumer threads; False if they did not end in time."""
    todo: queue.SimpleQueue[Job] = queue.SimpleQueue()
    for job in jobs:
        todo.put(job)

    def work() -> None:
        while True:
            try:
                job = todo.get_nowait()
            except queue.Empty:
                return
            try:
                job.text = do(job)
            except Exception as exc:  # a stream that raised: judged later
                job.error = exc
            job.finished = True

    consumers = [
        threading.Thread(target=work, name=f"chaos-consumer-{n}", daemon=True)
        for n in range(CONSUMERS)
    ]
    for consumer in consumers:
        consumer.start()
    deadline = time.monotonic() + ROUND_LIMIT
    for consumer in consumers:
        consumer.join(max(0.0, deadline - time.monotonic()))
    return not any(consumer.is_alive() for consumer in consumers)


def do(job: Job) -> str:
    """What the job's fate says; the text its consumer got."""
    stream = job.stream
    if job.fate == "iterate":
        return "".join(stream)
    if job.fate == "result":
        return str(stream.result(timeout=60))
    if job.fate == "poll":
        parts: list[str] = []
        while not stream.done:
            parts += stream.poll()
            time.sleep(0.005)
        return "".join(parts)
    if job.fate == "before the first chunk":
        return str(stream.result(timeout=5))  # what came before the close
    if job.fate == "mid-stream":
        taken = [next(stream, "") for _ in range(job.chunks)]
        stream.close()
        return "".join(taken)
    if job.fate == "after the end":
        text = stream.result(timeout=60)
        stream.close()
        return str(text)
    return read_while_closed(stream, job.delay)


def read_while_closed(stream: Any, delay: float) -> str:
    """Iterate ``stream`` while another thread closes it, ``delay`` seconds
    after the first chunk; the loop must end when it does.
    """
    first = threading.Event()

    def close() -> None:
        first.wait(60)
        time.sleep(delay)
        stream.close()

    closer = threading.Thread(target=close, name="chaos-closer", daemon=True)
    closer.start()
    parts = []
    try:
        for chunk in stream:
            parts.append(chunk)
            first.set()
    finally:
        first.set()
        closer.join(60)
    return "".join(parts)


def judge(jobs: list[Job], where: str, outcome: Outcome, tally: Tally) -> None:
    """Whole texts for the streams read whole, starts for the closed ones."""
    for job in jobs:
        tally.streams += 1
        tally.fates[job.fate if job.fate in CANCELS else "read whole"] += 1
        expected = echo(job.token)
        what = f"{where}: stream {job.token} ({job.fate})"
        if not job.finished:
            outcome.problem(f"{what}: its consumer hangs")
        elif job.error is not None:
            outcome.problem(f"{what} raised {job.error!r}")
        elif job.fate in READS or job.fate == "after the end":
            if job.text != expected:
                outcome.problem(f"{what}: {job.text!r}, not {expected!r}")
            elif job.fate in READS:
                tally.whole += 1
        elif not expected.startswith(job.text):
            outcome.problem(f"{what}: {job.text!r} does not start {expected!r}")


def leftovers(
    client: chatproviders.Client,
    server: EmulatorServer,
    threads: list[str],
    sockets: int,
    where: str,
    outcome: Outcome,
    tally: Tally,
) -> None:
    """No worker thread, and no socket but the pool's; then, the client
    closed, nothing at all that was not there before the round.
    """

    def workers() -> list[str]:
        extra = extra_threads(threads)
        return [name for name in extra if not name.startswith("chatproviders-emulator")]

    if not wait_until(lambda: not workers(), SETTLE):
        tally.threads_left += len(workers())
        outcome.problem(f"{where}: threads left: {_names(workers())}")
    pooled = idle_in_pool(client)
    ends = tcp_ends(server.port)
    if ends != (pooled, pooled) and not wait_until(
        lambda: tcp_ends(server.port) == (idle_in_pool(client), idle_in_pool(client)),
        SETTLE,
    ):
        outcome.problem(
            f"{where}: (client, server) sockets open {tcp_ends(server.port)}, "
            f"but {idle_in_pool(client)} idle in the pool"
        )
    client.close()
    closed = lambda: tcp_ends(server.port) == (0, 0)  # noqa: E731
    if not wait_until(closed, SETTLE):
        clients, servers = tcp_ends(server.port)
        tally.sockets_left += clients + servers
        gc.collect()  # what only the collector frees is named so, not hidden
        until = " until the garbage collector ran" if wait_until(closed, SETTLE) else ""
        outcome.problem(
            f"{where}: after client.close(), {clients} client and {servers} server "
            f"sockets stayed open{until}"
        )
    if not wait_until(lambda: not extra_threads(threads), SETTLE):
        tally.threads_left += len(extra_threads(threads))
        outcome.problem(f"{where}: threads left: {_names(extra_threads(threads))}")
    if not wait_until(lambda: socket_fds() <= sockets, SETTLE):
        tally.sockets_left += socket_fds() - sockets
        outcome.problem(f"{where}: {socket_fds() - sockets} sockets left open")


def idle_in_pool(client: chatproviders.Client) -> int:
    """The connections with an open socket waiting in the client's pools
    (urllib3's: each pool's queue of connections, ``None`` for a free slot).
    """
    count = 0
    session = getattr(client, "session", None)
    for adapter in getattr(session, "adapters", {}).values():
        manager = getattr(adapter, "poolmanager", None)
        if manager is None:
            continue
        for key in list(manager.pools.keys()):
            pool = manager.pools.get(key)
            waiting = getattr(getattr(pool, "pool", None), "queue", ())
            count += sum(getattr(c, "sock", None) is not None for c in list(waiting))
    return count


def _names(names: list[str]) -> str:
    counts = collections.Counter(name.rstrip("0123456789") for name in names)
    return ", ".join(f"{n} x {name}" for name, n in counts.most_common())


class _PoolFullCounter(logging.Handler):
    """Counts urllib3's "Connection pool is full, discarding connection"
    (more streams at once than a pool keeps; the docs say so), and keeps
    them off the screen.
    """

    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        self._logger = logging.getLogger("urllib3.connectionpool")
        self._propagate = True

    def emit(self, record: logging.LogRecord) -> None:
        if "pool is full" in record.getMessage():
            self.count += 1

    def __enter__(self) -> _PoolFullCounter:
        self._logger.addHandler(self)
        self._propagate, self._logger.propagate = self._logger.propagate, False
        return self

    def __exit__(self, *exc: object) -> None:
        self._logger.removeHandler(self)
        self._logger.propagate = self._propagate


def _figures(tally: Tally, rounds: int) -> dict[str, Any]:
    cancelled = ", ".join(f"{tally.fates[fate]} {fate}" for fate in CANCELS)
    return {
        "rounds": f"{rounds} ({', '.join(f'{s:.0f} s' for s in tally.seconds)})",
        "streams": tally.streams,
        "read whole, text right": f"{tally.whole} of {tally.fates['read whole']}",
        "cancelled": cancelled,
        "threads left": tally.threads_left,
        "sockets open past client.close() (both ends)": tally.sockets_left,
        "ResourceWarnings of unclosed sockets": tally.collected,
        "connections a full pool discarded": tally.discarded,
    }
