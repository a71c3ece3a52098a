"""batch(): order, per-item errors, pacing seen by the server, checkpoints, Ctrl-C."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Callable

import pytest

import chatproviders
from chatproviders import (
    BadRequestError,
    BatchItem,
    Cromicle,
    FallbackProvider,
    InvalidMessagesError,
    OpenAICompatible,
    RateLimitError,
    UnsupportedParameterError,
    Usage,
    batch,
)
from chatproviders.testing import EmulatorServer, serve
from tests.batch.clock import FakeClock
from tests.constants import GREETING
from tests.loopback import WAIT, Conn, LoopbackServer


def prompts(server: EmulatorServer) -> list[str]:
    """The prompt of every request the Cromicle emulator received, in order."""
    return [request.json["message"] for request in server.requests]


Answer = Callable[[Conn, str], None]


def prompt_server(answer: Answer) -> LoopbackServer:
    """A keep-alive Cromicle server: ``answer(conn, prompt)`` for each request."""

    def handler(conn: Conn) -> None:
        while True:
            try:
                request = conn.read_request()
            except OSError:
                return
            if request is None:
                return
            answer(conn, json.loads(request.body)["message"])

    return LoopbackServer(handler)


def reply(conn: Conn, text: str, status: int = 200, *headers: str) -> None:
    body = text.encode("utf-8")
    head = [
        ("Content-Type", "text/plain; charset=utf-8"),
        *(h.split(": ") for h in headers),
    ]
    conn.send_head(status, head, "length", len(body))  # type: ignore[arg-type]
    conn.sock.sendall(body)


def test_items_come_back_in_input_order_with_their_own_errors() -> None:
    """Items come back in input order, whatever order they end in; failures too."""
    last_answered = threading.Event()

    def answer(conn: Conn, prompt: str) -> None:
        if prompt == "p0":  # the first item finishes last
            assert last_answered.wait(WAIT)
        if prompt.startswith("bad"):
            reply(conn, "no", 400)
        else:
            reply(conn, f"re {prompt}")
        if prompt == "p3":
            last_answered.set()

    inputs: list[Any] = [
        "p0",
        {"prompt": "bad1", "id": "row-1"},
        [{"role": "user", "content": "p2"}],
        {"messages": [{"role": "user", "content": "p3"}], "id": 7},
        "p4",
    ]
    with prompt_server(answer) as server:
        result = batch(Cromicle(base_url=server.url), inputs, concurrency=4)
    assert [item.index for item in result] == [0, 1, 2, 3, 4]
    assert [item.id for item in result] == [None, "row-1", None, 7, None]
    assert [item.input for item in result] == inputs
    assert result.texts == ["re p0", None, "re p2", "re p3", "re p4"]
    assert isinstance(result[1].error, BadRequestError)
    assert result[1].error.status_code == 400
    assert result.failed == [result[1]]
    assert len(result.succeeded) == 4
    assert result[0].reply is not None and result[0].reply.text == "re p0"
    assert result[0].provider == "Cromicle"
    assert repr(result) == "<BatchResult of 5 items: 4 succeeded, 1 failed>"
    assert result.parsed == [None] * 5  # no schema: nothing parsed


@pytest.mark.parametrize(
    ("bad", "error", "message"),
    [
        (3, InvalidMessagesError, "inputs[2]: must be a prompt str"),
        ({"id": 1}, InvalidMessagesError, "inputs[2]: a dict input needs"),
        ({"prompt": "a", "messages": []}, InvalidMessagesError, "inputs[2]: a dict"),
        ({"prompt": b"x"}, InvalidMessagesError, "inputs[2]: 'prompt' must be a str"),
        ({"prompt": "x", "id": [1]}, InvalidMessagesError, "inputs[2]: 'id' must"),
        ([{"role": "bot", "content": "x"}], InvalidMessagesError, "unknown role"),
        ([], InvalidMessagesError, "inputs[2]: messages is empty"),
        ({"prompt": "x", "temperature": 1}, UnsupportedParameterError, "inputs[2]"),
        (
            {"prompt": "x", "model": "gpt-9"},
            chatproviders.ModelNotSupportedError,
            "[2]",
        ),
    ],
)
def test_a_bad_input_is_refused_by_index_before_anything_is_sent(
    cromicle: EmulatorServer, bad: Any, error: type[Exception], message: str
) -> None:
    """One bad input stops the batch before its first request, naming the index."""
    with pytest.raises(error, match=message.replace("[", r"\[")):
        batch(Cromicle(base_url=cromicle.url), ["a", "b", bad, "d"])
    assert cromicle.requests == []


@pytest.mark.parametrize(
    ("inputs", "options", "message"),
    [
        ("just one prompt", {}, "inputs must be a list"),
        (["a"], {"concurrency": 0}, "concurrency must be an int >= 1"),
        (["a"], {"rate": 0}, "rate must be"),
        (["a"], {"rate": float("nan")}, "rate must be"),
        (["a"], {"progress": "yes"}, "progress must be"),
        (["a"], {"executor": object()}, "executor must have submit"),
    ],
)
def test_bad_options_are_refused_before_anything_is_sent(
    cromicle: EmulatorServer, inputs: Any, options: dict[str, Any], message: str
) -> None:
    """Wrong inputs or options raise our error, and nothing is sent."""
    with pytest.raises((TypeError, ValueError), match=message):
        batch(Cromicle(base_url=cromicle.url), inputs, **options)
    assert cromicle.requests == []


def test_call_keywords_apply_to_every_input_unless_it_sets_its_own() -> None:
    """model= and parameters given to batch() reach each body; an input's win."""
    with serve("openai", models=["m1", "m2"]) as server:
        client = chatproviders.OpenAICompatible(server.url)
        inputs = ["a", {"prompt": "b", "model": "m2", "temperature": 0.5}]
        result = batch(client, inputs, model="m1", temperature=0.1, concurrency=1)
        bodies = [request.json for request in server.requests]
    assert [item.ok for item in result] == [True, True]
    assert [(b["model"], b["temperature"]) for b in bodies] == [
        ("m1", 0.1),
        ("m2", 0.5),
    ]


