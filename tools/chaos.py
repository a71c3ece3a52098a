"""The chaos run: attack chatproviders as an adversary and a careless user
would, and check that nothing silently goes wrong.

Four scenarios, each against emulators and raw sockets on 127.0.0.1 only:

    kill-resume  SIGKILL a checkpointed batch at random moments and resume it:
                 no item sent twice, none lost, the file always readable
    check        misbehaving servers of many kinds: check() names each as
                 documented, within its timeout
    background   rounds of background streams, a quarter of them cancelled:
                 every text whole, no thread or socket left behind
    pools        clients made and used in the parent, then in thread, fork,
                 spawn and forkserver pools: every call right, none hangs

    python tools/chaos.py                              # every scenario
    python tools/chaos.py kill-resume --cycles 50 --seed 1

``--seed`` repeats the same choices (kill moments, faults, which streams are
cancelled and how); the timing of a busy machine still varies. The exit
status is 1 when any scenario found a problem.
"""

from __future__ import annotations

import argparse
import random
import signal
import sys
import time
from pathlib import Path
from typing import Optional

# The scenarios are a package beside this file; a pool's spawned workers find
# it too, since they start with this process's sys.path.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _chaos.common import Outcome

SCENARIOS = ("kill-resume", "check", "background", "pools")


def run_scenario(name: str, rng: random.Random, args: argparse.Namespace) -> Outcome:
    """Run the scenario ``name`` with its settings from the command line."""
    if name == "kill-resume":
        from _chaos.kill_resume import kill_resume

        return kill_resume(rng, cycles=args.cycles, items=args.items)
    if name == "check":
        from _chaos.check_servers import check_servers

        return check_servers(rng, timeout=args.timeout)
    if name == "background":
        from _chaos.background import background

        return background(rng, rounds=args.rounds, streams=args.streams)
    from _chaos.pools import pools

    return pools(rng, calls=args.calls, rounds=args.pool_rounds)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "scenarios", nargs="*", help=f"any of {', '.join(SCENARIOS)}; default all"
    )
    parser.add_argument("--seed", type=int, default=None, help="default: random")
    parser.add_argument(
        "--cycles", type=int, default=300, help="kill-resume: kills in all"
    )
    parser.add_argument(
        "--items", type=int, default=200, help="kill-resume: prompts per run"
    )
    parser.add_argument(
        "--timeout", type=float, default=1.5, help="check: each probe's timeout"
    )
    parser.add_argument("--rounds", type=int, default=4, help="background: rounds")
    parser.add_argument(
        "--streams", type=int, default=320, help="background: streams per round"
    )
    parser.add_argument(
        "--calls", type=int, default=6, help="pools: calls per client and pool"
    )
    parser.add_argument(
        "--pool-rounds", type=int, default=3, help="pools: pools of each kind"
    )
    args = parser.parse_args(argv)
    unknown = [name for name in args.scenarios if name not in SCENARIOS]
    if unknown:
        parser.error(f"no such scenario: {', '.join(unknown)}")
    seed = args.seed if args.seed is not None else random.randrange(10**6)
    names = args.scenarios or list(SCENARIOS)
    print(f"chaos run: {', '.join(names)}; seed {seed}", flush=True)
    signal.signal(signal.SIGTERM, _interrupt)  # tox stops runs with it
    outcomes = []
    began = time.monotonic()
    try:
        for name in names:
            print(f"-- {name}", flush=True)
            started = time.monotonic()
            outcome = run_scenario(name, random.Random(f"{seed}:{name}"), args)
            outcome.seconds = time.monotonic() - started
            outcomes.append(outcome)
            show(outcome)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    summary(outcomes, time.monotonic() - began, seed)
    return 0 if all(outcome.ok for outcome in outcomes) else 1


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def show(outcome: Outcome) -> None:
    """A scenario's figures, and each problem it found."""
    for name, value in outcome.figures.items():
        print(f"   {name}: {value}")
    for problem in outcome.problems[:30]:
        print(f"   PROBLEM {problem}")
    if len(outcome.problems) > 30:
        print(f"   ... and {len(outcome.problems) - 30} more problems")
    print(f"   {outcome.seconds:.1f} s", flush=True)


def summary(outcomes: list[Outcome], seconds: float, seed: int) -> None:
    """The table: one row per scenario."""
    rows = [("scenario", "result", "time", "problems", "figures")]
    for outcome in outcomes:
        result = "ok" if outcome.ok else "FAILED"
        time_taken = f"{outcome.seconds:.0f} s"
        problems = str(len(outcome.problems))
        rows.append((outcome.scenario, result, time_taken, problems, outcome.headline))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    print()
    for row in rows:
        line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths))
        print(line.rstrip())
    print(f"total {seconds:.0f} s, seed {seed}")


if __name__ == "__main__":
    sys.exit(main())
