"""The gpt4free-style facade: ChatCompletion, get_provider, list_providers."""

from __future__ import annotations

import pytest
import responses

import chatproviders
from chatproviders import (
    ChatCompletion,
    Cromicle,
    GPROChat,
    ProviderNotFoundError,
    ProviderNotWorkingError,
)
from tests.constants import BASE, HI


def test_list_providers_names_every_registered_provider_sorted() -> None:
    """list_providers returns the registered classes, built-in ones among them,
    sorted by name."""
    names = [cls.__name__ for cls in chatproviders.list_providers()]
    builtin = {"Acytoo", "CodeLinkAva", "Cromicle", "GPROChat", "OpenAICompatible"}
    assert builtin <= set(names)
    assert names == sorted(names, key=str.lower)


@pytest.mark.parametrize("name", ["cromicle", "CROMICLE", " Cromicle ", Cromicle])
def test_get_provider_ignores_case(name: object) -> None:
    """get_provider finds a provider by any spelling of its name, or the class."""
    assert chatproviders.get_provider(name) is Cromicle  # type: ignore[arg-type]


def test_unknown_provider_lists_the_known_ones() -> None:
    """An unknown name raises ProviderNotFoundError listing every known name."""
    with pytest.raises(ProviderNotFoundError) as caught:
        chatproviders.get_provider("bard")
    known = tuple(cls.__name__ for cls in chatproviders.list_providers())
    assert caught.value.known == known
    assert ", ".join(known) in str(caught.value)
    assert isinstance(caught.value, LookupError)


@pytest.mark.parametrize(
    ("name", "message"),
    [(chatproviders.Provider, "no provider called"), (Cromicle(), "not a client")],
)
def test_get_provider_refuses_the_base_class_and_clients(
    name: object, message: str
) -> None:
    """The abstract base is no provider; a client instance gets a hint."""
    with pytest.raises(ProviderNotFoundError, match=message):
        chatproviders.get_provider(name)  # type: ignore[arg-type]


@pytest.mark.parametrize("ignored", ["Acytoo", [None]])
def test_facade_refuses_ignored_that_is_not_a_list_of_names(ignored: object) -> None:
    """ignored="Acytoo" would be read as letters and skip nothing."""
    with pytest.raises(TypeError, match="ignored"):
        chatproviders.ChatCompletion.create(
            model=None,
            messages=HI,
            ignored=ignored,  # type: ignore[arg-type]
        )


@responses.activate
def test_facade_refuses_providers_marked_not_working() -> None:
    """Without ignore_working, a working=False provider is refused before any I/O."""
    with pytest.raises(ProviderNotWorkingError, match="ignore_working=True"):
        ChatCompletion.create(model="gpt-3.5-turbo", messages=HI, provider="Cromicle")
    assert len(responses.calls) == 0


@responses.activate
def test_facade_returns_text_or_chunks() -> None:
    """stream=False gives a str, stream=True an iterator of str pieces."""
    responses.post(f"{BASE}/chat", body="Hello there")
    text = ChatCompletion.create(
        model="gpt-3.5-turbo",
        messages=HI,
        provider=Cromicle,
        ignore_working=True,
        base_url=BASE,
        timeout=3,
    )
    assert text == "Hello there"
    chunks = ChatCompletion.create(
        model="",
        messages=HI,
        provider="cromicle",
        stream=True,
        ignore_working=True,
        base_url=BASE,
    )
    assert not isinstance(chunks, str)
    assert "".join(chunks) == "Hello there"


@responses.activate
def test_facade_picks_a_provider_for_the_model() -> None:
    """Without a provider, the first one serving the model answers."""
    responses.post(f"{BASE}/api/generate", body="from gemini")
    text = ChatCompletion.create(
        model="gemini-pro", messages=HI, ignore_working=True, base_url=BASE
    )
    assert text == "from gemini"
    assert responses.calls[0].request.url == f"{BASE}/api/generate"


@responses.activate  # were a check to slip, nothing would leave the machine
def test_facade_without_a_serving_provider_says_so() -> None:
    """No provider serves the model: ProviderNotFoundError; all offline: NotWorking."""
    with pytest.raises(ProviderNotFoundError, match="claude"):
        ChatCompletion.create(model="claude", messages=HI, ignore_working=True)
    with pytest.raises(ProviderNotWorkingError, match="Acytoo"):
        ChatCompletion.create(model="gpt-3.5-turbo", messages=HI)
    with pytest.raises(ProviderNotWorkingError, match="every provider is marked"):
        ChatCompletion.create(model=None, messages=HI)
    assert len(responses.calls) == 0


@responses.activate
def test_create_completion_checks_arguments_before_sending() -> None:
    """create_completion raises on bad input at once, and sends only when iterated."""
    with pytest.raises(chatproviders.InvalidMessagesError):
        GPROChat.create_completion("gemini-pro", [], base_url=BASE)
    responses.post(f"{BASE}/api/generate", body="lazy")
    chunks = GPROChat.create_completion("gemini-pro", HI, base_url=BASE, stream=False)
    assert len(responses.calls) == 0
    assert list(chunks) == ["lazy"]
