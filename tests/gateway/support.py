"""Helpers of the gateway tests: a gateway on waitress in this process, a
``chatproviders serve`` subprocess, gunicorn, and a client of raw bytes.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Optional
from urllib.parse import urlsplit

from chatproviders.gateway import Gateway, make_app
from chatproviders.gateway._server import run

WAIT = 10.0  # the bound on every wait; never reached when things work


@dataclass
class Running:
    url: str
    app: Gateway
    log: io.StringIO
    stop: threading.Event


@contextlib.contextmanager
def gateway(config: dict[str, Any], threads: int = 8) -> Iterator[Running]:
    """``make_app(config)`` served by waitress on a free port, in a thread."""
    log = io.StringIO()
    app = make_app(config, access_log=log)
    stop = threading.Event()
    listening: list[str] = []
    ready = threading.Event()

    def on_listening(url: str) -> None:
        listening.append(url)
        ready.set()

    thread = threading.Thread(
        target=run,
        args=(app,),
        kwargs={
            "port": 0,
            "threads": threads,
            "grace": 2.0,
            "on_listening": on_listening,
            "stop": stop,
        },
        daemon=True,
    )
    thread.start()
    assert ready.wait(WAIT), "the gateway did not start"
    try:
        yield Running(listening[0], app, log, stop)
    finally:
        stop.set()
        thread.join(WAIT)


@dataclass
class RawReply:
    status: int
    headers: dict[str, str]  # names lower-cased
    body: bytes
    raw: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def raw_exchange(url: str, request: bytes, timeout: float = WAIT) -> RawReply:
    """Send ``request`` as it is, read the reply until the server closes."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout) as sock:
        sock.sendall(request)
        received = b""
        while True:
            data = sock.recv(65536)
            if not data:
                break
            received += data
    return parse_reply(received)


def parse_reply(raw: bytes) -> RawReply:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding") == "chunked":
        body = dechunk(body)
    return RawReply(int(status_line.split()[1]), headers, body, raw)


def dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2 :]
    return out


def post(
    path: str,
    body: bytes,
    content_type: Optional[str] = "application/json",
    headers: Sequence[str] = (),
    method: str = "POST",
) -> bytes:
    """The bytes of an HTTP/1.1 request with ``Connection: close``."""
    lines = [f"{method} {path} HTTP/1.1", "Host: gateway", "Connection: close"]
    if content_type is not None:
        lines.append(f"Content-Type: {content_type}")
    lines += [f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def chat_body(model: str = "cromicle", stream: bool = False, **fields: Any) -> bytes:
    value = {
        "model": model,
        "messages": [{"role": "user", "content": "hello"}],
        "stream": stream,
        **fields,
    }
    return json.dumps(value).encode()


def sse_data(body: bytes) -> list[str]:
    """The ``data:`` values of an SSE body, in order."""
    return [
        line[len(b"data: ") :].decode()
        for line in body.split(b"\n")
        if line.startswith(b"data: ")
    ]


@dataclass
class Process:
    url: str
    process: subprocess.Popen[str]
    stderr: list[str]

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(WAIT)


@contextlib.contextmanager
def serve_process(arguments: Sequence[str]) -> Iterator[Process]:
    """``chatproviders serve ARGUMENTS --port 0``; the URL is its first line."""
    command = [sys.executable, "-m", "chatproviders", "serve", *arguments]
    with _started(command, url_from="stdout") as running:
        yield running


@contextlib.contextmanager
def gunicorn_process(config_path: str, workers: int = 2) -> Iterator[Process]:
    """gunicorn with ``workers`` gthread workers, as the docs show it."""
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "-k",
        "gthread",
        "-w",
        str(workers),
        "--threads",
        "8",
        "-b",
        "127.0.0.1:0",
        f"chatproviders.gateway:make_app({config_path!r})",
    ]
    with _started(command, url_from="stderr") as running:
        yield running


@contextlib.contextmanager
def _started(command: list[str], url_from: str) -> Iterator[Process]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    stderr: list[str] = []
    found: list[str] = []
    ready = threading.Event()

    def read_stderr() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            stderr.append(line)
            if url_from == "stderr" and "Listening at: " in line and not found:
                found.append(line.split("Listening at: ")[1].split()[0])
                ready.set()
        ready.set()

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    if url_from == "stdout":
        assert process.stdout is not None
        found.append(process.stdout.readline().strip())
    else:
        ready.wait(WAIT)
    try:
        assert found and found[0].startswith("http://"), "".join(stderr)
        if url_from == "stderr":
            _wait_workers(found[0], stderr)
        yield Process(found[0], process, stderr)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(WAIT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(WAIT)
        reader.join(WAIT)
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()


def _wait_workers(url: str, stderr: list[str]) -> None:
    """gunicorn listens before its workers boot; wait for a /health answer."""
    import time

    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        try:
            if raw_exchange(url, post("/health", b"", None, method="GET")).status:
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("gunicorn did not answer: " + "".join(stderr))
