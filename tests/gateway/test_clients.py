"""The OpenAI SDK (sync and async), curl and OpenAICompatible, each streaming and
completing through a real gateway process in front of every emulator: on
``chatproviders serve`` (waitress) and on gunicorn with 2 gthread workers.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatproviders import OpenAICompatible
from chatproviders.testing import EmulatorServer, serve
from tests.gateway.support import Process, gunicorn_process, serve_process

openai = pytest.importorskip("openai")  # the test extra has it (Python 3.10+)

pytestmark = pytest.mark.slow

SEEDS = ["cromicle", "acytoo", "gprochat", "codelinkava"]
#: Each model a client asks for, and the provider that must answer it.
MODELS = {
    "cromicle": "cromicle",
    "acytoo": "acytoo",
    "gprochat": "gprochat",
    "codelinkava": "codelinkava",
    "openai/gpt-4o-mini": "openai",
    "fast/gpt-3.5-turbo": "cromicle",  # its first member is down
}


@pytest.fixture(scope="module")
def emulators() -> Iterator[dict[str, EmulatorServer]]:
    servers = {name: serve(name, chunk_size=5) for name in [*SEEDS, "openai"]}
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture(scope="module")
def config_file(
    emulators: dict[str, EmulatorServer], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    base_urls = {name: server.url for name, server in emulators.items()}
    base_urls["openaicompatible"] = "http://127.0.0.1:9/v1"  # nothing listens
    lines = [
        'routes = ["cromicle", "acytoo", "gprochat", "codelinkava", "openai", '
        '"fast=openaicompatible,cromicle"]',
        "max_retries = 0",
        "[base_urls]",
        *(f'{name} = "{url}"' for name, url in base_urls.items()),
    ]
    path = tmp_path_factory.mktemp("gateway") / "gateway.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module", params=["serve", "gunicorn"])
def gateway_url(request: pytest.FixtureRequest, config_file: Path) -> Iterator[str]:
    """The gateway's base URL, on waitress (the command) or on gunicorn."""
    if request.param == "serve":
        started = serve_process(["--config", str(config_file), "--port", "0"])
    else:
        started = gunicorn_process(str(config_file), workers=2)
    with started as process:
        yield process.url
        _check_log(process)
        if request.param == "gunicorn":
            assert "".join(process.stderr).count("Booting worker") == 2


def _check_log(process: Process) -> None:
    process.stop()
    log = "".join(process.stderr)
    assert "Traceback" not in log, log
    assert "POST /v1/chat/completions status=200" in log


def expected(emulators: dict[str, EmulatorServer], provider: str) -> str:
    return emulators[provider].reply.text or ""


@pytest.mark.parametrize("model", list(MODELS))
def test_the_openai_sdk_streams_and_completes(
    gateway_url: str, emulators: dict[str, EmulatorServer], model: str
) -> None:
    """openai.OpenAI: a stream of several chunks, and a whole completion."""
    provider = MODELS[model]
    client = openai.OpenAI(base_url=gateway_url + "/v1", api_key="unused")
    messages = [{"role": "user", "content": "hello"}]
    with client.chat.completions.create(
        model=model, messages=messages, stream=True
    ) as stream:
        chunks = [c.choices[0].delta.content for c in stream if c.choices]
    pieces = [piece for piece in chunks if piece]
    assert "".join(pieces) == expected(emulators, provider)
    assert len(pieces) > 1
    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=messages
    )
    assert raw.headers["x-chatproviders-provider"] == provider
    completion = raw.parse()
    assert completion.choices[0].message.content == expected(emulators, provider)
    assert completion.model.split("/")[0] == provider
    client.close()


@pytest.mark.parametrize("model", list(MODELS))
def test_the_async_openai_sdk_streams_and_completes(
    gateway_url: str, emulators: dict[str, EmulatorServer], model: str
) -> None:
    """openai.AsyncOpenAI: the same, from asyncio."""
    provider = MODELS[model]
    messages = [{"role": "user", "content": "hello"}]

    async def talk() -> tuple[str, str]:
        async with openai.AsyncOpenAI(
            base_url=gateway_url + "/v1", api_key="unused"
        ) as client:
            stream = await client.chat.completions.create(
                model=model, messages=messages, stream=True
            )
            text = ""
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    text += chunk.choices[0].delta.content
            completion = await client.chat.completions.create(
                model=model, messages=messages
            )
            return text, completion.choices[0].message.content or ""

    streamed, completed = asyncio.run(talk())
    assert streamed == completed == expected(emulators, provider)


