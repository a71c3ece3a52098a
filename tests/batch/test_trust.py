"""batch() gives no silent wrong result: checkpoints that fit only their own
client, any str round-tripping, usage kept as numbers, the rate as the server
sees it, one process per checkpoint, disk trouble, long Retry-After waits."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import chatproviders
from chatproviders import (
    Acytoo,
    BatchItem,
    Cromicle,
    FallbackProvider,
    OpenAICompatible,
    RateLimitError,
    Usage,
    batch,
)
from chatproviders._batch import progress as _progress
from chatproviders._batch import run as _batch
from chatproviders.exceptions import ChatProvidersError, CheckpointError
from chatproviders.testing import EmulatorServer, serve
from tests.batch.clock import FakeClock
from tests.loopback import WAIT, Conn, LoopbackServer


@pytest.fixture
def openai() -> Iterator[EmulatorServer]:
    with serve("openai", models=["llama3.2", "qwen3"]) as server:
        yield server


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def reply(conn: Conn, text: str, status: int = 200, *headers: str) -> None:
    body = text.encode("utf-8")
    head = [
        ("Content-Type", "text/plain; charset=utf-8"),
        *(tuple(h.split(": ")) for h in headers),
    ]
    conn.send_head(status, head, "length", len(body))  # type: ignore[arg-type]
    conn.sock.sendall(body)


def prompt_server(answer: Any) -> LoopbackServer:
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


# -- 1. the fingerprint covers the client ---------------------------------------


def test_a_checkpoint_of_another_model_is_refused_naming_it(
    openai: EmulatorServer, tmp_path: Path
) -> None:
    """llama3.2's checkpoint, rerun with model="qwen3": ValueError naming both."""
    path = tmp_path / "run.jsonl"
    openai.queue_reply(status=400)  # item 0 fails: a rerun would send it
    first = batch(
        OpenAICompatible(openai.url, model="llama3.2"),
        ["a", "b"],
        concurrency=1,
        checkpoint=path,
    )
    assert [item.ok for item in first] == [False, True]
    with pytest.raises(ValueError, match=r"model was 'llama3\.2', now 'qwen3'"):
        batch(OpenAICompatible(openai.url, model="qwen3"), ["a", "b"], checkpoint=path)
    assert len(openai.requests) == 2


@pytest.mark.parametrize(
    ("before", "after", "changed"),
    [
        (
            lambda a, b: Cromicle(base_url=a),
            lambda a, b: Acytoo(base_url=a),
            "provider was 'chatproviders.Cromicle', now 'chatproviders.Acytoo'",
        ),
        (
            lambda a, b: Cromicle(base_url=a),
            lambda a, b: Cromicle(base_url=b),
            "base_url was",
        ),
        (
            lambda a, b: FallbackProvider([Cromicle(base_url=a)]),
            lambda a, b: FallbackProvider([Cromicle(base_url=a), Cromicle(base_url=b)]),
            "members were",
        ),
        (
            lambda a, b: FallbackProvider([Cromicle(base_url=a)]),
            lambda a, b: Cromicle(base_url=a),
            "provider was 'chatproviders.FallbackProvider'",
        ),
    ],
)
def test_a_checkpoint_of_another_client_is_refused_naming_what_changed(
    cromicle: EmulatorServer, tmp_path: Path, before: Any, after: Any, changed: str
) -> None:
    """Another provider class, base URL or fallback member: refused, naming
    what changed and nothing else (the parameters did not change)."""
    path = tmp_path / "run.jsonl"
    other = "http://127.0.0.1:9/"
    cromicle.queue_reply(status=400)
    batch(before(cromicle.url, other), ["a", "b"], concurrency=1, checkpoint=path)
    sent = len(cromicle.requests)
    with pytest.raises(ValueError, match=changed) as refused:
        batch(after(cromicle.url, other), ["a", "b"], checkpoint=path)
    assert "params was" not in str(refused.value)
    assert len(cromicle.requests) == sent


class Styled(OpenAICompatible):
    """A plugin-like client taking a parameter of its own in its constructor."""

    def __init__(self, base_url: str, *, style: str = "plain", **options: Any):
        super().__init__(base_url, **options)
        self.style = style


def test_a_checkpoint_of_other_client_parameters_is_refused_naming_them(
    openai: EmulatorServer, tmp_path: Path
) -> None:
    """A constructor parameter that changes answers changed: refused, named."""
    path = tmp_path / "run.jsonl"
    openai.queue_reply(status=400)
    batch(Styled(openai.url, model="qwen3"), ["a", "b"], checkpoint=path)
    explicit = Styled(openai.url, model="qwen3", style="plain")  # the default
    assert batch(explicit, ["a", "b"], checkpoint=path).texts[0] is not None
    changed = "params was {'style': 'plain'}, now {'style': 'pirate'}"
    with pytest.raises(ValueError, match=re.escape(changed)):
        batch(
            Styled(openai.url, model="qwen3", style="pirate"),
            ["a", "b"],
            checkpoint=path,
        )
    assert len(openai.requests) == 3  # b, then a again: nothing after


