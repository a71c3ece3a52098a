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

from ._client import Client
from ._constants import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT
from ._gpt4free.facade import ChatCompletion, working_providers
from ._health.fallback import FallbackProvider
from ._messages import format_prompt
from ._provider import Provider
from ._registry import get_provider, list_providers, register_provider
from ._streams.background import BackgroundStream
from ._streams.chat_stream import ChatResponse, ChatStream
from ._streams.events import (
    FinishReported,
    Function,
    ModelReported,
    ReasoningDelta,
    RefusalDelta,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
    UsageReported,
)
from ._version import __version__
from ._wire.deadline import GuardedAdapter
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
    CheckpointError,
    IncompleteStreamError,
    InternalServerError,
    InvalidMessagesError,
    ModelNotSupportedError,
    ProviderNotFoundError,
    ProviderNotWorkingError,
    RateLimitError,
    ResponseFormatError,
    StructuredOutputError,
    UnsupportedParameterError,
)
from .providers import Acytoo, CodeLinkAva, Cromicle, GPROChat, OpenAICompatible

# The public decoders live in chatproviders.decoders.

if TYPE_CHECKING:
    from ._batch.items import BatchItem, BatchResult
    from ._batch.run import batch
    from ._health.check import CheckResult, check
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
    from ._structured import ParsedResponse, pydantic_function_tool

#: Imported on first use, not at ``import chatproviders``: most programs never
#: run a batch or a health check, and their modules weigh on every start-up.
_LAZY = {
    "BatchItem": "._batch.items",
    "BatchResult": "._batch.items",
    "batch": "._batch.run",
    "CheckResult": "._health.check",
    "check": "._health.check",
    "ParsedResponse": "._structured",
    "pydantic_function_tool": "._structured",
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
    "CheckpointError",
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
    "ParsedResponse",
    "Provider",
    "ProviderNotFoundError",
    "ProviderNotWorkingError",
    "RateLimitError",
    "ReasoningDelta",
    "RefusalDelta",
    "ResponseEvent",
    "ResponseFormatError",
    "ResponseReported",
    "ResponseUsage",
    "Responses",
    "ResponsesBackgroundStream",
    "ResponsesReply",
    "ResponsesStream",
    "StreamEvent",
    "StructuredOutputError",
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
    "pydantic_function_tool",
    "register_provider",
    "working_providers",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())
