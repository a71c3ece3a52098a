"""Retries before the first byte, one deadline for the whole call, fallback."""

from __future__ import annotations

import pickle
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import responses
from responses.registries import OrderedRegistry

import chatproviders
from chatproviders import (
    Acytoo,
    AllProvidersFailedError,
    APIConnectionError,
    APITimeoutError,
    BadRequestError,
    Cromicle,
    FallbackProvider,
    GPROChat,
    IncompleteStreamError,
    InternalServerError,
    ModelNotSupportedError,
    RateLimitError,
    UnsupportedParameterError,
)
from chatproviders._wire.retry import backoff_delay, is_retryable, parse_retry_after
from chatproviders._wire.retry import (
    sleep as real_sleep,  # conftest patches the module's
)
from tests.constants import BASE, HI
from tests.loopback import WAIT, Conn, LoopbackServer

URL = f"{BASE}/chat"


@responses.activate(registry=OrderedRegistry)
def test_retries_until_success_honouring_retry_after(sleeps: list[float]) -> None:
    """503 then 429 (Retry-After: 2) then 200: three attempts, the server's wait."""
    responses.post(URL, status=503)
    responses.post(URL, status=429, headers={"Retry-After": "2"})
    responses.post(URL, body="finally")
    reply = Cromicle(base_url=BASE).complete(HI)
    assert reply.text == "finally"
    assert reply.attempts == 3
    assert len(sleeps) == 2
    assert 0.375 <= sleeps[0] <= 0.5  # first backoff, less jitter
    assert sleeps[1] == 2.0
    assert len(responses.calls) == 3


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504])
@responses.activate(registry=OrderedRegistry)
def test_each_retryable_status_is_retried(status: int, sleeps: list[float]) -> None:
    """Every status the issue lists is worth another try."""
    responses.post(URL, status=status)
    responses.post(URL, body="ok")
    assert Cromicle(base_url=BASE).complete(HI).attempts == 2


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
@responses.activate
def test_client_errors_are_not_retried(status: int, sleeps: list[float]) -> None:
    """A refused request is refused again: no retry."""
    responses.post(URL, status=status)
    with pytest.raises(Exception) as caught:
        Cromicle(base_url=BASE).complete(HI)
    assert caught.value.status_code == status  # type: ignore[attr-defined]
    assert len(responses.calls) == 1
    assert sleeps == []


@responses.activate
def test_retries_give_up_after_max_retries(sleeps: list[float]) -> None:
    """The error of the last attempt is raised, counting every attempt."""
    responses.post(URL, status=502)
    with pytest.raises(InternalServerError) as caught:
        Cromicle(base_url=BASE, max_retries=3).complete(HI)
    assert caught.value.tries == 4
    assert len(responses.calls) == 4
    assert len(sleeps) == 3


@responses.activate
def test_max_retries_zero_turns_retries_off(sleeps: list[float]) -> None:
    """max_retries=0 sends exactly one request."""
    responses.post(URL, status=503)
    with pytest.raises(InternalServerError):
        Cromicle(base_url=BASE, max_retries=0).complete(HI)
    assert len(responses.calls) == 1
    assert sleeps == []


@responses.activate
def test_a_wait_past_the_deadline_is_not_taken(sleeps: list[float]) -> None:
    """Retry-After beyond total_timeout: the error comes now, not after a sleep."""
    responses.post(URL, status=429, headers={"Retry-After": "30"})
    with pytest.raises(RateLimitError) as caught:
        Cromicle(base_url=BASE, total_timeout=5).complete(HI)
    assert caught.value.retry_after == 30.0
    assert sleeps == []


