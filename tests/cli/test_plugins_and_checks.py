"""The command line as a new user meets it: plugins are not "offline",
`list -v` reads right, `check` and `list --check` take `--base-url`, and
`emulate openai --models` serves the models a README example asks for."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from chatproviders import (
    Acytoo,
    ChatCompletion,
    CodeLinkAva,
    Cromicle,
    GPROChat,
    OpenAICompatible,
    Provider,
    ProviderNotWorkingError,
    _registry,
    register_provider,
)
from chatproviders._cli import emulate
from chatproviders.cli import main
from chatproviders.testing import serve

SEEDS = [Acytoo, CodeLinkAva, Cromicle, GPROChat]
HI = [{"role": "user", "content": "Hi"}]


class HousePlugin(Provider):
    """A plugin as its author writes it: no ``working`` of its own."""

    url = "http://127.0.0.1:9"
    path = "/chat"
    default_model = "house"
    parameters = {"temperature": 0.2, "stream": True}

    def payload(self, messages: Any, model: str, **params: Any) -> dict[str, Any]:
        return {"messages": messages}


class RetiredPlugin(HousePlugin):
    """A plugin whose author marked it not working."""

    working = False


@pytest.fixture
def plugins() -> Iterator[None]:
    """HousePlugin and RetiredPlugin registered for one test."""
    saved = dict(_registry._registered), dict(_registry._aliases)
    register_provider(HousePlugin)
    register_provider(RetiredPlugin)
    try:
        yield
    finally:
        for table, old in zip((_registry._registered, _registry._aliases), saved):
            table.clear()
            table.update(old)  # type: ignore[attr-defined]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def seeds_down(monkeypatch: pytest.MonkeyPatch) -> None:
    """The seed classes' default URLs point at a closed loopback port."""
    closed = closed_port_url()
    for cls in SEEDS:
        monkeypatch.setattr(cls, "url", closed)
        monkeypatch.setattr(cls, "api_endpoint", None, raising=False)


# -- working -----------------------------------------------------------------


def test_a_plugin_is_working_unless_it_says_otherwise() -> None:
    """working defaults to true; the four seeds, whose services are gone,
    say false themselves."""
    assert HousePlugin.working is True
    assert OpenAICompatible.working is True
    assert [cls.working for cls in SEEDS] == [False] * 4


def test_the_facade_speaks_of_a_dead_service_only_for_the_seeds() -> None:
    """ProviderNotWorkingError says "public service is offline" for a seed;
    for a plugin that set working = False, only that it is marked so."""
    with pytest.raises(ProviderNotWorkingError, match="offline"):
        ChatCompletion.create("gpt-3.5-turbo", HI, provider=Cromicle)
    with pytest.raises(ProviderNotWorkingError) as caught:
        ChatCompletion.create("house", HI, provider=RetiredPlugin)
    assert "offline" not in str(caught.value)
    assert "working = False" in str(caught.value)


def test_chat_without_base_url_speaks_of_a_dead_service_only_for_seeds(
    plugins: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """`chat -p NAME` without --base-url: a seed's service is offline; a
    plugin marked not working is not said to be."""
    status, _, err = run(capsys, "chat", "-p", "cromicle", "Hi")
    assert status == 2 and "public service is offline" in err
    status, _, err = run(capsys, "chat", "-p", "retiredplugin", "Hi")
    assert status == 2 and "offline" not in err
    assert "marked as not working" in err


# -- list -v -----------------------------------------------------------------


def test_list_verbose_names_each_parameter_once_and_the_real_module(
    plugins: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """`list -v`: OpenAICompatible's stream appears once; a plugin is shown
    under its own module, not as chatproviders.X."""
    status, out, _ = run(capsys, "list", "-v")
    assert status == 0
    lines = {line.split(" supports: ")[0]: line for line in out.splitlines()}

    def count(word: str, line: str) -> int:
        return len(re.findall(rf"\b{word}\b", line))

    openai = lines["chatproviders.OpenAICompatible"]
    assert count("stream", openai) == 1
    mine = lines[f"{__name__}.HousePlugin"]
    assert count("stream", mine) == count("temperature", mine) == 1
    assert "working" in out.splitlines()[0]
    row = next(line for line in out.splitlines() if line.startswith("HousePlugin "))
    assert row.split()[1] == "yes"


# -- check and list --check with --base-url ----------------------------------


def test_check_with_base_url_and_no_names_checks_exactly_those(
    seeds_down: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """`check --base-url cromicle=URL` probes Cromicle there and nothing
    else; help says so."""
    with serve("cromicle", text="OK") as server:
        status, out, _ = run(
            capsys, "check", "--base-url", f"cromicle={server.url}", "--json"
        )
    assert status == 0
    assert [(r["provider"], r["status"]) for r in json.loads(out)] == [
        ("Cromicle", "ok")
    ]
    status, out, _ = run(capsys, "check", "--help")
    help_text = " ".join(out.split())
    assert (
        "Without NAMES: the providers given with --base-url; with neither, "
        "every provider that has a default URL." in help_text
    )


def test_list_check_takes_base_url(
    seeds_down: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """`list --check --base-url cromicle=URL` measures Cromicle there (ok)
    and the others at their default URLs; exit 0."""
    with serve("cromicle", text="OK") as server:
        status, out, _ = run(
            capsys, "list", "--check", "--base-url", f"cromicle={server.url}"
        )
    assert status == 0
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:]}
    assert rows["Cromicle"][2] == "ok"
    assert rows["Acytoo"][2] == "down"


def test_list_check_exits_1_when_nothing_is_ok(
    seeds_down: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """As check does: nothing ok, exit status 1 (the table still prints)."""
    status, out, _ = run(capsys, "list", "--check")
    assert status == 1
    assert "Cromicle" in out and "ok" not in out.split()


# -- emulate openai --models --------------------------------------------------


def test_emulate_openai_serves_the_models_given(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`emulate openai --models llama3.2,qwen3` lists those models and
    answers a chat for one of them; the "try:" line names the first."""
    seen: dict[str, Any] = {}

    def use_then_interrupt() -> None:
        out = capsys.readouterr().out
        url = re.search(r"on (http://\S+)", out)
        assert url is not None
        seen["try"] = out.splitlines()[-1]
        with OpenAICompatible(url.group(1)) as client:
            seen["models"] = client.list_models()
            seen["text"] = client.complete(HI, model="qwen3").text
        raise KeyboardInterrupt

    monkeypatch.setattr(emulate, "wait_for_interrupt", use_then_interrupt)
    status, _, err = run(
        capsys, "emulate", "openai", "--models", "llama3.2,qwen3", "--text", "hey"
    )
    assert (status, err) == (0, "stopped\n")
    assert seen["models"] == ["llama3.2", "qwen3"]
    assert seen["text"] == "hey"
    assert "-m llama3.2" in seen["try"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["emulate", "cromicle", "--models", "a"], "openai emulator only"),
        (["emulate", "openai", "--models", ","], "--models"),
    ],
)
def test_emulate_models_usage_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """--models for another emulator, or with no name in it: exit 2, named."""
    status, _, err = run(capsys, *argv)
    assert status == 2 and message in err
