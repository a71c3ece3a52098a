"""pools: clients made and used in the parent, then used in worker pools.

Six clients, each against its emulator: the four seed providers, an
``OpenAICompatible``, and a ``FallbackProvider`` whose first member refuses
connections and whose ``health_interval`` keeps a thread probing (so a
thread, its locks and a watchdog exist at every fork). The parent makes and
uses them (their pools then hold connections), then hands them to a pool of
threads, then to ``multiprocessing`` pools of each start method: fork (the
workers inherit the very objects, sockets and all), spawn and forkserver
(the workers get pickled copies). Each worker call uses ``complete()``,
``stream()`` or ``stream_in_background()`` in turn. Checked:

- every call, in the parent before and after each pool and in the workers,
  returns its own prompt's echo, whole;
- no call and no pool hangs: each pool's calls end within a bound, and its
  workers exit within another once the pool is closed.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import multiprocessing
import random
import threading
import time
from collections.abc import Iterator
from typing import Any

from chatproviders import (
    Acytoo,
    Client,
    CodeLinkAva,
    Cromicle,
    FallbackProvider,
    GPROChat,
    OpenAICompatible,
    Provider,
)
from chatproviders.testing import serve

from .common import Outcome, echo, echo_emulator, prompt, refused_url

KINDS = ("thread", "fork", "spawn", "forkserver")
HOWS = ("complete", "stream", "background")
WORKERS = 2
#: Seconds a pool's calls may take, all of them, and its workers to exit.
CALLS_LIMIT = 120.0
EXIT_LIMIT = 30.0

#: The clients a worker calls: the parent's own (threads, fork) or copies.
_clients: dict[str, Client] = {}


def install(clients: dict[str, Client]) -> None:
    """A pool's initializer: the clients its calls use."""
    global _clients
    _clients = clients


def call(name: str, token: str, how: str) -> str:
    """One chat through client ``name``, on a worker; the text it got."""
    client = _clients[name]
    messages = [{"role": "user", "content": prompt(token)}]
    if how == "complete":
        return client.complete(messages).text
    if how == "stream":
        with client.stream(messages) as stream:
            return "".join(stream)
    return str(client.stream_in_background(messages).result(timeout=60))


def pools(rng: random.Random, calls: int = 6, rounds: int = 3) -> Outcome:
    """Every client in the parent; then, ``rounds`` times for each kind of
    pool, ``calls`` calls each in a new pool while a thread of the parent
    keeps calling too; then in the parent again.
    """
    outcome = Outcome("pools")
    tally = Tally()
    with contextlib.ExitStack() as stack:
        clients = make_clients(stack, rng)
        install(clients)
        in_parent(clients, "parent, before the pools", outcome, tally)
        for kind in KINDS:
            began = time.monotonic()
            for number in range(rounds):
                jobs = [
                    (name, f"chaos-p-{kind}{number}-{name.lower()}-{n}", HOWS[n % 3])
                    for name in clients
                    for n in range(calls)
                ]
                rng.shuffle(jobs)
                with busy(clients, f"{kind}{number}", outcome, tally):
                    if kind == "thread":
                        texts = in_threads(jobs)
                    else:
                        texts = in_processes(kind, clients, jobs, outcome)
                judge(kind, jobs, texts, outcome, tally)
            seconds = time.monotonic() - began
            outcome.figures[f"{kind} pools"] = f"{rounds} in {seconds:.1f} s"
            in_parent(clients, f"parent, after the {kind} pools", outcome, tally)
    outcome.figures["calls right"] = tally.table(list(clients))
    right, asked = sum(tally.right.values()), sum(tally.asked.values())
    outcome.headline = (
        f"{len(KINDS)} kinds of pool x {len(clients)} clients, {right}/{asked} right"
    )
    return outcome


class Tally:
    """Calls asked and answered right, by where they ran and client."""

    def __init__(self) -> None:
        self.right: collections.Counter[tuple[str, str]] = collections.Counter()
        self.asked: collections.Counter[tuple[str, str]] = collections.Counter()

    def table(self, names: list[str]) -> str:
        """Right of asked, one line per place."""
        lines = []
        for place in ("parent", "parent, meanwhile", *KINDS):
            cells = [
                f"{n} {self.right[place, n]}/{self.asked[place, n]}" for n in names
            ]
            lines.append(f"{place}: {', '.join(cells)}")
        return "\n      " + "\n      ".join(lines)


