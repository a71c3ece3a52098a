"""kill-resume: SIGKILL a checkpointed batch at random moments, and resume it.

A child process runs ``chatproviders.batch(client, inputs, concurrency=8,
checkpoint=path)`` against a Cromicle emulator in this process, which answers
each prompt with a text of its own; some prompts are slow to answer, some
fail first with a status a batch retries (500, or 429 with ``Retry-After: 1``,
which pauses the whole batch). The child is killed with SIGKILL at a random
moment: once a random number of requests reached the server, after a random
delay, or while its last replies come in and the file is rewritten. Then it
is started again on the same file, until a run ends by itself.

Each attempt tags its requests with its number (a header, which is no part
of what a checkpoint compares), so the server knows which attempt sent what.
Checked:

- no duplicate: no attempt sends an item whose record was in the file when
  it started (read right after the kill before it), nor an item the server
  has already answered it;
- no loss: the record of a success, once in the file, stays; the run that
  ends leaves one line per item, in input order, each a success holding its
  own item's text;
- the file parses after every kill: whole lines, each a record, and at most a
  torn last line, which the checkpoint's docs allow (the next run cuts it off).
"""

from __future__ import annotations

import collections
import json
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import chatproviders
from chatproviders.testing import EmulatorServer, Reply, serve

from .common import Echo, Outcome, echo, emulator_of, prompt, token_of

#: Items per run; each run's prompts are its own.
ITEMS = 200
CONCURRENCY = 8
#: Seconds an attempt may go without ending or being killed: then it hangs.
RUN_LIMIT = 180.0
#: How a kill picks its moment, and how often each way is taken.
MOMENTS = {"after N requests": 0.5, "after a delay": 0.35, "at the end": 0.15}

#: One attempt of the batch. Its client differs from attempt to attempt only
#: by the header naming the attempt, which a checkpoint ignores.
CHILD = f"""
import json, sys
import chatproviders

url, checkpoint, inputs, attempt = sys.argv[1:]
client = chatproviders.Cromicle(base_url=url, headers={{"X-Chaos-Attempt": attempt}})
with open(inputs, encoding="utf-8") as file:
    prompts = json.load(file)
result = chatproviders.batch(
    client, prompts, concurrency={CONCURRENCY}, checkpoint=checkpoint, progress=False
)
print(json.dumps({{"failed": [item.index for item in result if not item.ok]}}))
"""


class Faulty(Echo):
    """Echoes tokens after each token's plan: ``slow`` seconds before every
    answer, and ``faults`` ("500", "429") for its first requests. Logs every
    chat request by the attempt that sent it.
    """

    def __init__(self) -> None:
        self.slow: dict[str, float] = {}
        self.faults: dict[str, list[str]] = {}
        self.seen: collections.Counter[str] = collections.Counter()
        #: By attempt: (token, action) of each request, in arrival order;
        #: and the tokens answered "ok".
        self.sent: dict[int, list[tuple[str, str]]] = collections.defaultdict(list)
        self.answered: dict[int, set[str]] = collections.defaultdict(set)
        self.requests = 0
        self.changed = threading.Condition()

    def render(self, reply: Reply, request: Any) -> Any:
        token = token_of(request) or ""
        attempt = int(request.headers.get("x-chaos-attempt", "-1"))
        with self.changed:
            planned = self.faults.get(token, [])
            count = self.seen[token]
            self.seen[token] += 1
            action = planned[count] if count < len(planned) else "ok"
            self.sent[attempt].append((token, action))
            if action == "ok":
                self.answered[attempt].add(token)
            self.requests += 1
            self.changed.notify_all()
        time.sleep(self.slow.get(token, 0.0))
        if action == "500":
            return self.error(500, "chaos: try again")
        if action == "429":
            return self.error(429, "chaos: slow down").with_header("Retry-After", "1")
        return super().render(reply, request)

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        with self.changed:
            return self.changed.wait_for(predicate, timeout)

    def poke(self) -> None:
        """Wake the waiters: something they wait on changed (a child exited)."""
        with self.changed:
            self.changed.notify_all()