@pytest.mark.parametrize("max_retries", [-1, 1.5, "2"])
def test_bad_max_retries_is_refused(max_retries: object) -> None:
    """max_retries must be a whole number >= 0."""
    with pytest.raises(ValueError, match="max_retries"):
        Cromicle(max_retries=max_retries)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("header", "body", "expected"),
    [
        ("3", "", 3.0),
        ("0.5", "", 0.5),
        ("Sun, 22 Nov 2026 00:00:10 GMT", "", 10.0),
        ("Sun, 22 Nov 2026 00:00:00 GMT", "", 0.0),
        ("-1", "", None),
        ("soon", "", None),
        (None, "Please try again in 7s.", 7.0),
        (None, "try again in 1.5 seconds", 1.5),
        (None, "Rate limited. Retry after 2 minutes", 120.0),
        (None, "try again in 250ms", 0.25),
        (None, "no hint here", None),
    ],
)
def test_parse_retry_after(header: object, body: str, expected: object) -> None:
    """Retry-After as seconds or an HTTP date, else a 'try again in N s' body."""
    now = 1795305600.0  # Sun, 22 Nov 2026 00:00:00 GMT
    assert parse_retry_after(header, body, now=now) == expected  # type: ignore[arg-type]


def test_backoff_grows_exponentially_and_is_capped() -> None:
    """0.5, 1, 2, 4, 8, 8... seconds without jitter; jitter only shortens it."""
    assert [backoff_delay(n, jitter=0) for n in range(1, 7)] == [
        0.5,
        1.0,
        2.0,
        4.0,
        8.0,
        8.0,
    ]
    assert all(0.375 <= backoff_delay(1) <= 0.5 for _ in range(100))
    assert backoff_delay(1, retry_after=3) == 3


def test_the_backoff_sleep_ends_when_cancelled() -> None:
    """The real sleep (the one conftest replaces) returns as soon as its cancel
    event is set, so close() never waits out a backoff."""
    cancel = threading.Event()
    sleeper = threading.Thread(target=real_sleep, args=(3600.0, cancel))
    sleeper.start()
    cancel.set()
    sleeper.join(WAIT)
    assert not sleeper.is_alive()
    real_sleep(0.0)  # without an event: time.sleep


def test_what_is_retryable() -> None:
    """Connection errors and connect timeouts are retried; read timeouts are not."""
    assert is_retryable(APIConnectionError("refused"))
    assert is_retryable(APITimeoutError("slow", limit="connect"))
    assert not is_retryable(APITimeoutError("slow", limit="read"))
    assert not is_retryable(APITimeoutError("slow", limit="total"))
    assert not is_retryable(BadRequestError("no", status_code=400))
    assert is_retryable(RateLimitError("wait", status_code=429, retry_after=60))
    assert not is_retryable(RateLimitError("wait", status_code=429, retry_after=61))


@responses.activate(registry=OrderedRegistry)
def test_a_retry_after_beyond_a_minute_is_raised_at_once(sleeps: list[float]) -> None:
    """A 429 asking for an hour is not retried; its error says how long."""
    responses.post(URL, status=429, headers={"Retry-After": "3600"})
    with pytest.raises(RateLimitError) as caught:
        Cromicle(base_url=BASE).complete(HI)
    assert (caught.value.retry_after, caught.value.tries) == (3600.0, 1)
    assert sleeps == []
    assert len(responses.calls) == 1


def test_a_reset_before_the_first_byte_is_retried(sleeps: list[float]) -> None:
    """The first connection resets before any body byte; the retry answers."""

    def handler(conn: Conn) -> None:
        conn.read_request()
        if server.accepted == 1:
            conn.send_head(framing="chunked")
            conn.reset()
            return
        conn.respond(200, b"second time lucky")

    with LoopbackServer(handler) as server:
        reply = Acytoo(base_url=server.url).complete(HI)
    assert reply.text == "second time lucky"
    assert reply.attempts == 2
    assert len(sleeps) == 1


def test_a_reset_after_the_first_byte_is_not_retried() -> None:
    """Text reached the caller: the break is raised, the prompt is not resent."""
    requests_seen: list[object] = []

    def handler(conn: Conn) -> None:
        requests_seen.append(conn.read_request())
        conn.send_head(framing="chunked")
        conn.send(b"half an ans")
        conn.reset()

    with LoopbackServer(handler) as server:
        with pytest.raises(IncompleteStreamError) as caught:
            Acytoo(base_url=server.url).complete(HI)
    assert caught.value.partial_text == "half an ans"
    assert len(requests_seen) == 1


