"""Error replies and broken connections become our errors, with their data."""

from __future__ import annotations

import pickle
import socket
from typing import Any

import pytest
import requests
import responses

import chatproviders
from chatproviders import (
    Acytoo,
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ChatProvidersError,
    Cromicle,
    GPROChat,
    IncompleteStreamError,
    InternalServerError,
    RateLimitError,
    ResponseFormatError,
)
from chatproviders import exceptions as exc_module
from tests.constants import BASE, HI


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, AuthenticationError),
        (404, BadRequestError),
        (408, APIStatusError),
        (409, APIStatusError),
        (422, BadRequestError),
        (429, RateLimitError),
        (500, InternalServerError),
        (502, InternalServerError),
        (503, InternalServerError),
        (504, InternalServerError),
    ],
)
@responses.activate
def test_status_codes_map_to_error_classes(
    status: int, cls: type[APIStatusError]
) -> None:
    """Each error status raises its class from stream(), before any chunk."""
    responses.post(f"{BASE}/chat", status=status, body='{"detail": "nope"}')
    with pytest.raises(APIStatusError) as caught:
        Cromicle(base_url=BASE).stream(HI)
    error = caught.value
    assert type(error) is cls
    assert error.status_code == status
    assert error.provider == "Cromicle"
    assert error.host == "127.0.0.1:9"
    assert error.body == '{"detail": "nope"}'
    assert str(error).startswith(f"Cromicle at 127.0.0.1:9: answered {status}")
    assert "nope" in str(error)


@responses.activate
@pytest.mark.parametrize(
    ("headers", "body", "retry_after"),
    [
        ({"Retry-After": "7"}, "", 7.0),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, "", 0.0),
        ({}, "Rate limit reached, please try again in 20s.", 20.0),
        ({}, "Too many requests", None),
    ],
)
def test_rate_limit_carries_retry_after(
    headers: dict[str, str], body: str, retry_after: Any
) -> None:
    """429 sets retry_after from the header (seconds or date) or the body."""
    responses.post(f"{BASE}/api/completions", status=429, headers=headers, body=body)
    with pytest.raises(RateLimitError) as caught:
        Acytoo(base_url=BASE).complete(HI)
    assert caught.value.retry_after == retry_after


@responses.activate
def test_gprochat_quota_exceeded_is_a_rate_limit() -> None:
    """GPROChat's 500 'Quota exceeded' is a RateLimitError, other 500s are not."""
    responses.post(
        f"{BASE}/api/generate",
        status=500,
        json={"error": {"message": "Quota exceeded for quota metric"}},
    )
    with pytest.raises(RateLimitError) as caught:
        GPROChat(base_url=BASE).complete(HI)
    assert caught.value.status_code == 500
    assert "Quota exceeded" in str(caught.value)
    responses.replace(
        responses.POST, f"{BASE}/api/generate", status=500, json={"error": {"code": 13}}
    )
    with pytest.raises(InternalServerError):
        GPROChat(base_url=BASE).complete(HI)


@responses.activate
@pytest.mark.parametrize("status", [200, 403, 503])
def test_an_html_content_type_alone_is_enough(status: int) -> None:
    """A page that does not start like HTML is still refused by its type."""
    responses.post(f"{BASE}/chat", status=status, body="Access denied",
                   content_type="text/html; charset=utf-8")  # fmt: skip
    with pytest.raises(APIError, match="HTML page"):
        Cromicle(base_url=BASE).complete(HI)


@responses.activate
@pytest.mark.parametrize("status", [200, 403, 503])
def test_html_pages_are_named_as_such(status: int) -> None:
    """An HTML page (bot wall, error page) is an error saying so, with its title."""
    page = "<!DOCTYPE html><html><head><title>Just a moment...</title></head></html>"
    responses.post(f"{BASE}/chat", status=status, body=page, content_type="text/html")
    with pytest.raises(APIError, match="HTML page") as caught:
        Cromicle(base_url=BASE).complete(HI)
    if status == 200:
        assert type(caught.value) is ResponseFormatError
    else:
        assert caught.value.status_code == status  # type: ignore[attr-defined]
        assert "'Just a moment...'" in str(caught.value)


