"""Run the chatproviders benchmarks and print one table per section.

    python benchmarks/run.py                  # everything, a few minutes
    python benchmarks/run.py --quick          # a smoke run, well under a minute
    python benchmarks/run.py latency imports  # some sections only
    python benchmarks/run.py concurrency      # 1000 live streams: ours, openai SDK

Everything is served on 127.0.0.1; nothing else is contacted. Each figure is
a ratio against a baseline measured in the same run (absolute times drift on
shared machines), and each target is marked PASS or FAIL. The exit status is
1 when a target was missed.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import _report
import batch
import concurrency
import imports
import latency
import overhead
import requests
import throughput

import chatproviders

BACKGROUND = Path(__file__).with_name("bench_background.py")

SECTIONS = {
    "latency": latency.run,
    "throughput": throughput.run,
    "overhead": overhead.run,
    "imports": imports.run,
    "batch": batch.run,
}


def background(quick: bool) -> None:
    """5. Background streaming: benchmarks/bench_background.py, when present."""
    print("\n5. Background streaming and 200 concurrent streams", flush=True)
    if not BACKGROUND.exists():
        print(f"   {BACKGROUND.name} is not there yet: skipped")
        return
    command = [sys.executable, str(BACKGROUND), *(["--quick"] if quick else [])]
    done = subprocess.run(command, check=False)
    _report.check(
        "background",
        f"{BACKGROUND.name} ran",
        done.returncode == 0,
        str(done.returncode),
    )


def machine() -> str:
    return (
        f"{platform.platform()}, {os.cpu_count()} cores, "
        f"{platform.python_implementation()} {platform.python_version()}; "
        f"chatproviders {chatproviders.__version__}, requests {requests.__version__}, "
        f"urllib3 {version('urllib3')}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    names = [*SECTIONS, "background", "concurrency"]
    parser.add_argument(
        "sections",
        nargs="*",
        metavar="section",
        help=f"any of {', '.join(names)} (default: all)",
    )
    parser.add_argument("--quick", action="store_true", help="a fast smoke run")
    options = parser.parse_args()
    unknown = sorted(set(options.sections) - set(names))
    if unknown:
        parser.error(f"unknown section(s): {', '.join(unknown)}")
    chosen = options.sections or names
    print(f"chatproviders benchmarks{' (quick)' if options.quick else ''}: {machine()}")
    start = time.perf_counter()
    for name in chosen:
        if name == "background":
            background(options.quick)
        elif name == "concurrency":
            concurrency.run(options.quick)
        else:
            SECTIONS[name](options.quick)
    failed = [found for found in _report.CHECKS if not found.passed]
    print(
        f"\n{len(_report.CHECKS) - len(failed)} of {len(_report.CHECKS)} targets met "
        f"in {time.perf_counter() - start:.0f} s"
    )
    for found in failed:
        print(f"  FAIL {found.section}: {found.target} ({found.detail})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