@dataclass
class Tally:
    """The figures, over every run."""

    runs: int = 0
    attempts: int = 0
    kills: int = 0
    phases: collections.Counter[str] = field(default_factory=collections.Counter)
    moments: collections.Counter[str] = field(default_factory=collections.Counter)
    torn: int = 0
    duplicates: int = 0
    losses: int = 0
    resent: int = 0
    leftovers: int = 0


def kill_resume(rng: random.Random, cycles: int = 300, items: int = ITEMS) -> Outcome:
    """Kill and resume ``cycles`` times in all, over as many runs of ``items``
    prompts as that takes; the last run is then left to end by itself.
    """
    outcome = Outcome("kill-resume")
    tally = Tally()
    protocol = type(
        "FaultyCromicle", (Faulty, emulator_of(chatproviders.Cromicle)), {}
    )()
    with (
        tempfile.TemporaryDirectory(prefix="chaos-kill-") as folder,
        serve(protocol, chunk_size=5, delay=0.002) as server,
    ):
        while (tally.kills < cycles or tally.runs == 0) and len(outcome.problems) < 20:
            tally.runs += 1
            run = Run(tally.runs, Path(folder), server, protocol, rng, items)
            run.go(cycles, tally, outcome)
        for request in server.requests:
            malformed = request.json is None or token_of(request) is None
            if malformed and not _cut_by_a_kill(request):
                outcome.problem(f"a malformed request: {request.body[:80]!r}")
        outcome.figures.update(_figures(tally, len(server.requests)))
    outcome.headline = (
        f"{tally.kills} kills, {tally.duplicates} duplicates, {tally.losses} losses"
    )
    return outcome


