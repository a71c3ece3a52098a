"""chatproviders: blocking chat-completion clients built on requests.

>>> from chatproviders import Cromicle
>>> with Cromicle(base_url="http://127.0.0.1:8000") as client:   # doctest: +SKIP
...     with client.stream([{"role": "user", "content": "Hi"}]) as stream:
...         for chunk in stream:
...             print(chunk, end="", flush=True)
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

from ._api import ChatCompletion, working_providers
from ._background import BackgroundStream
from ._client import Client
from ._constants import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT
from ._fallback import FallbackProvider
from ._guard import GuardedAdapter
from ._messages import format_prompt
from ._provider import Provider
from ._registry import get_provider, list_providers, register_provider
from ._results import (
    FinishReported,
    Function,
    ModelReported,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
    UsageReported,
)
from ._streaming import ChatResponse, ChatStream
from .exceptions import (
    AllProvidersFailedError,
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    Attempt,
    AuthenticationError,
    BadRequestError,
    ChatProvidersError,
    IncompleteStreamError,
    InternalServerError,
    InvalidMessagesError,
    ModelNotSupportedError,
    ProviderNotFoundError,
    ProviderNotWorkingError,
    RateLimitError,
    ResponseFormatError,
    UnsupportedParameterError,
)
from .providers import Acytoo, CodeLinkAva, Cromicle, GPROChat, OpenAICompatible

# The public decoders live in chatproviders.decoders.

if TYPE_CHECKING:
    from ._batch import BatchItem, BatchResult, batch
    from ._health import CheckResult, check
    from ._responses import (
        OutputItemDone,
        ResponseEvent,
        ResponseReported,
        Responses,
        ResponsesBackgroundStream,
        ResponsesReply,
        ResponsesStream,
        ResponseUsage,
    )

#: Imported on first use, not at ``import chatproviders``: most programs never
#: run a batch or a health check, and their modules weigh on every start-up.
_LAZY = {
    "BatchItem": "._batch",
    "BatchResult": "._batch",
    "batch": "._batch",
    "CheckResult": "._health",
    "check": "._health",
    "OutputItemDone": "._responses",
    "ResponseEvent": "._responses",
    "ResponseReported": "._responses",
    "ResponseUsage": "._responses",
    "Responses": "._responses",
    "ResponsesBackgroundStream": "._responses",
    "ResponsesReply": "._responses",
    "ResponsesStream": "._responses",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_TIMEOUT",
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "Acytoo",
    "AllProvidersFailedError",
    "Attempt",
    "AuthenticationError",
    "BackgroundStream",
    "BadRequestError",
    "BatchItem",
    "BatchResult",
    "ChatCompletion",
    "ChatProvidersError",
    "ChatResponse",
    "ChatStream",
    "CheckResult",
    "Client",
    "CodeLinkAva",
    "Cromicle",
    "FallbackProvider",
    "FinishReported",
    "Function",
    "GPROChat",
    "GuardedAdapter",
    "IncompleteStreamError",
    "InternalServerError",
    "InvalidMessagesError",
    "ModelNotSupportedError",
    "ModelReported",
    "OpenAICompatible",
    "OutputItemDone",
    "Provider",
    "ProviderNotFoundError",
    "ProviderNotWorkingError",
    "RateLimitError",
    "ReasoningDelta",
    "ResponseEvent",
    "ResponseFormatError",
    "ResponseReported",
    "ResponseUsage",
    "Responses",
    "ResponsesBackgroundStream",
    "ResponsesReply",
    "ResponsesStream",
    "StreamEvent",
    "TextDelta",
    "ToolCall",
    "ToolCallDelta",
    "UnsupportedParameterError",
    "Usage",
    "UsageReported",
    "__version__",
    "batch",
    "check",
    "format_prompt",
    "get_provider",
    "list_providers",
    "register_provider",
    "working_providers",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())
