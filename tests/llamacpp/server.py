"""Start and stop ``python -m llama_cpp.server`` on a free loopback port."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import requests

ALIAS = "tiny-random"
N_CTX = 256
STARTUP_TIMEOUT = 120.0
POLL_INTERVAL = 0.2
STOP_TIMEOUT = 30.0


class ServerNotStarted(RuntimeError):
    """The server died or did not answer in time; the message ends with its log."""


@dataclass(frozen=True)
class LlamaServer:
    """A running server: its API root, the model id it serves, its context."""

    base_url: str
    model: str
    n_ctx: int
    log: Path


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def log_tail(log: Path, lines: int = 30) -> str:
    """The last lines the server wrote."""
    text = log.read_text(encoding="utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])


def wait_until_serving(
    process: subprocess.Popen[bytes], base_url: str, log: Path
) -> None:
    """Poll ``GET /models`` until it answers 200; raise if the process exits or
    ``STARTUP_TIMEOUT`` passes.
    """
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.ConnectionError):
            with requests.get(f"{base_url}/models", timeout=5) as response:
                if response.status_code == 200:
                    return
        try:
            # Waits for the next poll, and returns at once if the server dies.
            code = process.wait(timeout=POLL_INTERVAL)
        except subprocess.TimeoutExpired:
            continue
        raise ServerNotStarted(f"llama_cpp.server exited with {code}:\n{log_tail(log)}")
    raise ServerNotStarted(
        f"llama_cpp.server did not answer within {STARTUP_TIMEOUT} s:\n{log_tail(log)}"
    )


@contextlib.contextmanager
def running_server(model: Path, folder: Path) -> Iterator[LlamaServer]:
    """Serve ``model`` with a context of ``N_CTX`` under the id ``ALIAS``; the log
    goes to ``folder``. The server is stopped when the block ends.
    """
    log = folder / "server.log"
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(model),
        "--model_alias",
        ALIAS,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        str(N_CTX),
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_until_serving(process, base_url, log)
        yield LlamaServer(base_url=base_url, model=ALIAS, n_ctx=N_CTX, log=log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
