"""The Responses API (``POST /v1/responses``) on the chat machinery.

``_events`` reads the reply's bytes into text and events, ``_stream`` holds
what a call returns, ``_resource`` checks and encodes a call and gives a
client its ``responses`` calls.
"""

from ._events import (
    OutputItemDone,
    ResponseEvent,
    ResponseReported,
    ResponseUsage,
    iter_response_events,
)
from ._resource import Responses
from ._stream import ResponsesBackgroundStream, ResponsesReply, ResponsesStream

__all__ = [
    "OutputItemDone",
    "ResponseEvent",
    "ResponseReported",
    "ResponseUsage",
    "Responses",
    "ResponsesBackgroundStream",
    "ResponsesReply",
    "ResponsesStream",
    "iter_response_events",
]