class Run:
    """One batch of its own prompts and checkpoint, killed until it ends."""

    def __init__(
        self,
        number: int,
        folder: Path,
        server: EmulatorServer,
        protocol: Faulty,
        rng: random.Random,
        items: int,
    ) -> None:
        self.number = number
        self.folder = folder / f"run-{number}"
        self.folder.mkdir()
        self.server = server
        self.protocol = protocol
        self.rng = rng
        self.tokens = [f"chaos-r{number}-i{index}" for index in range(items)]
        self.index = {token: index for index, token in enumerate(self.tokens)}
        self.checkpoint = self.folder / "run.jsonl"
        self.inputs = self.folder / "inputs.json"
        self.inputs.write_text(json.dumps([prompt(t) for t in self.tokens]), "utf-8")
        self.done: set[int] = set()  # successes in the file, as last read
        self.started: dict[int, set[int]] = {}  # by attempt: done when it started
        self._plan()

    def _plan(self) -> None:
        """Which prompts are slow, which fail first and how: never more than
        twice in all, so that a batch's three tries always get through.
        """
        for token in self.tokens:
            if self.rng.random() < 0.15:
                self.protocol.slow[token] = self.rng.uniform(0.05, 0.4)
            roll = self.rng.random()
            if roll < 0.10:
                self.protocol.faults[token] = ["500"]
            elif roll < 0.15:
                self.protocol.faults[token] = ["500", "500"]
            elif roll < 0.155:
                self.protocol.faults[token] = ["429"]

    def go(self, cycles: int, tally: Tally, outcome: Outcome) -> None:
        """Start, kill and start again until an attempt ends (the kills left
        in ``cycles`` run out, or an attempt beats its kill to the end).
        """
        while True:
            moment = ""
            tally.attempts += 1
            attempt = tally.attempts
            self.started[attempt] = set(self.done)
            process, exited = self._start(attempt)
            try:
                if tally.kills < cycles:
                    moment = self.rng.choices(list(MOMENTS), list(MOMENTS.values()))[0]
                    if self._wait_for_moment(moment, attempt, exited):
                        process.send_signal(signal.SIGKILL)
                elif not exited.wait(RUN_LIMIT):
                    outcome.problem(f"run {self.number}: no end in {RUN_LIMIT:g} s")
                    process.kill()
            finally:
                if process.poll() is None:
                    process.kill()
                process.wait()
            if process.returncode != -signal.SIGKILL:
                self._ended(attempt, process.returncode, outcome, tally)
                return
            tally.kills += 1
            tally.moments[moment] += 1
            tally.phases[self._phase(attempt)] += 1
            self._after_kill(tally, outcome)

    def _start(self, attempt: int) -> tuple[subprocess.Popen[bytes], threading.Event]:
        arguments = [self.server.url, str(self.checkpoint), str(self.inputs)]
        with (
            open(self.folder / f"{attempt}.out", "wb") as out,
            open(self.folder / f"{attempt}.err", "wb") as err,
        ):
            process = subprocess.Popen(
                [sys.executable, "-c", CHILD, *arguments, str(attempt)],
                stdout=out,
                stderr=err,
            )
        exited = threading.Event()

        def watch() -> None:
            process.wait()
            exited.set()
            self.protocol.poke()

        threading.Thread(target=watch, name="chaos-child-watch", daemon=True).start()
        return process, exited

    def _wait_for_moment(
        self, moment: str, attempt: int, exited: threading.Event
    ) -> bool:
        """Wait for the kill's moment; False if the attempt ended first."""
        wait_for = self.protocol.wait_for
        if moment == "after N requests":
            target = self.protocol.requests + self.rng.randint(1, 48)
            wait_for(
                lambda: exited.is_set() or self.protocol.requests >= target, RUN_LIMIT
            )
        elif moment == "after a delay":
            wait_for(exited.is_set, self.rng.uniform(0.0, 1.2))
        else:  # the last replies, the file's rewrite, the exit
            left = self._left(self.done)
            answered = self.protocol.answered[attempt]
            wait_for(lambda: exited.is_set() or left <= answered, RUN_LIMIT)
            wait_for(exited.is_set, self.rng.uniform(0.0, 0.1))
        return not exited.is_set()

    def _phase(self, attempt: int) -> str:
        """Where the attempt was when it was killed, as the server saw it."""
        sent = self.protocol.sent[attempt]
        if not sent:
            return "before any request"
        if self._left(self.started[attempt]) <= self.protocol.answered[attempt]:
            return "every reply sent"
        last = dict(sent)  # each token's last action
        if any(action != "ok" for action in last.values()):
            return "a retry pending"
        return "sending"

    def _left(self, done: set[int]) -> set[str]:
        """The tokens of the items not in ``done``."""
        return {token for index, token in enumerate(self.tokens) if index not in done}

    def _after_kill(self, tally: Tally, outcome: Outcome) -> None:
        """Read the file as the kill left it: it parses, and keeps every success."""
        done, torn, problems = read_checkpoint(self.checkpoint, self.tokens)
        for problem in problems:
            outcome.problem(f"run {self.number}, after kill {tally.kills}: {problem}")
        tally.torn += torn
        vanished = self.done - done
        if vanished:
            tally.losses += len(vanished)
            outcome.problem(
                f"run {self.number}, after kill {tally.kills}: the records of "
                f"items {sorted(vanished)[:10]} left the file"
            )
        self.done = done

    def _ended(self, attempt: int, code: int, outcome: Outcome, tally: Tally) -> None:
        """The attempt that ended by itself: it succeeded, the file is whole,
        and no attempt of the run sent an item twice.
        """
        where = f"run {self.number}"
        if code != 0:
            error = (self.folder / f"{attempt}.err").read_text("utf-8", "replace")
            last = error.strip().splitlines()[-1:] or ["(nothing on stderr)"]
            outcome.problem(f"{where}: attempt {attempt} exited {code}: {last[0]}")
        else:
            report = json.loads((self.folder / f"{attempt}.out").read_text("utf-8"))
            if report["failed"]:
                outcome.problem(f"{where}: items failed: {report['failed'][:10]}")
        lost, problems = check_final(self.checkpoint, self.tokens)
        tally.losses += lost
        for problem in problems:
            outcome.problem(f"{where}, the file it left: {problem}")
        duplicates, resent = self._sent_twice(outcome)
        tally.duplicates += duplicates
        tally.resent += resent
        left = sorted(path.name for path in self.folder.glob(".*.tmp"))
        if left:  # a kill's rewrite is removed by the next run that opens the file
            tally.leftovers += len(left)
            outcome.problem(f"{where}: rewrites left in the folder: {left[:3]}")

    def _sent_twice(self, outcome: Outcome) -> tuple[int, int]:
        """Duplicates; and the items sent again because a kill came between
        their answer and their record, which is no duplicate.
        """
        duplicates = resent = 0
        answered_before: set[str] = set()
        for attempt, done in sorted(self.started.items()):
            answered: set[str] = set()
            for token, action in self.protocol.sent[attempt]:
                index = self.index[token]
                why = ""
                if index in done:
                    why = "its record was in the file when the attempt started"
                elif token in answered:
                    why = "the server had answered it in this attempt"
                elif token in answered_before:
                    resent += 1
                if why:
                    duplicates += 1
                    outcome.problem(
                        f"run {self.number}: attempt {attempt} sent item {index} "
                        f"again, though {why}"
                    )
                if action == "ok":
                    answered.add(token)
            answered_before |= answered
        return duplicates, resent


