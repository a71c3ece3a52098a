"""The one registry of providers: built in, registered in code, or plugins.

Every place that needs the list of providers reads it here: the facade, the
command line, the emulators and the pytest fixtures. A plugin is a package
with an entry point in the group ``chatproviders.providers``
(``name = module:Class``); plugins are loaded on the first lookup or listing,
never at ``import chatproviders``, and one that fails to load is reported
by name (:func:`plugin_errors`), not raised from every lookup.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Union

from ._provider import REQUIRED_ATTRIBUTES, Provider
from .exceptions import ProviderNotFoundError
from .providers import BUILT_IN

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

__all__ = [
    "ENTRY_POINT_GROUP",
    "get_provider",
    "list_providers",
    "plugin_errors",
    "providers_with_default_url",
    "register_provider",
]

ENTRY_POINT_GROUP = "chatproviders.providers"

ProviderLike = Union[str, type[Provider]]

logger = logging.getLogger("chatproviders")

_registered: dict[str, type[Provider]] = {}  # by lower-case name
_aliases: dict[str, str] = {}  # lower-case alias -> lower-case name
_plugin_errors: dict[str, str] = {}  # entry point name -> why it did not load
_plugins_loaded = False
_lock = threading.RLock()


def register_provider(cls: type[Provider]) -> type[Provider]:
    """Add ``cls`` to the registry; returns it, so it works as a class decorator.

    Names are compared in any case; registering the same class again does
    nothing, and another class under a taken name or alias is a ``ValueError``.
    """
    if not (isinstance(cls, type) and issubclass(cls, Provider)) or cls is Provider:
        raise TypeError(f"register_provider takes a Provider subclass, got {cls!r}")
    missing = [name for name in REQUIRED_ATTRIBUTES if not hasattr(cls, name)]
    if missing:  # an abstract base: it cannot be used, and would break listings
        raise TypeError(
            f"{cls.__name__} cannot be registered: it does not set "
            f"{', '.join(missing)} (an abstract base?)"
        )
    key = cls.name().lower()
    with _lock:
        names = [key, *(alias.lower() for alias in cls.aliases)]
        for name in names:
            taken = _registered.get(_aliases.get(name, name))
            if taken is not None and taken is not cls:
                raise ValueError(
                    f"a provider called {name!r} is already registered: {taken!r}"
                )
        _registered[key] = cls
        for alias in names[1:]:
            _aliases[alias] = key
    return cls


def list_providers() -> list[type[Provider]]:
    """Every registered provider class (plugins included), sorted by name."""
    _load_plugins()
    with _lock:
        return sorted(_registered.values(), key=lambda cls: cls.name().lower())


def providers_with_default_url() -> list[type[Provider]]:
    """The registered providers that know where their service is without a
    ``base_url`` (not OpenAICompatible): what a check or the facade may try.
    """
    return [cls for cls in list_providers() if cls.default_endpoint() is not None]


def get_provider(name: ProviderLike) -> type[Provider]:
    """The provider class called ``name`` (any case, or an alias such as
    ``"openai"``), or the class itself.
    """
    if isinstance(name, type) and issubclass(name, Provider) and name is not Provider:
        return name
    if isinstance(name, str):
        _load_plugins()
        key = name.strip().lower()
        with _lock:
            found = _registered.get(_aliases.get(key, key))
        if found is not None:
            return found
    known = tuple(cls.name() for cls in list_providers())
    if isinstance(name, Provider):
        raise ProviderNotFoundError(
            f"pass a provider class or its name, not a client: {type(name).__name__}",
            name=type(name).__name__,
            known=known,
        )
    broken = f"; plugins that failed to load: {', '.join(_plugin_errors)}"
    raise ProviderNotFoundError(
        f"no provider called {name!r}; known providers: {', '.join(known)}"
        + (broken if _plugin_errors else ""),
        name=str(name),
        known=known,
    )


def plugin_errors() -> dict[str, str]:
    """The plugins that failed to load, by entry point name, with the reason."""
    _load_plugins()
    with _lock:
        return dict(_plugin_errors)


def _load_plugins() -> None:
    global _plugins_loaded
    with _lock:  # re-entrant: a plugin module may call register_provider
        if _plugins_loaded:
            return
        for entry_point in _entry_points():
            if entry_point.name in _plugin_errors:
                continue
            try:
                cls = entry_point.load()
                register_provider(cls)
            except (Exception, SystemExit) as exc:  # not the rest's failure
                reason = f"{type(exc).__name__}: {exc}"
                _plugin_errors[entry_point.name] = reason
                logger.warning(
                    "provider plugin %r (%s) did not load: %s",
                    entry_point.name,
                    entry_point.value,
                    reason,
                )
        _plugins_loaded = True  # not before: an interrupted load is tried again


def _entry_points() -> list[EntryPoint]:
    from importlib.metadata import entry_points

    found = entry_points()
    if hasattr(found, "select"):  # Python 3.10 and later
        return list(found.select(group=ENTRY_POINT_GROUP))
    return list(found.get(ENTRY_POINT_GROUP, []))


for _cls in BUILT_IN:
    register_provider(_cls)