def test_total_timeout_fires_on_a_stall() -> None:
    """A stall after the headers ends at total_timeout, not the long read timeout."""
    release = threading.Event()

    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.send_head(framing="chunked")
        conn.send(b"so far")
        release.wait(WAIT)

    with LoopbackServer(handler) as server:
        client = Cromicle(base_url=server.url, timeout=(WAIT, WAIT), total_timeout=0.3)
        with pytest.raises(APITimeoutError) as caught:
            client.complete(HI)
        release.set()
    assert caught.value.limit == "total"
    assert caught.value.partial_text == "so far"
    assert "total timeout" in str(caught.value)


def test_total_timeout_fires_on_a_trickle() -> None:
    """A server sending a byte every 20 ms forever is cut off by total_timeout."""
    hung_up = threading.Event()

    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.send_head(framing="chunked")
        try:
            while not hung_up.wait(0.02):  # the trickle's pace, not a sync
                conn.send(b".")
        except OSError:
            pass

    with LoopbackServer(handler) as server:
        client = Cromicle(base_url=server.url, timeout=(WAIT, WAIT), total_timeout=0.3)
        with pytest.raises(APITimeoutError) as caught:
            client.complete(HI)
        hung_up.set()
    assert caught.value.limit == "total"
    assert set(caught.value.partial_text) <= {"."}  # however many dots came


def test_total_timeout_bounds_reading_an_error_body() -> None:
    """An error status whose body stalls is raised at total_timeout, with the
    start of the body, not after the long read timeout."""
    release = threading.Event()
    released: list[bool] = []

    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.send_head(500, framing="chunked")
        conn.send(b"overloa")
        released.append(release.wait(10 * WAIT))

    with LoopbackServer(handler) as server:
        client = Cromicle(
            base_url=server.url, timeout=(WAIT, 10 * WAIT), total_timeout=0.3
        )
        with pytest.raises(InternalServerError) as caught:
            client.complete(HI)
        release.set()
    assert released == [True]  # the call returned while the server still stalled
    assert caught.value.body == "overloa"


def test_total_timeout_before_headers() -> None:
    """A server that never answers is cut off by total_timeout, named as such."""
    release = threading.Event()

    def handler(conn: Conn) -> None:
        conn.read_request()
        release.wait(WAIT)

    with LoopbackServer(handler) as server:
        client = Cromicle(base_url=server.url, timeout=(WAIT, WAIT), total_timeout=0.2)
        with pytest.raises(APITimeoutError) as caught:
            client.stream(HI)
        release.set()
    assert caught.value.limit == "total"


@responses.activate
def test_fallback_moves_on_before_the_first_chunk(sleeps: list[float]) -> None:
    """The first provider fails; the second answers and says so."""
    responses.post(f"{BASE}/chat", status=503)
    responses.post(f"{BASE}/api/completions", body="from acytoo")
    fallback = FallbackProvider(
        [Cromicle(base_url=BASE, max_retries=1), Acytoo(base_url=BASE)]
    )
    with fallback.stream(HI) as stream:
        assert "".join(stream) == "from acytoo"
    assert stream.provider == "Acytoo"
    assert stream.attempts == 3  # two to Cromicle, one to Acytoo
    assert stream.time_to_first_chunk is not None


@responses.activate
def test_all_failing_lists_every_attempt() -> None:
    """AllProvidersFailedError has one readable line and one entry per provider."""
    responses.post(f"{BASE}/chat", status=503, body="overloaded")
    responses.post(f"{BASE}/api/generate", status=401, json={"error": {"code": 1}})
    fallback = FallbackProvider(
        [Cromicle(base_url=BASE, max_retries=0), GPROChat(base_url=BASE)]
    )
    with pytest.raises(AllProvidersFailedError) as caught:
        fallback.complete(HI)
    error = caught.value
    assert [a.provider for a in error.attempts] == ["Cromicle", "GPROChat"]
    assert [a.status_code for a in error.attempts] == [503, 401]
    assert all(a.elapsed >= 0 for a in error.attempts)
    lines = str(error).splitlines()
    assert len(lines) == 3
    assert lines[1].strip().startswith("Cromicle [503]: InternalServerError")
    assert "GPROChat [401]: AuthenticationError" in lines[2]
    copy = pickle.loads(pickle.dumps(error))
    assert [a.provider for a in copy.attempts] == ["Cromicle", "GPROChat"]