def test_credentials_are_not_in_the_checkpoint_and_do_not_matter(
    openai: EmulatorServer, tmp_path: Path
) -> None:
    """The base URL's user:password and the API key stay out; a new key resumes."""
    path = tmp_path / "run.jsonl"
    url = openai.url.replace("http://", "http://user:s3cret@")
    openai.queue_reply(status=400)
    batch(
        OpenAICompatible(url, "sk-one", model="llama3.2"),
        ["a", "b"],
        concurrency=1,
        checkpoint=path,
    )
    assert "s3cret" not in path.read_text("utf-8")
    assert "sk-one" not in path.read_text("utf-8")
    result = batch(
        OpenAICompatible(url.replace("s3cret", "other"), "sk-two", model="llama3.2"),
        ["a", "b"],
        checkpoint=path,
    )
    assert [item.ok for item in result] == [True, True]
    assert len(openai.requests) == 3  # only the failed item again


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ({"max_retries": 0}, {"max_retries": 5}),
        ({"timeout": 30}, {"timeout": 5}),
        ({"total_timeout": 30}, {"total_timeout": 60}),
        ({"headers": {"X-Trace": "1"}}, {"headers": {"X-Trace": "2"}}),
        ({"shuffle": False}, {"shuffle": True}),
        ({"cooldown": 60.0}, {"cooldown": 1.0}),
        ({"health_interval": None}, {"health_interval": 3600.0}),
    ],
    ids=lambda options: next(iter(options)),
)
def test_a_client_option_that_changes_no_answer_resumes_the_checkpoint(
    cromicle: EmulatorServer,
    tmp_path: Path,
    before: dict[str, Any],
    after: dict[str, Any],
) -> None:
    """Retries, timeouts, headers and a fallback's order, cooldown and health
    checks do not change an answer: changed between runs, the rerun resumes
    (sends only the failed item), it is not refused."""
    path = tmp_path / "run.jsonl"

    def client(options: dict[str, Any]) -> Any:
        if next(iter(options)) in ("shuffle", "cooldown", "health_interval"):
            return FallbackProvider([Cromicle(base_url=cromicle.url)], **options)
        return Cromicle(base_url=cromicle.url, **options)

    cromicle.queue_reply(status=400)
    batch(client(before), ["a", "b"], concurrency=1, checkpoint=path)
    sent = len(cromicle.requests)
    changed = client(after)
    try:
        result = batch(changed, ["a", "b"], concurrency=1, checkpoint=path)
    finally:
        changed.close()
    assert [item.ok for item in result] == [True, True]
    assert len(cromicle.requests) == sent + 1  # only the failed item again


def test_call_parameters_in_another_order_resume_the_checkpoint(
    openai: EmulatorServer, tmp_path: Path
) -> None:
    """The same parameters given in another order are the same call: resumed."""
    path = tmp_path / "run.jsonl"
    client = OpenAICompatible(openai.url, model="llama3.2")
    openai.queue_reply(status=400)
    batch(client, ["a", "b"], concurrency=1, checkpoint=path, temperature=0.5, top_p=1)
    sent = len(openai.requests)
    again = batch(client, ["a", "b"], checkpoint=path, top_p=1, temperature=0.5)
    assert [item.ok for item in again] == [True, True]
    assert len(openai.requests) == sent + 1


def test_a_checkpoint_of_another_per_call_model_names_it(
    openai: EmulatorServer, tmp_path: Path
) -> None:
    """batch(model=...) changed between runs: refused, the two models named."""
    path = tmp_path / "run.jsonl"
    client = OpenAICompatible(openai.url)
    batch(client, ["a"], model="llama3.2", checkpoint=path)
    with pytest.raises(ValueError, match=r"came from model 'llama3\.2'.* for 'qwen3'"):
        batch(client, ["a"], model="qwen3", checkpoint=path)
    assert len(openai.requests) == 1


# -- 2. any str round-trips -----------------------------------------------------


def test_a_lone_surrogate_round_trips_through_the_checkpoint(tmp_path: Path) -> None:
    """A reply and an id holding lone surrogates are written and read back."""
    path = tmp_path / "run.jsonl"
    text = "half \ud83d of a pair"
    event = {"choices": [{"index": 0, "delta": {"content": text}}]}
    body = f"data: {json.dumps(event)}\n\ndata: [DONE]\n\n".encode("ascii")
    sent: list[bytes] = []

    def handler(conn: Conn) -> None:
        while (request := conn.read_request()) is not None:
            sent.append(request.body)
            conn.respond(200, body, "text/event-stream")

    inputs = [{"prompt": "a", "id": "file-\udcff.txt"}, "b"]
    with LoopbackServer(handler) as server:
        client = OpenAICompatible(server.url, model="m")
        first = batch(client, inputs, checkpoint=path)
        assert first.texts == [text, text]
        second = batch(client, inputs, checkpoint=path)
    assert len(sent) == 2  # nothing paid twice
    assert second.texts == [text, text]
    assert [item.reply for item in second] == [None, None]
    assert lines(path)[0]["id"] == "file-\udcff.txt"


# -- 3. usage as numbers ----------------------------------------------------------


