"""The per-event cost of the SSE path, this tree against another, in CPU time.

    python benchmarks/sse_events.py --against /path/to/other/checkout
    python benchmarks/sse_events.py                 # this tree alone

Each round runs a fresh interpreter per tree, alternating, that decodes the
benchmark's SSE body in memory (16 KB pieces) through ``ChatStream`` and
reports the best of 7 passes in CPU time (``time.process_time``), so that
other work on a shared machine moves the figures far less than wall time
does. Two bodies: text chunks as OpenAI sends them, and the same with
``"usage": null`` in every chunk, as a stream that asks for usage gets them.
Target: this tree within 1.10x of the other (median over rounds).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TREE = HERE.parent
TARGET = 1.10

PASS_CODE = r"""
import inspect, sys, time
sys.path.insert(0, {benchmarks!r})
import _bodies
from chatproviders._streams.chat_stream import ChatStream
import chatproviders._streams.openai_chunks as chunks

decode = getattr(chunks, "iter_chat_events", chunks.iter_chat_chunks)
body = _bodies.body("sse", 4_000_000)
data = body.data
if {with_usage!r}:
    end = b'"finish_reason":null}}]'
    data = data.replace(end, end + b',"usage":null')
    assert data.count(b'"usage":null') == body.pieces
pieces = [data[i : i + 16384] for i in range(0, len(data), 16384)]


class Response:
    def close(self):
        pass


best = float("inf")
for _ in range(7):
    started = time.process_time()
    if "source" in inspect.signature(ChatStream.__init__).parameters:  # 0.2
        stream = ChatStream(decode(pieces), provider="p", model="m", host="h")
    else:
        stream = ChatStream(
            Response(), decode(pieces), provider="p", model="m", host="h"
        )
    text = "".join(stream)
    best = min(best, time.process_time() - started)
assert text == body.text
print(best / body.pieces * 1e9)
"""


def one_pass(tree: Path, with_usage: bool) -> float:
    """ns per event, best of 7, for ``tree``'s chatproviders."""
    code = PASS_CODE.format(benchmarks=str(HERE), with_usage=with_usage)
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
        cwd=tree,
    )
    if done.returncode:
        raise SystemExit(done.stderr)
    return float(done.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--against", type=Path, help="another checkout's root")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    trees = {"this tree": TREE}
    if args.against is not None:
        trees["other tree"] = args.against.resolve()
    print(
        f"{platform.platform()}, {os.cpu_count()} cores, "
        f"{platform.python_implementation()} {platform.python_version()}; "
        f"{args.rounds} rounds"
    )
    failed = False
    for with_usage in (False, True):
        shape = 'with "usage": null' if with_usage else "text chunks"
        times: dict[str, list[float]] = {name: [] for name in trees}
        for _ in range(args.rounds):
            for name, tree in trees.items():
                times[name].append(one_pass(tree, with_usage))
        print(f"SSE in memory through ChatStream, {shape}: ns/event (CPU time)")
        for name, values in times.items():
            print(
                f"  {name:<11} median {statistics.median(values):6.0f}  "
                f"min {min(values):6.0f}  max {max(values):6.0f}"
            )
        if args.against is not None:
            ratio = statistics.median(times["this tree"]) / statistics.median(
                times["other tree"]
            )
            verdict = "PASS" if ratio <= TARGET else "FAIL"
            failed |= ratio > TARGET
            print(f"  this / other: {ratio:.3f}x (target <= {TARGET:.2f}x) {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