@responses.activate
def test_failed_providers_cool_down() -> None:
    """A provider that failed is skipped until its cooldown ends."""
    responses.post(f"{BASE}/chat", status=500)
    responses.post(f"{BASE}/api/completions", body="ok")
    fallback = FallbackProvider(
        [Cromicle(base_url=BASE, max_retries=0), Acytoo(base_url=BASE)], cooldown=60
    )
    assert fallback.complete(HI).provider == "Acytoo"
    assert fallback.complete(HI).provider == "Acytoo"
    cromicle_calls = [c for c in responses.calls if c.request.url.endswith("/chat")]
    assert len(cromicle_calls) == 1


@responses.activate
def test_when_all_cool_down_all_are_tried() -> None:
    """If every provider is cooling down, they are all tried rather than none."""
    responses.post(f"{BASE}/chat", status=500)
    fallback = FallbackProvider([Cromicle(base_url=BASE, max_retries=0)], cooldown=60)
    for _ in range(2):
        with pytest.raises(AllProvidersFailedError):
            fallback.complete(HI)
    assert len(responses.calls) == 2


@responses.activate
def test_fallback_passes_over_providers_that_do_not_take_the_arguments() -> None:
    """A provider without the model or a parameter is not tried, nor marked failed."""
    responses.post(f"{BASE}/api/generate", body="from gprochat")
    responses.post(f"{BASE}/api/completions", body="from acytoo")
    responses.post(f"{BASE}/chat", body="from cromicle")
    fallback = FallbackProvider(
        [Cromicle(base_url=BASE), Acytoo(base_url=BASE), GPROChat(base_url=BASE)],
        cooldown=60,
    )
    reply = fallback.complete(HI, "gemini-pro")
    assert (reply.provider, reply.attempts, reply.text) == (
        "GPROChat",
        1,
        "from gprochat",
    )
    reply = fallback.complete(HI, temperature=0.2)
    assert (reply.provider, reply.attempts) == ("Acytoo", 1)
    assert fallback.complete(HI).provider == "Cromicle"  # not cooling down
    assert [call.request.url for call in responses.calls] == [
        f"{BASE}/api/generate",
        f"{BASE}/api/completions",
        f"{BASE}/chat",
    ]


@responses.activate
def test_fallback_raises_what_no_provider_takes_before_any_io() -> None:
    """A model or parameter that no provider takes raises its own error at once."""
    fallback = FallbackProvider([Cromicle(base_url=BASE), Acytoo(base_url=BASE)])
    with pytest.raises(UnsupportedParameterError, match="temprature") as caught:
        fallback.complete(HI, temprature=0.2)
    assert "Acytoo at 127.0.0.1:9: unsupported" in str(caught.value)  # each says
    assert "accepts: temperature" in str(caught.value)
    with pytest.raises(ModelNotSupportedError, match="gemini-pro"):
        fallback.stream_in_background(HI, "gemini-pro")
    assert len(responses.calls) == 0


def test_fallback_total_timeout_covers_every_provider() -> None:
    """A first provider that stalls uses up the whole total_timeout: the call
    ends with a total timeout, and the second provider is never asked."""
    release = threading.Event()

    def stalling(conn: Conn) -> None:
        conn.read_request()
        release.wait(WAIT)

    def answering(conn: Conn) -> None:
        conn.read_request()
        conn.respond(200, b"too late")

    with LoopbackServer(stalling) as first, LoopbackServer(answering) as second:
        fallback = FallbackProvider(
            [
                Cromicle(base_url=first.url, timeout=(WAIT, WAIT)),
                Cromicle(base_url=second.url),
            ],
            total_timeout=0.2,
        )
        with pytest.raises(AllProvidersFailedError) as caught:
            fallback.complete(HI)
        release.set()
    (attempt,) = caught.value.attempts
    assert isinstance(attempt.error, APITimeoutError)
    assert attempt.error.limit == "total"
    assert second.accepted == 0


