"""The registry and plugins: the docs' "Write a provider" example, run as written,
installed as a real plugin (an entry point that importlib.metadata finds)."""

from __future__ import annotations

import configparser
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import chatproviders
from chatproviders import (
    ChatCompletion,
    Cromicle,
    OpenAICompatible,
    Provider,
    ProviderNotFoundError,
    _registry,
    get_provider,
    list_providers,
    register_provider,
)
from chatproviders.testing import serve
from tests.constants import HI, ROOT
from tests.plugins import install_plugin

PAGE = ROOT / "docs" / "howto" / "provider.rst"


def page_block(first_line: str) -> str:
    """The page's code block whose first line is ``first_line``."""
    text = PAGE.read_text(encoding="utf-8")
    for match in re.finditer(r"\.\. code-block:: \w+\n\n((?:    .*\n|\n)+)", text):
        block = textwrap.dedent(match.group(1))
        if block.startswith(first_line + "\n"):
            return block
    raise AssertionError(f"the page has no code block starting {first_line!r}")


@pytest.fixture
def clean_registry() -> Iterator[None]:
    """Whatever a test registers is gone after it; plugins are looked up anew."""
    saved = (
        dict(_registry._registered),
        dict(_registry._aliases),
        dict(_registry._plugin_errors),
        _registry._plugins_loaded,
    )
    _registry._plugins_loaded = False
    try:
        yield
    finally:
        _registry._registered.clear()
        _registry._registered.update(saved[0])
        _registry._aliases.clear()
        _registry._aliases.update(saved[1])
        _registry._plugin_errors.clear()
        _registry._plugin_errors.update(saved[2])
        _registry._plugins_loaded = saved[3]


@pytest.fixture
def echo_site(tmp_path: Path) -> Path:
    """the page's echo provider, its test and its entry point, in a folder."""
    (tmp_path / "echo_provider.py").write_text(page_block("# echo_provider.py"))
    (tmp_path / "test_echo.py").write_text(page_block("# test_echo.py"))
    config = configparser.ConfigParser()
    config.read_string(page_block("# setup.cfg"))
    declared = config["options.entry_points"]["chatproviders.providers"]
    entry_points = dict(
        (part.strip() for part in line.split("=", 1))  # type: ignore[misc]
        for line in declared.strip().splitlines()
    )
    install_plugin(tmp_path, "echo_provider", entry_points)
    return tmp_path


def run(args: list[str], site: Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    # The tree under test, not whatever chatproviders the interpreter has installed.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=site,
        timeout=120,
        check=False,
        **kwargs,
    )


