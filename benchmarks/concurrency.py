"""Many live streams at once: token delay, CPU and memory of the client process.

    python benchmarks/concurrency.py                 # N = 100, 500, 1000; 3 runs
    python benchmarks/concurrency.py --quick         # N = 20, 50; 1 run
    python benchmarks/concurrency.py -n 1000 --runs 3 --modes threads,background
    python benchmarks/concurrency.py -n 1000 --plot benchmarks/concurrency.png

A server process of its own (asyncio, 127.0.0.1) answers each request with an
OpenAI-style SSE stream: ``TOKENS`` chunks, one every ``INTERVAL`` seconds.
Each token's text is the server's ``time.monotonic()`` taken right before the
write; the client takes ``time.monotonic()`` when the text reaches the caller
(one clock for both processes on Linux: CLOCK_MONOTONIC), so the delay counts
the kernel, the client's HTTP stack and the hand-off to the caller, and
nothing the server did late.

The server spreads the streams' write times evenly over the interval (stream
*k* of *N* writes at ``k/N`` of it), so that N streams are N tokens every
INTERVAL seconds, a steady load, as replies that started at different times
are; ``--aligned`` makes every stream write on the same tick instead (the
worst case: N tokens in one burst every INTERVAL).

Client modes, each in a process of its own (its CPU seconds, user + system,
over the streaming; its peak RSS, the whole process):

* ``threads``: ours, ``client.stream()`` read in a thread each;
* ``background``: ours, ``client.stream_in_background()`` consumed with
  ``async for`` by tasks on one asyncio loop;
* ``openai-threads``: the ``openai`` SDK's ``OpenAI`` client, a thread each;
* ``openai-async``: the ``openai`` SDK's ``AsyncOpenAI`` client on one loop.

The two openai modes run only when ``openai`` is installed (``pip install
chatproviders[bench]``); the picture needs ``matplotlib`` (same extra). Every
client gets a connection pool as large as N, and the file limit is raised to
fit N sockets. Each run also reports the share of the machine's CPUs that
other processes used meanwhile, and how late the server wrote (its own p99).

To see what a setting of the client process changes: ``--switch-interval S``
(``sys.setswitchinterval``), ``--stack-size KIB`` (``threading.stack_size``),
``--gc-freeze`` (``gc.freeze()`` once the client is made). ``--save FILE``
keeps the raw runs, ``--load FILE...`` reports saved ones, and ``--before
FILE`` draws saved runs of older code as dashed curves in the picture. The
clients import the ``chatproviders`` this script would (install it, or set
``PYTHONPATH``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Optional

import _report

TOKENS, INTERVAL = 20, 0.100
MESSAGES = [{"role": "user", "content": "Hi"}]
MODEL = "paced"
NS, QUICK_NS = (100, 500, 1000), (20, 50)

MODES = {
    "threads": "ours, stream(), a thread each",
    "background": "ours, stream_in_background(), async for",
    "openai-threads": "openai SDK, OpenAI, a thread each",
    "openai-async": "openai SDK, AsyncOpenAI",
}
#: p99 targets at N = 1000, in seconds (benchmark targets, not tests).
TARGET_P99 = {"threads": 0.050, "background": 0.100}
TARGET_RSS_MIB = 150
TARGET_N = 1000

Records = list[list[tuple[float, str]]]  # per stream: (arrival, text)


def raise_file_limit(needed: int) -> None:
    """Raise RLIMIT_NOFILE's soft limit to fit ``needed`` descriptors, if it can."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = needed + 256
    if soft != resource.RLIM_INFINITY and soft < want:
        top = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (top, hard))


# -- the server ---------------------------------------------------------------


def _event(content: str, first: bool) -> bytes:
    delta: dict[str, str] = {"content": content}
    if first:
        delta = {"role": "assistant", **delta}
    return _sse({"choices": [{"index": 0, "delta": delta, "finish_reason": None}]})


def _sse(fields: dict[str, Any]) -> bytes:
    chunk = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": MODEL,
        **fields,
    }
    return b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n"


