"""FallbackProvider's choices, pinned: which providers it asks, in what order,
and the figures it reports."""

from __future__ import annotations

import random
import threading
import time

import pytest
import requests
import responses
from responses.registries import OrderedRegistry

from chatproviders import (
    Acytoo,
    AllProvidersFailedError,
    Cromicle,
    FallbackProvider,
    GPROChat,
    InvalidMessagesError,
    ModelNotSupportedError,
)
from tests.constants import BASE, HI
from tests.loopback import WAIT, Conn, LoopbackServer

CROMICLE, ACYTOO = f"{BASE}/chat", f"{BASE}/api/completions"


def asked() -> list[str]:
    """The providers asked so far, by the path of their endpoint."""
    paths = {CROMICLE: "Cromicle", ACYTOO: "Acytoo", f"{BASE}/api/generate": "GPROChat"}
    return [paths[str(call.request.url)] for call in responses.calls]


@responses.activate
def test_one_refusing_provider_next_to_an_accepting_one_is_passed_over() -> None:
    """One provider refusing the model is no error while another takes it."""
    responses.post(f"{BASE}/api/generate", body="from gprochat")
    fallback = FallbackProvider([Cromicle(base_url=BASE), GPROChat(base_url=BASE)])
    reply = fallback.complete(HI, "gemini-pro")
    assert (reply.provider, reply.text) == ("GPROChat", "from gprochat")
    assert reply.attempts == 1
    assert asked() == ["GPROChat"]


def test_one_provider_refusing_alone_raises_its_own_error() -> None:
    """With one provider that refuses, its own error is raised, not a summary."""
    fallback = FallbackProvider([Cromicle(base_url=BASE)])
    with pytest.raises(ModelNotSupportedError) as caught:
        fallback.complete(HI, "gemini-pro")
    assert str(caught.value).startswith("Cromicle at 127.0.0.1:9: model 'gemini-pro'")


@responses.activate(registry=OrderedRegistry)
def test_a_success_ends_the_cooldown() -> None:
    """A provider tried while cooling down (all were) and answering is ready again:
    the next call starts with it, not with the one that failed since."""
    responses.post(CROMICLE, status=500)  # call 1: both fail, both cool down
    responses.post(ACYTOO, status=500)
    responses.post(CROMICLE, status=500)  # call 2: all cooling, all tried
    responses.post(ACYTOO, body="acytoo is back")
    responses.post(ACYTOO, body="acytoo again")  # call 3: only acytoo is ready
    fallback = FallbackProvider(
        [Cromicle(base_url=BASE, max_retries=0), Acytoo(base_url=BASE, max_retries=0)],
        cooldown=1000,
    )
    with pytest.raises(AllProvidersFailedError):
        fallback.complete(HI)
    assert fallback.complete(HI).text == "acytoo is back"
    assert fallback.complete(HI).text == "acytoo again"
    assert asked() == ["Cromicle", "Acytoo", "Cromicle", "Acytoo", "Acytoo"]


@responses.activate
def test_no_cooldown_means_a_failed_provider_is_asked_again() -> None:
    """cooldown=0: the provider that failed is first again on the next call."""
    responses.post(CROMICLE, status=500)
    responses.post(ACYTOO, body="ok")
    fallback = FallbackProvider(
        [Cromicle(base_url=BASE, max_retries=0), Acytoo(base_url=BASE)], cooldown=0
    )
    fallback.complete(HI)
    fallback.complete(HI)
    assert asked() == ["Cromicle", "Acytoo", "Cromicle", "Acytoo"]


def order_tried(fallback: FallbackProvider) -> list[str]:
    """The hosts asked, in order, when every one refuses the connection."""
    with pytest.raises(AllProvidersFailedError) as caught:
        fallback.complete(HI)
    return [str(a.error.host) for a in caught.value.attempts]


HOSTS = [f"127.0.0.1:{port}" for port in range(1, 7)]


def fallback_over_dead_ports(shuffle: bool) -> FallbackProvider:
    clients = [Cromicle(base_url=f"http://{h}", max_retries=0) for h in HOSTS]
    return FallbackProvider(clients, shuffle=shuffle, cooldown=0)


@responses.activate
def test_shuffle_asks_in_an_order_random_seeds() -> None:
    """shuffle=True: each call a random order of all, the same for the same seed;
    shuffle=False: the given order, always."""
    for url in HOSTS:
        responses.post(f"http://{url}/chat", body=requests.ConnectionError("refused"))
    orders = []
    for seed in range(8):
        random.seed(seed)
        orders.append(order_tried(fallback_over_dead_ports(shuffle=True)))
    assert all(sorted(order) == HOSTS for order in orders)
    assert len({tuple(order) for order in orders}) > 1
    random.seed(3)
    assert order_tried(fallback_over_dead_ports(shuffle=True)) == orders[3]
    for seed in range(3):
        random.seed(seed)
        assert order_tried(fallback_over_dead_ports(shuffle=False)) == HOSTS


