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
import re
import threading
from typing import TYPE_CHECKING, Any, Union

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
_loading = False  # the plugins are being loaded, in this thread
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
    wrong = [
        name for name in REQUIRED_ATTRIBUTES if not isinstance(getattr(cls, name), str)
    ]
    if not _names(cls.models) or not _names(cls.aliases):
        wrong += [n for n in ("models", "aliases") if not _names(getattr(cls, n))]
    if wrong:  # a listing or a lookup would fail on it, for every provider
        raise TypeError(
            f"{cls.__name__} cannot be registered: "
            + ", ".join(f"{name} = {getattr(cls, name)!r}" for name in wrong)
            + " (url, path and default_model are str, models and aliases "
            "sequences of str)"
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
    """The plugins that failed to load, by entry point name, with the reason;
    also, as ``"NAME (distribution)"``, each distribution whose entry points
    cannot be read.
    """
    _load_plugins()
    with _lock:
        return dict(_plugin_errors)


def _names(value: object) -> bool:
    """True for a list or tuple of str (models, aliases)."""
    return isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)


def _load_plugins() -> None:
    global _plugins_loaded, _loading
    with _lock:  # re-entrant: a plugin module may call register_provider
        if _plugins_loaded or _loading:  # _loading: a plugin module calls
            return  # list_providers() as it is imported; it sees those so far
        _loading = True
        try:
            _load_entry_points()
        finally:
            _loading = False
        _plugins_loaded = True  # not before: an interrupted load is tried again


def _load_entry_points() -> None:
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


def _entry_points() -> list[EntryPoint]:
    """The group's entry points, as ``importlib.metadata.entry_points()``
    finds them, but one distribution at a time: one whose entry_points.txt
    does not parse (which makes ``entry_points()`` raise for everyone) is
    skipped, and named in :func:`plugin_errors`.
    """
    from importlib.metadata import distributions

    found: list[EntryPoint] = []
    seen: set[str] = set()
    for dist in distributions():
        name = _dist_name(dist)
        if name.lower() in seen:  # the first on the path wins, as there
            continue
        seen.add(name.lower())
        try:
            points = list(dist.entry_points)
        except Exception as exc:  # a malformed file: that distribution's loss
            key = f"{name} (distribution)"
            reason = f"its entry_points.txt does not parse: {type(exc).__name__}: {exc}"
            _plugin_errors[key] = reason
            logger.warning("%s: %s; its entry points are skipped", key, reason)
            continue
        found += [point for point in points if point.group == ENTRY_POINT_GROUP]
    return found


def _dist_name(dist: Any) -> str:
    """A distribution's normalised name, without reading more than needed."""
    try:
        name = getattr(dist, "_normalized_name", None)  # Python 3.10+, cheap
    except Exception:  # not in the path (an egg's EGG-INFO): from the metadata
        name = None
    if not name:
        try:
            name = dist.metadata["Name"]
        except Exception:  # a metadata file that does not parse either
            name = None
        name = name or str(getattr(dist, "_path", "unknown"))
    return re.sub(r"[-_.]+", "_", str(name))


for _cls in BUILT_IN:
    register_provider(_cls)