def _chunked(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
    b"Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n"
)
END = (
    _chunked(
        _sse({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        + b"data: [DONE]\n\n"
    )
    + b"0\r\n\r\n"
)


async def serve(streams: int, aligned: bool) -> None:
    """Serve paced SSE replies on 127.0.0.1 until stdin closes; print the port."""
    loop = asyncio.get_running_loop()
    arrivals = iter(range(1 << 62))
    late: list[float] = []  # how long after its due time each token was written
    epoch: list[float] = []

    async def answer(writer: asyncio.StreamWriter) -> None:
        number = next(arrivals)
        now = loop.time()
        if not epoch:
            epoch.append(now)
        phase = 0.0 if aligned else (number % streams) / streams * INTERVAL
        # The first write slot on this stream's grid after its request came.
        slot = epoch[0] + phase
        slot += max(0, -(-(now - slot) // INTERVAL)) * INTERVAL
        writer.write(HEAD)
        for index in range(TOKENS):
            due = slot + (index + 1) * INTERVAL
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            stamp = time.monotonic()
            late.append(loop.time() - due)
            writer.write(_chunked(_event(f"{stamp:.6f} ", index == 0)))
            if writer.transport.get_write_buffer_size() > 1 << 20:
                await writer.drain()  # a reader that stopped reading
        writer.write(END)
        await writer.drain()

    async def connection(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            while True:  # keep-alive: one request after another
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                await reader.readexactly(length)
                await answer(writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(
        connection, "127.0.0.1", 0, backlog=max(128, streams * 2)
    )
    print(server.sockets[0].getsockname()[1], flush=True)
    await loop.run_in_executor(None, sys.stdin.read)  # until the parent closes it
    server.close()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    lateness = _report.percentile(late, 0.99) * 1000 if late else 0.0
    print(json.dumps({"cpu": usage.ru_utime + usage.ru_stime, "late_p99": lateness}))


@contextmanager
def server_process(
    streams: int, aligned: bool, stats: dict[str, float]
) -> Iterator[int]:
    argv = [sys.executable, __file__, "--serve", str(streams), *pace()]
    argv += ["--aligned"] if aligned else []
    process = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        line = process.stdout.readline()
        if not line:
            raise RuntimeError("the server process failed to start")
        yield int(line)
    finally:
        process.stdin.close()
        try:
            process.wait(10)
            stats.update(json.loads(process.stdout.read() or "{}"))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()


# -- the clients (each in a process of its own) ----------------------------------


def in_threads(streams: int, read: Callable[[list[tuple[float, str]]], None]) -> None:
    """Run ``read(record)`` in a thread per stream, all at once."""
    records: Records = [[] for _ in range(streams)]
    runners = [
        threading.Thread(target=read, args=(record,), daemon=True) for record in records
    ]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join()
    RESULT["records"] = records


RESULT: dict[str, Any] = {}


def ours_threads(base_url: str, streams: int) -> Callable[[], None]:
    client = ours_client(base_url, streams)
    clock = time.monotonic

    def read(record: list[tuple[float, str]]) -> None:
        with client.stream(MESSAGES) as stream:
            for chunk in stream:
                record.append((clock(), chunk))

    return lambda: in_threads(streams, read)


def ours_background(base_url: str, streams: int) -> Callable[[], None]:
    client = ours_client(base_url, streams)
    clock = time.monotonic

    async def read(record: list[tuple[float, str]]) -> None:
        async with client.stream_in_background(MESSAGES) as stream:
            async for chunk in stream:
                record.append((clock(), chunk))

    async def main() -> None:
        records: Records = [[] for _ in range(streams)]
        await asyncio.gather(*(read(record) for record in records))
        RESULT["records"] = records

    return lambda: asyncio.run(main())


def ours_client(base_url: str, streams: int) -> Any:
    import requests
    from requests.adapters import HTTPAdapter

    from chatproviders import OpenAICompatible

    session = requests.Session()
    session.mount("http://", HTTPAdapter(pool_maxsize=streams))
    return OpenAICompatible(base_url=base_url, model=MODEL, session=session)


def _limits(streams: int) -> Any:
    from openai import _constants

    limits = _constants.DEFAULT_CONNECTION_LIMITS  # an httpx Limits
    return type(limits)(max_connections=streams, max_keepalive_connections=streams)


def openai_threads(base_url: str, streams: int) -> Callable[[], None]:
    import openai

    client = openai.OpenAI(
        base_url=base_url,
        api_key="bench",
        max_retries=0,
        http_client=openai.DefaultHttpxClient(limits=_limits(streams)),
    )
    clock = time.monotonic

    def read(record: list[tuple[float, str]]) -> None:
        with client.chat.completions.create(
            model=MODEL, messages=MESSAGES, stream=True
        ) as stream:
            for event in stream:
                if event.choices and event.choices[0].delta.content:
                    record.append((clock(), event.choices[0].delta.content))

    return lambda: in_threads(streams, read)


def openai_async(base_url: str, streams: int) -> Callable[[], None]:
    import openai

    clock = time.monotonic

    async def main() -> None:
        client = openai.AsyncOpenAI(
            base_url=base_url,
            api_key="bench",
            max_retries=0,
            http_client=openai.DefaultAsyncHttpxClient(limits=_limits(streams)),
        )

        async def read(record: list[tuple[float, str]]) -> None:
            stream = await client.chat.completions.create(
                model=MODEL,
                messages=MESSAGES,  # type: ignore[arg-type]
                stream=True,
            )
            async with stream:
                async for event in stream:
                    if event.choices and event.choices[0].delta.content:
                        record.append((clock(), event.choices[0].delta.content))

        records: Records = [[] for _ in range(streams)]
        await asyncio.gather(*(read(record) for record in records))
        RESULT["records"] = records
        await client.close()

    return lambda: asyncio.run(main())


CLIENTS = {
    "threads": ours_threads,
    "background": ours_background,
    "openai-threads": openai_threads,
    "openai-async": openai_async,
}


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def client(mode: str, port: int, streams: int) -> dict[str, Any]:
    """Measure one mode; the delays in ms, the CPU seconds, the peak RSS."""
    raise_file_limit(streams)
    tune()
    run = CLIENTS[mode](f"http://127.0.0.1:{port}/v1", streams)
    if TUNING["gc_freeze"]:  # what the imports and the client made stays put
        gc.collect()
        gc.freeze()
    before, start = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    run()
    wall, after = time.monotonic() - start, resource.getrusage(resource.RUSAGE_SELF)
    user, system = after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime
    switches = after.ru_nvcsw - before.ru_nvcsw + after.ru_nivcsw - before.ru_nivcsw
    delays: list[float] = []
    counts: list[int] = []
    for record in RESULT["records"]:
        count = 0
        for arrival, text in record:
            for stamp in text.split():
                delays.append(round((arrival - float(stamp)) * 1000, 3))
                count += 1
        counts.append(count)
    return {
        "mode": mode,
        "streams": streams,
        "delays_ms": delays,
        "short": sum(1 for count in counts if count != TOKENS),
        "cpu": user + system,
        "system": system,  # of which in the kernel
        "switches": switches,  # context switches, voluntary or not
        "wall": wall,
        "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "tuning": TUNING,
    }


# -- the runs and the report -------------------------------------------------------


def measure(mode: str, streams: int, aligned: bool) -> dict[str, Any]:
    raise_file_limit(streams)
    server: dict[str, float] = {}
    busy, ours, began = busy_seconds(), family_seconds(), time.monotonic()
    with server_process(streams, aligned, server) as port:
        argv = [sys.executable, __file__, "--client", mode, str(port), str(streams)]
        argv += pace()
        done = subprocess.run(
            argv, check=True, stdout=subprocess.PIPE, text=True, env=child_env()
        )
    result: dict[str, Any] = json.loads(done.stdout)
    result["aligned"] = aligned
    result["server"] = server
    # The share of the machine's CPUs that other processes used meanwhile.
    others = busy_seconds() - busy - (family_seconds() - ours)
    result["others_share"] = others / (
        (time.monotonic() - began) * (os.cpu_count() or 1)
    )
    return result


#: Client-process settings some runs change: sys.setswitchinterval (seconds)
#: and threading.stack_size (KiB); None leaves Python's default.
#: gc_freeze: gc.freeze() once the client is made (1) or not (None).
TUNING: dict[str, Optional[float]] = {
    "switch_interval": None,
    "stack_kib": None,
    "gc_freeze": None,
}


def child_env() -> dict[str, str]:
    """This environment, with the chatproviders this process would import first
    on the path, so that the client measured is that one."""
    env = dict(os.environ)
    spec = importlib.util.find_spec("chatproviders")
    if spec is not None and spec.origin is not None:
        root = str(Path(spec.origin).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(
            part for part in (root, env.get("PYTHONPATH")) if part
        )
    return env


def set_pace(tokens: int, interval: float) -> None:
    global TOKENS, INTERVAL
    TOKENS, INTERVAL = tokens, interval


def pace() -> list[str]:
    """The options that pass this run's pace and tuning on to its processes."""
    passed = ["--tokens", str(TOKENS), "--interval", repr(INTERVAL)]
    if TUNING["switch_interval"] is not None:
        passed += ["--switch-interval", repr(TUNING["switch_interval"])]
    if TUNING["stack_kib"] is not None:
        passed += ["--stack-size", str(int(TUNING["stack_kib"]))]
    if TUNING["gc_freeze"]:
        passed += ["--gc-freeze"]
    return passed


def tune() -> None:
    """Apply TUNING in this (client) process."""
    if TUNING["switch_interval"] is not None:
        sys.setswitchinterval(TUNING["switch_interval"])
    if TUNING["stack_kib"] is not None:
        threading.stack_size(int(TUNING["stack_kib"] * 1024))


def busy_seconds() -> float:
    """CPU seconds the whole machine spent busy since boot (Linux), else 0."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(field) for field in stat.readline().split()[1:]]
    except OSError:
        return 0.0
    # user, nice, system, irq, softirq: not idle, iowait or steal
    busy = sum(fields[:3]) + sum(fields[5:7])
    return busy / os.sysconf("SC_CLK_TCK")


def family_seconds() -> float:
    """CPU seconds of this process and of its children that ended."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def summary(result: dict[str, Any]) -> dict[str, float]:
    delays = result["delays_ms"]
    return {
        "p50": _report.percentile(delays, 0.5),
        "p99": _report.percentile(delays, 0.99),
        "max": max(delays),
        "cpu": result["cpu"],
        "rss": result["rss_mib"],
    }


def spread(values: Sequence[float], digits: int) -> str:
    low, high = min(values), max(values)
    if len(values) == 1 or f"{low:.{digits}f}" == f"{high:.{digits}f}":
        return f"{low:.{digits}f}"
    return f"{low:.{digits}f}-{high:.{digits}f}"


def tuned(result: dict[str, Any]) -> str:
    """How a run's client was tuned, as a label suffix ("" for the defaults)."""
    tuning = result.get("tuning") or {}
    parts = []
    if tuning.get("gc_freeze"):
        parts.append("gc.freeze()")
    if tuning.get("switch_interval") is not None:
        parts.append(f"switch interval {tuning['switch_interval'] * 1000:g} ms")
    if tuning.get("stack_kib") is not None:
        parts.append(f"stack {tuning['stack_kib']:g} KiB")
    return "".join(f", {part}" for part in parts)


def variants(group: Sequence[dict[str, Any]]) -> list[tuple[str, str, list[Any]]]:
    """(mode, label, runs) for each mode and tuning in ``group``, defaults first."""
    found = []
    for mode in MODES:
        runs = [r for r in group if r["mode"] == mode]
        for suffix in sorted({tuned(r) for r in runs}):
            chosen = [r for r in runs if tuned(r) == suffix]
            found.append((mode, MODES[mode] + suffix, chosen))
    return found


def report(results: Sequence[dict[str, Any]], check: bool) -> None:
    """One table per N: each mode's spread over its runs; targets at N = 1000."""
    for streams in sorted({result["streams"] for result in results}):
        for aligned in (False, True):
            rows = []
            group = [
                r
                for r in results
                if r["streams"] == streams and r.get("aligned", False) == aligned
            ]
            if not group:
                continue
            for _, label, chosen in variants(group):
                runs = [summary(r) for r in chosen]
                rows.append(
                    [
                        label,
                        len(runs),
                        spread([run["p50"] for run in runs], 1),
                        spread([run["p99"] for run in runs], 1),
                        spread([run["max"] for run in runs], 0),
                        spread([run["cpu"] for run in runs], 2),
                        spread([run["rss"] for run in runs], 0),
                        sum(r["short"] for r in chosen),
                    ]
                )
            kind = "one burst per tick" if aligned else "spread over the interval"
            _report.table(
                f"{streams} streams at once, {TOKENS} tokens each every "
                f"{INTERVAL * 1000:.0f} ms ({kind}); token delay from the server's "
                "write to the caller, over each mode's runs",
                [
                    "client",
                    "runs",
                    "p50 ms",
                    "p99 ms",
                    "max ms",
                    "CPU s",
                    "RSS MiB",
                    "short",
                ],
                rows,
            )
            if check and streams == TARGET_N and not aligned:
                targets([r for r in group if not tuned(r)])


def targets(group: Sequence[dict[str, Any]]) -> None:
    """The issue's targets at N = 1000, on the worst of each mode's runs with
    Python's defaults."""
    sdk_cpu = [r["cpu"] for r in group if r["mode"] == "openai-threads"]
    for mode, limit in TARGET_P99.items():
        runs = [summary(r) for r in group if r["mode"] == mode]
        if runs:
            worst = max(run["p99"] for run in runs)
            verdict = _report.check(
                "concurrency",
                f"p99 < {limit * 1000:.0f} ms, {MODES[mode]}",
                worst < limit * 1000,
                f"worst p99 {worst:.1f} ms",
            )
            print(
                f"  {verdict}  p99 < {limit * 1000:.0f} ms, {MODES[mode]}: "
                f"worst of {len(runs)} runs {worst:.1f} ms"
            )
    for mode in ("threads", "background"):
        runs = [summary(r) for r in group if r["mode"] == mode]
        if not runs:
            continue
        rss = max(run["rss"] for run in runs)
        verdict = _report.check(
            "concurrency",
            f"peak RSS < {TARGET_RSS_MIB} MiB, {MODES[mode]}",
            rss < TARGET_RSS_MIB,
            f"{rss:.0f} MiB",
        )
        print(f"  {verdict}  peak RSS < {TARGET_RSS_MIB} MiB, {MODES[mode]}: {rss:.0f}")
        if sdk_cpu:
            cpu = max(run["cpu"] for run in runs)
            verdict = _report.check(
                "concurrency",
                f"CPU <= half the openai sync client's, {MODES[mode]}",
                cpu <= min(sdk_cpu) / 2,
                f"{cpu:.2f} s against {min(sdk_cpu):.2f} s",
            )
            print(
                f"  {verdict}  CPU at most half the openai sync client's, "
                f"{MODES[mode]}: worst {cpu:.2f} s, SDK best {min(sdk_cpu):.2f} s"
            )


def plot(
    results: Sequence[dict[str, Any]],
    path: Path,
    before: Sequence[dict[str, Any]] = (),
) -> None:
    """Token-delay distributions at the largest N, one curve per mode, all runs
    pooled; ``before`` (saved runs of older code) adds ours as dashed curves.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    group = [r for r in results if not r.get("aligned", False)]
    streams = max(r["streams"] for r in group)
    figure, axes = plt.subplots(figsize=(8.5, 5), dpi=110)
    colours = dict(zip(MODES, ["C0", "C1", "C2", "C3"]))
    at_n = [r for r in group if r["streams"] == streams]
    old = [r for r in before if r["streams"] == streams and not r.get("aligned")]
    curves = [  # tuned runs: only the asyncio consumer's, which tuning changes
        (mode, label, chosen, ":" if tuned(chosen[0]) else "-")
        for mode, label, chosen in variants(at_n)
        if mode == "background" or not tuned(chosen[0])
    ]
    curves += [
        (mode, f"{label}, before", chosen, "--")
        for mode, label, chosen in variants(old)
        if mode in ("threads", "background") and not tuned(chosen[0])
    ]
    for mode, label, chosen, style in curves:
        delays = sorted(d for r in chosen for d in r["delays_ms"])
        if not delays:
            continue
        total = len(delays)
        # The share of tokens later than x: the tail, where the modes differ.
        later = [(total - i) / total for i in range(total)]
        p99 = _report.percentile(delays, 0.99)
        axes.step(
            [max(d, 0.01) for d in delays],
            later,
            where="post",
            color=colours[mode],
            linestyle=style,
            linewidth=1.6 if style == "-" else 1.1,
            label=f"{label}: p99 {p99:,.0f} ms",
        )
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_ylim(1e-4, 1.05)
    axes.axhline(0.01, color="grey", linewidth=0.6, linestyle=":")
    axes.text(0.012, 0.0115, "p99", color="grey", fontsize=8)
    axes.set_xlabel("token delay, from the server's write to the caller (ms)")
    axes.set_ylabel("share of tokens later than that")
    axes.set_title(
        f"{streams} live streams on 2 cores: {TOKENS} tokens each, one every "
        f"{INTERVAL * 1000:.0f} ms (each curve: all its runs pooled)",
        fontsize=10,
    )
    axes.grid(True, which="major", linewidth=0.4)
    axes.legend(fontsize=8, loc="lower left")
    figure.tight_layout()
    figure.savefig(path)
    print(f"wrote {path}")


def machine() -> str:
    return (
        f"{platform.platform()}, {os.cpu_count()} cores, "
        f"{platform.python_implementation()} {platform.python_version()}"
    )


def run(quick: bool = False) -> None:
    """The section of benchmarks/run.py: N = 1000 (quick: 50), one run a mode."""
    streams = QUICK_NS[-1] if quick else TARGET_N
    modes = available_modes()
    print(f"\n6. Concurrency: {streams} live streams at once", flush=True)
    results = [measure(mode, streams, aligned=False) for mode in modes]
    report(results, check=not quick)


def available_modes() -> list[str]:
    if importlib.util.find_spec("openai") is None:
        return ["threads", "background"]
    return list(MODES)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument("--quick", action="store_true", help="N = 20, 50; one run")
    parser.add_argument(
        "-n",
        type=lambda s: [int(n) for n in s.split(",")],
        help="stream counts, comma-separated (default 100,500,1000)",
    )
    parser.add_argument("--runs", type=int, help="runs of each mode (default 3)")
    parser.add_argument("--modes", help=f"comma-separated: {', '.join(MODES)}")
    parser.add_argument(
        "--tokens", type=int, default=20, help="tokens a reply (default 20)"
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=0.1,
        help="seconds between two tokens (default 0.1)",
    )
    parser.add_argument(
        "--aligned", action="store_true", help="every stream writes on the same tick"
    )
    parser.add_argument(
        "--switch-interval",
        type=float,
        help="sys.setswitchinterval() in the client (default: Python's, 0.005)",
    )
    parser.add_argument(
        "--stack-size",
        type=int,
        metavar="KIB",
        help="threading.stack_size() in the client, in KiB (default: the OS's)",
    )
    parser.add_argument(
        "--gc-freeze",
        action="store_true",
        help="gc.freeze() in the client once it is made",
    )
    parser.add_argument("--save", type=Path, help="write the raw results (JSON)")
    parser.add_argument("--load", type=Path, nargs="*", help="report saved results")
    parser.add_argument("--plot", type=Path, help="draw the PNG at the largest N")
    parser.add_argument(
        "--before", type=Path, help="saved results of older code, dashed in the plot"
    )
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--client", nargs=3, help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    set_pace(options.tokens, options.interval)
    TUNING.update(
        switch_interval=options.switch_interval,
        stack_kib=options.stack_size,
        gc_freeze=1 if options.gc_freeze else None,
    )

    if options.serve is not None:
        raise_file_limit(options.serve)
        asyncio.run(serve(options.serve, options.aligned))
        return 0
    if options.client:
        mode, port, streams = options.client
        print(json.dumps(client(mode, int(port), int(streams))))
        return 0

    if options.load:
        results = [r for path in options.load for r in json.loads(path.read_text())]
    else:
        ns = options.n or (QUICK_NS if options.quick else NS)
        runs = options.runs or (1 if options.quick else 3)
        modes = options.modes.split(",") if options.modes else available_modes()
        unknown = set(modes) - MODES.keys()
        if unknown:
            parser.error(f"unknown mode(s): {', '.join(sorted(unknown))}")
        print(f"concurrency benchmark: {machine()}", flush=True)
        results = []
        for streams in ns:
            for number in range(runs):  # modes interleaved, so drift hits all
                for mode in modes:
                    found = measure(mode, streams, options.aligned)
                    digest = summary(found)
                    print(
                        f"N={streams} run {number + 1} {mode}: p50 {digest['p50']:.1f}"
                        f" p99 {digest['p99']:.1f} max {digest['max']:.0f} ms, CPU "
                        f"{digest['cpu']:.2f} s ({found['system']:.2f} system, "
                        f"{found['switches'] / 1000:.0f}k switches), RSS "
                        f"{digest['rss']:.0f} MiB, wall "
                        f"{found['wall']:.1f} s, short {found['short']}; server CPU "
                        f"{found['server'].get('cpu', 0):.2f} s, late p99 "
                        f"{found['server'].get('late_p99', 0):.1f} ms; other processes "
                        f"{found['others_share']:.0%} of the CPUs",
                        flush=True,
                    )
                    results.append(found)
        if options.save:
            with tempfile.NamedTemporaryFile(
                "w", dir=options.save.parent or ".", delete=False
            ) as out:
                json.dump(results, out)
            os.replace(out.name, options.save)
    report(results, check=True)
    if options.plot:
        before = json.loads(options.before.read_text()) if options.before else []
        plot(results, options.plot, before)
    failed = [found for found in _report.CHECKS if not found.passed]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
