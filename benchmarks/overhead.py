"""3. Per-request overhead: small non-streamed completions over keep-alive.

A server process answers every request with a two-byte body and
Content-Length, keeping the connection open. Ours is ``Cromicle.complete()``
on one client; the baseline is a bare ``requests.Session.post`` loop sending
the same body and headers, reading ``.content``. The runs are interleaved,
each going first in every other round, and the server's connection count
shows that each reused one connection.
"""

from __future__ import annotations

import time

import _report
import requests
from _servers import spawn, stats

from chatproviders import Cromicle

MESSAGES = [{"role": "user", "content": "Hi"}]
TIMEOUT = (10.0, 60.0)
TARGET = 0.9


def run(quick: bool = False) -> None:
    calls, rounds = (200, 3) if quick else (1000, 15)
    with spawn("tiny") as port:
        client = Cromicle(base_url=f"http://127.0.0.1:{port}")
        prepared = client.prepare(MESSAGES, None, {})
        session = requests.Session()

        def plain() -> None:
            for _ in range(calls):
                _ = session.post(
                    prepared.url,
                    data=prepared.body,
                    headers=prepared.headers,
                    timeout=TIMEOUT,
                ).content

        def ours() -> None:
            for _ in range(calls):
                client.complete(MESSAGES)

        loops = {"baseline: requests Session.post": plain, "ours: complete()": ours}
        times: dict[str, list[float]] = {name: [] for name in loops}
        opened: dict[str, int] = dict.fromkeys(loops, 0)
        for loop in loops.values():  # warm up: each opens its connection
            loop()
        for number in range(rounds):
            order = list(loops.items())
            for name, loop in order[:: -1 if number % 2 else 1]:
                before = stats(port)["connections"]
                start = time.perf_counter()
                loop()
                times[name].append(time.perf_counter() - start)
                opened[name] += stats(port)["connections"] - before
        total = stats(port)
        session.close()
        client.close()

    rate = {name: calls / _report.median(found) for name, found in times.items()}
    baseline = rate["baseline: requests Session.post"]
    rows = []
    for name in loops:
        ratio = rate[name] / baseline
        target = verdict = ""
        if name.startswith("ours"):
            target = f">= {TARGET:.1f}x"
            verdict = _report.check(
                "overhead",
                "at least 0.9x the requests per second of Session.post",
                ratio >= TARGET and opened[name] == 0,
                f"{ratio:.2f}x, {opened[name]} new connections",
            )
        rows.append(
            [
                name,
                f"{rate[name]:.0f}",
                f"{1e6 / rate[name]:.0f}",
                f"{ratio:.2f}x",
                opened[name],
                target,
                verdict,
            ]
        )
    _report.table(
        f"3. Per-request overhead: {calls} small completions over keep-alive, "
        f"median of {rounds}; {total['connections']} connections for "
        f"{total['requests']} requests in all",
        ["client", "req/s", "us/req", "vs requests", "new conns", "target", ""],
        rows,
    )


if __name__ == "__main__":
    run()