def read_checkpoint(path: Path, tokens: list[str]) -> tuple[set[int], int, list[str]]:
    """The items a checkpoint holds a success of, whether its last line is
    torn (1 or 0), and what is wrong with it: a whole line that is no
    record, or a success whose text is not its item's.
    """
    data = path.read_bytes() if path.exists() else b""
    *lines, torn = data.split(b"\n")
    done: set[int] = set()
    problems = []
    for number, line in enumerate(lines, 1):
        record = _record(line, len(tokens))
        if record is None:
            problems.append(f"line {number} is no record: {line[:80]!r}")
        elif record["error"] is None:
            index = record["index"]
            if record.get("text") != echo(tokens[index]):
                problems.append(f"line {number}: item {index}'s text is wrong")
            done.add(index)
    return done, int(bool(torn)), problems


def check_final(path: Path, tokens: list[str]) -> tuple[int, list[str]]:
    """How many items a finished run's file lacks a success of, and what is
    wrong with it: it has one line per item, in input order, each a success
    with its item's text.
    """
    data = path.read_bytes() if path.exists() else b""
    if data and not data.endswith(b"\n"):
        return len(tokens), ["its last line is torn"]
    records = [_record(line, len(tokens)) for line in data.split(b"\n")[:-1]]
    problems = []
    indices = [record["index"] if record else None for record in records]
    if indices != list(range(len(tokens))):
        problems.append(f"its lines are not items 0..{len(tokens) - 1}, once each")
    good = {
        record["index"]
        for record in records
        if record is not None
        and record["error"] is None
        and record.get("text") == echo(tokens[record["index"]])
    }
    lost = len(tokens) - len(good)
    if lost:
        missing = sorted(set(range(len(tokens))) - good)
        problems.append(f"{lost} items have no right success: {missing[:10]}")
    return lost, problems


def _record(line: bytes, items: int) -> dict[str, Any] | None:
    """A checkpoint line's record, or None if it is none."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if not isinstance(record, dict) or not {"index", "input_sha", "error"} <= set(
        record
    ):
        return None
    index = record["index"]
    if not isinstance(index, int) or not 0 <= index < items:
        return None
    return record


def _cut_by_a_kill(request: Any) -> bool:
    """A request whose body is shorter than its Content-Length: its sender
    died while writing it.
    """
    return len(request.body) < int(request.headers.get("content-length", "0"))


def _figures(tally: Tally, requests: int) -> dict[str, Any]:
    phases = ", ".join(f"{p} {n}" for p, n in sorted(tally.phases.items()))
    moments = ", ".join(f"{m} {n}" for m, n in sorted(tally.moments.items()))
    return {
        "runs": tally.runs,
        "attempts": tally.attempts,
        "kills": tally.kills,
        "requests": requests,
        "duplicates": tally.duplicates,
        "losses": tally.losses,
        "answered, killed before the record, sent again": tally.resent,
        "torn last lines": tally.torn,
        "rewrites left once a run ended": tally.leftovers,
        "kills by phase": phases,
        "kills by moment": moments,
    }
