"""check: servers that misbehave in many ways, each probed by ``check()``.

Each kind of server is a handler on a raw socket server (``tests/loopback.py``)
or an emulator, probed with ``chatproviders.check(client, timeout=T)``. The
status expected is the one the table of ``chatproviders/_health/check.py``
(and docs/howto/check.rst) gives for what the server does, and the error
line must hold what the library says for that failure. Checked for each:

- the status and the error line are those;
- ``check()`` returns within T plus a second of slack, and the probe itself
  ended by its deadline (not left behind, "left to end by itself");
- the probe was sent once: never retried (one connection per member).

Then every server is probed again by one ``check()`` of all of them at once:
the same statuses, in the order given, all within the same bound.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import importlib.util
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Optional

import chatproviders
from chatproviders import FallbackProvider, GPROChat, OpenAICompatible
from chatproviders._health.check import STATUSES
from chatproviders.testing import serve

from .common import Outcome, refused_url, wait_until

ROOT = Path(__file__).resolve().parents[2]
#: Past the probe's timeout, how long check() may take to return.
SLACK = 1.0

SSE_OK = b'data: {"choices":[{"delta":{"content":"OK"}}]}\n\ndata: [DONE]\n\n'
SSE_TYPE = "text/event-stream"


def _load_loopback() -> ModuleType:
    """tests/loopback.py, imported from its file (tests/ is not installed)."""
    spec = importlib.util.spec_from_file_location(
        "chaos_loopback", ROOT / "tests" / "loopback.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


loopback = _load_loopback()
Conn = Any  # loopback.Conn
Handler = Callable[[Conn], None]


def tolerant(handler: Handler) -> Handler:
    """The handler, ending quietly when the client hangs up on it."""

    @functools.wraps(handler)
    def run(conn: Conn) -> None:
        with contextlib.suppress(OSError):
            handler(conn)

    return run


# -- the servers ---------------------------------------------------------------


@tolerant
def working(conn: Conn) -> None:
    conn.read_request()
    conn.respond(200, SSE_OK, SSE_TYPE)


def status(code: int, body: bytes, content_type: str, *headers: str) -> Handler:
    """A reply of ``code`` with ``body`` and extra ``Name: value`` headers."""

    @tolerant
    def run(conn: Conn) -> None:
        conn.read_request()
        pairs = [("Content-Type", content_type)]
        pairs += [tuple(h.split(": ", 1)) for h in headers]  # type: ignore[misc]
        conn.send_head(code, pairs, "length", len(body))
        conn.sock.sendall(body)

    return run


@tolerant
def cut_mid_event(conn: Conn) -> None:
    conn.read_request()
    conn.send_head(200, [("Content-Type", SSE_TYPE)], "chunked")
    conn.send(b'data: {"choices":[{"delta":{"content":"Hel')
    conn.sock.close()


@tolerant
def reset_after_request(conn: Conn) -> None:
    conn.read_request()
    conn.reset()


@tolerant
def closed_at_once(conn: Conn) -> None:
    conn.sock.close()


@tolerant
def never_answers(conn: Conn) -> None:
    conn.read_request()
    conn.wait_closed_by_client(60)


@tolerant
def trickled_head(conn: Conn) -> None:
    """A byte of the status line and headers every 50 ms, with no end."""
    conn.read_request()
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nX-Pad: "
    for byte in head + b"a" * 100_000:
        conn.sock.sendall(bytes([byte]))
        time.sleep(0.05)


@tolerant
def head_then_nothing(conn: Conn) -> None:
    conn.read_request()
    conn.send_head(200, [("Content-Type", SSE_TYPE)], "chunked")
    conn.wait_closed_by_client(60)


@tolerant
def redirect_to_itself(conn: Conn) -> None:
    while conn.read_request() is not None:
        conn.sock.sendall(
            b"HTTP/1.1 302 Found\r\nLocation: /v1/chat/completions\r\n"
            b"Content-Length: 0\r\n\r\n"
        )


PAGE = b"<!DOCTYPE html><html><head><title>Are you human?</title></head></html>"
CHALLENGE = b"<html><head><title>Just a moment...</title></head><body></body></html>"
QUOTA = b'data: {"error":{"message":"You exceeded your current quota"}}\n\n'


@dataclass(frozen=True)
class Kind:
    """A server, the status check() must give it, and what its error says."""

    name: str
    handler: Optional[Handler]  # None: nothing listens
    status: str
    says: Optional[str]  # in the error line; None: no error


KINDS = [
    Kind("a working server (the control)", working, "ok", None),
    Kind(
        "500 with an error object",
        status(500, b'{"error":{"message":"boom"}}', "application/json"),
        "error",
        "answered 500 Internal Server Error: boom",
    ),
    Kind(
        "429 with Retry-After",
        status(
            429, b'{"error":{"message":"slow"}}', "application/json", "Retry-After: 7"
        ),
        "rate_limited",
        "answered 429 Too Many Requests",
    ),
    Kind(
        "401",
        status(401, b'{"error":{"message":"bad key"}}', "application/json"),
        "auth",
        "answered 401 Unauthorized",
    ),
    Kind(
        "403 with a challenge page",
        status(403, CHALLENGE, "text/html"),
        "blocked",
        "answered 403 Forbidden with an HTML page titled 'Just a moment...'",
    ),
    Kind(
        "an HTML page with 200",
        status(200, PAGE, "text/html"),
        "blocked",
        "sent an HTML page titled 'Are you human?' instead of a reply",
    ),
    Kind(
        "200 with a body that is not JSON",
        status(200, b'{"choices": oops', "application/json"),
        "bad_reply",
        "sent a reply that is not JSON",
    ),
    Kind(
        "an event that is not JSON",
        status(200, b"data: not json\n\n", SSE_TYPE),
        "bad_reply",
        "sent an event that is not JSON",
    ),
    Kind(
        "a stream cut mid-event",
        cut_mid_event,
        "bad_reply",
        "the connection broke before the reply was complete",
    ),
    Kind(
        "a connection reset after the request",
        reset_after_request,
        "down",
        "connection failed",
    ),
    Kind("a connection closed at once", closed_at_once, "down", "connection failed"),
    Kind("nothing listening", None, "down", "connection failed"),
    Kind("accepts and never answers", never_answers, "timeout", "total timeout"),
    Kind(
        "a head trickled byte by byte forever",
        trickled_head,
        "timeout",
        "total timeout",
    ),
    Kind("a head, then no body", head_then_nothing, "timeout", "total timeout"),
    Kind(
        "an empty 200",
        status(200, b"", SSE_TYPE),
        "bad_reply",
        "the stream ended before data: [DONE]",
    ),
    Kind(
        "a reply with no choices",
        status(200, b'{"object":"chat.completion","choices":[]}', "application/json"),
        "bad_reply",
        "sent a reply without choices",
    ),
    Kind("a redirect to itself", redirect_to_itself, "error", "a redirect to"),
    Kind(
        "events declared text/html",
        status(200, SSE_OK, "text/html"),
        "blocked",
        "sent an HTML page instead of a reply",
    ),
    Kind(
        "events declared application/octet-stream",
        status(200, SSE_OK, "application/octet-stream"),
        "ok",
        None,
    ),
    Kind(
        "a quota error in the stream",
        status(200, QUOTA, SSE_TYPE),
        "rate_limited",
        "exceeded your current quota",
    ),
    Kind(
        "a body declared gzip that is not",
        status(200, b"\x1f\x8b not gzip", SSE_TYPE, "Content-Encoding: gzip"),
        "bad_reply",
        "could not decode the body",
    ),
]


@dataclass
class Target:
    """A client to probe, what it must give, and how many requests (or
    connections, for a raw server) its probe makes, as ``sent`` counts them.
    """

    name: str
    client: chatproviders.Client
    status: str
    says: Optional[str]
    sent: Callable[[], int]
    sends: int = 1


def check_servers(rng: random.Random, timeout: float = 1.5) -> Outcome:
    """Probe every kind of server alone, then all at once."""
    outcome = Outcome("check")
    statuses: collections.Counter[str] = collections.Counter()
    with contextlib.ExitStack() as stack:
        targets = [target(kind, stack) for kind in KINDS]
        targets += emulated(stack)
        rng.shuffle(targets)
        slowest = 0.0
        for one in targets:
            took, results = probe(outcome, [one], timeout)
            slowest = max(slowest, took)
            statuses.update(result.status for result in results)
        together, _ = probe(outcome, targets, timeout, again=True)
        twice(outcome, stack, timeout)
        for one in targets:
            one.client.close()
    outcome.headline = f"{len(targets)} kinds of server, alone and all at once"
    outcome.figures.update(
        {
            "kinds of server": f"{len(targets)}, and a client probed twice",
            "statuses": ", ".join(f"{name} {statuses[name]}" for name in STATUSES),
            "slowest check() alone": f"{slowest:.2f} s (timeout {timeout:g} s)",
            "check() of all at once": f"{together:.2f} s",
        }
    )
    return outcome


def target(kind: Kind, stack: contextlib.ExitStack) -> Target:
    if kind.handler is None:
        url = refused_url()

        def sent() -> int:
            return 0

        sends = 0
    else:
        server = stack.enter_context(loopback.LoopbackServer(kind.handler))
        url = server.url

        def sent() -> int:
            return int(server.accepted)

        sends = 1
    client = OpenAICompatible(f"{url}/v1", model="chaos")
    return Target(kind.name, client, kind.status, kind.says, sent, sends)


def emulated(stack: contextlib.ExitStack) -> list[Target]:
    """Kinds made of emulators: a provider's own error reading, fallbacks,
    and a careless user's closed client.
    """
    quota = stack.enter_context(
        serve("gprochat", status=500, body='{"error": {"message": "Quota exceeded"}}')
    )
    unauthorized = stack.enter_context(serve("openai", status=401))
    forbidden = stack.enter_context(serve("openai", status=403))
    failing = stack.enter_context(serve("openai", status=500))
    limited = stack.enter_context(serve("openai", status=429))
    model = "gpt-4o-mini"

    def members(*servers: Any) -> list[chatproviders.Client]:
        return [OpenAICompatible(s.url, model=model) for s in servers]

    def count(*servers: Any) -> Callable[[], int]:
        return lambda: sum(len(s.requests) for s in servers)

    closed = OpenAICompatible(unauthorized.url, model=model)
    closed.close()
    return [
        Target(
            "GPROChat's 500 saying Quota exceeded",
            GPROChat(base_url=quota.url),
            "rate_limited",
            "Quota exceeded",
            count(quota),
        ),
        Target(
            "a FallbackProvider of a 401 and a 403",
            FallbackProvider(members(unauthorized, forbidden)),
            "auth",
            "answered 401",
            count(unauthorized, forbidden),
            2,
        ),
        Target(
            "a FallbackProvider of a 500 and a 429",
            FallbackProvider(members(failing, limited)),
            "error",
            "answered 500",
            count(failing, limited),
            2,
        ),
        Target(
            "a closed client",
            closed,
            "error",
            "the client is closed",
            count(),
            0,
        ),
    ]


def probe(
    outcome: Outcome, targets: list[Target], timeout: float, again: bool = False
) -> tuple[float, list[chatproviders.CheckResult]]:
    """One check() of ``targets``: each result as expected, in time, sent
    once (alone); how long it took, and the results.
    """
    sent = [one.sent() for one in targets]
    began = time.monotonic()
    results = chatproviders.check([one.client for one in targets], timeout=timeout)
    took = time.monotonic() - began
    how = "all at once" if again else "alone"
    what = f"{len(targets)} servers" if again else targets[0].name
    if took > timeout + SLACK:
        outcome.problem(f"check() of {what} took {took:.2f} s ({how})")
    for one, result, before in zip(targets, results, sent):
        where = f"{one.name} ({how})"
        error = result.error or ""
        if result.status != one.status:
            outcome.problem(f"{where}: {result.status}, not {one.status}: {error}")
        elif one.says is not None and one.says not in error:
            outcome.problem(f"{where}: the error does not say {one.says!r}: {error}")
        elif one.says is None and result.error is not None:
            outcome.problem(f"{where}: an error: {error}")
        if "left to end by itself" in error:
            outcome.problem(f"{where}: the probe outlived its timeout")
        if not again:
            sent_once(outcome, where, one, before)
    return took, results


def sent_once(outcome: Outcome, where: str, one: Target, before: int) -> None:
    """The probe was never retried. A server counts a connection when it
    accepts it, which may come a moment after the probe's end: wait for it.
    """
    wait_until(lambda: one.sent() >= before + one.sends, 2.0)
    if one.sent() - before != one.sends:
        outcome.problem(f"{where}: sent {one.sent() - before} times, not {one.sends}")


def twice(outcome: Outcome, stack: contextlib.ExitStack, timeout: float) -> None:
    """A careless user probes one client twice at once: the second result is
    a timeout saying the last probe has not ended, and nothing more is sent.
    """
    server = stack.enter_context(loopback.LoopbackServer(never_answers))
    client = OpenAICompatible(f"{server.url}/v1", model="chaos")
    first, second = chatproviders.check([client, client], timeout=timeout)
    if first.status != "timeout" or "total timeout" not in (first.error or ""):
        outcome.problem(f"one client probed twice, first: {first.status} {first.error}")
    if second.status != "timeout" or "has not ended yet" not in (second.error or ""):
        outcome.problem(
            f"one client probed twice, second: {second.status} {second.error}"
        )
    if server.accepted != 1:
        outcome.problem(f"one client probed twice: {server.accepted} connections")
    client.close()
