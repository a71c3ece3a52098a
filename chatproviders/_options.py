"""A client's options: checked once, when the client is made, and kept in one value.

Everything a client is told about where and how to send (``base_url``,
``proxy``, ``timeout``, ``headers``, ``max_retries``, ``total_timeout``) is
checked here, so a mistake is a ``ValueError`` or ``TypeError`` at
construction, naming the option, never a retried "connection failed" later.
Nothing here does I/O.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Optional, Union
from urllib.parse import unquote, urlsplit

import requests
import urllib3.util

from ._constants import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT, MAX_TIMEOUT
from ._numbers import check_count, check_seconds

__all__ = [
    "Options",
    "Proxy",
    "Timeout",
    "check_headers",
    "check_timeout",
    "host_of",
    "redact",
    "without_credentials",
]

Timeout = Union[float, tuple[float, float]]
Proxy = Union[str, Mapping[str, str]]

PROXY_SCHEMES = frozenset({"http", "https", "socks4", "socks4a", "socks5", "socks5h"})


@dataclass(frozen=True)
class Options:
    """The checked options of one client; make it with :meth:`check`."""

    base_url: Optional[str] = field(default=None, repr=False)  # may hold a password
    proxies: Optional[dict[str, str]] = field(default=None, repr=False)
    timeout: Timeout = DEFAULT_TIMEOUT
    headers: dict[str, str] = field(default_factory=dict, repr=False)  # may hold keys
    max_retries: int = DEFAULT_MAX_RETRIES
    total_timeout: Optional[float] = None

    @classmethod
    def check(
        cls,
        base_url: Optional[str] = None,
        *,
        proxy: Optional[Proxy] = None,
        timeout: Optional[Timeout] = None,
        headers: Optional[Mapping[str, str]] = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        total_timeout: Optional[float] = None,
    ) -> Options:
        """Check every option and return them as one value."""
        return cls(
            base_url=check_base_url(base_url),
            proxies=check_proxy(proxy),
            timeout=DEFAULT_TIMEOUT if timeout is None else check_timeout(timeout),
            headers=check_headers(headers),
            max_retries=check_count(max_retries, "max_retries"),
            total_timeout=(
                None
                if total_timeout is None
                else float(check_seconds(total_timeout, "total_timeout"))
            ),
        )

    @property
    def read_timeout(self) -> float:
        """Seconds allowed between two reads of a body."""
        return self.timeout[1] if isinstance(self.timeout, tuple) else self.timeout


def check_base_url(base_url: Optional[str]) -> Optional[str]:
    """``base_url`` without a trailing ``/``, if it is an http(s) URL we can send to."""
    if base_url is None:
        return None
    if not isinstance(base_url, str):
        raise TypeError(f"base_url must be a str, got {type(base_url).__name__}")
    # a query can carry a key (``?key=...``): errors show only where it starts
    shown = re.sub(r"([?#]).*", r"\1...", redact(base_url), flags=re.S)
    try:
        parts = urlsplit(base_url)
        parts.port  # noqa: B018 (raises for a port out of range or not a number)
        requests.PreparedRequest().prepare_url(base_url, None)  # requests' checks
    except ValueError:  # requests' InvalidURL is a ValueError too; its text may
        # quote the password, so it is not repeated here
        raise ValueError(f"base_url is not a valid URL: {shown!r}") from None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(
            f"base_url must be an http:// or https:// URL with a host, got {shown!r}"
        )
    # urlsplit drops tabs and line breaks, and older urllib3s let the rest pass
    if not base_url.isprintable() or " " in parts.netloc:
        raise ValueError(f"base_url has a space or control character: {shown!r}")
    if "?" in base_url or "#" in base_url:  # also an empty query or fragment
        raise ValueError(f"base_url must not have a query or fragment: {shown!r}")
    return base_url.rstrip("/")


def check_timeout(timeout: Any) -> Timeout:
    """``timeout`` if it is a positive number of seconds, or a (connect, read)
    pair of them.
    """
    if not isinstance(timeout, tuple):
        return check_seconds(timeout, "timeout")
    try:
        if len(timeout) == 2:
            for value in timeout:
                check_seconds(value, "timeout")
            return timeout
    except ValueError:
        pass
    raise ValueError(
        "timeout must be a positive number of seconds up to "
        f"{MAX_TIMEOUT:g} or a (connect, read) pair of them, got {timeout!r}"
    )


def check_headers(headers: Optional[Mapping[str, str]]) -> dict[str, str]:
    """``headers`` as a dict, each one sendable as it is; the values are never
    quoted in the error, since they may hold a key.
    """
    if headers is not None and not isinstance(headers, Mapping):
        raise TypeError(
            f"headers must be a mapping of str to str, got {type(headers).__name__}"
        )
    checked = dict(headers or {})
    for name, value in checked.items():
        try:
            requests.utils.check_header_validity((name, value))
            value.encode("latin-1")
        except (ValueError, TypeError, AttributeError):
            raise ValueError(
                f"header {name!r} cannot be sent: names and values must be str "
                "of Latin-1 characters, without line breaks or surrounding spaces"
            ) from None
    return checked


def check_proxy(proxy: Optional[Proxy]) -> Optional[dict[str, str]]:
    """``proxy`` as requests' ``proxies`` dict, each URL one we can use."""
    if proxy is None:
        return None
    if isinstance(proxy, Mapping):
        proxies = dict(proxy)
    elif isinstance(proxy, str) and "://" in proxy:
        proxies = {"http": proxy, "https": proxy}
    else:
        shown = redact(proxy) if isinstance(proxy, str) else proxy
        raise ValueError(
            "proxy must be a URL such as 'http://127.0.0.1:3128' or a dict, "
            f"got {shown!r}"
        )
    for key, url in proxies.items():
        if key == "no_proxy":  # requests' list of hosts to reach directly
            continue
        try:
            parsed = urllib3.util.parse_url(url)
        except (ValueError, TypeError, AttributeError):
            parsed = None
        if parsed is None or parsed.scheme not in PROXY_SCHEMES or not parsed.host:
            shown = redact(url) if isinstance(url, str) else url
            raise ValueError(
                f"proxy for {key!r} must be an http, https or socks URL with a "
                f"host, got {shown!r}"
            )
        _check_credentials(key, url)
        if parsed.scheme.startswith("socks") and not importlib.util.find_spec("socks"):
            raise ValueError(
                "a SOCKS proxy needs PySocks: pip install 'requests[socks]'"
            )
    return proxies


