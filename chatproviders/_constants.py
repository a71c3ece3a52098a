"""Defaults, in one place."""

from __future__ import annotations

#: Seconds to wait for the TCP connection, and between two reads of the body.
#: requests waits forever by default; chatproviders always sends a timeout.
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 60.0
DEFAULT_TIMEOUT = (DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT)

#: Largest read handed to the decoder at once; smaller pieces are handed
#: over as soon as they arrive.
READ_CHUNK_SIZE = 64 * 1024

#: How much of an error body is kept on the exception.
ERROR_BODY_EXCERPT = 500

#: How much of an error body is read at most before giving up on the rest.
ERROR_BODY_LIMIT = 64 * 1024

USER_AGENT_PREFIX = "chatproviders"
