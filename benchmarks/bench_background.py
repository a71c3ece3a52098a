"""Background streaming: what the worker thread costs, and 200 streams at once.

    python benchmarks/bench_background.py            # both parts, about a minute
    python benchmarks/bench_background.py --quick    # a smoke run
    python benchmarks/bench_background.py overhead|concurrent

1. Per-chunk overhead. The same 100,000-event SSE reply (CodeLinkAva, one
   chunk per event) from a server process writing as fast as the socket takes
   it, read directly (``client.stream``) and through the worker
   (``client.stream_in_background``), rounds interleaved, medians; then the
   handoff alone, ``BackgroundStream(list)`` against iterating the list,
   for a few queue sizes.
2. Concurrency. 200 background streams through one client, all started at
   once and consumed by one asyncio loop (``async for``), against one server
   process that paces 100 tokens per reply at 10 ms: wall time against the
   1 s one reply takes, and the client process's peak RSS.

Each part runs in a process of its own, so that peak RSS is its own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import _bodies
import _report
import requests
from _servers import Server, Token, spawn, tokens

import chatproviders
from chatproviders import BackgroundStream, CodeLinkAva

MESSAGES = [{"role": "user", "content": "Hi"}]
CHUNKS = 100_000
STREAMS = 200
TOKENS, INTERVAL = 100, 0.010


def rss_mib() -> float:
    """This process's peak resident set size so far, in MiB (Linux: KiB units)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- 1. per-chunk overhead -----------------------------------------------------