def test_the_server_never_sees_more_requests_in_flight_than_concurrency() -> None:
    """The server, holding requests, sees at most concurrency=3 in flight, and 3."""
    changed = threading.Condition()
    seen = {"arrived": 0, "in_flight": 0, "most": 0}
    release = threading.Semaphore(0)

    def answer(conn: Conn, prompt: str) -> None:
        with changed:
            seen["arrived"] += 1
            seen["in_flight"] += 1
            seen["most"] = max(seen["most"], seen["in_flight"])
            changed.notify_all()
        assert release.acquire(timeout=WAIT)
        with changed:
            seen["in_flight"] -= 1
        reply(conn, prompt)

    total = 10
    with prompt_server(answer) as server:
        results: list[Any] = []
        runner = threading.Thread(
            target=lambda: results.append(
                batch(
                    Cromicle(base_url=server.url),
                    [f"p{i}" for i in range(total)],
                    concurrency=3,
                )
            )
        )
        runner.start()
        for released in range(total):
            with changed:
                expected = min(released + 3, total)
                arrived = changed.wait_for(
                    lambda n=expected: seen["arrived"] >= n, WAIT
                )
                assert arrived
                assert seen["in_flight"] <= 3
            release.release()
        runner.join(WAIT)
    assert seen["most"] == 3
    assert results[0].texts == [f"p{i}" for i in range(total)]


def test_the_server_sees_at_most_rate_starts_in_any_second(clock: FakeClock) -> None:
    """rate=2: starts spaced 1/2 s apart on the batch's clock, 2 in a second."""
    stamps: list[float] = []

    def answer(conn: Conn, prompt: str) -> None:
        stamps.append(clock.now)
        reply(conn, prompt)

    with prompt_server(answer) as server:
        client = Cromicle(base_url=server.url)
        result = batch(client, [f"p{i}" for i in range(7)], concurrency=4, rate=2)
    assert all(item.ok for item in result)
    assert sorted(stamps) == [0.5 * i for i in range(7)]
    for start in stamps:
        assert sum(start <= t < start + 1 for t in stamps) <= 2


def test_a_rate_below_one_spaces_the_starts(clock: FakeClock) -> None:
    """rate=0.5 is one start every two seconds."""
    stamps: list[float] = []

    def answer(conn: Conn, prompt: str) -> None:
        stamps.append(clock.now)
        reply(conn, prompt)

    with prompt_server(answer) as server:
        batch(Cromicle(base_url=server.url), ["a", "b", "c"], rate=0.5)
    assert stamps == [0.0, 2.0, 4.0]


