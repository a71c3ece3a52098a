"""The gateway's cost: token delay it adds, CPU per token, memory over many requests.

    python benchmarks/gateway.py                     # N = 100, 500; 3 runs each
    python benchmarks/gateway.py --quick             # N = 20; 1 run
    python benchmarks/gateway.py --litellm /path/to/venv/bin/litellm
    python benchmarks/gateway.py --pin               # the proxy on a CPU of its own
    python benchmarks/gateway.py --lean              # a lean client, not AsyncOpenAI
    python benchmarks/gateway.py memory              # RSS over 10,000 requests

The upstream is ``concurrency.py``'s paced SSE server in a process of its own:
each of N streams gets ``TOKENS`` chunks, one every ``INTERVAL`` seconds, and
each chunk's text is the server's ``time.monotonic()`` at the write. The client
(the ``openai`` SDK's ``AsyncOpenAI``, a process of its own) notes when each
text arrives; the delay is the difference (one clock for every process on
Linux). Three paths, in the same run:

* ``direct``: the client straight to the upstream;
* ``gateway``: through ``chatproviders serve`` (waitress, ``--threads N+8``);
* ``gunicorn`` (``--gunicorn``): the same app on gunicorn, 2 ``gthread``
  workers of N/2 + 8 threads each, the way the docs run it on several CPUs;
* ``litellm``: through LiteLLM's proxy (``litellm --config``, one worker),
  when ``--litellm`` names its command (``pip install 'litellm[proxy]'`` in a
  venv of its own: it is not a dependency of this project).

Reported per path: the delay's p50 and p99, the p99 it adds over ``direct``,
the same two for the tokens written once every stream had begun (``steady``:
the load apart from the instant when all N requests arrive), and the proxy
process's CPU seconds (user + system, its children included)
per 1,000 streamed tokens. Targets (issue 25): added p99 < 2 ms at N = 100 and
< 100 ms at N = 500; CPU per 1,000 tokens <= 0.5x LiteLLM's.

``memory``: a ``chatproviders serve`` process in front of a cromicle emulator
gets 2,000 requests to warm up, then 10,000 more on keep-alive connections
(one in ten streamed, one in twenty malformed); its RSS before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Optional

import _report
import concurrency

WAIT = 120.0
#: With ``--pin``: the CPUs of the proxy process (the others' are the rest).
PROXY_CPUS: set[int] = set()
#: Passed on to the client processes (``--lean``).
CLIENT_OPTIONS: list[str] = []
#: LiteLLM's proxy refuses to start without a master key; every client sends it.
MASTER_KEY = "sk-bench-0123456789abcdef"


# -- the client (a process of its own) ----------------------------------------


def client(base_url: str, model: str, streams: int) -> dict[str, Any]:
    """N streams at once with AsyncOpenAI; every token's delay in ms."""
    import openai

    concurrency.raise_file_limit(streams)
    records: list[list[tuple[float, str]]] = [[] for _ in range(streams)]
    failures: list[str] = []

    async def main() -> None:
        http = openai.DefaultAsyncHttpxClient(limits=concurrency._limits(streams))
        api = openai.AsyncOpenAI(
            base_url=base_url,
            api_key=MASTER_KEY,
            max_retries=0,
            timeout=WAIT,
            http_client=http,
        )

        async def read(record: list[tuple[float, str]]) -> None:
            try:
                stream = await api.chat.completions.create(
                    model=model,
                    messages=[{"role": "user", "content": "Hi"}],
                    stream=True,
                )
                async with stream:
                    async for event in stream:
                        if event.choices and event.choices[0].delta.content:
                            text = event.choices[0].delta.content
                            record.append((time.monotonic(), text))
            except Exception as exc:  # counted, and the first shown
                failures.append(f"{type(exc).__name__}: {exc}"[:200])

        await asyncio.gather(*(read(record) for record in records))
        await api.close()

    asyncio.run(main())
    return delays(records, failures)