def overhead(quick: bool) -> dict[str, Any]:
    rounds = 3 if quick else 7
    cycle = len(_bodies.body("sse", 1).data) - len(_bodies.DONE)
    cycles = -(-CHUNKS // len(_bodies.PIECES))
    body = _bodies.body("sse", cycle * cycles)
    args = ("bulk", "--kind", "sse", "--size", str(cycle * cycles))
    times: dict[str, list[float]] = {"direct": [], "background": []}
    with spawn(*args) as port, CodeLinkAva(base_url=f"http://127.0.0.1:{port}") as c:

        def direct() -> int:
            with c.stream(MESSAGES) as stream:
                return sum(1 for _ in stream)

        def background() -> int:
            with c.stream_in_background(MESSAGES) as stream:
                return sum(1 for _ in stream)

        for _ in range(rounds):
            for name, run in (("direct", direct), ("background", background)):
                start = time.perf_counter()
                count = run()
                times[name].append(time.perf_counter() - start)
                assert count == body.pieces, (name, count, body.pieces)
    network = {name: _report.median(values) for name, values in times.items()}

    pieces = [str(n) for n in range(CHUNKS)]
    memory: dict[str, float] = {}
    for _ in range(rounds):
        for name, size in [("list", 0), ("16", 16), ("64", 64), ("256", 256)]:
            start = time.perf_counter()
            if size:
                count = sum(1 for _ in BackgroundStream(pieces, maxsize=size))
            else:
                count = sum(1 for _ in pieces)
            elapsed = time.perf_counter() - start
            assert count == CHUNKS
            memory[name] = min(memory.get(name, elapsed), elapsed)
    return {"chunks": body.pieces, "network": network, "memory": memory}


def show_overhead(result: dict[str, Any]) -> None:
    chunks, network, memory = result["chunks"], result["network"], result["memory"]
    per = {name: seconds / chunks * 1e6 for name, seconds in network.items()}
    _report.table(
        f"Per-chunk cost, {chunks:,}-event SSE reply over loopback (medians)",
        ["read", "total s", "us/chunk"],
        [[name, f"{network[name]:.3f}", f"{per[name]:.2f}"] for name in network],
    )
    print(f"overhead of the worker: {per['background'] - per['direct']:+.2f} us/chunk")
    base = memory["list"] / CHUNKS * 1e6
    _report.table(
        f"Handoff alone, {CHUNKS:,} chunks from a list (best of rounds)",
        ["maxsize", "total s", "us/chunk", "over the list"],
        [
            [
                name,
                f"{s:.3f}",
                f"{s / CHUNKS * 1e6:.2f}",
                f"{s / CHUNKS * 1e6 - base:+.2f}",
            ]
            for name, s in memory.items()
        ],
    )


# -- 2. 200 concurrent streams -------------------------------------------------


def serve_paced() -> None:
    """A server process: TOKENS SSE events per reply, one every INTERVAL s."""
    pieces = [Token(_bodies.event(f" t{n}"), len(f" t{n}")) for n in range(TOKENS)]
    writes: list[Any] = []
    answer = tokens(
        pieces, INTERVAL, "chunked", "text/event-stream", _bodies.DONE, writes
    )
    with Server(answer) as server:
        print(server.port, flush=True)
        sys.stdin.read()  # until the parent closes our stdin


@contextmanager
def paced_server() -> Iterator[int]:
    process = subprocess.Popen(
        [sys.executable, __file__, "serve-paced"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        yield int(process.stdout.readline())
    finally:
        process.stdin.close()
        process.wait(10)
        process.stdout.close()


def crowd(quick: bool, background: bool) -> dict[str, Any]:
    """STREAMS replies at once through one client: background streams consumed
    by one asyncio loop, or (the baseline) direct streams in a thread each.
    """
    streams = 50 if quick else STREAMS
    session = requests.Session()  # a pool as large as the crowd: no discards
    session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=streams))
    before, threads = rss_mib(), threading.active_count()
    peak, calls = [0], [0.0]

    async def consume(stream: BackgroundStream) -> int:
        return sum([1 async for _ in stream])

    async def in_background(client: CodeLinkAva) -> list[int]:
        begin = time.perf_counter()
        started = [client.stream_in_background(MESSAGES) for _ in range(streams)]
        calls[0] = time.perf_counter() - begin
        peak[0] = threading.active_count() - threads
        return list(await asyncio.gather(*(consume(s) for s in started)))

    def in_threads(client: CodeLinkAva) -> list[int]:
        counts = [0] * streams

        def read(n: int) -> None:
            with client.stream(MESSAGES) as stream:
                counts[n] = sum(1 for _ in stream)

        runners = [threading.Thread(target=read, args=(n,)) for n in range(streams)]
        for runner in runners:
            runner.start()
        peak[0] = threading.active_count() - threads
        for runner in runners:
            runner.join()
        return counts

    with paced_server() as port:
        client = CodeLinkAva(base_url=f"http://127.0.0.1:{port}", session=session)
        start = time.perf_counter()
        counts = (
            asyncio.run(in_background(client)) if background else in_threads(client)
        )
        wall = time.perf_counter() - start
    session.close()
    assert counts == [TOKENS] * streams, counts
    return {
        "streams": streams,
        "wall": wall,
        "threads": peak[0],
        "calls": calls[0],
        "rss_before": before,
        "rss_peak": rss_mib(),
        "threads_after": threading.active_count() - threads,
    }


def show_concurrent(background: dict[str, Any], threads: dict[str, Any]) -> None:
    n = background["streams"]
    rows = []
    for name, result in [
        ("background, one asyncio consumer", background),
        ("direct, a thread each (baseline)", threads),
    ]:
        extra = (result["rss_peak"] - result["rss_before"]) * 1024 / n
        rows.append(
            [
                name,
                f"{result['wall']:.2f}",
                result["threads"],
                f"{result['rss_before']:.1f}",
                f"{result['rss_peak']:.1f}",
                f"{extra:.0f}",
                result["threads_after"],
            ]
        )
    _report.table(
        f"{n} streams at once through one client, {TOKENS} tokens at "
        f"{INTERVAL * 1000:.0f} ms each ({TOKENS * INTERVAL:.1f} s a reply)",
        ["run", "wall s", "threads", "RSS MiB", "peak MiB", "KiB/stream", "left"],
        rows,
    )
    each = background["calls"] / n * 1000
    print(f"stream_in_background() returned in {each:.2f} ms a call on average")


# -- running -------------------------------------------------------------------

#: What each child process measures, and which of them a part prints.
CHILDREN = {
    "overhead": overhead,
    "background": lambda quick: crowd(quick, background=True),
    "threads": lambda quick: crowd(quick, background=False),
}
PARTS = {
    "overhead": (["overhead"], show_overhead),
    "concurrent": (["background", "threads"], show_concurrent),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("parts", nargs="*", help="overhead, concurrent (default: both)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.parts == ["serve-paced"]:
        serve_paced()
        return
    if options.child:  # one measurement, its result as JSON on stdout
        print(json.dumps(CHILDREN[options.child](options.quick)))
        return
    unknown = set(options.parts) - PARTS.keys()
    if unknown:
        parser.error(f"unknown part(s): {', '.join(sorted(unknown))}")
    print(
        f"chatproviders {chatproviders.__version__}, Python {platform.python_version()}"
        f", {platform.machine()}, {os.cpu_count()} cores"
    )
    for part in options.parts or list(PARTS):
        children, show = PARTS[part]
        results = []
        for child in children:
            argv = [sys.executable, __file__, "--child", child]
            argv += ["--quick"] if options.quick else []
            run = subprocess.run(argv, check=True, stdout=subprocess.PIPE, text=True)
            results.append(json.loads(run.stdout))
        show(*results)


if __name__ == "__main__":
    main()
