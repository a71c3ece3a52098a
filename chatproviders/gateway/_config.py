"""The gateway's configuration: routes, upstreams and keys, from TOML or a dict.

A config file (read by ``chatproviders serve --config FILE`` and by
``make_app(FILE)``)::

    routes = ["cromicle", "openai", "fast=cromicle,acytoo"]
    keys = "keys.toml"              # optional: the keys file, relative to this file
    max_retries = 0                 # optional: retries of each upstream (default 2)
    timeout = 60                    # optional: upstream read timeout, seconds
    health_interval = 30            # optional: seconds between /ready's checks
    limits_storage = "memory://"    # or "redis://HOST:PORT", shared by every process
    max_body = 4194304              # optional: largest request body, bytes
    [base_urls]
    cromicle = "http://127.0.0.1:8001"
    openai = "http://127.0.0.1:11434/v1"
    [api_keys]                      # keys for the upstreams
    openai = "sk-..."
    [models]                        # optional: the models a route lists and takes
    openai = ["gpt-4o-mini"]

A keys file::

    [[keys]]
    name = "alice"                  # what logs and errors show
    key = "sk-alice-..."
    models = ["cromicle", "fast"]   # routes this key may use; absent: all
    requests_per_minute = 60
    tokens_per_minute = 100000

Every problem is a :class:`ConfigError` naming the file and the field.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

__all__ = [
    "DEFAULT_MAX_BODY",
    "DEFAULT_MAX_MESSAGES",
    "ConfigError",
    "GatewayConfig",
    "KeySpec",
    "load_config",
    "load_keys",
    "parse_route",
]

#: The largest request body accepted, in bytes (413 beyond it).
DEFAULT_MAX_BODY = 4 * 1024 * 1024
#: The longest ``messages`` list accepted (400 beyond it).
DEFAULT_MAX_MESSAGES = 2048
#: Seconds between the live checks ``/ready`` reports.
DEFAULT_HEALTH_INTERVAL = 30.0

ConfigSource = Union[str, "os.PathLike[str]", Mapping[str, Any], "GatewayConfig"]

_CONFIG_FIELDS = {
    "routes",
    "keys",
    "base_urls",
    "api_keys",
    "models",
    "max_retries",
    "timeout",
    "health_interval",
    "limits_storage",
    "max_body",
    "max_messages",
}
_KEY_FIELDS = {"name", "key", "models", "requests_per_minute", "tokens_per_minute"}


class ConfigError(ValueError):
    """A config or keys file that cannot be used; the message names the field."""


@dataclass(frozen=True)
class KeySpec:
    """One client key: its ``name`` (shown in logs), the routes it may use
    (``None``: all) and its limits per minute (``None``: none).
    """

    name: str
    key: str = field(repr=False)  # never shown
    models: Optional[frozenset[str]] = None
    requests_per_minute: Optional[int] = None
    tokens_per_minute: Optional[int] = None


@dataclass
class GatewayConfig:
    """What :func:`chatproviders.gateway.make_app` serves.

    ``routes`` maps each route name to the provider names behind it (one: that
    provider; several: a fallback over them, in order).
    """

    routes: dict[str, list[str]]
    base_urls: dict[str, str] = field(default_factory=dict)
    api_keys: dict[str, str] = field(default_factory=dict, repr=False)
    models: dict[str, list[str]] = field(default_factory=dict)
    keys: list[KeySpec] = field(default_factory=list, repr=False)
    max_retries: Optional[int] = None
    timeout: Optional[float] = None
    health_interval: float = DEFAULT_HEALTH_INTERVAL
    limits_storage: str = "memory://"
    max_body: int = DEFAULT_MAX_BODY
    max_messages: int = DEFAULT_MAX_MESSAGES


def parse_route(text: str) -> tuple[str, list[str]]:
    """``"cromicle"`` -> ``("cromicle", ["cromicle"])``;
    ``"fast=cromicle,acytoo"`` -> ``("fast", ["cromicle", "acytoo"])``.
    """
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"a route is a provider name or ALIAS=NAME,NAME: {text!r}")
    alias, _, members = text.partition("=")
    alias = alias.strip().lower()
    names = [name.strip().lower() for name in (members or alias).split(",")]
    if not alias or "/" in alias or not all(names):
        raise ConfigError(
            f"route {text!r}: expected NAME or ALIAS=NAME1,NAME2 (no '/' in ALIAS)"
        )
    return alias, names


def load_config(source: ConfigSource) -> GatewayConfig:
    """A :class:`GatewayConfig` from a TOML file's path, or a dict of its shape."""
    if isinstance(source, GatewayConfig):
        return source
    base = Path.cwd()
    where = "config"
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        where = str(path)
        data = _read_toml(path)
        base = path.parent
    elif isinstance(source, Mapping):
        data = dict(source)
    else:
        raise TypeError(
            "make_app takes a config file's path or a dict, "
            f"got {type(source).__name__}"
        )
    unknown = sorted(set(data) - _CONFIG_FIELDS)
    if unknown:
        raise ConfigError(
            f"{where}: unknown field(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(_CONFIG_FIELDS))}"
        )
    routes: dict[str, list[str]] = {}
    for text in _list_of_str(data.get("routes"), f"{where}: routes"):
        alias, names = parse_route(text)
        if alias in routes:
            raise ConfigError(f"{where}: route {alias!r} is given twice")
        routes[alias] = names
    if not routes:
        raise ConfigError(f'{where}: no routes; e.g. routes = ["cromicle"]')
    keys = data.get("keys", [])
    if isinstance(keys, (str, os.PathLike)):
        keys = load_keys(base / keys)
    elif isinstance(keys, list) and all(isinstance(k, KeySpec) for k in keys):
        keys = list(keys)
    else:
        keys = _keys_from(keys, where)
    config = GatewayConfig(
        routes=routes,
        base_urls=_str_table(data.get("base_urls"), f"{where}: base_urls"),
        api_keys=_str_table(data.get("api_keys"), f"{where}: api_keys"),
        models={
            name.lower(): _list_of_str(value, f"{where}: models.{name}")
            for name, value in _table(data.get("models"), f"{where}: models").items()
        },
        keys=keys,
        max_retries=_number(data, "max_retries", where, int),
        timeout=_number(data, "timeout", where, float),
        health_interval=_number(data, "health_interval", where, float)
        or DEFAULT_HEALTH_INTERVAL,
        limits_storage=str(data.get("limits_storage", "memory://")),
        max_body=_number(data, "max_body", where, int) or DEFAULT_MAX_BODY,
        max_messages=_number(data, "max_messages", where, int) or DEFAULT_MAX_MESSAGES,
    )
    return config