@contextlib.contextmanager
def busy(
    clients: dict[str, Client], tag: str, outcome: Outcome, tally: Tally
) -> Iterator[None]:
    """A thread of the parent calls every client in turn meanwhile, so that a
    fork may come while it holds a lock.
    """
    stop = threading.Event()
    jobs: list[tuple[str, str, str]] = []
    texts: list[Any] = []

    def run() -> None:
        names = list(clients)
        while not stop.is_set():
            n = len(jobs)
            job = (names[n % len(names)], f"chaos-busy-{tag}-{n}", HOWS[n % 3])
            jobs.append(job)
            try:
                texts.append(call(*job))
            except Exception as exc:
                texts.append(exc)

    thread = threading.Thread(target=run, name="chaos-busy", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(CALLS_LIMIT)
        if thread.is_alive():
            texts.append(TimeoutError())
        judge("parent, meanwhile", jobs, texts, outcome, tally, f"parent, during {tag}")


def make_clients(stack: contextlib.ExitStack, rng: random.Random) -> dict[str, Client]:
    """The six clients, each against an echo emulator of its own (framing
    at random); closed when ``stack`` is.
    """
    providers: list[type[Provider]] = [
        Cromicle,
        Acytoo,
        GPROChat,
        CodeLinkAva,
        OpenAICompatible,
    ]
    urls = {}
    for provider in providers:
        framing = rng.choice(("chunked", "length", "close"))
        server = serve(echo_emulator(provider), chunk_size=4, framing=framing)
        urls[provider] = stack.enter_context(server).url
    clients: dict[str, Client] = {
        provider.name(): provider(base_url=urls[provider])
        for provider in providers
        if provider is not OpenAICompatible
    }
    clients["OpenAICompatible"] = OpenAICompatible(
        urls[OpenAICompatible], model="gpt-4o-mini"
    )
    clients["FallbackProvider"] = FallbackProvider(
        [
            Cromicle(base_url=refused_url(), max_retries=0),
            Acytoo(base_url=urls[Acytoo]),
        ],
        health_interval=0.2,
    )
    for client in clients.values():
        stack.callback(client.close)
    return clients


def in_parent(
    clients: dict[str, Client], where: str, outcome: Outcome, tally: Tally
) -> None:
    """Each client once, here: what a child did must not break the parent."""
    tag = where.replace(" ", "-").replace(",", "")
    jobs = [(name, f"chaos-{tag}-{name.lower()}", "complete") for name in clients]
    judge("parent", jobs, in_threads(jobs, workers=1), outcome, tally, where)


def in_threads(jobs: list[tuple[str, str, str]], workers: int = 4) -> list[Any]:
    """Each job's text (or its error) from a pool of threads sharing the clients."""
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(call, *job) for job in jobs]
        return [_result(future, CALLS_LIMIT) for future in futures]


def in_processes(
    kind: str,
    clients: dict[str, Client],
    jobs: list[tuple[str, str, str]],
    outcome: Outcome,
) -> list[Any]:
    """Each job's text (or its error, or TimeoutError if it hangs) from a
    multiprocessing pool started by ``kind``; its workers must then exit.
    """
    context = multiprocessing.get_context(kind)
    pool = context.Pool(WORKERS, initializer=install, initargs=(clients,))
    try:
        pending = [pool.apply_async(call, job) for job in jobs]
        deadline = time.monotonic() + CALLS_LIMIT
        texts = []
        for result in pending:
            try:
                texts.append(result.get(max(0.0, deadline - time.monotonic())))
            except Exception as exc:  # TimeoutError: a hang; else the call's
                texts.append(exc)
        pool.close()
        joiner = threading.Thread(target=pool.join, daemon=True)
        joiner.start()
        joiner.join(EXIT_LIMIT)
        if joiner.is_alive():
            outcome.problem(
                f"{kind} pool: workers still alive {EXIT_LIMIT:g} s after close"
            )
        return texts
    finally:
        pool.terminate()
        pool.join()


def _result(future: concurrent.futures.Future[str], timeout: float) -> Any:
    try:
        return future.result(timeout)
    except Exception as exc:
        return exc


def judge(
    place: str,
    jobs: list[tuple[str, str, str]],
    texts: list[Any],
    outcome: Outcome,
    tally: Tally,
    where: str = "",
) -> None:
    """Count the right texts; name each wrong one, error or hang."""
    for (name, token, how), text in zip(jobs, texts):
        tally.asked[place, name] += 1
        if text == echo(token):
            tally.right[place, name] += 1
            continue
        what = f"{where or place + ' pool'}: {name}.{how}()"
        if isinstance(text, (TimeoutError, concurrent.futures.TimeoutError)):
            outcome.problem(f"{what} hangs")
        elif isinstance(text, BaseException):
            outcome.problem(f"{what} raised {text!r}")
        else:
            outcome.problem(f"{what}: {text!r}, not {echo(token)!r}")
