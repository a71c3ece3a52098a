"""Live health checks: every status, concurrency, FallbackProvider and the command.

Everything runs against the emulators and raw loopback sockets on 127.0.0.1;
no test contacts any other host.
"""

from __future__ import annotations

import gc
import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
import requests
import requests.adapters

import chatproviders
from chatproviders import (
    Acytoo,
    CheckResult,
    CodeLinkAva,
    Cromicle,
    FallbackProvider,
    GPROChat,
    OpenAICompatible,
    ProviderNotFoundError,
    check,
)
from chatproviders._health import check as _health
from chatproviders._health import fallback as _fallback
from chatproviders.cli import main
from chatproviders.testing import EmulatorServer, serve
from tests.loopback import WAIT, Conn, LoopbackServer

SEEDS = [Acytoo, CodeLinkAva, Cromicle, GPROChat]
HTML_PAGE = "<!DOCTYPE html><html><head><title>Just a moment...</title></head></html>"


def closed_port_url() -> str:
    """A loopback URL where nothing listens: connecting is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def only(results: list[CheckResult]) -> CheckResult:
    assert len(results) == 1
    return results[0]


@pytest.fixture
def cromicle() -> Iterator[EmulatorServer]:
    """A Cromicle emulator answering "Hi there"."""
    with serve("cromicle", text="Hi there", chunk_size=2) as server:
        yield server


@pytest.fixture
def seeds_at(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Point the seed classes' default URLs at loopback: ``seeds_at({cls: url})``;
    the classes not named point at a closed port.
    """

    def point(urls: dict[type[chatproviders.Provider], str]) -> None:
        closed = closed_port_url()
        for cls in SEEDS:
            monkeypatch.setattr(cls, "url", urls.get(cls, closed))
            monkeypatch.setattr(cls, "api_endpoint", None, raising=False)

    return point


# -- each status -------------------------------------------------------------