def test_usage_is_kept_as_numbers_and_summed(
    openai: EmulatorServer, tmp_path: Path
) -> None:
    """usage is a JSON object in the checkpoint, a Usage read back, summed."""
    path = tmp_path / "run.jsonl"
    client = OpenAICompatible(openai.url, model="llama3.2")
    first = batch(client, ["a", "b c"], checkpoint=path)
    usages = [item.usage for item in first]
    assert all(isinstance(usage, Usage) for usage in usages)
    assert [record["usage"] for record in lines(path)] == [
        {
            "prompt_tokens": u.prompt_tokens,
            "completion_tokens": u.completion_tokens,
            "total_tokens": u.total_tokens,
        }
        for u in usages
    ]
    second = batch(client, ["a", "b c"], checkpoint=path)
    assert [item.usage for item in second] == usages
    assert second[0].usage.total_tokens == usages[0].total_tokens
    assert second.usage == Usage(
        sum(u.prompt_tokens for u in usages),
        sum(u.completion_tokens for u in usages),
        sum(u.total_tokens for u in usages),
    )


def test_a_responses_batch_resumes_from_its_checkpoint(
    openai: EmulatorServer, tmp_path: Path
) -> None:
    """A batch over client.responses reads its own checkpoint back (the usage
    with its reasoning_tokens), sending nothing again."""
    path = tmp_path / "run.jsonl"
    client = OpenAICompatible(openai.url, model="llama3.2")
    openai.set_reply(text="x", usage={"input_tokens": 1, "output_tokens": 2})
    first = batch(client.responses, ["a"], checkpoint=path)
    assert first[0].error is None
    sent = len(openai.requests)
    second = batch(client.responses, ["a"], checkpoint=path)
    assert len(openai.requests) == sent
    assert second[0].text == "x"
    assert second[0].usage.total_tokens == 3


def test_a_responses_checkpoint_of_another_server_is_refused(
    openai: EmulatorServer, tmp_path: Path
) -> None:
    """The Responses API of another base URL or model is another client."""
    path = tmp_path / "run.jsonl"
    client = OpenAICompatible(openai.url, model="llama3.2")
    batch(client.responses, ["a"], checkpoint=path)
    other = OpenAICompatible(openai.url, model="other")
    with pytest.raises(ValueError, match="another client"):
        batch(other.responses, ["a"], checkpoint=path)


def test_a_responses_checkpoint_rerun_through_chat_names_the_switch(
    openai: EmulatorServer, tmp_path: Path
) -> None:
    """client.responses' checkpoint, rerun through the client's chat API:
    refused, naming the provider each time."""
    path = tmp_path / "run.jsonl"
    client = OpenAICompatible(openai.url, model="llama3.2")
    batch(client.responses, ["a"], checkpoint=path)
    changed = "provider was 'chatproviders.Responses', now 'chatproviders.Op"
    with pytest.raises(ValueError, match=re.escape(changed)):
        batch(client, ["a"], checkpoint=path)


def test_a_batch_without_usage_sums_to_none(cromicle: EmulatorServer) -> None:
    """No item reported usage: BatchResult.usage is None, not zeros."""
    assert batch(Cromicle(base_url=cromicle.url), ["a"]).usage is None


# -- 4. the rate, as the server sees it -----------------------------------------


def test_starts_are_spaced_one_over_rate_apart(clock: FakeClock) -> None:
    """rate=4: starts 0.25 s apart on the batch's clock, never a burst."""
    stamps: list[float] = []

    def answer(conn: Conn, prompt: str) -> None:
        stamps.append(clock.now)
        reply(conn, prompt)

    with prompt_server(answer) as server:
        batch(Cromicle(base_url=server.url), [f"p{i}" for i in range(6)], rate=4)
    gaps = [b - a for a, b in zip(sorted(stamps), sorted(stamps)[1:])]
    assert min(gaps) >= 0.25 - 1e-9
    for start in stamps:  # never 5 starts within a second
        assert sum(start <= t < start + 1 for t in stamps) <= 4


@pytest.fixture
def busy_cpu() -> Iterator[None]:
    """Both cores busy with other processes while the test runs."""
    spinners = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"])
        for _ in range(os.cpu_count() or 2)
    ]
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait(WAIT)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("rate", "concurrency", "count"),
    [(10, 4, 26), (50, 16, 110), (3, 8, 8), (25, 1, 55)],
)
def test_the_server_never_sees_more_than_rate_arrivals_in_a_second(
    busy_cpu: None, rate: int, concurrency: int, count: int
) -> None:
    """Arrival times taken at the server: no one-second window holds over R."""
    arrivals: list[float] = []

    def answer(conn: Conn, prompt: str) -> None:
        arrivals.append(time.monotonic())
        reply(conn, prompt)

    with prompt_server(answer) as server:
        result = batch(
            Cromicle(base_url=server.url),
            [f"p{i}" for i in range(count)],
            concurrency=concurrency,
            rate=rate,
        )
    assert all(item.ok for item in result)
    arrivals.sort()
    most = max(sum(t <= u < t + 1 for u in arrivals) for t in arrivals)
    assert most <= rate  # how fast it goes: test_starts_are_spaced_... pins it


# -- 5. one process per checkpoint ----------------------------------------------

HELD_RUN = """
import sys
import chatproviders
client = chatproviders.Cromicle(base_url=sys.argv[1])
try:
    chatproviders.batch(
        client, ["a", "b", "c"], concurrency=1, checkpoint=sys.argv[2]
    )
except chatproviders.CheckpointError as exc:
    print(type(exc).__name__, exc.path, "|", exc)
    sys.exit(3)
"""


