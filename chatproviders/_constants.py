"""Defaults, in one place."""

from __future__ import annotations

#: Seconds to wait for the TCP connection, and between two reads of the body.
#: requests waits forever by default; chatproviders always sends a timeout.
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 60.0
DEFAULT_TIMEOUT = (DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT)
#: The longest timeout accepted (11.5 days); beyond it the OS clocks overflow.
MAX_TIMEOUT = 1e6

#: Largest read handed to the decoder at once; smaller pieces are handed
#: over as soon as they arrive.
READ_CHUNK_SIZE = 64 * 1024
#: After a reply ended in-band (SSE ``data: [DONE]``), how long and how much
#: of the rest of the body is read so that the connection can be reused.
FINISH_WAIT = 0.25
FINISH_LIMIT = 64 * 1024
BACKGROUND_QUEUE_SIZE = 64  #: chunks a BackgroundStream holds before its worker waits

#: How much of an error body is kept on the exception.
ERROR_BODY_EXCERPT = 500

#: How much of an error body is read at most before giving up on the rest.
ERROR_BODY_LIMIT = 64 * 1024

USER_AGENT_PREFIX = "chatproviders"

#: Seconds a health probe may take, all of it: connect, wait and read.
DEFAULT_CHECK_TIMEOUT = 10.0

#: Retries of a call that failed before its first chunk (connection errors,
#: connect timeouts, 408, 409, 429, 5xx). ``max_retries=0`` turns them off.
DEFAULT_MAX_RETRIES = 2
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
#: Exponential backoff: INITIAL_RETRY_DELAY * 2**n, at most MAX_RETRY_DELAY,
#: less up to a quarter of random jitter.
INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
#: A server's Retry-After is honoured up to this many seconds.
MAX_RETRY_AFTER = 60.0