@pytest.fixture
def pauses(caplog: pytest.LogCaptureFixture) -> threading.Event:
    """Set when the batch logs that every request waits."""
    paused = threading.Event()

    class Signal(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage().startswith("batch: every request waits"):
                paused.set()

    caplog.set_level(logging.INFO, logger="chatproviders")
    handler = Signal()
    logging.getLogger("chatproviders").addHandler(handler)
    yield paused
    logging.getLogger("chatproviders").removeHandler(handler)


def test_a_429_pauses_every_worker_for_its_retry_after(
    clock: FakeClock, pauses: threading.Event
) -> None:
    """A 429 (Retry-After: 30) to one worker: no worker starts a request for 30 s."""
    stamps: list[tuple[str, float]] = []
    first = threading.Event()

    def answer(conn: Conn, prompt: str) -> None:
        stamps.append((prompt, clock.now))
        if prompt == "p0" and not first.is_set():
            first.set()
            reply(conn, "slow down", 429, "Retry-After: 30")
        else:
            if prompt == "p1":  # in flight while the 429 is taken in
                assert pauses.wait(WAIT)
            reply(conn, f"re {prompt}")

    with prompt_server(answer) as server:
        client = Cromicle(base_url=server.url)
        result = batch(client, [f"p{i}" for i in range(5)], concurrency=2)
    assert result.texts == [f"re p{i}" for i in range(5)]
    assert result[0].tries == 2
    assert sorted(stamps[:2]) == [("p0", 0.0), ("p1", 0.0)]
    assert sorted(stamps[2:]) == [
        ("p0", 30.0),
        ("p2", 30.0),
        ("p3", 30.0),
        ("p4", 30.0),
    ]


def test_a_503_without_retry_after_pauses_for_the_backoff(
    clock: FakeClock, pauses: threading.Event
) -> None:
    """A 503 with no Retry-After waits the client's first backoff (0.375-0.5 s)."""
    stamps: list[float] = []

    def answer(conn: Conn, prompt: str) -> None:
        stamps.append(clock.now)
        if len(stamps) == 1:
            reply(conn, "busy", 503)
        else:
            reply(conn, prompt)

    with prompt_server(answer) as server:
        result = batch(Cromicle(base_url=server.url), ["a", "b"], concurrency=1)
    assert result.texts == ["a", "b"]
    assert stamps[0] == 0.0
    assert 0.375 <= stamps[1] <= 0.5
    assert stamps[2] == stamps[1]
    assert pauses.is_set()


def test_a_500_is_tried_again_after_the_backoff(clock: FakeClock) -> None:
    """A 500 asks nobody else to wait, but its own item is sent again after
    the backoff, and then succeeds."""
    stamps: list[float] = []

    def answer(conn: Conn, prompt: str) -> None:
        stamps.append(clock.now)
        if len(stamps) == 1:
            reply(conn, "oops", 500)
        else:
            reply(conn, prompt)

    with prompt_server(answer) as server:
        result = batch(Cromicle(base_url=server.url), ["a"], concurrency=1)
    assert result.texts == ["a"]
    assert result[0].tries == 2
    assert stamps[0] == 0.0 and 0.375 <= stamps[1] <= 0.5


def test_retries_are_the_batchs_and_bounded(
    clock: FakeClock, cromicle: EmulatorServer
) -> None:
    """An item always refused with 429 is sent max_retries + 1 times, then fails."""
    cromicle.set_reply(status=429, headers={"Retry-After": "2"})
    client = Cromicle(base_url=cromicle.url, max_retries=3)
    result = batch(client, ["a"])
    assert len(cromicle.requests) == 4
    assert isinstance(result[0].error, RateLimitError)
    assert result[0].tries == 4
    assert clock.now == 6.0  # three pauses of 2 s


def test_a_fallback_provider_runs_a_batch() -> None:
    """A FallbackProvider's batch gets every item from the member that answers."""
    with serve("cromicle", status=500) as down, serve("acytoo", text="up") as up:
        client = FallbackProvider(
            [Cromicle(base_url=down.url), chatproviders.Acytoo(base_url=up.url)]
        )
        result = batch(client, ["a", "b", "c"], concurrency=1)
        assert len(up.requests) == 3
    assert result.texts == ["up", "up", "up"]
    assert {item.provider for item in result} == {"Acytoo"}


def test_an_executor_like_object_runs_the_calls() -> None:
    """Any object with submit() returning a future runs the calls."""

    class Inline:
        submitted = 0

        def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
            self.submitted += 1
            future: Future[Any] = Future()
            try:
                future.set_result(fn(*args))
            except BaseException as exc:
                future.set_exception(exc)
            return future

    executor = Inline()
    with serve("cromicle", text="x") as server:
        result = batch(Cromicle(base_url=server.url), ["a", "b"], executor=executor)
    assert executor.submitted == 2
    assert result.texts == ["x", "x"]


# -- checkpoints ---------------------------------------------------------------


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def test_a_checkpoint_has_one_record_a_finished_item(
    cromicle: EmulatorServer, tmp_path: Path
) -> None:
    """Each finished item is one JSON line: index, id, text, error, provider."""
    path = tmp_path / "run.jsonl"
    cromicle.queue_reply(status=400)
    batch(
        Cromicle(base_url=cromicle.url),
        [{"prompt": "a", "id": "x"}, "b"],
        concurrency=1,
        checkpoint=path,
    )
    first, second = lines(path)
    assert {k: first[k] for k in ("index", "id", "text", "provider")} == {
        "index": 0,
        "id": "x",
        "text": None,
        "provider": "Cromicle",
    }
    assert first["error"].startswith("BadRequestError: ")
    assert second["text"] == GREETING and second["error"] is None
    assert len(first["input_sha"]) == 16


def test_a_resumed_item_is_what_its_line_holds_and_took_no_request(
    tmp_path: Path,
) -> None:
    """A line keeps the answering model; read back, the item has its text,
    provider and usage, no reply and 0 tries this run, and shows as a short
    repr (no input, reply or usage in it)."""
    path = tmp_path / "run.jsonl"
    inputs = ["a", {"prompt": "b", "id": "row-b"}]
    with serve("openai", models=["m"]) as server:
        client = OpenAICompatible(server.url, model="m")
        server.queue_reply(status=400)  # a fails: a rerun sends it again
        first = batch(client, inputs, concurrency=1, checkpoint=path)
        assert [line["model"] for line in lines(path)] == [None, "m"]
        second = batch(client, inputs, concurrency=1, checkpoint=path)
    item = second[1]
    assert (item.text, item.provider) == (first[1].text, "OpenAICompatible")
    assert item.usage == first[1].usage and item.usage is not None
    assert (item.reply, item.tries) == (None, 0)
    assert repr(item) == (
        f"BatchItem(index=1, id='row-b', text={item.text!r}, error=None, "
        "provider='OpenAICompatible', tries=0, parsed=None)"
    )


@pytest.mark.parametrize(
    ("usage", "read"),
    [
        ({"prompt_tokens": 3, "completion_tokens": 4}, Usage(3, 4, 7)),
        (
            {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 9},
            Usage(3, 4, 9),
        ),
        ({"prompt_tokens": 3}, None),
        ("Usage(prompt_tokens=3, completion_tokens=4, total_tokens=7)", None),
    ],
    ids=["no total", "its own total", "no completion", "a repr"],
)
def test_a_line_with_usage_of_another_shape_reads_back(
    cromicle: EmulatorServer, tmp_path: Path, usage: Any, read: Any
) -> None:
    """A line's usage reads back as written; without its total, summed;
    without both counts (or an older version's repr), as no usage, never an
    error."""
    path = tmp_path / "run.jsonl"
    client = Cromicle(base_url=cromicle.url)
    batch(client, ["a"], checkpoint=path)
    record = lines(path)[0]
    record["usage"] = usage
    path.write_text(json.dumps(record) + "\n", "utf-8")
    again = batch(client, ["a"], checkpoint=path)
    assert len(cromicle.requests) == 1  # read back, not sent
    assert again[0].usage == read


def test_a_rerun_sends_only_what_did_not_succeed(
    cromicle: EmulatorServer, tmp_path: Path
) -> None:
    """A rerun sends only the failed item; the rest are read back, in order."""
    path = tmp_path / "run.jsonl"
    client = Cromicle(base_url=cromicle.url)
    inputs = [f"p{i}" for i in range(4)]
    cromicle.queue_reply(status=400)  # p0
    first = batch(client, inputs, concurrency=1, checkpoint=path)
    assert [item.ok for item in first] == [False, True, True, True]
    second = batch(client, inputs, concurrency=1, checkpoint=path)
    assert prompts(cromicle) == ["p0", "p1", "p2", "p3", "p0"]
    assert second.texts == [GREETING] * 4
    assert second[0].reply is not None
    assert [item.reply for item in second[1:]] == [None, None, None]
    assert [item.input for item in second] == inputs
    batch(client, inputs, concurrency=1, checkpoint=path)
    assert len(cromicle.requests) == 5  # all done: nothing sent


def test_a_torn_last_line_is_ignored_and_cut_off(
    cromicle: EmulatorServer, tmp_path: Path
) -> None:
    """A torn last line is no record: its item is sent again, the line replaced."""
    path = tmp_path / "run.jsonl"
    client = Cromicle(base_url=cromicle.url)
    batch(client, ["a", "b"], concurrency=1, checkpoint=path)
    whole = path.read_bytes().split(b"\n")
    path.write_bytes(whole[0] + b"\n" + whole[1][:20])  # b's line torn
    result = batch(client, ["a", "b"], checkpoint=path)
    assert prompts(cromicle) == ["a", "b", "b"]
    assert result.texts == [GREETING, GREETING]
    assert [record["index"] for record in lines(path)] == [0, 1]


@pytest.mark.parametrize(
    "other",
    [["a", "changed"], ["b", "a"], [{"prompt": "a", "id": 1}, "b"]],
)
def test_a_checkpoint_of_other_inputs_is_refused(
    cromicle: EmulatorServer, tmp_path: Path, other: list[Any]
) -> None:
    """A file written for other inputs raises before anything is sent."""
    path = tmp_path / "run.jsonl"
    client = Cromicle(base_url=cromicle.url)
    batch(client, ["a", "b"], checkpoint=path)
    with pytest.raises(ValueError, match="of a different input list"):
        batch(client, other, checkpoint=path)
    assert len(cromicle.requests) == 2


def test_a_file_that_is_no_checkpoint_is_refused(
    cromicle: EmulatorServer, tmp_path: Path
) -> None:
    """A JSONL file of something else is refused, not overwritten."""
    path = tmp_path / "data.jsonl"
    path.write_text('{"prompt": "a"}\n', "utf-8")
    with pytest.raises(ValueError, match="line 1 is not a batch record"):
        batch(Cromicle(base_url=cromicle.url), ["a"], checkpoint=path)
    assert path.read_text("utf-8") == '{"prompt": "a"}\n'
    assert cromicle.requests == []


KILLED_RUN = """
import sys
import chatproviders
client = chatproviders.Cromicle(base_url=sys.argv[1])
inputs = [f"item {i}" for i in range(12)]
chatproviders.batch(client, inputs, concurrency=1, checkpoint=sys.argv[2])
"""


def test_sigkill_mid_run_then_resume_sends_no_finished_item_twice(
    cromicle: EmulatorServer, tmp_path: Path
) -> None:
    """SIGKILL mid-run, then a rerun: no item that finished is sent twice."""
    path = tmp_path / "run.jsonl"
    for _ in range(5):
        cromicle.queue_reply()
    cromicle.set_reply(stall_after=0)  # the 6th request hangs until the kill
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_RUN, cromicle.url, str(path)]
    )
    try:
        cromicle.wait_for_requests(6, timeout=30)
        # concurrency=1: the 6th was sent after the 5th's line was written
        assert [record["index"] for record in lines(path)] == [0, 1, 2, 3, 4]
    finally:
        process.kill()
        process.wait(WAIT)
    assert process.returncode == -signal.SIGKILL
    cromicle.set_reply()
    inputs = [f"item {i}" for i in range(12)]
    result = batch(Cromicle(base_url=cromicle.url), inputs, checkpoint=path)
    assert result.texts == [GREETING] * 12
    sent = Counter(prompts(cromicle))
    assert all(sent[f"item {i}"] == 1 for i in range(5))
    assert sent["item 5"] == 2  # in flight at the kill: it never finished
    assert all(sent[f"item {i}"] == 1 for i in range(6, 12))
    assert sorted(record["index"] for record in lines(path)) == list(range(12))