def raw_client(base_url: str, model: str, streams: int) -> dict[str, Any]:
    """The same N streams read by a lean client: HTTP/1.1 and SSE parsed by hand
    on asyncio's streams, so that the client's own CPU per token (a tenth of the
    SDK's or less) leaves the CPUs to the paths measured."""
    from urllib.parse import urlsplit

    concurrency.raise_file_limit(streams)
    url = urlsplit(base_url)
    records: list[list[tuple[float, str]]] = [[] for _ in range(streams)]
    failures: list[str] = []
    messages = [{"role": "user", "content": "Hi"}]
    body = json.dumps({"model": model, "messages": messages, "stream": True}).encode()
    head = (
        f"POST {url.path}/chat/completions HTTP/1.1\r\nHost: {url.netloc}\r\n"
        f"Authorization: Bearer {MASTER_KEY}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()

    async def read(record: list[tuple[float, str]]) -> None:
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
        try:
            writer.write(head + body)
            status = await reader.readline()
            if b" 200 " not in status:
                raise RuntimeError(status.decode(errors="replace").strip())
            headers = await reader.readuntil(b"\r\n\r\n")
            if b"chunked" not in headers.lower():
                raise RuntimeError("not a chunked reply")
            pending = b""
            while True:
                size = int((await reader.readline()).split(b";")[0], 16)
                if size == 0:
                    return
                pending += await reader.readexactly(size)
                await reader.readexactly(2)
                *events, pending = pending.split(b"\n\n")
                for event in events:
                    data = event.partition(b"data: ")[2]
                    if data == b"[DONE]":
                        return
                    choices = json.loads(data).get("choices") or [{}]
                    text = choices[0].get("delta", {}).get("content")
                    if text:
                        record.append((time.monotonic(), text))
        except Exception as exc:  # counted, and the first shown
            failures.append(f"{type(exc).__name__}: {exc}"[:200])
        finally:
            writer.close()

    async def main() -> None:
        await asyncio.gather(*(read(record) for record in records))

    asyncio.run(main())
    return delays(records, failures)


def delays(
    records: Sequence[list[tuple[float, str]]], failures: list[str]
) -> dict[str, Any]:
    """Every token's delay in ms, and those of the tokens the upstream wrote
    once every stream had begun (``steady_ms``): the start, when all N requests
    reach the proxy in the same instant, apart from the load it then carries."""
    tokens = [
        (float(stamp), arrival)
        for record in records
        for arrival, text in record
        for stamp in text.split()
    ]
    firsts = [float(record[0][1].split()[0]) for record in records if record]
    begun = max(firsts, default=0.0)
    return {
        "delays_ms": [round((arrival - stamp) * 1000, 3) for stamp, arrival in tokens],
        "steady_ms": [
            round((arrival - stamp) * 1000, 3)
            for stamp, arrival in tokens
            if stamp > begun
        ],
        "failures": failures,
    }


# -- the proxies ----------------------------------------------------------------


def tree_cpu(pid: int) -> float:
    """CPU seconds of ``pid`` and every live descendant, and their reaped children."""
    tick = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    stats: dict[int, list[str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as file:
                fields = file.read().rpartition(")")[2].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        stats[int(entry)] = fields
    family, grew = {pid}, True
    while grew:
        more = {child for child, parent in parents.items() if parent in family}
        grew = not more <= family
        family |= more
    total = 0
    for member in family & stats.keys():
        fields = stats[member]  # utime stime cutime cstime: fields 14-17
        total += sum(int(value) for value in fields[11:15])
    return total / tick


@contextmanager
def started(command: list[str], url_line: bool, health: str) -> Iterator[Any]:
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**concurrency.child_env(), "PYTHONUNBUFFERED": "1"},
        preexec_fn=_on_proxy_cpu if PROXY_CPUS else None,
    )
    try:
        if url_line:
            assert process.stdout is not None
            process.stdout.readline()
        _wait_health(health, process)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def _on_proxy_cpu() -> None:  # in the proxy's process, before its exec
    os.sched_setaffinity(0, PROXY_CPUS)


def _wait_health(url: str, process: subprocess.Popen[str]) -> None:
    import urllib.request

    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def proxy(
    path: str, upstream: int, streams: int, litellm: Optional[str]
) -> Iterator[Any]:
    """(base URL, model, pid) of the path, started in front of the upstream."""
    upstream_url = f"http://127.0.0.1:{upstream}/v1"
    if path == "direct":
        yield upstream_url, concurrency.MODEL, None
        return
    port = free_port()
    if path == "gateway":
        command = [sys.executable, "-m", "chatproviders", "serve", "openai"]
        command += ["--base-url", f"openai={upstream_url}", "--port", str(port)]
        command += ["--threads", str(streams + 8)]
        with started(command, True, f"http://127.0.0.1:{port}/health") as process:
            yield (
                f"http://127.0.0.1:{port}/v1",
                f"openai/{concurrency.MODEL}",
                process.pid,
            )
        return
    if path == "gunicorn":
        with tempfile.TemporaryDirectory() as folder:
            config = Path(folder) / "gateway.toml"
            config.write_text(
                f'routes = ["openai"]\n[base_urls]\nopenai = "{upstream_url}"\n'
            )
            command = [sys.executable, "-m", "gunicorn", "-k", "gthread", "-w", "2"]
            command += ["--threads", str(streams // 2 + 8), "--timeout", "0"]
            command += ["-b", f"127.0.0.1:{port}", "--log-level", "warning"]
            command += [f"chatproviders.gateway:make_app({str(config)!r})"]
            health = f"http://127.0.0.1:{port}/health"
            with started(command, False, health) as process:
                yield (
                    f"http://127.0.0.1:{port}/v1",
                    f"openai/{concurrency.MODEL}",
                    process.pid,
                )
        return
    assert litellm is not None
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "litellm.yaml"
        config.write_text(
            "model_list:\n"
            f"  - model_name: {concurrency.MODEL}\n"
            "    litellm_params:\n"
            f"      model: openai/{concurrency.MODEL}\n"
            f"      api_base: {upstream_url}\n"
            "      api_key: bench\n"
            "general_settings:\n"
            f"  master_key: {MASTER_KEY}\n"
        )
        command = [litellm, "--config", str(config), "--port", str(port)]
        command += ["--num_workers", "1"]
        url = f"http://127.0.0.1:{port}"
        with started(command, False, url + "/health/liveliness") as process:
            yield url + "/v1", concurrency.MODEL, process.pid


def measure(path: str, streams: int, litellm: Optional[str]) -> dict[str, Any]:
    concurrency.raise_file_limit(streams * 2)
    server: dict[str, float] = {}
    with (
        concurrency.server_process(streams, False, server) as upstream,
        proxy(path, upstream, streams, litellm) as (url, model, pid),
    ):
        warm = [sys.executable, __file__, "--client", url, model, "2"]
        warm += concurrency.pace() + CLIENT_OPTIONS
        subprocess.run(
            warm, check=True, stdout=subprocess.DEVNULL, env=concurrency.child_env()
        )
        before = tree_cpu(pid) if pid else 0.0
        argv = [sys.executable, __file__, "--client", url, model, str(streams)]
        argv += concurrency.pace() + CLIENT_OPTIONS
        done = subprocess.run(
            argv,
            check=True,
            stdout=subprocess.PIPE,
            text=True,
            env=concurrency.child_env(),
        )
        cpu = tree_cpu(pid) - before if pid else 0.0
    result: dict[str, Any] = json.loads(done.stdout)
    tokens = len(result["delays_ms"])
    result.update(path=path, streams=streams, cpu=cpu, tokens=tokens)
    result["cpu_per_1000"] = cpu / tokens * 1000 if tokens else float("nan")
    return result


def report(results: Sequence[dict[str, Any]], runs: int) -> None:
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for result in results:
        groups.setdefault((result["path"], result["streams"]), []).append(result)

    def p99(group: Sequence[dict[str, Any]], key: str) -> list[float]:
        return [_report.percentile(r[key] or [math.nan], 0.99) for r in group]

    direct = {
        (n, key): p99(group, key)
        for (path, n), group in groups.items()
        if path == "direct"
        for key in ("delays_ms", "steady_ms")
    }
    rows = []
    for (path, n), group in groups.items():
        row = [path, str(n)]
        row.append(
            concurrency.spread(
                [_report.percentile(r["delays_ms"], 0.5) for r in group], 1
            )
        )
        for key in ("delays_ms", "steady_ms"):
            mine = p99(group, key)
            added = [
                p - d for p, d in zip(mine, direct.get((n, key), [0.0] * len(mine)))
            ]
            row.append(concurrency.spread(mine, 1))
            row.append("-" if path == "direct" else concurrency.spread(added, 1))
        cpu = [r["cpu_per_1000"] for r in group]
        row.append("-" if path == "direct" else concurrency.spread(cpu, 3))
        row.append(
            str(sum(r["streams"] * concurrency.TOKENS - r["tokens"] for r in group))
        )
        rows.append(row)
        failures = [f for r in group for f in r["failures"]]
        if failures:
            print(f"  {path} N={n}: {len(failures)} failed streams, e.g. {failures[0]}")
    _report.table(
        "token delay, upstream write to client (ms); proxy CPU per 1000 tokens",
        [
            "path",
            "N",
            "p50 ms",
            "p99 ms",
            "added p99",
            "steady p99",
            "added steady p99",
            "CPU s/1000 tok",
            "lost",
        ],
        rows,
    )
    print(
        f"  {runs} run(s) each; a range is the spread over the runs; steady: the"
        " tokens written once all N streams had begun"
    )


# -- memory ---------------------------------------------------------------------


def memory(warm: int = 2000, count: int = 10_000) -> None:
    import http.client

    from chatproviders.testing import serve

    def rss_kib(pid: int) -> int:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    with serve("cromicle", text="a few words of reply") as upstream:
        port = free_port()
        command = [sys.executable, "-m", "chatproviders", "serve", "cromicle"]
        command += ["--base-url", f"cromicle={upstream.url}", "--port", str(port)]
        with started(command, True, f"http://127.0.0.1:{port}/health") as process:

            def send(total: int) -> None:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                for number in range(total):
                    body = {
                        "model": "cromicle",
                        "messages": [{"role": "user", "content": f"hi {number}"}],
                        "stream": number % 10 == 0,
                    }
                    data = b"{not json" if number % 20 == 1 else json.dumps(body)
                    connection.request(
                        "POST",
                        "/v1/chat/completions",
                        data,
                        {"Content-Type": "application/json"},
                    )
                    response = connection.getresponse()
                    response.read()
                    if response.getheader("Connection") == "close":
                        connection.close()
                connection.close()

            send(warm)
            samples = [rss_kib(process.pid)]
            began = time.monotonic()
            for _ in range(5):
                send(count // 5)
                samples.append(rss_kib(process.pid))
            elapsed = time.monotonic() - began
    growth = (samples[-1] - samples[0]) / 1024
    print(
        f"RSS after {warm} warm-up requests: {samples[0] / 1024:.1f} MiB; after each "
        f"{count // 5} more: "
        + ", ".join(f"{s / 1024:.1f}" for s in samples[1:])
        + f" MiB ({count / elapsed:.0f} requests/s)"
    )
    verdict = _report.check(
        "gateway", "RSS growth < 4 MiB", growth < 4, f"{growth:.1f}"
    )
    print(f"growth over {count} requests: {growth:.1f} MiB  {verdict}")


def _loads() -> str:
    return " ".join(f"{load:.1f}" for load in os.getloadavg())


def machine() -> str:
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
    )


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("section", nargs="?", choices=["latency", "memory"])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("-n", type=int, action="append", help="streams (repeatable)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--litellm", help="the litellm command of its own venv")
    parser.add_argument(
        "--gunicorn",
        action="store_true",
        help="also the gateway on gunicorn: 2 gthread workers, N/2 + 8 threads each",
    )
    parser.add_argument("--client", nargs=3, metavar=("URL", "MODEL", "N"))
    parser.add_argument(
        "--lean",
        action="store_true",
        help="read the streams with a lean asyncio client instead of AsyncOpenAI",
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help="the proxy on the last CPU, the client and the upstream on the others",
    )
    parser.add_argument("--tokens", type=int, default=concurrency.TOKENS)
    parser.add_argument("--interval", type=float, default=concurrency.INTERVAL)
    args = parser.parse_args(argv)
    concurrency.set_pace(args.tokens, args.interval)
    if args.client:
        url, model, streams = args.client
        read = raw_client if args.lean else client
        print(json.dumps(read(url, model, int(streams))))
        return 0
    print(f"machine: {machine()}")
    if args.lean:
        CLIENT_OPTIONS.append("--lean")
        print("client: the lean asyncio reader")
    if args.pin:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            parser.error("--pin needs two CPUs or more")
        PROXY_CPUS.add(cpus[-1])
        os.sched_setaffinity(0, cpus[:-1])  # inherited by the client and upstream
        print(f"pinned: proxy on CPU {cpus[-1]}, client and upstream on {cpus[:-1]}")
    print("load average (1, 5, 15 min) at the start:", _loads())
    if args.section in (None, "latency"):
        ns = args.n or ([20] if args.quick else [100, 500])
        runs = 1 if args.quick else args.runs
        paths = ["direct", "gateway"] + (["gunicorn"] if args.gunicorn else [])
        paths += ["litellm"] if args.litellm else []
        results = []
        for n in ns:
            for _ in range(runs):
                for path in paths:
                    print(f"  {path} N={n}...", file=sys.stderr, flush=True)
                    results.append(measure(path, n, args.litellm))
        report(results, runs)
        print("load average at the end:", _loads())
    if args.section in (None, "memory"):
        memory(count=1000 if args.quick else 10_000)
    return 0


if __name__ == "__main__":
    sys.exit(main())