def test_docs_plugin_is_found_by_every_lookup(
    echo_site: Path, clean_registry: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page's plugin, installed by entry point, is found by get_provider,
    list_providers, serve() and the facade, and streams from its emulator."""
    monkeypatch.syspath_prepend(str(echo_site))
    echo = get_provider("ECHO")
    assert echo.__module__ == "echo_provider"
    assert echo in list_providers()
    with serve("echo", text="Hi there") as server:
        reply = ChatCompletion.create(
            None, HI, provider="echo", base_url=server.url, ignore_working=True
        )
        assert reply == "Hi there"
        with echo(base_url=server.url, max_retries=0) as client:
            server.queue_reply(body='{"delta": "cut"}\n')  # no {"done": true}
            with pytest.raises(chatproviders.IncompleteStreamError) as caught:
                client.complete(HI)
    assert caught.value.partial_text == "cut"
    assert caught.value.provider == "Echo"


@pytest.mark.slow
def test_docs_plugin_test_passes_with_the_fixture(echo_site: Path) -> None:
    """The page's test of the echo provider passes under pytest, using the
    emulator fixture of the installed pytest plugin."""
    done = run(
        ["-m", "pytest", "-q", "-p", "no:cacheprovider", "test_echo.py"], echo_site
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout


@pytest.mark.slow
def test_docs_plugin_in_the_command_line(echo_site: Path) -> None:
    """`chatproviders list` shows the plugin and `chat -p echo` talks to it."""
    listing = run(["-m", "chatproviders", "list"], echo_site)
    assert listing.returncode == 0, listing.stderr
    assert re.search(r"^Echo +yes ", listing.stdout, re.MULTILINE)  # working
    assert "Cromicle" in listing.stdout  # the others still list
    code = (
        "import sys; from chatproviders.testing import serve\n"
        "from chatproviders._cli import main\n"
        "with serve('echo', text='Hello, plugin') as s:\n"
        "    sys.exit(main(['chat', '-p', 'echo', '--base-url', s.url, 'Hi']))\n"
    )
    chat = run(["-c", code], echo_site)
    assert chat.returncode == 0, chat.stderr
    assert chat.stdout.strip() == "Hello, plugin"


def test_docs_plugin_is_checked_like_any_provider(echo_site: Path) -> None:
    """`chatproviders check echo --base-url echo=URL` probes the plugin."""
    code = (
        "import sys; from chatproviders.testing import serve\n"
        "from chatproviders._cli import main\n"
        "with serve('echo', text='OK') as s:\n"
        "    args = ['check', 'echo', '--base-url', f'echo={s.url}', '--json']\n"
        "    sys.exit(main(args))\n"
    )
    done = run(["-c", code], echo_site)
    assert done.returncode == 0, done.stderr
    (result,) = json.loads(done.stdout)
    assert (result["provider"], result["status"]) == ("Echo", "ok")


def test_a_broken_plugin_is_named_and_the_rest_work(tmp_path: Path) -> None:
    """A plugin whose module does not import is a warning in `list`, not a
    crash; lookups of other providers still work."""
    install_plugin(tmp_path, "broken_plugin", {"broken": "no_such_module:Broken"})
    listing = run(["-m", "chatproviders", "list"], tmp_path)
    assert listing.returncode == 0, listing.stderr
    assert "plugin 'broken' did not load" in listing.stderr
    assert "ModuleNotFoundError" in listing.stderr
    assert "Cromicle" in listing.stdout
    code = (
        "import chatproviders\n"
        "print(chatproviders.get_provider('cromicle').__name__)\n"
        "print(chatproviders._registry.plugin_errors())\n"
    )
    looked_up = run(["-c", code], tmp_path)
    assert looked_up.stdout.splitlines()[0] == "Cromicle", looked_up.stderr
    assert "broken" in looked_up.stdout


def test_plugins_load_on_first_lookup_not_at_import(tmp_path: Path) -> None:
    """import chatproviders reads no entry points; the first lookup does."""
    install_plugin(tmp_path, "counter_plugin", {"counter": "no_such_module:X"})
    code = (
        "import chatproviders, chatproviders._registry as r\n"
        "print(r._plugins_loaded)\n"
        "chatproviders.list_providers()\n"
        "print(r._plugins_loaded, sorted(r._plugin_errors))\n"
    )
    done = run(["-c", code], tmp_path)
    assert done.stdout.splitlines() == ["False", "True ['counter']"], done.stderr


def test_register_provider_as_a_decorator(clean_registry: None) -> None:
    """register_provider adds a class (any case finds it) and returns it."""

    @register_provider
    class Local(Cromicle):
        aliases = ("here",)

    assert get_provider("local") is Local
    assert get_provider("HERE") is Local
    assert Local in list_providers()
    assert register_provider(Local) is Local  # again: nothing changes


def test_register_provider_refuses_a_taken_name(clean_registry: None) -> None:
    """Another class under a registered name, or a non-provider, is refused."""

    class Cromicle(chatproviders.Cromicle):  # same name, another class
        pass

    with pytest.raises(ValueError, match="already registered"):
        register_provider(Cromicle)
    with pytest.raises(TypeError, match="Provider subclass"):
        register_provider(dict)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Provider subclass"):
        register_provider(Provider)


def test_openai_is_found_by_its_alias() -> None:
    """get_provider("openai") finds OpenAICompatible, as the CLI's -p openai does."""
    assert get_provider("openai") is OpenAICompatible
    with pytest.raises(ProviderNotFoundError):
        get_provider("openai2")


@pytest.mark.parametrize("missing", ["url", "path", "default_model"])
def test_a_provider_class_without_its_table_fails_at_definition(missing: str) -> None:
    """A concrete subclass lacking url, path or default_model is a TypeError
    naming the attribute, when its class statement runs."""
    table = {"url": "https://x.example", "path": "/chat", "default_model": "m"}
    del table[missing]
    with pytest.raises(TypeError, match=missing):
        type("Incomplete", (Provider,), dict(table))


def test_an_abstract_base_needs_no_table() -> None:
    """abstract=True declares a base for other providers, checked in its subclasses."""

    class Base(Provider, abstract=True):
        headers = {"accept": "*/*"}

    class Concrete(Base):
        url, path, default_model = "https://x.example", "/chat", "m"

    assert Concrete.headers == {"accept": "*/*"}
    with pytest.raises(TypeError, match="url"):
        type("Half", (Base,), {"path": "/p", "default_model": "m"})


def test_a_json_body_gets_a_content_type(clean_registry: None) -> None:
    """A provider that names no Content-Type sends JSON as application/json;
    one that names its own keeps it."""

    class Bare(Provider):
        url, path, default_model = "https://x.example", "/chat", "m"

        def payload(self, messages: Any, model: str, **params: Any) -> Any:
            return {"q": "x"}

    assert Bare().prepare(HI, None, {}).headers == {"Content-Type": "application/json"}
    gprochat = chatproviders.GPROChat().prepare(HI, None, {})
    assert gprochat.headers["content-type"] == "text/plain;charset=UTF-8"
    assert "Content-Type" not in gprochat.headers


@pytest.mark.parametrize(
    ("table", "named"),
    [
        ({"url": None}, "url = None"),
        ({"models": "m1"}, "models = 'm1'"),
        ({"models": None, "aliases": ("ok",)}, "models = None"),
        ({"aliases": ["a", 1]}, "aliases = ['a', 1]"),
    ],
    ids=["url None", "models a str", "models None", "an alias not a str"],
)
def test_a_provider_with_a_bad_table_is_refused_naming_it(
    clean_registry: None, table: dict[str, Any], named: str
) -> None:
    """A class whose url, models or aliases would break every listing is
    refused by register_provider, naming the attribute, its value and what
    it must be; nothing of it is registered."""
    attributes = {"url": "https://x.example", "path": "/chat", "default_model": "m"}
    cls = type("Odd", (Provider,), {**attributes, **table})
    with pytest.raises(TypeError) as caught:
        register_provider(cls)
    assert str(caught.value) == (
        f"Odd cannot be registered: {named} (url, path and default_model are "
        "str, models and aliases sequences of str)"
    )
    with pytest.raises(ProviderNotFoundError):
        get_provider("odd")


def test_register_provider_refuses_what_is_not_a_class(clean_registry: None) -> None:
    """An instance or a name is no provider class: a TypeError saying so."""
    for wrong in ("cromicle", Cromicle(base_url="http://127.0.0.1:9")):
        with pytest.raises(TypeError, match="takes a Provider subclass"):
            register_provider(wrong)  # type: ignore[arg-type]


class OldDistribution(importlib.metadata.PathDistribution):
    """A distribution as Python 3.9 finds it: no ``_normalized_name``, so
    its name comes from its metadata."""

    _normalized_name = None  # type: ignore[assignment]


class Nameless(importlib.metadata.Distribution):
    """A distribution of some other finder, without metadata or a path."""

    def read_text(self, filename: str) -> None:
        return None

    def locate_file(self, path: Any) -> Any:
        return path


def test_distributions_without_a_normalised_name_are_named_by_their_metadata(
    tmp_path: Path, clean_registry: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where importlib gives no normalised name (Python 3.9), the metadata's
    Name is used: a second copy of a distribution is skipped, and one whose
    metadata does not parse is named by its folder, or "unknown"."""
    first, second = tmp_path / "first", tmp_path / "second"
    install_plugin(first, "Echo_Plugin", {"one": "no_such_module:One"})
    install_plugin(second, "echo_plugin", {"two": "no_such_module:Two"})
    broken = tmp_path / "broken-1.0.dist-info"
    broken.mkdir()
    (broken / "METADATA").write_bytes(b"Name: \xff\n")  # no UTF-8: no parse
    found = [
        OldDistribution(first / "Echo_Plugin-1.0.dist-info"),
        OldDistribution(second / "echo_plugin-1.0.dist-info"),
        OldDistribution(broken),
        Nameless(),
    ]
    monkeypatch.setattr(importlib.metadata, "distributions", lambda: iter(found))
    assert [point.name for point in _registry._entry_points()] == ["one"]
    assert _registry._dist_name(found[0]) == "Echo_Plugin"
    assert _registry._dist_name(found[2]) == re.sub(r"[-_.]+", "_", str(broken))
    assert _registry._dist_name(found[3]) == "unknown"