def test_ok_result_has_every_field(
    cromicle: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An answering provider is ok, timed by the injected clock, with URL and model."""
    ticks = iter([100.0, 100.25, 100.5])
    monkeypatch.setattr(_health, "clock", lambda: next(ticks))
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    monkeypatch.setattr(_health, "utcnow", lambda: when)
    result = only(check([Cromicle(base_url=cromicle.url)]))
    assert result == CheckResult(
        provider="Cromicle",
        url=cromicle.url + "/chat",
        status="ok",
        ttft=0.25,
        elapsed=0.5,
        error=None,
        checked_at=when,
        model="gpt-3.5-turbo",
    )
    assert result.ok
    assert cromicle.requests[0].json["message"] == _health.DEFAULT_PROMPT


def test_checked_at_is_an_aware_utc_time(cromicle: EmulatorServer) -> None:
    """checked_at is the probe's start, in UTC, between the times around the call."""
    before = datetime.now(timezone.utc)
    result = only(check(Cromicle(base_url=cromicle.url)))
    after = datetime.now(timezone.utc)
    assert result.checked_at.tzinfo is not None
    assert before <= result.checked_at <= after
    assert result.ttft is not None and 0 <= result.ttft <= result.elapsed


def test_a_closed_port_is_down() -> None:
    """Connection refused on 127.0.0.1 is down, with the reason on one line."""
    result = only(check([Cromicle(base_url=closed_port_url())], timeout=5))
    assert (result.status, result.ok, result.ttft) == ("down", False, None)
    assert result.error is not None and "refused" in result.error
    assert "\n" not in result.error


def test_a_reset_before_an_answer_is_down() -> None:
    """A server that resets the connection on the request is down."""

    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.reset()

    with LoopbackServer(handler) as server:
        result = only(check([Cromicle(base_url=server.url)], timeout=5))
    assert result.status == "down"


def test_a_stalled_server_is_a_timeout_bounding_the_whole_probe() -> None:
    """Headers then silence: the probe ends at its timeout, not the read timeout."""
    with serve("cromicle", stall_after=0) as server:
        client = Cromicle(base_url=server.url, timeout=(WAIT, 60.0))
        result = only(check([client], timeout=0.3))
    assert result.status == "timeout"
    assert result.error is not None and "total" in result.error
    assert result.elapsed < WAIT


@pytest.mark.parametrize("status", [401, 403])
def test_401_and_403_are_auth(status: int) -> None:
    """A refused key (401) or a 403 that is not an HTML page is auth."""
    with serve("cromicle", status=status) as server:
        result = only(check([Cromicle(base_url=server.url)]))
    assert result.status == "auth"
    assert result.error is not None and str(status) in result.error


def test_a_missing_api_key_is_auth() -> None:
    """The OpenAI-compatible emulator refuses a request without its key: auth."""
    with serve("openai", api_key="sk-right", models=["m"]) as server:
        wrong = OpenAICompatible(server.url, api_key="sk-wrong", model="m")
        result = only(check([wrong]))
    assert result.status == "auth"


def test_429_is_rate_limited() -> None:
    """429 Too Many Requests is rate_limited, and is not retried."""
    with serve("acytoo", status=429, headers={"Retry-After": "1"}) as server:
        result = only(check([Acytoo(base_url=server.url)]))
        assert len(server.requests) == 1
    assert result.status == "rate_limited"


def test_a_quota_message_is_rate_limited() -> None:
    """GPROChat's 500 saying "Quota exceeded" is rate_limited, not error."""
    body = '{"error": {"message": "Quota exceeded"}}'
    with serve("gprochat", status=500, body=body) as server:
        result = only(check([GPROChat(base_url=server.url)]))
    assert result.status == "rate_limited"


def test_a_quota_error_event_in_the_stream_is_rate_limited() -> None:
    """An OpenAI-style error event mentioning a quota, before any text: rate_limited."""
    body = 'data: {"error": {"message": "You exceeded your current quota"}}\n\n'
    with serve("codelinkava", body=body) as server:
        result = only(check([CodeLinkAva(base_url=server.url)]))
    assert result.status == "rate_limited"


def test_a_200_html_page_is_blocked() -> None:
    """A bot wall sent with 200 OK is blocked, not ok and not bad_reply."""
    with serve("cromicle", body=HTML_PAGE) as server:
        result = only(check([Cromicle(base_url=server.url)]))
    assert result.status == "blocked"
    assert result.error is not None and "HTML" in result.error


@pytest.mark.parametrize("status", [403, 429, 503])
def test_an_html_page_is_blocked_whatever_the_status(status: int) -> None:
    """A challenge page is blocked whether it comes with 403, 429 or 503."""
    with serve("cromicle", status=status, body=HTML_PAGE) as server:
        result = only(check([Cromicle(base_url=server.url)]))
    assert result.status == "blocked"
    assert result.error is not None and "Just a moment..." in result.error


def test_an_html_page_that_does_not_start_like_one_is_blocked() -> None:
    """A text/html error page starting with plain text is still blocked."""
    page = "Access denied. <p>Your request was blocked.</p>"
    headers = {"Content-Type": "text/html; charset=utf-8"}
    with serve("cromicle", status=403, body=page, headers=headers) as server:
        result = only(check([Cromicle(base_url=server.url)]))
    assert result.status == "blocked"


def test_a_body_that_breaks_the_protocol_is_bad_reply() -> None:
    """An SSE provider answering with an event that is not JSON: bad_reply."""
    with serve("codelinkava", body="data: {not json\n\n") as server:
        result = only(check([CodeLinkAva(base_url=server.url)]))
    assert result.status == "bad_reply"
    assert result.error is not None and "not JSON" in result.error


def test_an_empty_answer_is_bad_reply() -> None:
    """A 200 reply with no text at all is bad_reply: nothing answered."""
    with serve("cromicle", text="") as server:
        result = only(check([Cromicle(base_url=server.url)]))
    assert result.status == "bad_reply"
    assert result.ttft is None
    assert result.error == "answered with no text"


def test_a_stream_broken_before_its_text_is_bad_reply() -> None:
    """200 headers, then the connection reset before any text: bad_reply."""
    with serve("cromicle", reset_after=0) as server:
        result = only(check([Cromicle(base_url=server.url)]))
    assert result.status == "bad_reply"


@pytest.mark.parametrize("status", [404, 500, 502])
def test_any_other_status_is_error(status: int) -> None:
    """A status that says nothing about auth or limits is error, with the status."""
    with serve("acytoo", status=status, body="no such thing") as server:
        result = only(check([Acytoo(base_url=server.url)]))
    assert result.status == "error"
    assert result.error is not None and str(status) in result.error


def test_classify_reads_the_exception_classes() -> None:
    """classify() maps each of our errors to its status, subclasses first."""
    E = chatproviders
    attempts = tuple(
        E.Attempt(name, E.APIConnectionError("refused"), 0.1)
        for name in ("Acytoo", "Cromicle")
    )
    mixed = (*attempts, E.Attempt("GPROChat", E.APITimeoutError("slow"), 0.1))
    cases = {
        E.APITimeoutError("slow"): "timeout",
        E.IncompleteStreamError("cut"): "bad_reply",
        E.APIConnectionError("refused"): "down",
        E.AuthenticationError("no", status_code=401): "auth",
        E.APIStatusError("forbidden", status_code=403): "auth",  # a plugin's own
        E.APIStatusError("refused", status_code=401): "auth",
        E.RateLimitError("wait", status_code=429): "rate_limited",
        E.ResponseFormatError("junk"): "bad_reply",
        E.InternalServerError("oops", status_code=500): "error",
        E.ResponseFormatError("page", body="<html><body>x", html=True): "blocked",
        E.ModelNotSupportedError("no model"): "error",
        E.AllProvidersFailedError("all failed", attempts=attempts): "down",
        E.AllProvidersFailedError("all failed", attempts=mixed): "error",
    }
    assert {error: _health.classify(error) for error in cases} == cases


# -- how a probe behaves ------------------------------------------------------


def test_a_probe_is_never_retried() -> None:
    """A 503 that a call would retry is reported at once, after one request."""
    with serve("cromicle") as server:
        server.queue_reply(status=503, body="busy")
        client = Cromicle(base_url=server.url, max_retries=5)
        result = only(check([client]))
        assert len(server.requests) == 1
        assert client.max_retries == 5  # the client itself is unchanged
    assert result.status == "error"


def test_a_probe_reads_the_first_chunk_then_closes_its_connection() -> None:
    """The probe waits for no more than the first chunk; it closes the connection."""
    closed = threading.Event()

    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.send_head(200)
        conn.send(b"Thinking...")
        if conn.wait_closed_by_client():
            closed.set()

    with LoopbackServer(handler) as server:
        result = only(check([Cromicle(base_url=server.url)], timeout=WAIT))
        assert closed.wait(WAIT)
    assert result.status == "ok"


def test_probes_run_concurrently() -> None:
    """Six stalled servers are all in flight at once: each answers only when all
    six requests have arrived, which sequential probes would never reach.
    """
    arrived = threading.Barrier(6, timeout=WAIT)
    in_flight = []
    lock = threading.Lock()

    def handler(conn: Conn) -> None:
        conn.read_request()
        with lock:
            in_flight.append(conn)
        arrived.wait()  # BrokenBarrierError, reported at stop, if not all six came
        body = b"OK"
        conn.respond(200, body)

    servers = [LoopbackServer(handler) for _ in range(6)]
    for server in servers:
        server.__enter__()
    try:
        clients = [Cromicle(base_url=server.url) for server in servers]
        results = check(clients, timeout=2 * WAIT)
    finally:
        for server in servers:
            server.__exit__(None, None, None)
    assert [r.status for r in results] == ["ok"] * 6
    assert [r.url for r in results] == [s.url + "/chat" for s in servers]  # in order
    assert len(in_flight) == 6


def test_a_probe_that_outlasts_its_timeout_is_reported_without_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A probe stuck where no socket timeout reaches (a DNS lookup) is reported
    as a timeout once timeout and grace have passed; check() does not wait for it.
    """
    release = threading.Event()
    monkeypatch.setattr(_health, "GRACE", 0.0)
    monkeypatch.setattr(_health, "_probe", lambda *args: release.wait(WAIT))
    try:
        result = only(
            check([Cromicle(base_url="http://user:pw@127.0.0.1:9")], timeout=0.05)
        )
    finally:
        release.set()
    assert (result.status, result.provider) == ("timeout", "Cromicle")
    assert result.url == "http://127.0.0.1:9/chat"
    assert result.error is not None and "no answer within 0.05 s" in result.error


def test_results_keep_the_order_given(cromicle: EmulatorServer) -> None:
    """Results come back in the order of the targets, whatever finishes first."""
    down = closed_port_url()
    targets = [
        Cromicle(base_url=down),
        Cromicle(base_url=cromicle.url),
        Acytoo(base_url=down),
    ]
    results = check(targets)
    assert [(r.provider, r.status) for r in results] == [
        ("Cromicle", "down"),
        ("Cromicle", "ok"),
        ("Acytoo", "down"),
    ]


def test_the_url_never_shows_credentials() -> None:
    """A user:password@ in base_url is left out of the result's url."""
    with serve("openai", models=["m"]) as server:
        url = server.url.replace("http://", "http://alice:s3cret@")
        result = only(check([OpenAICompatible(url, model="m")]))
    assert result.status == "ok"
    assert "alice" not in result.url and "s3cret" not in result.url
    assert result.url == server.url + "/chat/completions"


def test_an_openai_client_without_a_model_asks_for_the_servers_first() -> None:
    """OpenAICompatible without model= is probed with the first model listed."""
    with serve("openai", models=["llama3.2", "qwen"]) as server:
        result = only(check([OpenAICompatible(server.url)]))
        chat = [r for r in server.requests if r.route.endswith("/chat/completions")]
    assert (result.status, result.model) == ("ok", "llama3.2")
    assert chat[0].json["model"] == "llama3.2"
    assert "max_tokens" not in chat[0].json  # no tiny budget for reasoning models


def test_a_client_is_probed_as_it_is_and_left_open(cromicle: EmulatorServer) -> None:
    """A client's headers go with the probe; the client stays open and usable."""
    client = Cromicle(base_url=cromicle.url, headers={"X-Team": "blue"})
    assert only(check([client])).ok
    assert cromicle.requests[0].headers["x-team"] == "blue"
    assert client.complete([{"role": "user", "content": "Hi"}]).text == "Hi there"
    client.close()


def test_a_class_without_a_default_url_is_an_error_result() -> None:
    """OpenAICompatible by class has nowhere to go: an error result, no request."""
    result = only(check([OpenAICompatible]))
    assert (result.status, result.url, result.elapsed) == ("error", "", 0.0)
    assert result.error is not None and "base_url" in result.error


def test_classes_and_names_are_probed_at_their_default_url(
    cromicle: EmulatorServer, seeds_at: Any
) -> None:
    """A class or a registered name is built with no base_url: its default URL."""
    seeds_at({Cromicle: cromicle.url, Acytoo: cromicle.url})
    results = check([Cromicle, "cromicle", "ACYTOO"])
    assert [r.status for r in results] == ["ok", "ok", "error"]  # Acytoo: a 404
    assert results[1].url == cromicle.url + "/chat"
    routes = sorted(r.route for r in cromicle.requests)
    assert routes == ["/api/completions", "/chat", "/chat"]


def test_without_targets_every_provider_with_a_default_url(
    cromicle: EmulatorServer, seeds_at: Any
) -> None:
    """check() probes each registered provider that has a default URL."""
    seeds_at({Cromicle: cromicle.url})
    results = check()
    assert [r.provider for r in results] == [
        cls.__name__
        for cls in chatproviders.list_providers()
        if cls.default_endpoint() is not None
    ]
    assert {r.provider: r.status for r in results} == {
        "Acytoo": "down",
        "CodeLinkAva": "down",
        "Cromicle": "ok",
        "GPROChat": "down",
    }


def test_bad_arguments_raise_before_any_request(cromicle: EmulatorServer) -> None:
    """Unknown names, bad timeouts, prompts and targets are our clear errors."""
    client = Cromicle(base_url=cromicle.url)
    with pytest.raises(ProviderNotFoundError, match="no provider called 'nope'"):
        check([client, "nope"])
    for timeout in (0, -1, float("nan"), float("inf"), True, "5"):
        with pytest.raises(ValueError, match="timeout must be a positive number"):
            check([client], timeout=timeout)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="prompt must be a non-empty str"):
        check([client], prompt=" ")
    with pytest.raises(TypeError, match="got int"):
        check([client, 3])  # type: ignore[list-item]
    with pytest.raises(TypeError) as caught:
        check(3)  # type: ignore[arg-type]
    assert str(caught.value) == (
        "targets must be clients, provider classes or names (or a list of them),"
        " got int"
    )
    assert cromicle.requests == []


