"""The Responses API, not streamed, through LiteLLM's proxy to the emulator."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from chatproviders import OpenAICompatible
from chatproviders.testing import EmulatorServer, serve
from tests.llamacpp.server import free_port, log_tail

CONFIG = """model_list:
  - model_name: emulated
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: {api_base}
      api_key: sk-emulator
general_settings:
  master_key: {master_key}
"""
MASTER_KEY = "sk-proxy-0123456789abcdef0123456789abcdef"


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorServer]:
    with serve("openai", text="Through the proxy \u2014 fine.") as server:
        yield server


@pytest.fixture(scope="module")
def proxy(
    emulator: EmulatorServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("litellm")
    config = folder / "config.yaml"
    config.write_text(CONFIG.format(api_base=emulator.url, master_key=MASTER_KEY))
    port = free_port()
    log = folder / "proxy.log"
    litellm = shutil.which("litellm") or str(Path(sys.executable).parent / "litellm")
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                litellm,
                "--config",
                str(config),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{url}/health/liveliness", timeout=5).ok:
                    break
            time.sleep(0.5)
        else:
            pytest.fail(f"the LiteLLM proxy did not start:\n{log_tail(log)}")
        yield f"{url}/v1"
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_complete_through_the_proxy(proxy: str, emulator: EmulatorServer) -> None:
    """A non-streamed reply comes back whole, with its usage, through LiteLLM."""
    with OpenAICompatible(
        proxy, api_key=MASTER_KEY, model="emulated", timeout=60
    ) as client:
        reply = client.responses.complete("Hello")
    assert reply.text == "Through the proxy \u2014 fine."
    assert reply.usage is not None and reply.usage.output_tokens > 0
    assert any(r.route == "/v1/responses" for r in emulator.requests)


def test_stream_through_the_proxy(proxy: str) -> None:
    """A streamed reply comes through LiteLLM as the same text."""
    with OpenAICompatible(
        proxy, api_key=MASTER_KEY, model="emulated", timeout=60
    ) as client:
        with client.responses.stream("Hello") as stream:
            text = "".join(stream)
    assert text == "Through the proxy \u2014 fine."
    assert stream.finish_reason == "stop"