def _check_credentials(key: str, url: str) -> None:
    """A proxy URL's user name and password as requests will send them: parsed
    by ``urlsplit`` (which refuses what NFKC folds into a delimiter) and
    encoded as Latin-1 for Basic auth. Else a ValueError here, not a deep one
    at the first request.
    """
    shown = redact(url)
    try:
        parts = urlsplit(url)
        credentials = (parts.username, parts.password)
    except ValueError:
        raise ValueError(f"proxy for {key!r} is not a valid URL: {shown!r}") from None
    try:
        for part in credentials:
            unquote(part or "").encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError(
            f"proxy for {key!r}: its user name and password must be Latin-1 "
            f"text, as HTTP's Basic auth sends them: {shown!r}"
        ) from None


def host_of(url: str) -> str:
    """The host and port of ``url``, without any ``user:password@``."""
    return urlsplit(without_credentials(url)).netloc


def redact(url: str) -> str:
    """``url`` with any ``user:password@`` shown as ``***@``."""
    return without_credentials(url, shown="***@")


def without_credentials(url: str, shown: str = "") -> str:
    """``url`` with any ``user:password@`` replaced by ``shown``: the one place
    credentials are taken out of a URL, for every message, table and host.
    """
    return _USERINFO.sub(lambda found: (found.group(1) or "") + shown, url, count=1)


# The user information runs to the last @: a password may hold @, /, #, a
# quote, a space or a line break. A path with an @ in it is hidden too: more
# than needed, never less.
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)?.*@", re.DOTALL)
