"""Code written for gpt4free's seed providers runs with one import line changed."""

from __future__ import annotations

import asyncio
import textwrap
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import responses

import chatproviders
from chatproviders import Acytoo, CodeLinkAva, Cromicle, GPROChat
from chatproviders.testing import EmulatorServer, serve
from tests.constants import HI
from tests.loopback import WAIT, Conn, LoopbackServer

# The seeds' examples (shared/seeds/001_*, 002_*, 004_*), as written there,
# with only the import line changed. They run against the emulators, reached by
# setting the class attribute ``url`` / ``api_endpoint`` as gpt4free users did.
SEED_001_CROMICLE = """
from chatproviders import Cromicle
import asyncio

async def main():
    messages = [{"role": "user", "content": "Hello, how are you?"}]

    async for message in Cromicle.create_async_generator(model="gpt-3.5-turbo", messages=messages):
        print(message, end="")

if __name__ == "__main__":
    asyncio.run(main())
"""

SEED_002_ACYTOO = """
import asyncio
from typing import List, Dict, AsyncGenerator, Any

from chatproviders import Acytoo

messages = [{"role": "user", "content": "Hello, Acytoo!"}]
async def main():
    async for response in Acytoo.create_async_generator(model="gpt-3.5-turbo", messages=messages):
        print(response, end="")

if __name__ == "__main__":
    asyncio.run(main())
"""

SEED_002_PAYLOAD = """
from chatproviders.providers.acytoo import _create_payload
messages = [{"role": "user", "content": "Hello, Acytoo!"}]
payload = _create_payload(messages=messages, temperature=0.7)
print(payload)
"""

SEED_004_CODELINKAVA = """
from chatproviders import CodeLinkAva
import asyncio
messages = [{"role": "user", "content": "Hello, how are you?"}]
async def main():
    generator = CodeLinkAva.create_async_generator(model="gpt-3.5-turbo", messages=messages)
    async for message in await generator:
        print(message)

# the seed leaves this line commented out; the test runs it
asyncio.run(main())
"""


@pytest.fixture
def emulator(request: pytest.FixtureRequest) -> Iterator[EmulatorServer]:
    with serve(request.param, chunks=["Hello", ", ", "world", "!"]) as server:
        yield server


def run_seed(code: str) -> None:
    exec(
        compile(textwrap.dedent(code), "<seed example>", "exec"),
        {"__name__": "__main__"},
    )