def test_a_fallback_provider_is_probed_by_one_chat_through_it(
    cromicle: EmulatorServer,
) -> None:
    """A FallbackProvider target answers if any member does; when none does, its
    status is the one its attempts share, and the error names each attempt.
    """
    down = closed_port_url()
    answering = FallbackProvider(
        [Acytoo(base_url=down), Cromicle(base_url=cromicle.url)]
    )
    failing = FallbackProvider([Acytoo(base_url=down), Cromicle(base_url=down)])
    ok, dead = check([answering, failing])
    assert (ok.provider, ok.status, ok.model, ok.url) == (
        "FallbackProvider",
        "ok",
        "gpt-3.5-turbo",
        "",
    )
    assert dead.status == "down"
    assert (
        dead.error is not None and "Acytoo" in dead.error and "Cromicle" in dead.error
    )
    assert dead.error.startswith(
        "all 2 provider attempt(s) failed: Acytoo: APIConnectionError: "
    ), dead.error


def test_a_probed_fallback_starts_no_background_checks_of_its_own(
    cromicle: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Probing a FallbackProvider with health_interval adds no second thread."""
    rounds = Rounds()
    monkeypatch.setattr(_fallback, "wait_interval", rounds.wait)
    before = health_threads()
    fallback = FallbackProvider([Cromicle(base_url=cromicle.url)], health_interval=60)
    mine = health_threads() - before
    assert only(check([fallback])).ok
    assert health_threads() - before == mine and len(mine) == 1
    fallback.close()
    rounds.wake()


def test_working_providers_are_those_whose_check_is_ok(
    cromicle: EmulatorServer, seeds_at: Any
) -> None:
    """working_providers() measures: only the class that answered is returned."""
    seeds_at({Cromicle: cromicle.url})
    assert chatproviders.working_providers(timeout=5) == [Cromicle]
    assert Cromicle.working is False  # the hand-set flag is left alone


# -- FallbackProvider ----------------------------------------------------------


def test_fallback_check_cools_down_the_failing_members() -> None:
    """After check(), a call skips the member that failed it: it gets no request."""
    bad = serve("cromicle", status=503, body="down")
    good = serve("acytoo", text="from acytoo")
    with bad, good:
        fallback = FallbackProvider(
            [Cromicle(base_url=bad.url), Acytoo(base_url=good.url)], cooldown=3600
        )
        results = fallback.check(timeout=5)
        assert [r.status for r in results] == ["error", "ok"]
        assert len(bad.requests) == 1
        reply = fallback.complete([{"role": "user", "content": "Hi"}])
        assert (reply.provider, reply.text) == ("Acytoo", "from acytoo")
        assert len(bad.requests) == 1  # skipped, nothing sent
        fallback.close()


def test_fallback_check_brings_a_recovered_member_back() -> None:
    """A member ok at the next check() is asked first again."""
    with serve("cromicle", text="from cromicle") as flaky, serve("acytoo") as good:
        flaky.queue_reply(status=503, body="down")
        fallback = FallbackProvider(
            [Cromicle(base_url=flaky.url), Acytoo(base_url=good.url)], cooldown=3600
        )
        hi = [{"role": "user", "content": "Hi"}]
        assert [r.ok for r in fallback.check()] == [False, True]
        assert fallback.complete(hi).provider == "Acytoo"
        assert [r.ok for r in fallback.check()] == [True, True]
        reply = fallback.complete(hi)
        assert (reply.provider, reply.text) == ("Cromicle", "from cromicle")
        fallback.close()


class Rounds:
    """Stands in for the wait between background checks: each :meth:`run` lets
    one round of checks go and returns once it has finished.
    """

    def __init__(self) -> None:
        self.allowed = 0
        self.waits = 0
        self.changed = threading.Condition()

    def wait(self, stop: threading.Event, seconds: float) -> bool:
        with self.changed:
            self.waits += 1
            self.changed.notify_all()
            self.changed.wait_for(
                lambda: self.allowed >= self.waits or stop.is_set(), WAIT
            )
            return stop.is_set()

    def run(self) -> None:
        with self.changed:
            self.allowed += 1
            self.changed.notify_all()
            assert self.changed.wait_for(lambda: self.waits > self.allowed, WAIT)

    def wake(self) -> None:
        with self.changed:
            self.changed.notify_all()


def health_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "chatproviders-health"}


def test_background_checks_bring_a_recovered_provider_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With health_interval, a member down at one round is skipped, and back
    after the round that finds it answering again; close() ends the thread.
    """
    rounds = Rounds()
    monkeypatch.setattr(_fallback, "wait_interval", rounds.wait)
    hi = [{"role": "user", "content": "Hi"}]
    with serve("cromicle", text="from cromicle") as flaky, serve("acytoo") as good:
        flaky.queue_reply(status=503, body="down")
        before = health_threads()
        fallback = FallbackProvider(
            [Cromicle(base_url=flaky.url), Acytoo(base_url=good.url)],
            cooldown=3600,
            health_interval=30,
        )
        (thread,) = health_threads() - before
        assert flaky.requests == []  # nothing before the first interval
        rounds.run()  # the probe gets the 503
        assert fallback.complete(hi).provider == "Acytoo"
        assert len(flaky.requests) == 1
        rounds.run()  # the probe gets an answer
        assert len(flaky.requests) == 2
        assert fallback.complete(hi).text == "from cromicle"
        fallback.close()
        rounds.wake()
        thread.join(WAIT)
        assert not thread.is_alive()


def test_the_background_thread_ends_when_the_fallback_is_collected() -> None:
    """A FallbackProvider nobody holds is collected, and its check thread ends."""
    with serve("cromicle") as server:
        before = health_threads()
        fallback = FallbackProvider(
            [Cromicle(base_url=server.url)], health_interval=3600
        )
        (thread,) = health_threads() - before
        del fallback
        gc.collect()
        thread.join(WAIT)
        assert not thread.is_alive()
        assert server.requests == []


def test_health_interval_is_checked() -> None:
    """A health_interval that is not positive seconds is refused, naming it."""
    client = Cromicle(base_url="http://127.0.0.1:9")
    for bad in (0, -1, float("inf")):
        with pytest.raises(ValueError, match="health_interval"):
            FallbackProvider([client], health_interval=bad)


# -- the command line -----------------------------------------------------------


def test_check_command_prints_json_and_exits_0_when_one_is_ok(
    cromicle: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """--json lists every field per target; one ok target means exit status 0."""
    down = closed_port_url()
    status = main(
        [
            "check",
            "cromicle",
            "--base-url",
            f"cromicle={cromicle.url}",
            "--base-url",
            f"acytoo={down}",
            "--json",
        ]
    )
    out = capsys.readouterr().out
    assert status == 0
    data = json.loads(out)
    assert [(d["provider"], d["status"], d["ok"]) for d in data] == [
        ("Cromicle", "ok", True),
        ("Acytoo", "down", False),
    ]
    assert set(data[0]) == {
        "provider", "url", "ok", "status", "ttft", "elapsed", "error",
        "checked_at", "model",
    }  # fmt: skip
    assert data[0]["url"] == cromicle.url + "/chat"
    assert data[0]["error"] is None and "refused" in data[1]["error"]
    assert datetime.fromisoformat(data[0]["checked_at"]).tzinfo is not None


def test_check_command_exits_1_when_none_is_ok(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """No target answering means exit status 1, and a plain table off a terminal."""
    status = main(["check", "--base-url", f"gprochat={closed_port_url()}"])
    out = capsys.readouterr().out
    assert status == 1
    header, row = out.splitlines()
    assert header.split()[:2] == ["provider", "status"]
    assert row.split()[:2] == ["GPROChat", "down"]
    assert "\x1b[" not in out


def test_check_command_colours_statuses_on_a_terminal(
    cromicle: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a terminal the status is coloured: green ok, red down."""
    monkeypatch.delenv("NO_COLOR", raising=False)

    class Terminal:
        written: list[str] = []

        def write(self, text: str) -> int:
            self.written.append(text)
            return len(text)

        def flush(self) -> None:
            pass

        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr("sys.stdout", terminal)
    status = main(
        [
            "check",
            "--base-url",
            f"cromicle={cromicle.url}",
            "--base-url",
            f"acytoo={closed_port_url()}",
        ]
    )
    out = "".join(terminal.written)
    assert status == 0
    assert "\x1b[32mok" in out and "\x1b[31mdown" in out


def test_check_command_sends_the_api_key_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An openai --base-url is checked with $CHATPROVIDERS_API_KEY as its key."""
    with serve("openai", api_key="sk-right", models=["m"]) as server:
        argv = ["check", "--json", "--base-url", f"openai={server.url}"]
        monkeypatch.setenv("CHATPROVIDERS_API_KEY", "sk-wrong")
        assert main(argv) == 1
        monkeypatch.setenv("CHATPROVIDERS_API_KEY", "sk-right")
        assert main(argv) == 0
    first, second = (json.loads(part) for part in _json_lists(capsys.readouterr().out))
    assert (first[0]["status"], second[0]["status"]) == ("auth", "ok")
    assert "sk-" not in json.dumps([first, second])


def _json_lists(out: str) -> list[str]:
    """The JSON lists printed one after another, each ending with "]" on a line."""
    parts, current = [], []
    for line in out.splitlines():
        current.append(line)
        if line == "]":
            parts.append("\n".join(current))
            current = []
    return parts


def test_check_command_usage_errors_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A name that is not a provider, a --base-url without =, or a bad URL: 2."""
    assert main(["check", "nope"]) == 2
    assert main(["check", "--base-url", "cromicle"]) == 2
    assert main(["check", "--base-url", "cromicle=ftp://x"]) == 2
    assert main(["check", "cromicle", "--timeout", "0"]) == 2
    err = capsys.readouterr().err
    assert "not NAME=URL" in err and "ftp://x" in err


def test_list_check_adds_the_measured_status(
    cromicle: EmulatorServer, seeds_at: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """list --check shows each provider's measured status next to its flag."""
    seeds_at({Cromicle: cromicle.url})
    assert main(["list", "--check"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["name", "working", "measured"]
    measured = {line.split()[0]: line.split()[2] for line in lines[1:]}
    assert measured == {
        "Acytoo": "down",
        "CodeLinkAva": "down",
        "Cromicle": "ok",
        "GPROChat": "down",
        "OpenAICompatible": "-",
    }


def test_a_model_that_reasons_first_is_ok_at_its_first_reasoning() -> None:
    """A reply that starts with reasoning (or is nothing but reasoning so far)
    counts: the probe does not wait for text, nor call it an empty answer."""
    with serve("openai", models=["thinker"]) as server:
        server.set_reply(reasoning="Let me think.", text="")
        client = chatproviders.OpenAICompatible(server.url, model="thinker")
        (result,) = chatproviders.check([client], timeout=WAIT)
    assert result.status == "ok", result.error


def test_a_probe_closes_what_it_made_when_it_ends(
    cromicle: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The guarded adapters a probe puts in place of a session's own are closed,
    pools and all, once its result is in."""
    made: list[Any] = []

    class Recorded(_health.GuardedAdapter):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            made.append(self)

    monkeypatch.setattr(_health, "GuardedAdapter", Recorded)
    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter())
    try:
        result = only(check([Cromicle(base_url=cromicle.url, session=session)]))
    finally:
        session.close()
    assert result.status == "ok"
    assert made and all(len(adapter.poolmanager.pools) == 0 for adapter in made)


def test_a_probe_past_its_deadline_stops_with_a_total_timeout() -> None:
    """Time left for the next step of a probe: none left is a timeout of the
    whole probe, never a negative or growing budget."""
    now = time.monotonic()
    assert 0 < _health._left(now + 60) <= 60
    with pytest.raises(chatproviders.APITimeoutError) as caught:
        _health._left(now - 1)
    assert caught.value.limit == "total"


def test_a_background_check_that_raises_does_not_end_the_checks(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A bug in one round of background checks is logged; the next round runs."""
    rounds = Rounds()
    monkeypatch.setattr(_fallback, "wait_interval", rounds.wait)
    with serve("cromicle") as server:
        before = health_threads()
        fallback = FallbackProvider([Cromicle(base_url=server.url)], health_interval=30)
        (thread,) = health_threads() - before
        check = fallback.check
        failures = iter([RuntimeError("a bug")])

        def failing_once(**options: Any) -> Any:
            for error in failures:
                raise error
            return check(**options)

        monkeypatch.setattr(fallback, "check", failing_once)
        rounds.run()  # the check raises
        assert "background check of" in caplog.text and "a bug" in caplog.text
        assert server.requests == []
        rounds.run()  # the next round still checks
        assert len(server.requests) == 1
        fallback.close()
        rounds.wake()
        thread.join(WAIT)
        assert not thread.is_alive()