def test_fallback_never_splices_two_answers() -> None:
    """After a first chunk, a failure is raised, not handed to the next provider."""

    def broken(conn: Conn) -> None:
        conn.read_request()
        conn.send_head(framing="chunked")
        conn.send(b"The answer is")
        conn.reset()

    def healthy(conn: Conn) -> None:
        conn.read_request()
        conn.respond(200, b"another answer")

    with LoopbackServer(broken) as first, LoopbackServer(healthy) as second:
        fallback = FallbackProvider(
            [Cromicle(base_url=first.url), Cromicle(base_url=second.url)]
        )
        with pytest.raises(IncompleteStreamError) as caught:
            fallback.complete(HI)
    assert caught.value.partial_text == "The answer is"
    assert second.accepted == 0


def test_fallback_is_thread_safe() -> None:
    """Many threads share one FallbackProvider; each gets a whole answer."""

    def failing(conn: Conn) -> None:
        while conn.read_request() is not None:
            conn.respond(503, b"busy")

    def answering(conn: Conn) -> None:
        while conn.read_request() is not None:
            conn.respond(200, b"fine")

    with LoopbackServer(failing) as bad, LoopbackServer(answering) as good:
        fallback = FallbackProvider(
            [Cromicle(base_url=bad.url, max_retries=0), Cromicle(base_url=good.url)]
        )
        with ThreadPoolExecutor(8) as pool:
            replies = list(pool.map(lambda _: fallback.complete(HI), range(32)))
        fallback.close()
    assert {r.text for r in replies} == {"fine"}


def test_fallback_takes_any_iterable_of_clients() -> None:
    """A generator of clients is read once, whole: no provider goes missing."""
    fallback = FallbackProvider(Cromicle(base_url=f"{BASE}{n}") for n in range(3))
    assert [p.base_url for p in fallback.providers] == [f"{BASE}{n}" for n in range(3)]


def test_fallback_refuses_bad_arguments() -> None:
    """No providers, or things that are not clients, raise at once."""
    with pytest.raises(TypeError, match="providers"):
        FallbackProvider([])
    with pytest.raises(TypeError, match="providers"):
        FallbackProvider(Cromicle())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cooldown"):
        FallbackProvider([Cromicle()], cooldown=float("nan"))
    with pytest.raises(TypeError, match="shuffle"):
        FallbackProvider([Cromicle()], shuffle="no")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="providers"):
        FallbackProvider([Cromicle])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="cooldown"):
        FallbackProvider([Cromicle()], cooldown=-1)


@responses.activate
def test_fallback_streams_in_background() -> None:
    """stream_in_background falls back on the worker and returns at once."""
    responses.post(f"{BASE}/chat", status=503)
    responses.post(f"{BASE}/api/completions", body="from the worker")
    fallback = FallbackProvider(
        [Cromicle(base_url=BASE, max_retries=0), Acytoo(base_url=BASE)]
    )
    with fallback.stream_in_background(HI) as background:
        assert background.result(timeout=WAIT) == "from the worker"
    with pytest.raises(chatproviders.InvalidMessagesError):
        fallback.stream_in_background([])


# -- The retry helpers' own promises: the one sleep really waits, and backoff
# is jittered down to three quarters of itself.


@pytest.mark.parametrize("cancel", [None, threading.Event()])
def test_the_retry_sleep_waits_its_time(cancel: threading.Event | None) -> None:
    """sleep() waits at least the seconds asked, with or without a cancel event."""
    began = time.monotonic()
    real_sleep(0.05, cancel)
    assert time.monotonic() - began >= 0.05


def test_backoff_is_jittered_by_up_to_a_quarter() -> None:
    """The first backoff lies in [0.375, 0.5] and varies: jitter is on by default."""
    random.seed(1)
    delays = [backoff_delay(1) for _ in range(20)]
    assert all(0.375 <= delay <= 0.5 for delay in delays)
    assert min(delays) < 0.45
    assert len(set(delays)) > 1
    assert backoff_delay(1, jitter=0) == 0.5