@pytest.mark.parametrize("emulator", ["cromicle"], indirect=True)
def test_seed_001_cromicle_example_runs(
    emulator: EmulatorServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Seed 001's asyncio example streams from the emulator, unchanged."""
    monkeypatch.setattr(Cromicle, "url", emulator.url)
    run_seed(SEED_001_CROMICLE)
    assert capsys.readouterr().out == "Hello, world!"
    assert emulator.requests[0].json["message"] == "Hello, how are you?"


@pytest.mark.parametrize("emulator", ["acytoo"], indirect=True)
def test_seed_002_acytoo_example_runs(
    emulator: EmulatorServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Seed 002's commented example, uncommented, streams from the emulator."""
    monkeypatch.setattr(Acytoo, "url", emulator.url)
    run_seed(SEED_002_ACYTOO)
    assert capsys.readouterr().out == "Hello, world!"
    assert emulator.requests[0].json["temperature"] == 0.5


def test_seed_002_payload_example_prints_what_it_says(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Seed 002's _create_payload example prints the documented dict."""
    run_seed(SEED_002_PAYLOAD)
    assert capsys.readouterr().out.strip() == (
        "{'key': '', 'model': 'gpt-3.5-turbo', 'messages': [{'role': 'user', "
        "'content': 'Hello, Acytoo!'}], 'temperature': 0.7, 'password': ''}"
    )


@pytest.mark.parametrize("emulator", ["codelinkava"], indirect=True)
def test_seed_004_codelinkava_example_runs(
    emulator: EmulatorServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Seed 004's example, which awaits the generator first, works too."""
    monkeypatch.setattr(CodeLinkAva, "api_endpoint", emulator.url + "/api/chat")
    run_seed(SEED_004_CODELINKAVA)
    assert capsys.readouterr().out == "Hello\n, \nworld\n!\n"


@pytest.mark.parametrize("emulator", ["gprochat"], indirect=True)
def test_class_attributes_redirect_every_entry_point(
    emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Setting GPROChat.api_endpoint redirects later calls without a base_url."""
    monkeypatch.setattr(GPROChat, "api_endpoint", emulator.url + "/api/generate")
    assert "".join(GPROChat.create_completion("gemini-pro", HI)) == "Hello, world!"
    text = chatproviders.ChatCompletion.create(
        model="gemini-pro", messages=HI, provider="GPROChat", ignore_working=True
    )
    assert text == "Hello, world!"
    assert GPROChat().complete(HI).text == "Hello, world!"
    assert len(emulator.requests) == 3


def test_async_generator_runs_inside_a_running_loop_without_blocking_it() -> None:
    """While a reply is awaited, other tasks on the loop keep running."""
    release = threading.Event()
    ticks: list[int] = []

    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.send_head(framing="chunked")
        conn.send(b"first")
        assert release.wait(WAIT), "the event loop was blocked"
        conn.send(b" second")
        conn.end()

    async def ticker() -> None:
        while len(ticks) < 3:
            ticks.append(len(ticks))
            await asyncio.sleep(0)
        release.set()  # the server goes on only once the loop has proven free

    async def main(url: str) -> list[str]:
        tick = asyncio.ensure_future(ticker())
        chunks = [
            chunk
            async for chunk in Cromicle.create_async_generator(
                "gpt-3.5-turbo", HI, base_url=url
            )
        ]
        await tick
        return chunks

    with LoopbackServer(handler) as server:
        chunks = asyncio.run(main(server.url))
    assert "".join(chunks) == "first second"
    assert ticks == [0, 1, 2]


def hold_open(closed: threading.Event) -> Any:
    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.send_head(framing="chunked")
        conn.send(b"one")
        if conn.wait_closed_by_client():
            closed.set()

    return handler


@pytest.mark.parametrize("how", ["break", "aclose", "cancel"])
def test_stopping_the_async_generator_closes_the_connection(how: str) -> None:
    """break, aclose() and task cancellation hang up at once."""
    closed = threading.Event()

    async def consume(url: str) -> None:
        reply = Acytoo.create_async_generator("gpt-3.5-turbo", HI, base_url=url)
        if how == "break":
            async for _ in reply:
                break
            del reply
        elif how == "aclose":
            assert await reply.__anext__() == "one"
            await reply.aclose()
        else:
            got_one = asyncio.Event()

            async def read_all() -> None:
                async for _ in reply:
                    got_one.set()

            task = asyncio.ensure_future(read_all())
            await got_one.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        assert await asyncio.get_running_loop().run_in_executor(None, closed.wait, WAIT)

    with LoopbackServer(hold_open(closed)) as server:
        asyncio.run(consume(server.url))
    assert closed.is_set()


def test_async_generator_checks_arguments_at_once() -> None:
    """Bad messages raise from the call itself, before any thread or request."""
    before = threading.active_count()
    with pytest.raises(chatproviders.InvalidMessagesError):
        Cromicle.create_async_generator("gpt-3.5-turbo", [])
    with pytest.raises(chatproviders.UnsupportedParameterError):
        Cromicle.create_async_generator("gpt-3.5-turbo", HI, top_k=3)
    assert threading.active_count() == before


def test_async_generator_errors_are_ours() -> None:
    """A refused request surfaces as our error class inside async for."""

    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.respond(401, b'{"error": {"message": "Invalid signature"}}')

    async def main(url: str) -> None:
        async for _ in GPROChat.create_async_generator("gemini-pro", HI, base_url=url):
            pass

    with LoopbackServer(handler) as server:
        with pytest.raises(
            chatproviders.AuthenticationError, match="Invalid signature"
        ):
            asyncio.run(main(server.url))


@responses.activate
def test_g4f_proxy_environment_variable_is_honoured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ChatCompletion.create takes its proxy from G4F_PROXY, as gpt4free did."""
    monkeypatch.setenv("G4F_PROXY", "http://127.0.0.1:3128")
    responses.post("http://127.0.0.1:9/chat", body="ok")
    chatproviders.ChatCompletion.create(
        model="",
        messages=HI,
        provider=Cromicle,
        ignore_working=True,
        base_url="http://127.0.0.1:9",
    )
    proxies = responses.calls[0].request.req_kwargs["proxies"]
    assert proxies["http"] == proxies["https"] == "http://127.0.0.1:3128"


@responses.activate
def test_ignored_providers_are_skipped() -> None:
    """ignored=[names] leaves those providers out of the automatic choice."""
    responses.post("http://127.0.0.1:9/api/chat", body=b"data: [DONE]\n\n")
    chatproviders.ChatCompletion.create(
        model="gpt-3.5-turbo",
        messages=HI,
        ignore_working=True,
        ignored=["Acytoo"],
        base_url="http://127.0.0.1:9",
    )
    assert responses.calls[0].request.url == "http://127.0.0.1:9/api/chat"


@responses.activate
def test_gpt4free_keywords_are_accepted_by_the_class_entry_points() -> None:
    """ignore_working, ignored and stream never reach the body or raise."""
    responses.post("http://127.0.0.1:9/chat", body="ok")
    chunks = Cromicle.create_completion(
        "gpt-3.5-turbo",
        HI,
        stream=False,
        ignore_working=True,
        ignored=["Acytoo"],
        base_url="http://127.0.0.1:9",
    )
    assert list(chunks) == ["ok"]
    body = responses.calls[0].request.body
    assert b"ignore" not in body


@pytest.mark.parametrize(
    ("cls", "expected"),
    [
        (
            Acytoo,
            "chatproviders.Acytoo supports: (model: str, messages: list[dict[str, "
            "str]], stream: bool = True, proxy: str = None, timeout: float = None, "
            "temperature: float = 0.5)",
        ),
        (
            Cromicle,
            "chatproviders.Cromicle supports: (model: str, messages: list[dict[str, "
            "str]], stream: bool = True, proxy: str = None, timeout: float = None)",
        ),
    ],
)
def test_params_describes_the_arguments(cls: type[Any], expected: str) -> None:
    """Each provider's params names what it accepts and the defaults."""
    assert cls.params == expected
    assert cls().params == expected


def test_a_bad_g4f_proxy_names_the_environment_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The caller passed no proxy: the error says where the bad one came from."""
    monkeypatch.setenv("G4F_PROXY", "garbage")
    with pytest.raises(ValueError, match="G4F_PROXY in the environment"):
        chatproviders.ChatCompletion.create(
            model="", messages=HI, provider=Cromicle, ignore_working=True
        )


@responses.activate
def test_client_keywords_configure_the_client_not_the_body() -> None:
    """session, headers, timeout and max_retries passed to an entry point make
    the client (the session is the one used), and none reaches the body."""
    import requests

    responses.post("http://127.0.0.1:9/chat", body="ok")
    session = requests.Session()
    session.headers["X-Session"] = "mine"
    chunks = Cromicle.create_completion(
        "gpt-3.5-turbo",
        HI,
        stream=False,
        base_url="http://127.0.0.1:9",
        session=session,
        headers={"X-Extra": "1"},
        timeout=5,
        max_retries=0,
        total_timeout=10,
    )
    assert list(chunks) == ["ok"]
    request = responses.calls[0].request
    assert (request.headers["X-Session"], request.headers["X-Extra"]) == ("mine", "1")
    body = request.body
    assert not any(
        name in body for name in (b"session", b"headers", b"timeout", b"retries")
    )
