"""How every command makes its client: one place for the options, the API key
from the environment, and the advice when a URL is missing.
"""

from __future__ import annotations

import inspect
import os
from typing import Any, Optional

from .._provider import Provider
from ..providers import SEEDS, not_working_reason
from ..providers.openai_compatible import BASE_URLS
from .common import UsageError

__all__ = ["API_KEY_VARIABLE", "make_client"]

#: The API key comes from here, never from argv (``ps`` shows argv), for every
#: provider that takes one (OpenAICompatible).
API_KEY_VARIABLE = "CHATPROVIDERS_API_KEY"


def make_client(
    cls: type[Provider],
    base_url: Optional[str],
    *,
    proxy: Optional[str] = None,
    timeout: Optional[float] = None,
) -> Provider:
    """A client of ``cls`` for the command line's options; a usage error for a
    provider that cannot be reached or an option it refuses.
    """
    if base_url is None:
        if cls.default_endpoint() is None:
            servers = ", ".join(f"{url} ({name})" for name, url in BASE_URLS.items())
            raise UsageError(f"{cls.name()} needs --base-url, e.g. {servers}")
        if cls in SEEDS:
            raise UsageError(
                f"{cls.name()}'s public service is offline: pass --base-url, e.g. "
                f"the URL that `chatproviders emulate {cls.name().lower()}` prints"
            )
        if not cls.working:
            raise UsageError(
                f"{cls.name()} is marked as not working ({not_working_reason(cls)}): "
                "pass --base-url to try it at a server of yours"
            )
    options: dict[str, Any] = {"base_url": base_url, "proxy": proxy}
    if timeout is not None:
        options["timeout"] = timeout
    if "api_key" in inspect.signature(cls.__init__).parameters:
        options["api_key"] = os.environ.get(API_KEY_VARIABLE) or None
    try:
        return cls(**options)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
