"""6. Batch runs: 2,000 short completions at concurrency=32.

The Cromicle emulator (``chatproviders.testing.serve``) runs in a process of
its own, so that the client being measured has the GIL to itself. The
baseline is a bare ``ThreadPoolExecutor(32)`` mapping ``client.complete``
over the prompts; ours is ``batch(client, prompts, concurrency=32)``, then
the same with a checkpoint file (a fresh one each round). The three runs are
interleaved, in a rotating order; each round gives a ratio against the
baseline of the same round, and the median of those ratios is reported (the
machine's drift cancels out within a round), with their spread. The client
process's CPU time per item shows what the bookkeeping costs, apart from the
machine's noise. The client's session has a pool of 32 connections, so that
none is thrown away.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Callable

import _report
import requests
from requests.adapters import HTTPAdapter

import chatproviders
from chatproviders import Cromicle

CONCURRENCY = 32
TARGET_RATE = 0.9  # items/s of batch() against the bare pool
TARGET_CHECKPOINT = 0.10  # the checkpoint's extra time

EMULATOR = """
import sys
from chatproviders.testing import serve
with serve("cromicle", text="ok", framing="length") as server:
    print(server.url, flush=True)
    sys.stdin.read()
"""


@contextmanager
def emulator() -> Iterator[str]:
    """The Cromicle emulator in a process of its own; yields its URL."""
    process = subprocess.Popen(
        [sys.executable, "-c", EMULATOR],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None and process.stdin is not None
        url = process.stdout.readline().strip()
        if not url:
            raise RuntimeError("the emulator process failed to start")
        yield url
    finally:
        assert process.stdin is not None
        process.stdin.close()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def run(quick: bool = False) -> None:
    items, rounds = (300, 3) if quick else (2000, 9)
    prompts = [f"prompt {i}" for i in range(items)]
    folder = tempfile.mkdtemp(prefix="chatproviders-bench-")
    with emulator() as url:
        session = requests.Session()
        session.mount("http://", HTTPAdapter(pool_maxsize=CONCURRENCY))
        client = Cromicle(base_url=url, session=session)

        def pool() -> None:
            with ThreadPoolExecutor(CONCURRENCY) as executor:
                replies = list(
                    executor.map(
                        lambda p: client.complete([{"role": "user", "content": p}]),
                        prompts,
                    )
                )
            assert len(replies) == items

        def ours() -> None:
            result = chatproviders.batch(
                client, prompts, concurrency=CONCURRENCY, progress=False
            )
            assert not result.failed

        round_number = [0]

        def checkpointed() -> None:
            round_number[0] += 1
            path = os.path.join(folder, f"run-{round_number[0]}.jsonl")
            result = chatproviders.batch(
                client,
                prompts,
                concurrency=CONCURRENCY,
                progress=False,
                checkpoint=path,
            )
            assert not result.failed

        loops: dict[str, Callable[[], None]] = {
            "baseline: ThreadPoolExecutor + complete()": pool,
            "ours: batch()": ours,
            "ours: batch(checkpoint=...)": checkpointed,
        }
        times: dict[str, list[float]] = {name: [] for name in loops}
        cpu: dict[str, list[float]] = {name: [] for name in loops}
        for loop in loops.values():  # warm up: the pool's connections open
            loop()
        order = list(loops.items())
        for number in range(rounds):
            shift = number % len(order)
            for name, loop in order[shift:] + order[:shift]:
                start, used = time.perf_counter(), time.process_time()
                loop()
                times[name].append(time.perf_counter() - start)
                cpu[name].append(time.process_time() - used)
        session.close()

    base, plain, saved = (times[name] for name in loops)
    rate_ratios = [b / p for b, p in zip(base, plain)]
    overheads = [s / p - 1 for s, p in zip(saved, plain)]
    ratio = _report.median(rate_ratios)
    overhead = _report.median(overheads)
    rows = []
    for name, found in times.items():
        rate = items / _report.median(found)
        target = verdict = spread = ""
        if name == "ours: batch()":
            target = f">= {TARGET_RATE:.1f}x"
            spread = f"{min(rate_ratios):.2f}-{max(rate_ratios):.2f}x"
            verdict = _report.check(
                "batch",
                "batch() at least 0.9x the items/s of a bare thread pool",
                ratio >= TARGET_RATE,
                f"{ratio:.2f}x",
            )
        elif name.startswith("ours"):
            target = f"<= +{TARGET_CHECKPOINT:.0%} time"
            spread = f"{min(overheads):+.1%} to {max(overheads):+.1%}"
            verdict = _report.check(
                "batch",
                "the checkpoint costs at most 10% more time",
                overhead <= TARGET_CHECKPOINT,
                f"{overhead:+.1%}",
            )
        versus = f"{_report.median([b / t for b, t in zip(base, found)]):.2f}x"
        per_item = f"{_report.median(cpu[name]) / items * 1e6:.0f}"
        rows.append([name, f"{rate:.0f}", versus, spread, per_item, target, verdict])
    _report.table(
        f"6. Batch runs: {items} short completions at concurrency={CONCURRENCY}, "
        f"medians of {rounds} rounds; checkpoint overhead {overhead:+.1%}",
        ["client", "items/s", "vs pool", "spread", "CPU us/item", "target", ""],
        rows,
    )


if __name__ == "__main__":
    run("--quick" in sys.argv)