@responses.activate
def test_attempts_count_every_try_of_every_provider(sleeps: list[float]) -> None:
    """Three tries of a failing provider, then one that answers: attempts is 4."""
    responses.post(CROMICLE, status=503)
    responses.post(ACYTOO, body="ok")
    fallback = FallbackProvider(
        [Cromicle(base_url=BASE, max_retries=2), Acytoo(base_url=BASE)]
    )
    reply = fallback.complete(HI)
    assert (reply.provider, reply.attempts) == ("Acytoo", 4)
    assert len(sleeps) == 2


@responses.activate
def test_each_attempt_reports_its_own_status_and_time() -> None:
    """Each failed attempt names its status (None without one) and an elapsed time
    within the call's."""
    responses.post(CROMICLE, status=429)
    responses.post(ACYTOO, body=requests.ConnectionError("refused"))
    fallback = FallbackProvider(
        [Cromicle(base_url=BASE, max_retries=0), Acytoo(base_url=BASE, max_retries=0)]
    )
    began = time.monotonic()
    with pytest.raises(AllProvidersFailedError) as caught:
        fallback.complete(HI)
    took = time.monotonic() - began
    attempts = caught.value.attempts
    assert [(a.provider, a.status_code) for a in attempts] == [
        ("Cromicle", 429),
        ("Acytoo", None),
    ]
    assert all(0 <= a.elapsed <= took for a in attempts)
    assert sum(a.elapsed for a in attempts) <= took
    assert str(caught.value).startswith("all 2 provider attempt(s) failed:")


def test_defaults_and_limits_of_the_arguments() -> None:
    """cooldown is 60 s by default, may be 0, not infinite; total_timeout is
    checked like a client's."""
    assert FallbackProvider([Cromicle(base_url=BASE)]).cooldown == 60.0
    assert FallbackProvider([Cromicle(base_url=BASE)], cooldown=0).cooldown == 0
    with pytest.raises(ValueError, match="cooldown"):
        FallbackProvider([Cromicle(base_url=BASE)], cooldown=float("inf"))
    for bad in (0, -1, float("nan")):
        with pytest.raises(ValueError, match=r"^total_timeout must be"):
            FallbackProvider([Cromicle(base_url=BASE)], total_timeout=bad)


@responses.activate
def test_a_total_timeout_leaves_time_to_answer() -> None:
    """With total_timeout set, a provider answering at once answers."""
    responses.post(CROMICLE, body="in time")
    fallback = FallbackProvider([Cromicle(base_url=BASE)], total_timeout=WAIT)
    assert fallback.complete(HI).text == "in time"


def test_bad_messages_are_named_even_when_no_provider_takes_the_model() -> None:
    """Messages are checked first: their error, not a refusal of the model."""
    fallback = FallbackProvider([Cromicle(base_url=BASE), Acytoo(base_url=BASE)])
    with pytest.raises(InvalidMessagesError):
        fallback.complete([{"role": "user"}], "no-such-model")


def test_several_refusals_are_summed_up_in_the_first_ones_class() -> None:
    """Providers refusing for different reasons: one error of the first refusal's
    class, listing every reason."""
    fallback = FallbackProvider([Cromicle(base_url=BASE), GPROChat(base_url=BASE)])
    with pytest.raises(ModelNotSupportedError) as caught:
        fallback.complete(HI, "gemini-pro", temprature=1)
    assert type(caught.value) is ModelNotSupportedError
    message = str(caught.value)
    assert message.startswith("no provider takes this call: Cromicle at 127.0.0.1:9:")
    assert "; GPROChat at 127.0.0.1:9: unsupported parameter(s) temprature" in message


def test_close_closes_every_provider_and_repr_names_them() -> None:
    """close() closes each client; repr lists them in order."""
    clients = [Cromicle(base_url=BASE), Acytoo(base_url=BASE)]
    fallback = FallbackProvider(clients)
    assert repr(fallback) == "<FallbackProvider [Cromicle, Acytoo]>"
    fallback.close()
    for client in clients:
        with pytest.raises(RuntimeError, match="is closed"):
            client.stream(HI)


def test_closing_a_background_fallback_tries_no_further_provider() -> None:
    """A background stream closed while its first provider is failing stops
    there: the next provider is never asked."""
    requested, release = threading.Event(), threading.Event()

    def failing(conn: Conn) -> None:
        conn.read_request()
        requested.set()
        assert release.wait(WAIT)
        conn.reset()  # no response: a connection error, after close()

    def answering(conn: Conn) -> None:
        if conn.read_request() is not None:
            conn.respond(200, b"should not be asked")

    with LoopbackServer(failing) as first, LoopbackServer(answering) as second:
        fallback = FallbackProvider(
            [
                Cromicle(base_url=first.url, max_retries=0),
                Cromicle(base_url=second.url, max_retries=0),
            ]
        )
        stream = fallback.stream_in_background(HI)
        assert requested.wait(WAIT)
        stream.close()  # cannot wake a request awaiting its headers: half a second
        release.set()
        for thread in threading.enumerate():
            if thread.name.startswith("chatproviders-background-"):
                thread.join(WAIT)
        fallback.close()
    assert second.accepted == 0
