"""The argument types every command shares: each turns text into a value or
says, in argparse's words, why it cannot; numbers are checked as the library
checks them (:mod:`chatproviders._numbers`).
"""

from __future__ import annotations

import argparse
from typing import Any, Callable

from .._numbers import check_count, check_rate, check_seconds
from .._provider import Provider
from .._registry import get_provider
from ..exceptions import ProviderNotFoundError

__all__ = ["port", "positive", "provider", "provider_and_url", "rate", "seconds"]


def provider(name: str) -> type[Provider]:
    """A registered provider class, by name or alias."""
    try:
        return get_provider(name)
    except ProviderNotFoundError as exc:
        known = ", ".join([*exc.known, "openai"])
        raise argparse.ArgumentTypeError(f"{name!r} is not one of {known}") from None


def provider_and_url(text: str) -> tuple[type[Provider], str]:
    """``NAME=URL``: a provider class and the URL to reach it at."""
    name, equals, url = text.partition("=")
    if not equals or not url:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=URL")
    return provider(name), url


provider_and_url.__name__ = "NAME=URL"  # argparse names the type in its errors


def seconds(text: str) -> float:
    """A number of seconds, 0 included."""
    return float(_number(text, "a number of seconds", float, check_seconds, zero=True))


def positive(text: str) -> int:
    """A whole number from 1 up."""
    return int(_number(text, "a whole number >= 1", _digits, check_count, minimum=1))


def rate(text: str) -> float:
    """A number per second above 0."""
    return float(_number(text, "a number > 0", float, check_rate))


def port(text: str) -> int:
    """A TCP port number, 0 for a free one."""
    return int(_number(text, "a port number", _digits, check_count, maximum=65535))


def _digits(text: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise ValueError(text)
    return int(text)


def _number(
    text: str,
    what: str,
    convert: Callable[[str], Any],
    check: Callable[..., Any],
    **limits: Any,
) -> Any:
    """``text`` converted and checked by the library's own check of numbers."""
    try:
        return check(convert(text), what, **limits)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