def test_connection_refused_is_an_api_connection_error() -> None:
    """Nothing listening: APIConnectionError from the requests error, no raw one."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(APIConnectionError) as caught:
        Cromicle(base_url=f"http://127.0.0.1:{port}").complete(HI)
    assert type(caught.value) is APIConnectionError
    assert isinstance(caught.value.__cause__, requests.ConnectionError)
    assert str(caught.value) == (
        f"Cromicle at 127.0.0.1:{port}: connection failed "
        "(ConnectionRefusedError: [Errno 111] Connection refused)"
    )
    assert caught.value.host == f"127.0.0.1:{port}"


@responses.activate
@pytest.mark.parametrize(
    ("raised", "cls", "limit"),
    [
        (requests.ConnectTimeout("slow"), APITimeoutError, "connect"),
        (requests.ReadTimeout("slow"), APITimeoutError, "read"),
        (requests.exceptions.ProxyError("bad proxy"), APIConnectionError, None),
        (requests.exceptions.SSLError("bad cert"), APIConnectionError, None),
        (requests.exceptions.ChunkedEncodingError("bad"), APIConnectionError, None),
    ],
)
def test_requests_exceptions_never_reach_the_caller(
    raised: Exception, cls: type[APIError], limit: Any
) -> None:
    """Every requests exception is translated, chained with ``from``."""
    responses.post(f"{BASE}/chat", body=raised)
    with pytest.raises(APIError) as caught:
        Cromicle(base_url=BASE).complete(HI)
    assert type(caught.value) is cls
    assert caught.value.__cause__ is raised
    assert getattr(caught.value, "limit", None) == limit


ALL_ERRORS = [
    APIStatusError("answered 500", status_code=500, body="x", retry_after=1.0),
    RateLimitError("answered 429", status_code=429, retry_after=3.0),
    APITimeoutError("read timeout", limit="read", partial_text="abc"),
    IncompleteStreamError("cut", partial_text="par"),
    ResponseFormatError("bad", body="<html>"),
    chatproviders.ModelNotSupportedError("no", model="m", supported=("a",)),
    chatproviders.ProviderNotFoundError("no", name="x", known=("A", "B")),
    chatproviders.InvalidMessagesError("empty"),
    chatproviders.UnsupportedParameterError("top_p"),
    chatproviders.ProviderNotWorkingError("offline"),
]


@pytest.mark.parametrize("error", ALL_ERRORS, ids=lambda e: type(e).__name__)
def test_errors_survive_a_pickle_round_trip(error: ChatProvidersError) -> None:
    """Every error class pickles with its data and its provider and host."""
    error.provider, error.host = "Cromicle", "127.0.0.1:9"
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert copy.__dict__ == error.__dict__
    assert str(copy) == str(error)


def test_every_error_is_in_the_tree_and_exported() -> None:
    """Each exception class is drawn in the module docstring and exported."""
    classes = [
        obj
        for obj in vars(exc_module).values()
        if isinstance(obj, type) and issubclass(obj, ChatProvidersError)
    ]
    assert {cls.__name__ for cls in classes} == set(exc_module.__all__) - {"Attempt"}
    for cls in classes:
        assert cls.__name__ in (exc_module.__doc__ or "")
        assert getattr(chatproviders, cls.__name__) is cls


def test_public_all_is_sorted_and_complete() -> None:
    """chatproviders.__all__ is sorted and names every public attribute."""
    names = chatproviders.__all__

    def isort_order(name: str) -> tuple[int, str]:
        kind = 0 if name.isupper() else 1 if name[0].isupper() else 2
        return kind, name

    assert names == sorted(names, key=isort_order)
    lazy = set(chatproviders._LAZY)  # imported on first use: batch, check
    assert all(getattr(chatproviders, name) is not None for name in lazy)
    public = {
        name
        for name, value in vars(chatproviders).items()
        if not name.startswith("_") and not isinstance(value, type(chatproviders))
    }
    ignored = {"annotations", "logging", "TYPE_CHECKING", "Any"}
    assert (public | lazy) - ignored == set(names) - {"__version__"}


@responses.activate
def test_an_error_body_nested_too_deep_is_still_a_status_error() -> None:
    """JSON past the recursion limit in an error body is read as plain text."""
    responses.post(f"{BASE}/chat", status=400, body="[" * 100_000)
    with pytest.raises(BadRequestError) as caught:
        Cromicle(base_url=BASE).complete(HI)
    assert caught.value.body.startswith("[[[")


def test_batch_and_health_are_imported_on_first_use() -> None:
    """import chatproviders does not load the batch and health modules; the
    first use of their names does, and an unknown name is an AttributeError."""
    import subprocess
    import sys

    code = (
        "import sys, chatproviders\n"
        "print(sorted(m for m in ('chatproviders._batch.run',"
        " 'chatproviders._health.check')"
        " if m in sys.modules))\n"
        "chatproviders.batch, chatproviders.check\n"
        "print(sorted(m for m in ('chatproviders._batch.run',"
        " 'chatproviders._health.check')"
        " if m in sys.modules))\n"
        "try:\n    chatproviders.nothing_here\n"
        "except AttributeError as e:\n    print(e)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert done.stdout.splitlines() == [
        "[]",
        "['chatproviders._batch.run', 'chatproviders._health.check']",
        "module 'chatproviders' has no attribute 'nothing_here'",
    ]
