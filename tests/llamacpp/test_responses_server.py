"""The Responses API against llama.cpp's own C++ ``llama-server``.

Run by hand: ``LLAMA_SERVER=/path/to/llama-server tox -e llama-server``. The
tiny random model of ``make_model.py`` is served with a chat template that
adds no generation prompt (its grammar-free replies need none). Each reply
is read by the OpenAI SDK's ``create()`` as the reference.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
import requests

from chatproviders import BadRequestError, OpenAICompatible
from tests.llamacpp.server import free_port, log_tail

#: Run with ``tox -e llama-server``; under ``tox -e llamacpp`` (llama-cpp-python's
#: server) there is no C++ binary to run, which the skip reason says.
pytestmark = pytest.mark.skipif(
    not os.environ.get("LLAMA_SERVER"), reason="LLAMA_SERVER names no llama-server"
)

TEMPLATE = "{% for m in messages %}{{ m['content'] }}\n{% endfor %}"
PARAMS = {"max_output_tokens": 16, "temperature": 0.0}


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from tests.llamacpp.make_model import write_model

    binary = os.environ.get("LLAMA_SERVER")
    if not binary or not Path(binary).exists():
        pytest.fail(f"LLAMA_SERVER={binary!r} is no llama-server binary")
    folder = tmp_path_factory.mktemp("llama-server")
    model = write_model(folder / "tiny-random.gguf")
    template = folder / "template.jinja"
    template.write_text(TEMPLATE)
    port = free_port()
    log = folder / "server.log"
    command = [
        binary,
        "-m",
        str(model),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "-c",
        "256",
        "--jinja",
        "--chat-template-file",
        str(template),
        "-a",
        "tiny",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{url}/models", timeout=5).status_code == 200:
                    break
            time.sleep(0.5)
        else:
            pytest.fail(f"llama-server did not start:\n{log_tail(log)}")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def client(base_url: str) -> Iterator[OpenAICompatible]:
    with OpenAICompatible(base_url, model="tiny", timeout=60) as made:
        yield made


def reference(base_url: str) -> openai.types.responses.Response:
    sdk = openai.OpenAI(base_url=base_url, api_key="none")
    return sdk.responses.create(model="tiny", input="Hello", **PARAMS)


def usage_of(reply: object) -> tuple[int, int, int]:
    usage = reply.usage  # type: ignore[attr-defined]
    return usage.input_tokens, usage.output_tokens, usage.total_tokens


@pytest.mark.parametrize("how", ["stream", "complete", "background"])
def test_text_and_usage_equal_the_sdks(
    base_url: str, client: OpenAICompatible, how: str
) -> None:
    """Streamed, whole and background replies equal what the SDK's create() reads."""
    theirs = reference(base_url)
    if how == "stream":
        ours = client.responses.stream("Hello", **PARAMS).until_done()
    elif how == "complete":
        ours = client.responses.complete("Hello", **PARAMS)
    else:
        background = client.responses.stream_in_background("Hello", **PARAMS)
        background.result(timeout=120)
        ours = background.response()
    assert ours.text == theirs.output_text
    assert usage_of(ours) == usage_of(theirs)
    assert ours.status == "completed"


def test_previous_response_id_refused_then_as_input(client: OpenAICompatible) -> None:
    """llama-server refuses previous_response_id; as_input() continues instead."""
    first_input = [{"role": "user", "content": "Hello"}]
    first = client.responses.complete(first_input, **PARAMS)
    with pytest.raises(BadRequestError, match="previous_response_id"):
        client.responses.complete("Again", previous_response_id=first.id, **PARAMS)
    follow = first_input + first.as_input() + [{"role": "user", "content": "Again"}]
    second = client.responses.complete(follow, **PARAMS)
    assert second.status == "completed" and second.usage.input_tokens > (
        first.usage.input_tokens
    )