@pytest.mark.parametrize("model", list(MODELS))
def test_openai_compatible_streams_and_completes(
    gateway_url: str, emulators: dict[str, EmulatorServer], model: str
) -> None:
    """chatproviders' own client, pointed at the gateway."""
    provider = MODELS[model]
    messages = [{"role": "user", "content": "hello"}]
    with OpenAICompatible(gateway_url + "/v1", model=model) as client:
        with client.stream(messages) as stream:
            assert "".join(stream) == expected(emulators, provider)
        reply = client.complete(messages)
    assert reply.text == expected(emulators, provider)
    assert reply.model.split("/")[0] == provider


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
@pytest.mark.parametrize("model", list(MODELS))
def test_curl_streams_and_completes(
    gateway_url: str, emulators: dict[str, EmulatorServer], model: str
) -> None:
    """curl -N: the SSE body as a terminal would show it, then a completion."""
    provider = MODELS[model]
    for stream in (True, False):
        body = {
            "model": model,
            "messages": [{"role": "user", "content": "hello"}],
            "stream": stream,
        }
        result = subprocess.run(
            [
                "curl",
                "-sS",
                "-N",
                "--max-time",
                "10",
                gateway_url + "/v1/chat/completions",
                "-H",
                "Content-Type: application/json",
                "-d",
                json.dumps(body),
            ],
            capture_output=True,
            check=True,
        )
        out = result.stdout.decode()
        if stream:
            lines = [line[6:] for line in out.splitlines() if line.startswith("data: ")]
            assert lines[-1] == "[DONE]"
            deltas = [json.loads(line)["choices"][0]["delta"] for line in lines[:-1]]
            text = "".join(delta.get("content") or "" for delta in deltas)
        else:
            text = json.loads(out)["choices"][0]["message"]["content"]
        assert text == expected(emulators, provider)


def test_tool_calls_pass_through_both_ways(
    gateway_url: str, emulators: dict[str, EmulatorServer]
) -> None:
    """The SDK sends tools; the model's parallel calls come back, streamed and
    whole, with ids, names and arguments intact.
    """
    calls = [
        {"name": "get_weather", "arguments": {"city": "Paris"}, "id": "call_a"},
        {"name": "get_time", "arguments": {"zone": "CET"}, "id": "call_b"},
    ]
    server = emulators["openai"]
    tools = [
        {
            "type": "function",
            "function": {"name": n, "parameters": {"type": "object"}},
        }
        for n in ("get_weather", "get_time")
    ]
    client = openai.OpenAI(base_url=gateway_url + "/v1", api_key="unused")
    messages = [{"role": "user", "content": "weather and time in Paris?"}]
    server.queue_reply(tool_calls=calls, tool_call_fragments=3, interleave=True)
    stream = client.chat.completions.create(
        model="openai/gpt-4o-mini", messages=messages, tools=tools, stream=True
    )
    joined: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in stream:
        if not chunk.choices:
            continue
        finish = chunk.choices[0].finish_reason or finish
        for delta in chunk.choices[0].delta.tool_calls or []:
            call = joined.setdefault(delta.index, {"id": "", "name": "", "args": ""})
            call["id"] += delta.id or ""
            call["name"] += (delta.function and delta.function.name) or ""
            call["args"] += (delta.function and delta.function.arguments) or ""
    assert finish == "tool_calls"
    assert [(c["id"], c["name"], json.loads(c["args"])) for c in joined.values()] == [
        ("call_a", "get_weather", {"city": "Paris"}),
        ("call_b", "get_time", {"zone": "CET"}),
    ]
    sent = server.requests[-1].json
    assert sent["tools"] == tools
    server.queue_reply(tool_calls=calls)
    completion = client.chat.completions.create(
        model="openai/gpt-4o-mini", messages=messages, tools=tools
    )
    message = completion.choices[0].message
    assert [(c.id, c.function.name) for c in message.tool_calls or []] == [
        ("call_a", "get_weather"),
        ("call_b", "get_time"),
    ]
    assert completion.choices[0].finish_reason == "tool_calls"
    client.close()


def test_usage_is_reported_when_the_stream_asks(gateway_url: str) -> None:
    """stream_options.include_usage: a last chunk with the upstream's counts."""
    client = openai.OpenAI(base_url=gateway_url + "/v1", api_key="unused")
    stream = client.chat.completions.create(
        model="openai/gpt-4o-mini",
        messages=[{"role": "user", "content": "hello"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    usages = [chunk.usage for chunk in stream if chunk.usage is not None]
    assert len(usages) == 1 and usages[0].total_tokens > 0
    models = [model.id for model in client.models.list()]
    assert models[:2] == ["cromicle", "cromicle/gpt-3.5-turbo"]
    assert "fast" in models and "openai" in models
    client.close()


def test_a_refused_parameter_is_an_sdk_bad_request(gateway_url: str) -> None:
    """A parameter the route's provider does not take: the SDK raises
    BadRequestError with the gateway's message, as OpenAI would make it.
    """
    client = openai.OpenAI(
        base_url=gateway_url + "/v1", api_key="unused", max_retries=0
    )
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="cromicle",
            messages=[{"role": "user", "content": "hi"}],
            tools=[{"type": "function", "function": {"name": "f"}}],
        )
    assert "tools" in str(caught.value)
    client.close()
