"""gpt4free's ``create_async_generator``, as a thin bridge over a worker thread.

The core stays synchronous: the request runs on a :class:`BackgroundStream`
worker, and the event loop only ever awaits futures that the worker resolves,
so it works inside a loop that is already running (Jupyter) with no patching.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator
from typing import Any, Callable, Optional

from .._streams.background import BackgroundStream, cancel_soon

__all__ = ["AsyncReply"]


class AsyncReply:
    """The reply as an async iterator of ``str``, started on first use.

    Both forms in gpt4free's examples work: ``async for chunk in
    Provider.create_async_generator(...)`` and ``async for chunk in await
    generator``. ``break`` (once the object is dropped), ``aclose()`` and
    cancelling the task awaiting a chunk close the HTTP connection at once.
    """

    def __init__(self, start: Callable[[], BackgroundStream]) -> None:
        self._start: Optional[Callable[[], BackgroundStream]] = start
        self._stream: Optional[BackgroundStream] = None
        self._chunks: Optional[AsyncIterator[str]] = None

    def __aiter__(self) -> AsyncReply:
        return self

    async def __anext__(self) -> str:
        if self._chunks is None:
            if self._start is None:
                raise StopAsyncIteration
            start, self._start = self._start, None
            self._stream = start()
            self._chunks = self._stream.__aiter__()
        return await self._chunks.__anext__()

    async def aclose(self) -> None:
        """Stop the request (if it started) and release its connection."""
        self._start = None
        if self._stream is not None:
            await self._stream.aclose()

    def __await__(self) -> Generator[Any, None, AsyncReply]:
        return _itself(self).__await__()

    def __del__(self) -> None:
        stream = getattr(self, "_stream", None)
        if stream is not None:
            cancel_soon(stream)


async def _itself(reply: AsyncReply) -> AsyncReply:
    return reply
