"""The Responses API (``POST /v1/responses``) on the chat machinery.

``_events`` reads the reply's bytes into text and events, ``_stream`` holds
what a call returns, ``_resource`` checks and encodes a call and gives a
client its ``responses`` calls. The public names are those of
``chatproviders``; they are re-exported here for it.
"""

from ._events import OutputItemDone as OutputItemDone
from ._events import ResponseEvent as ResponseEvent
from ._events import ResponseReported as ResponseReported
from ._events import ResponseUsage as ResponseUsage
from ._events import iter_response_events as iter_response_events
from ._resource import Responses as Responses
from ._stream import ResponsesBackgroundStream as ResponsesBackgroundStream
from ._stream import ResponsesReply as ResponsesReply
from ._stream import ResponsesStream as ResponsesStream