# -- progress and Ctrl-C -------------------------------------------------------


def test_a_progress_callable_gets_each_finished_item(cromicle: EmulatorServer) -> None:
    """progress=callable is called once per item, in the caller's thread."""
    seen: list[tuple[int, str]] = []
    batch(
        Cromicle(base_url=cromicle.url),
        ["a", "b", "c"],
        progress=lambda item: seen.append(
            (item.index, threading.current_thread().name)
        ),
    )
    assert sorted(index for index, _ in seen) == [0, 1, 2]
    assert {name for _, name in seen} == {threading.current_thread().name}


def test_progress_true_shows_a_bar_with_the_failures(
    cromicle: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """progress=True draws tqdm's bar on stderr: done of total, and failed."""
    cromicle.queue_reply(status=400)
    batch(
        Cromicle(base_url=cromicle.url), ["a", "b", "c"], concurrency=1, progress=True
    )
    err = capsys.readouterr().err
    assert "3/3" in err
    assert "failed=1" in err


def test_progress_false_draws_nothing(
    cromicle: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """progress=False: nothing on stderr."""
    batch(Cromicle(base_url=cromicle.url), ["a"], progress=False)
    assert capsys.readouterr().err == ""


def test_ctrl_c_stops_sending_and_keeps_what_finished(
    cromicle: EmulatorServer, tmp_path: Path
) -> None:
    """Ctrl-C stops sending; exc.partial and the checkpoint keep the 3 finished."""
    path = tmp_path / "run.jsonl"
    finished: list[BatchItem] = []

    def interrupt(item: BatchItem) -> None:
        finished.append(item)
        if len(finished) == 3:
            signal.raise_signal(signal.SIGINT)

    inputs = [f"p{i}" for i in range(10)]
    with pytest.raises(KeyboardInterrupt) as caught:
        batch(
            Cromicle(base_url=cromicle.url),
            inputs,
            concurrency=1,
            checkpoint=path,
            progress=interrupt,
        )
    partial = caught.value.partial  # type: ignore[attr-defined]
    assert [item.index for item in partial] == [0, 1, 2]
    assert partial.texts == [GREETING] * 3
    assert [record["index"] for record in lines(path)] == [0, 1, 2]
    assert len(cromicle.requests) == 3


# -- the command line ----------------------------------------------------------


def run_cli(*argv: str) -> int:
    from chatproviders.cli import main

    return main(["batch", *argv])


def test_the_cli_writes_a_record_a_line_and_resumes(
    cromicle: EmulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI writes a record a line, exits 1 on a failure, and resumes to exit 0."""
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    rows = [
        {"prompt": "a", "id": "r1"},
        {"messages": [{"role": "user", "content": "b"}], "id": "r2"},
        {"prompt": "c"},
    ]
    source.write_text("".join(json.dumps(row) + "\n" for row in rows) + "\n", "utf-8")
    cromicle.queue_reply(status=400)
    argv = [str(source), "-o", str(out), "-p", "cromicle", "--base-url", cromicle.url]
    assert run_cli(*argv, "-j", "1") == 1
    assert capsys.readouterr().err == (
        f"chatproviders batch: 2 of 3 succeeded, 1 failed; records in {out}\n"
    )
    assert [(r["id"], r["text"]) for r in lines(out)] == [
        ("r1", None),
        ("r2", GREETING),
        (None, GREETING),
    ]
    assert run_cli(*argv, "--rate", "50") == 0
    assert "3 of 3 succeeded, 0 failed" in capsys.readouterr().err
    assert prompts(cromicle) == ["a", "b", "c", "a"]
    assert [r["index"] for r in lines(out)] == [0, 1, 2]  # rewritten in order


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"prompt": "a"}\n\n{"prompt": "b"\n', "line 3 is not JSON"),
        ('{"prompt": "a"}\n["b"]\n', 'line 2 must be a JSON object with "prompt"'),
        ('{"prompt": "a"}\n{"text": "b"}\n', "line 2: a dict input needs"),
        ('{"messages": [{"role": "x", "content": "b"}]}\n', "line 1: messages"),
        ('{"prompt": "a", "top_k": 3}\n', "line 1: unsupported parameter"),
    ],
)
def test_the_cli_names_a_bad_input_line_and_exits_2(
    cromicle: EmulatorServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: str,
    message: str,
) -> None:
    """A bad line is exit status 2 with its line number, and nothing is sent."""
    source = tmp_path / "in.jsonl"
    source.write_text(content, "utf-8")
    out = str(tmp_path / "out.jsonl")
    status = run_cli(
        str(source), "-o", out, "-p", "cromicle", "--base-url", cromicle.url
    )
    assert status == 2
    err = capsys.readouterr().err
    assert err.startswith(f"chatproviders batch: error: {source} ")
    assert message in err
    assert cromicle.requests == []
    assert not os.path.exists(out)


def test_the_cli_refuses_an_output_file_of_other_inputs(
    cromicle: EmulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """-o naming the records of another input file is a usage error (exit 2)."""
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    argv = [str(source), "-o", str(out), "-p", "cromicle", "--base-url", cromicle.url]
    source.write_text('{"prompt": "a"}\n', "utf-8")
    assert run_cli(*argv) == 0
    source.write_text('{"prompt": "z"}\n', "utf-8")
    assert run_cli(*argv) == 2
    assert "different input list" in capsys.readouterr().err
    assert prompts(cromicle) == ["a"]


def test_import_chatproviders_imports_neither_tqdm_nor_dask() -> None:
    """tqdm and dask stay optional: importing the package loads neither."""
    code = (
        "import sys, chatproviders; print(sorted({'tqdm', 'dask'} & set(sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert done.stdout == "[]\n"


def test_progress_true_without_tqdm_says_what_to_install(
    cromicle: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without tqdm, progress=True names the extra to install; None runs barless."""
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    client = Cromicle(base_url=cromicle.url)
    with pytest.raises(ImportError, match=r"chatproviders\[progress\]"):
        batch(client, ["a"], progress=True)
    assert cromicle.requests == []
    assert batch(client, ["a"]).texts == [GREETING]


def test_a_fallback_provider_whose_members_all_say_429_pauses_the_batch(
    clock: FakeClock,
) -> None:
    """429 from every member of a FallbackProvider: the longest Retry-After."""
    with serve("cromicle") as first, serve("acytoo", text="ok") as second:
        first.queue_reply(status=429, headers={"Retry-After": "3"})
        second.queue_reply(status=429, headers={"Retry-After": "5"})
        client = FallbackProvider(
            [Cromicle(base_url=first.url), chatproviders.Acytoo(base_url=second.url)]
        )
        result = batch(client, ["a"])
        sent = (len(first.requests), len(second.requests))
    assert result[0].ok and result[0].tries == 2
    assert clock.now == 5.0
    assert sent in ((2, 1), (1, 2))  # each member once, then one of them again


def test_ctrl_c_on_the_cli_exits_at_once_with_the_finished_records(
    cromicle: EmulatorServer, tmp_path: Path
) -> None:
    """Ctrl-C on the CLI exits 130 at once despite a hung request, records kept."""
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text("".join(f'{{"prompt": "p{i}"}}\n' for i in range(3)), "utf-8")
    cromicle.queue_reply()
    cromicle.set_reply(stall_after=0)  # the next hangs until the server stops
    argv = [str(source), "-o", str(out), "-p", "cromicle", "--base-url", cromicle.url]
    argv += ["-j", "1"]  # the 2nd request is sent once the 1st record is written
    process = subprocess.Popen(
        [sys.executable, "-m", "chatproviders", "batch", *argv],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        cromicle.wait_for_requests(2, timeout=30)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=WAIT)  # not the read timeout
    finally:
        process.kill()
        process.wait(WAIT)
    assert process.returncode == 130
    assert [record["index"] for record in lines(out)] == [0]
    assert "Traceback" not in err


def test_a_checkpoint_that_cannot_be_written_fails_before_anything_is_sent(
    cromicle: EmulatorServer, tmp_path: Path
) -> None:
    """A checkpoint in a folder that does not exist raises before any request."""
    path = tmp_path / "missing" / "run.jsonl"
    with pytest.raises(ValueError, match=r"cannot write the checkpoint .*missing"):
        batch(Cromicle(base_url=cromicle.url), ["a"], checkpoint=path)
    assert cromicle.requests == []