def load_keys(path: Union[str, os.PathLike[str]]) -> list[KeySpec]:
    """The keys of a keys file (``[[keys]]`` tables)."""
    data = _read_toml(Path(path))
    unknown = sorted(set(data) - {"keys"})
    if unknown:
        raise ConfigError(f"{path}: unknown field(s) {', '.join(unknown)}")
    return _keys_from(data.get("keys", []), str(path))


def _keys_from(entries: Any, where: str) -> list[KeySpec]:
    if not isinstance(entries, list):
        raise ConfigError(f"{where}: keys must be a list of [[keys]] tables")
    keys: list[KeySpec] = []
    names: set[str] = set()
    for number, entry in enumerate(entries):
        at = f"{where}: keys[{number}]"
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{at} must be a table")
        unknown = sorted(set(entry) - _KEY_FIELDS)
        if unknown:
            raise ConfigError(f"{at}: unknown field(s) {', '.join(unknown)}")
        name, key = entry.get("name"), entry.get("key")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{at} needs a name")
        if not isinstance(key, str) or len(key) < 8 or not key.isascii():
            raise ConfigError(
                f"{at} ({name}) needs a key of at least 8 ASCII characters"
            )
        if name in names:
            raise ConfigError(f"{at}: the name {name!r} is taken by another key")
        names.add(name)
        models = entry.get("models")
        keys.append(
            KeySpec(
                name=name,
                key=key,
                models=None
                if models is None
                else frozenset(m.lower() for m in _list_of_str(models, f"{at}.models")),
                requests_per_minute=_limit(entry, "requests_per_minute", at),
                tokens_per_minute=_limit(entry, "tokens_per_minute", at),
            )
        )
    if len({spec.key for spec in keys}) < len(keys):
        raise ConfigError(f"{where}: two keys have the same secret")
    return keys


def _read_toml(path: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - the serve extra installs it on 3.9 and 3.10
        import tomli as tomllib
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None


def _table(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where} must be a table")
    return dict(value)


def _str_table(value: Any, where: str) -> dict[str, str]:
    table = _table(value, where)
    for name, item in table.items():
        if not isinstance(item, str):
            raise ConfigError(f"{where}.{name} must be a string")
    return {name.lower(): item for name, item in table.items()}


def _list_of_str(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where} must be a list of strings")
    return list(value)


def _limit(data: Mapping[str, Any], name: str, where: str) -> Optional[int]:
    """A key's limit: 0 would read as no limit at all, so it is refused."""
    value: Optional[int] = _number(data, name, where, int)
    if value == 0:
        raise ConfigError(
            f"{where}: {name} must be at least 1 (leave it out for no limit)"
        )
    return value


def _number(data: Mapping[str, Any], name: str, where: str, kind: type) -> Any:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where}: {name} must be a number, got {value!r}")
    if kind is int and not isinstance(value, int):
        raise ConfigError(f"{where}: {name} must be a whole number, got {value!r}")
    if not 0 <= value < 1e12:
        raise ConfigError(f"{where}: {name} must be >= 0, got {value!r}")
    return kind(value)