def test_a_second_process_on_one_checkpoint_errs_at_once_and_sends_nothing(
    cromicle: EmulatorServer, tmp_path: Path
) -> None:
    """Two real processes, one checkpoint: the second errs at once, sends nothing."""
    path = tmp_path / "run.jsonl"
    cromicle.set_reply(stall_after=0)  # the first process's request hangs
    first = subprocess.Popen([sys.executable, "-c", HELD_RUN, cromicle.url, str(path)])
    try:
        cromicle.wait_for_requests(1, timeout=30)
        second = subprocess.run(
            [sys.executable, "-c", HELD_RUN, cromicle.url, str(path)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    finally:
        first.kill()
        first.wait(WAIT)
    assert second.returncode == 3, second.stderr
    assert second.stdout.startswith(f"CheckpointError {path} |")
    assert "in use by another process" in second.stdout
    assert len(cromicle.requests) == 1


# -- 6. disk trouble --------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/dev/zero", "/dev/full", "fifo", "folder"],
)
def test_a_checkpoint_that_is_no_regular_file_is_refused_at_once(
    cromicle: EmulatorServer, tmp_path: Path, path: str
) -> None:
    """A device, a FIFO or a folder as checkpoint: refused before reading it."""
    if path == "fifo":
        path = str(tmp_path / "fifo")
        os.mkfifo(path)
    elif path == "folder":
        path = str(tmp_path)
    with pytest.raises(CheckpointError, match="is not a regular file") as caught:
        batch(Cromicle(base_url=cromicle.url), ["a"], checkpoint=path)
    assert caught.value.path == path
    assert isinstance(caught.value, ValueError)  # as 0.2 raised for a bad path
    assert cromicle.requests == []


FULL_RUN = """
import json, os, resource, signal, sys, threading
import chatproviders
mode, first_url, second_url, path = sys.argv[1:5]
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit: EFBIG

def fill_the_disk(item):
    if mode == "fsize":  # the file may not grow any more
        size = os.path.getsize(path)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, resource.RLIM_INFINITY))
    else:  # the checkpoint's descriptor now writes to /dev/full: ENOSPC
        for fd in os.listdir("/proc/self/fd"):
            try:
                target = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                continue
            if target == os.path.realpath(path):
                full = os.open("/dev/full", os.O_WRONLY)
                os.dup2(full, int(fd))
                os.close(full)

done = []
def progress(item):
    done.append(item)
    if len(done) == 1:
        fill_the_disk(item)

client = chatproviders.FallbackProvider(
    [chatproviders.Cromicle(base_url=first_url),
     chatproviders.Cromicle(base_url=second_url)]
)
inputs = [f"item {i}" for i in range(20)]
try:
    chatproviders.batch(
        client, inputs, concurrency=4, checkpoint=path, progress=progress
    )
except Exception as exc:
    print(json.dumps({
        "class": type(exc).__name__, "message": str(exc),
        "path": getattr(exc, "path", None),
        "partial": [item.index for item in getattr(exc, "partial", [])],
    }), flush=True)
else:
    print(json.dumps({"class": None}), flush=True)
sys.stdin.readline()  # the test released the held requests
for thread in threading.enumerate():
    if thread.name.startswith("chatproviders-batch"):
        thread.join()
print("joined", flush=True)
"""


@pytest.mark.parametrize("mode", ["fsize", "devfull"])
def test_a_full_disk_raises_naming_the_file_and_nothing_more_is_sent(
    tmp_path: Path, mode: str
) -> None:
    """A real write error: CheckpointError naming the file, with .partial; the
    requests in flight, answered 500 afterwards, go to no other member."""
    path = tmp_path / "run.jsonl"
    arrived = {"first": 0, "second": 0}
    changed = threading.Condition()
    release = threading.Event()

    def first(conn: Conn, prompt: str) -> None:
        with changed:
            arrived["first"] += 1
            number = arrived["first"]
            changed.notify_all()
        if number <= 2:
            reply(conn, f"re {prompt}")
        else:  # in flight when the disk fills: answered after the error
            assert release.wait(WAIT * 4)
            reply(conn, "down", 500)

    def second(conn: Conn, prompt: str) -> None:
        with changed:
            arrived["second"] += 1
        reply(conn, f"second {prompt}")

    with prompt_server(first) as one, prompt_server(second) as two:
        process = subprocess.Popen(
            [sys.executable, "-c", FULL_RUN, mode, one.url, two.url, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert process.stdout is not None and process.stdin is not None
            outcome = json.loads(process.stdout.readline())
            release.set()
            process.stdin.write("go\n")
            process.stdin.flush()
            assert process.stdout.readline() == "joined\n"
            process.wait(WAIT)
        finally:
            release.set()
            process.kill()
            process.wait(WAIT)
            for pipe in (process.stdin, process.stdout):
                if pipe is not None:
                    pipe.close()
    assert outcome["class"] == "CheckpointError"
    assert outcome["path"] == str(path)
    assert str(path) in outcome["message"]
    assert len(outcome["partial"]) == 2  # the line written, the one refused
    assert arrived["second"] == 0
    assert arrived["first"] <= 5  # the 4 started at once, and at most one more
    assert len(lines(path)) == 1


# -- 7. a 429 or 503 always pauses the batch --------------------------------------


@pytest.fixture
def pauses(caplog: pytest.LogCaptureFixture) -> Iterator[threading.Event]:
    """Set when the batch logs that every request waits, or that it stops."""
    paused = threading.Event()

    class Signal(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage().startswith("batch: "):
                paused.set()

    caplog.set_level(logging.INFO, logger="chatproviders")
    handler = Signal()
    logging.getLogger("chatproviders").addHandler(handler)
    yield paused
    logging.getLogger("chatproviders").removeHandler(handler)


def test_a_retry_after_longer_than_the_client_allows_stops_the_batch(
    clock: FakeClock, pauses: threading.Event, tmp_path: Path
) -> None:
    """Retry-After: 120 (over 60 s): nothing more is sent; what is not done
    fails with that error (tries 0 for the unsent), and a rerun sends them."""
    path = tmp_path / "run.jsonl"
    seen: list[str] = []
    quota = threading.Event()

    def answer(conn: Conn, prompt: str) -> None:
        seen.append(prompt)
        if prompt == "p0" and not quota.is_set():
            quota.set()
            reply(conn, "quota", 429, "Retry-After: 120")
        else:  # p1 is in flight when the 429 comes
            assert pauses.wait(WAIT)
            reply(conn, f"re {prompt}")

    inputs = [f"p{i}" for i in range(5)]
    with prompt_server(answer) as server:
        client = Cromicle(base_url=server.url)
        result = batch(client, inputs, concurrency=2, checkpoint=path)
        assert sorted(seen) == ["p0", "p1"]
        assert result.texts == [None, "re p1", None, None, None]
        errors = [result[i].error for i in (0, 2, 3, 4)]
        assert all(isinstance(error, RateLimitError) for error in errors)
        assert result[0].error.retry_after == 120.0  # type: ignore[union-attr]
        assert [item.tries for item in result] == [1, 1, 0, 0, 0]
        assert clock.now == 0.0  # no one waited two minutes
        again = batch(client, inputs, concurrency=2, checkpoint=path)
    assert sorted(seen[2:]) == ["p0", "p2", "p3", "p4"]
    assert again.texts == [f"re p{i}" for i in range(5)]


def test_a_request_in_flight_when_the_batch_stops_tries_no_other_provider(
    clock: FakeClock,
) -> None:
    """Once a long Retry-After stops the batch, an item already in flight
    whose first provider fails is not sent to the next one: it fails with
    the batch's error, and the second server never sees it."""
    p1_sent = threading.Event()
    p0_done = threading.Event()
    second: list[str] = []

    def first_answer(conn: Conn, prompt: str) -> None:
        if prompt == "p0":  # once p1 is here too, so it tries this server first
            assert p1_sent.wait(WAIT)
            reply(conn, "quota", 429, "Retry-After: 120")
        else:
            p1_sent.set()
            assert p0_done.wait(WAIT)  # the batch has stopped
            reply(conn, "broken", 500)

    def second_answer(conn: Conn, prompt: str) -> None:
        second.append(prompt)
        if prompt == "p0":
            reply(conn, "quota", 429, "Retry-After: 120")
        else:
            reply(conn, f"re {prompt}")

    def shown(item: BatchItem) -> None:
        if item.index == 0:
            p0_done.set()

    with prompt_server(first_answer) as one, prompt_server(second_answer) as two:
        client = FallbackProvider(
            [Cromicle(base_url=one.url), Cromicle(base_url=two.url)]
        )
        result = batch(client, ["p0", "p1", "p2"], concurrency=2, progress=shown)
    assert second == ["p0"]
    assert result.texts == [None, None, None]
    assert result[1].error is result[0].error  # the batch's stop, not p1's 500


def test_a_429_pauses_the_batch_even_when_its_item_has_no_try_left(
    clock: FakeClock, pauses: threading.Event
) -> None:
    """max_retries=0: the 429's item fails, and the others still wait 5 s."""
    stamps: list[tuple[str, float]] = []

    def answer(conn: Conn, prompt: str) -> None:
        stamps.append((prompt, clock.now))
        if prompt == "p0":
            reply(conn, "slow down", 429, "Retry-After: 5")
        else:
            reply(conn, f"re {prompt}")

    with prompt_server(answer) as server:
        client = Cromicle(base_url=server.url, max_retries=0)
        result = batch(client, ["p0", "p1", "p2"], concurrency=1)
    assert isinstance(result[0].error, RateLimitError)
    assert result.texts[1:] == ["re p1", "re p2"]
    assert stamps == [("p0", 0.0), ("p1", 5.0), ("p2", 5.0)]


# -- 8. workers as needed ---------------------------------------------------------


def batch_threads(before: set[threading.Thread]) -> int:
    """The batch's threads alive now that were not before (an earlier test's
    may still be ending)."""
    return sum(
        t.name.startswith("chatproviders-batch") and t not in before
        for t in threading.enumerate()
    )


def test_workers_are_started_as_they_are_needed(cromicle: EmulatorServer) -> None:
    """concurrency=5000 with one input starts one thread, not 5000."""
    before = set(threading.enumerate())
    counted: list[int] = []

    def count(item: BatchItem) -> None:
        counted.append(batch_threads(before))

    batch(Cromicle(base_url=cromicle.url), ["a"], concurrency=5000, progress=count)
    assert counted == [1]


def test_no_more_workers_than_requests_in_flight() -> None:
    """concurrency=3, ten inputs answered one at a time: at most 3 threads."""
    before = set(threading.enumerate())
    most = 0

    def answer(conn: Conn, prompt: str) -> None:
        nonlocal most
        most = max(most, batch_threads(before))
        reply(conn, prompt)

    with prompt_server(answer) as server:
        result = batch(
            Cromicle(base_url=server.url), [f"p{i}" for i in range(10)], concurrency=3
        )
    assert all(item.ok for item in result)
    assert 1 <= most <= 3


def test_a_checkpoint_error_is_a_chatproviders_error() -> None:
    """CheckpointError sits in the tree: a ChatProvidersError, and a ValueError."""
    assert issubclass(CheckpointError, ChatProvidersError)
    assert issubclass(CheckpointError, ValueError)
    assert chatproviders.CheckpointError is CheckpointError


def test_a_start_waits_for_the_requests_not_known_to_have_arrived() -> None:
    """rate=2: a third start waits until one of the two before it is known to
    have reached the server over a second ago; none known: until one is."""
    pacer = _batch._Pacer(2)
    first = pacer.started(0.0)
    assert pacer.wait(0.0) == 0.5  # the spacing
    second = pacer.started(0.5)
    second.ack = 0.6
    assert pacer.wait(1.0) == pytest.approx(0.6)  # the first may arrive late
    first.ack = 0.2
    assert pacer.wait(1.0) == pytest.approx(0.2)
    assert pacer.wait(1.2) == 0.0
    third = pacer.started(1.2)
    assert third.ack is None and pacer.wait(1.7) == 0.0  # the second expired
    pacer.started(1.7)
    assert pacer.wait(5.0) == float("inf")  # both may still arrive any time


# -- 14, 15. the command line, as a new user tries it ------------------------------


class TTY:
    """A stderr that says it is a terminal, and keeps what was written."""

    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> int:
        self.text += text
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return True


@pytest.fixture
def no_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bar, when it shows, shows at once (not after 2 s)."""

    monkeypatch.setattr(_progress, "PROGRESS_DELAY", 0.0)


def test_no_bar_unasked_into_a_log_file(
    cromicle: EmulatorServer, capsys: pytest.CaptureFixture[str], no_delay: None
) -> None:
    """progress=None with stderr no terminal (``2> log``): nothing drawn."""
    batch(Cromicle(base_url=cromicle.url), ["a", "b"])
    assert capsys.readouterr().err == ""


def test_a_bar_unasked_on_a_terminal_or_in_a_notebook(
    cromicle: EmulatorServer, monkeypatch: pytest.MonkeyPatch, no_delay: None
) -> None:
    """progress=None draws on a terminal's stderr, and in a Jupyter kernel."""

    tty = TTY()
    monkeypatch.setattr(sys, "stderr", tty)
    batch(Cromicle(base_url=cromicle.url), ["a", "b"])
    assert "2/2" in tty.text
    monkeypatch.setattr(tty, "isatty", lambda: False)
    assert not _progress.watched()
    kernel = type("Shell", (), {"kernel": object()})()
    fake = type(sys)("IPython")
    fake.get_ipython = lambda: kernel  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", fake)
    assert _progress.watched()
    fake.get_ipython = lambda: type("Shell", (), {})()  # type: ignore[attr-defined]
    assert not _progress.watched()  # terminal IPython: no kernel


def test_a_bar_unasked_waits_two_seconds_before_it_shows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """progress=None on a terminal: a run over in under 2 s (tqdm's clock)
    draws nothing, even when an item fails; one that lasts 2.5 s draws its
    bar, named and counted."""
    import tqdm.std

    now = [0.0]
    monkeypatch.setattr(tqdm.std, "time", lambda: now[0])
    took = [0.9]

    def answer(conn: Conn, prompt: str) -> None:
        now[0] += took[0]  # the reply takes this long
        if prompt == "bad":
            reply(conn, "no", 400)
        else:
            reply(conn, f"re {prompt}")

    tty = TTY()
    monkeypatch.setattr(sys, "stderr", tty)
    with prompt_server(answer) as server:
        client = Cromicle(base_url=server.url, max_retries=0)
        batch(client, ["a", "bad"], concurrency=1)
        assert tty.text == ""
        took[0] = 2.5
        batch(client, ["a"])
    bar = "batch: 100%|##########| 1/1 [00:02<00:00,  2.50s/item, failed=0]"
    assert tty.text.endswith(f"\r{bar}\n")


class OldTqdm:
    """A tqdm before 4.60: it refuses ``delay=``."""

    def __init__(self, **options: Any) -> None:
        if "delay" in options:
            raise TypeError("__init__() got an unexpected keyword argument 'delay'")


def test_a_tqdm_too_old_for_delay_is_named_or_skipped(
    cromicle: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An installed tqdm without ``delay=``: progress=True names the version
    needed; progress=None runs without a bar, even on a terminal."""
    old = type(sys)("tqdm.auto")
    old.tqdm = OldTqdm  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tqdm.auto", old)
    client = Cromicle(base_url=cromicle.url)
    with pytest.raises(ImportError, match=r"needs tqdm 4\.60 or later"):
        batch(client, ["a"], progress=True)
    monkeypatch.setattr(sys, "stderr", TTY())
    assert batch(client, ["a"]).texts[0] is not None
    assert len(cromicle.requests) == 1


def test_a_closed_stderr_is_no_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stderr closed (or replaced by an object without isatty) is not
    watched: no bar unasked, and no error."""
    closed = io.StringIO()
    closed.close()
    monkeypatch.setattr(sys, "stderr", closed)
    assert not _progress.watched()
    monkeypatch.setattr(sys, "stderr", object())
    assert not _progress.watched()


def test_the_bar_counts_a_failure_that_comes_last(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Two items succeed, then one fails: the bar ends at failed=1."""

    def answer(conn: Conn, prompt: str) -> None:
        if prompt == "bad":
            reply(conn, "no", 400)
        else:
            reply(conn, f"re {prompt}")

    with prompt_server(answer) as server:
        client = Cromicle(base_url=server.url)
        batch(client, ["a", "b", "bad"], concurrency=1, progress=True)
    err = capsys.readouterr().err
    assert "3/3" in err and "failed=1" in err


def cli_files(
    tmp_path: Path, content: str, name: str = "in.jsonl"
) -> tuple[Path, Path]:
    source, out = tmp_path / name, tmp_path / "out.jsonl"
    source.write_text(content, "utf-8")
    return source, out


def test_the_cli_no_progress_draws_no_bar_on_a_terminal(
    cromicle: EmulatorServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    no_delay: None,
) -> None:
    """On a terminal the CLI draws its bar; --no-progress: only the summary."""
    from chatproviders.cli import main

    source, out = cli_files(tmp_path, '{"prompt": "a"}\n')
    argv = ["batch", str(source), "-p", "cromicle", "--base-url", cromicle.url]
    tty = TTY()
    monkeypatch.setattr(sys, "stderr", tty)
    assert main([*argv, "-o", str(out)]) == 0
    assert "1/1" in tty.text
    tty.text = ""
    assert main([*argv, "-o", str(tmp_path / "two.jsonl"), "--no-progress"]) == 0
    assert tty.text.count("\n") == 1
    assert tty.text.startswith("chatproviders batch: 1 of 1 succeeded")


def test_ctrl_c_on_the_cli_says_how_many_are_done_in_one_line(
    cromicle: EmulatorServer, tmp_path: Path
) -> None:
    """SIGINT to a real process: exit 130 and one line, N of M done, how to resume."""
    source, out = cli_files(
        tmp_path, "".join(f'{{"prompt": "p{i}"}}\n' for i in range(3))
    )
    cromicle.queue_reply()
    cromicle.set_reply(stall_after=0)  # the 2nd request hangs
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chatproviders",
            "batch",
            str(source),
            "-o",
            str(out),
            "-p",
            "cromicle",
            "--base-url",
            cromicle.url,
            "-j",
            "1",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        cromicle.wait_for_requests(2, timeout=30)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=WAIT)
    finally:
        process.kill()
        process.wait(WAIT)
    assert process.returncode == 130
    assert err == (
        "chatproviders batch: 1 of 3 done; run the same command again to resume\n"
    )


def test_the_cli_asks_for_a_model_as_chat_does(
    openai: EmulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """-p openai without -m: the server's models listed, exit 2, no chat sent."""
    from chatproviders.cli import main

    source, out = cli_files(tmp_path, '{"prompt": "a"}\n')
    argv = ["batch", str(source), "-o", str(out), "-p", "openai"]
    assert main([*argv, "--base-url", openai.url]) == 2
    assert capsys.readouterr().err == (
        "chatproviders batch: error: pass -m MODEL; the server has: llama3.2, qwen3\n"
    )
    assert [r.path for r in openai.requests] == ["/v1/models"]
    assert not out.exists()
    with serve("openai", models=["only"]) as one:
        assert main([*argv, "--base-url", one.url]) == 0
        assert one.requests[-1].json["model"] == "only"


def test_the_cli_names_the_line_of_a_byte_that_is_not_utf8(
    cromicle: EmulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Latin-1 byte on line 3: the message names line 3, nothing is sent."""
    from chatproviders.cli import main

    source = tmp_path / "in.jsonl"
    source.write_bytes(b'{"prompt": "a"}\n{"prompt": "b"}\n{"prompt": "caf\xe9"}\n')
    status = main(
        [
            "batch",
            str(source),
            "-o",
            str(tmp_path / "o.jsonl"),
            "-p",
            "cromicle",
            "--base-url",
            cromicle.url,
        ]
    )
    assert status == 2
    err = capsys.readouterr().err
    assert f"{source} line 3 is not UTF-8 text" in err
    assert "position" not in err
    assert cromicle.requests == []


def test_the_cli_reads_stdin_and_writes_stdout_in_input_order(
    tmp_path: Path,
) -> None:
    """``batch - -o -`` in a pipe: records on stdout in input order, summary on
    stderr, no file written."""
    released = threading.Event()

    def answer(conn: Conn, prompt: str) -> None:
        if prompt == "p0":  # finishes last
            assert released.wait(WAIT)
        reply(conn, f"re {prompt}")
        if prompt == "p2":
            released.set()

    rows = "".join(json.dumps({"prompt": f"p{i}", "id": i}) + "\n" for i in range(3))
    with prompt_server(answer) as server:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "chatproviders",
                "batch",
                "-",
                "-o",
                "-",
                "-p",
                "cromicle",
                "--base-url",
                server.url,
                "-j",
                "3",
            ],
            input=rows,
            capture_output=True,
            text=True,
            timeout=30,
            cwd=tmp_path,
        )
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(r["id"], r["text"]) for r in records] == [
        (i, f"re p{i}") for i in range(3)
    ]
    assert done.stderr == (
        "chatproviders batch: 3 of 3 succeeded, 0 failed; records on stdout\n"
    )
    assert os.listdir(tmp_path) == []


def test_a_txt_file_is_one_prompt_a_line(
    cromicle: EmulatorServer, tmp_path: Path
) -> None:
    """prompts.txt: each non-blank line is one prompt, sent as it is."""
    from chatproviders.cli import main

    source, out = cli_files(tmp_path, "first line\n\n{not json}\r\n", "prompts.txt")
    argv = ["batch", str(source), "-o", str(out), "-p", "cromicle"]
    assert main([*argv, "--base-url", cromicle.url, "-j", "1"]) == 0
    assert [r.json["message"] for r in cromicle.requests] == [
        "first line",
        "{not json}",
    ]
    assert [r["index"] for r in lines(out)] == [0, 1]


def test_the_output_file_ends_in_input_order(tmp_path: Path) -> None:
    """Items finishing out of order: the file ends in input order, rewritten
    whole (no file left beside it)."""
    from chatproviders.cli import main

    released = threading.Event()

    def answer(conn: Conn, prompt: str) -> None:
        if prompt == "p0":  # finishes last
            assert released.wait(WAIT)
        reply(conn, f"re {prompt}")
        if prompt == "p3":
            released.set()

    source, out = cli_files(
        tmp_path, "".join(f'{{"prompt": "p{i}"}}\n' for i in range(4))
    )
    with prompt_server(answer) as server:
        argv = ["batch", str(source), "-o", str(out), "-p", "cromicle", "-j", "4"]
        assert main([*argv, "--base-url", server.url]) == 0
    assert [r["index"] for r in lines(out)] == [0, 1, 2, 3]
    assert sorted(os.listdir(tmp_path)) == ["in.jsonl", "out.jsonl"]


def test_the_summary_line_has_the_token_totals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI's summary sums the usage the server reported."""
    from chatproviders.cli import main

    source, out = cli_files(tmp_path, '{"prompt": "a b"}\n{"prompt": "c"}\n')
    with serve("openai", models=["m"]) as server:
        argv = ["batch", str(source), "-o", str(out), "-p", "openai"]
        assert main([*argv, "--base-url", server.url]) == 0
    records = lines(out)
    total = sum(r["usage"]["total_tokens"] for r in records)
    prompt = sum(r["usage"]["prompt_tokens"] for r in records)
    assert total > 0
    assert capsys.readouterr().err == (
        "chatproviders batch: 2 of 2 succeeded, 0 failed; "
        f"{total} tokens ({prompt} prompt, {total - prompt} completion); "
        f"records in {out}\n"
    )


def test_close_during_a_batch_stops_its_sending(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """client.close() while a batch waits out a 503's Retry-After: nothing
    more reaches the server (the batch works through a copy of the client,
    which shares its session), and the items not done fail."""
    tries: list[Conn] = []

    def busy(conn: Conn) -> None:
        while conn.read_request() is not None:
            tries.append(conn)
            head = [("Retry-After", "30"), ("Content-Type", "text/plain")]
            conn.send_head(503, head, "length", 4)
            conn.sock.sendall(b"busy")

    with LoopbackServer(busy) as server:
        client = Cromicle(base_url=server.url)

        def close_in_the_pause(seconds: float) -> None:
            client.close()
            clock.sleep(seconds)

        monkeypatch.setattr(_batch, "sleep", close_in_the_pause)
        result = chatproviders.batch(client, ["a", "b"], concurrency=1)
    assert len(tries) == 1
    assert [str(item.error) for item in result] == [
        "the client was closed before this item was sent"
    ] * 2


def test_a_retry_after_of_exactly_what_the_client_allows_pauses_the_batch(
    clock: FakeClock,
) -> None:
    """Retry-After: 60, the longest wait a client takes: the batch pauses 60 s
    and goes on, it does not stop."""
    seen: list[str] = []

    def answer(conn: Conn, prompt: str) -> None:
        seen.append(prompt)
        if seen.count(prompt) == 1 and prompt == "p0":
            reply(conn, "quota", 429, "Retry-After: 60")
        else:
            reply(conn, f"re {prompt}")

    with prompt_server(answer) as server:
        result = batch(Cromicle(base_url=server.url), ["p0"], concurrency=1)
    assert result.texts == ["re p0"]
    assert seen == ["p0", "p0"] and clock.now == 60.0
