"""The gpt4free-style facade: find a provider by name, ask it once.

Nothing here keeps a client between calls: each call makes one, uses it and
closes it, as ``requests.get`` does with a Session.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterator
from typing import Any, Optional, Union

from .._constants import DEFAULT_CHECK_TIMEOUT
from .._messages import Messages
from .._options import check_proxy
from .._provider import Provider
from .._registry import ProviderLike, get_provider, providers_with_default_url
from ..exceptions import ProviderNotFoundError, ProviderNotWorkingError
from ..providers import not_working_reason

__all__ = ["ChatCompletion", "working_providers"]


def working_providers(timeout: float = DEFAULT_CHECK_TIMEOUT) -> list[type[Provider]]:
    """The registered provider classes that answer a real chat right now, at
    their default URLs (see :func:`chatproviders.check`), all probed at once.
    ``working`` is a flag set by hand; this is measured.
    """
    from .._health.check import check  # imported only by those who check

    classes = providers_with_default_url()
    results = check(classes, timeout=timeout)
    return [cls for cls, result in zip(classes, results) if result.ok]


class ChatCompletion:
    """``ChatCompletion.create(...)`` as gpt4free users know it."""

    @staticmethod
    def create(
        model: Optional[str],
        messages: Messages,
        provider: Optional[ProviderLike] = None,
        stream: bool = False,
        ignore_working: bool = False,
        ignored: Optional[Collection[str]] = None,
        **kwargs: Any,
    ) -> Union[str, Iterator[str]]:
        """The reply as ``str``, or as an iterator of ``str`` when ``stream``.

        ``provider`` is a class or a name; without one, the first provider
        that serves ``model`` and is not named in ``ignored`` is used. Client
        options (``base_url``, ``proxy``, ``timeout``...) are accepted as
        keywords; without a ``proxy``, the ``G4F_PROXY`` environment variable
        gives one, as in gpt4free.
        """
        if isinstance(ignored, str) or not all(
            isinstance(name, str) for name in ignored or ()
        ):
            raise TypeError(f"ignored must list provider names, got {ignored!r}")
        cls = _choose(model, provider, ignore_working, ignored or ())
        env_proxy = os.environ.get("G4F_PROXY")
        if kwargs.get("proxy") is None and env_proxy:
            try:
                check_proxy(env_proxy)  # checked here, to say where it came from
            except ValueError as exc:
                raise ValueError(f"G4F_PROXY in the environment: {exc}") from None
            kwargs["proxy"] = env_proxy
        chunks = cls.create_completion(model, messages, stream=stream, **kwargs)
        return chunks if stream else "".join(chunks)


def _choose(
    model: Optional[str],
    provider: Optional[ProviderLike],
    ignore_working: bool,
    ignored: Collection[str],
) -> type[Provider]:
    if provider is not None:
        cls = get_provider(provider)
        if not cls.working and not ignore_working:
            raise ProviderNotWorkingError(
                f"is marked as not working ({not_working_reason(cls)}); pass "
                "ignore_working=True, or use the client class directly",
                provider=cls.__name__,
            )
        return cls
    skip = {name.lower() for name in ignored}
    serving = [
        cls
        for cls in _choosable()
        if (not model or model in cls.models) and cls.name().lower() not in skip
    ]
    usable = [cls for cls in serving if cls.working or ignore_working]
    if usable:
        return usable[0]
    if serving:
        names = ", ".join(cls.__name__ for cls in serving)
        which = f"serving {model!r} " if model else ""
        raise ProviderNotWorkingError(
            f"every provider {which}is marked as not working ({names}); "
            "pass ignore_working=True or name a provider"
        )
    raise ProviderNotFoundError(
        f"no provider serves model {model!r}",
        name=model,
        known=tuple(cls.name() for cls in _choosable()),
    )


def _choosable() -> list[type[Provider]]:
    """The providers the facade may pick by model: those with an endpoint of
    their own (not OpenAICompatible, which needs a base_url and serves any
    model name: name it as ``provider=``).
    """
    return providers_with_default_url()
