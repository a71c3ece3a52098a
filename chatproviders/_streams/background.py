"""A stream read on a worker thread: :class:`BackgroundStream`.

The worker owns the source: it opens it, reads it and closes it. Chunks cross
to the consumer through a bounded queue in :class:`_Channel`, one lock with
two conditions, so that:

* the worker stops reading while the queue is full (TCP flow control then
  holds the server back) and as soon as the consumer cancels;
* cancelling wakes a worker blocked on the network by shutting the socket
  down (urllib3's ``HTTPResponse.shutdown()``); the worker then closes the
  stream itself, since a generator cannot be closed from another thread
  while it runs, and exits;
* an error on the worker reaches the consumer as the same object, after the
  chunks that came before it; an error caused by cancelling is dropped;
* asyncio consumers wait on a future that the worker resolves through the
  loop's :class:`_Waker`: one ``loop.call_soon_threadsafe`` wakes the loop
  for every future made ready since its last wake-up, whichever streams they
  belong to, so that a thousand streams do not cost a thousand wake-ups; the
  consumer then takes every chunk queued since, under one lock;
* a call made on a running event loop does not wait for the worker thread to
  start (under a crowd of threads that is a wait for the GIL, milliseconds
  during which the loop serves nobody): :func:`_launch` hands the start to a
  short-lived launcher thread.

The worker holds the channel, never the :class:`BackgroundStream`, so an
abandoned stream is garbage-collected and its finalizer cancels the worker.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import os
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator, Iterable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Callable, Optional, TypeVar, Union

from .._constants import BACKGROUND_QUEUE_SIZE
from .._numbers import check_count, check_seconds
from .._wire.transport import shut_down
from .chat_stream import ChatStream
from .closing import Closing

if TYPE_CHECKING:
    import asyncio

    import requests

    _Waiter = tuple["_Waker", asyncio.Future[None]]

# asyncio is imported where it is used, by coroutines that only run under a
# loop: importing it here would add a fifth to the import time of chatproviders.

__all__ = ["BackgroundStream"]

logger = logging.getLogger("chatproviders")

#: A ChatStream, any iterable of str, or a zero-argument callable returning one.
Source = Union[Iterable[str], Callable[[], Iterable[str]]]

#: The longest close() waits for a worker it cannot wake: one inside a user's
#: ``next()``, or one whose request has no response headers yet. A worker
#: reading a reply, or waiting for room in the queue, exits at once.
_CLOSE_WAIT = 0.5

_numbers = itertools.count(1)


class _Cancelled(Exception):
    """Raised on the worker when a response arrives after the consumer closed."""


class _Channel:
    """What the worker and the consumers share, all under one lock."""

    def __init__(self, maxsize: int) -> None:
        self.lock = threading.Lock()
        self.readable = threading.Condition(self.lock)  # a chunk or the end came
        self.writable = threading.Condition(self.lock)  # room, or cancelled
        self.maxsize = maxsize
        self.queue: deque[str] = deque()
        self.ended = False  # the worker has finished and closed the source
        self.error: Optional[BaseException] = None
        self.cancelled = False  # the consumer closed the stream
        self.cancel_event = threading.Event()  # the same, for the retry loop
        self.response: Optional[requests.Response] = None  # the one being read
        self.waiters: list[_Waiter] = []  # asyncio consumers waiting
        self.sleepers = 0  # threads waiting on ``readable``: notify only them

    # -- the worker's side --------------------------------------------------

    def watch(self, response: requests.Response) -> None:
        """Let :meth:`cancel` shut ``response`` down; refuse it if already closed."""
        with self.lock:
            cancelled = self.cancelled
            if not cancelled:
                self.response = response
        if cancelled:
            response.close()
            raise _Cancelled

    def put(self, chunk: str) -> bool:
        """Queue ``chunk``, waiting for room; False once the consumer closed."""
        with self.lock:
            while len(self.queue) >= self.maxsize and not self.cancelled:
                self.writable.wait()
            if self.cancelled:
                return False
            self.queue.append(chunk)
            if len(self.queue) > 1:
                return True  # consumers wait only on an empty queue
            if self.sleepers:
                self.readable.notify_all()
            if not self.waiters:
                return True
            waiters = self._take_waiters()
        _wake(waiters)
        return True

    def end(self, error: Optional[BaseException]) -> None:
        """The source is done and closed; ``error`` is how it failed, if it did."""
        with self.lock:
            self.response = None
            if self.cancelled:
                if error is not None:
                    logger.debug("dropped after close(): %r", error)
            else:
                self.error = error
            self.ended = True
            self.readable.notify_all()
            waiters = self._take_waiters()
        _wake(waiters)

    # -- the consumer's side ------------------------------------------------

    def cancel(self) -> None:
        """Stop the worker: wake it wherever it waits. Never blocks."""
        with self.lock:
            if self.cancelled:
                return
            self.cancelled = True
            self.cancel_event.set()
            response = self.response
            self.readable.notify_all()
            self.writable.notify_all()
            waiters = self._take_waiters()
        _wake(waiters)
        if response is not None:
            shut_down(response)

    def _take_waiters(self) -> list[_Waiter]:
        waiters, self.waiters = self.waiters, []
        return waiters


def _wake(waiters: list[_Waiter]) -> None:
    for waker, future in waiters:
        waker.add(future)


class _Waker:
    """Resolves futures of one event loop from any thread, in batches.

    The first future added after a wake-up schedules one :meth:`flush` with
    ``call_soon_threadsafe`` (a write to the loop's self-pipe); the futures
    added before that flush runs ride along. When the loop keeps up, that is
    one call per chunk, as without batching; when it falls behind, one call
    serves every stream that got a chunk in the meantime.
    """

    __slots__ = ("__weakref__", "_lock", "_ready", "_scheduled", "calls", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._lock = threading.Lock()
        self._ready: list[asyncio.Future[None]] = []
        self._scheduled = False
        self.calls = 0  # call_soon_threadsafe calls made: for tests and benchmarks

    def add(self, future: asyncio.Future[None]) -> None:
        """Resolve ``future`` on its loop soon; from any thread, never blocks long."""
        with self._lock:
            self._ready.append(future)
            if self._scheduled:
                return
            self._scheduled = True
            self.calls += 1
        try:
            self.loop.call_soon_threadsafe(self.flush)
        except RuntimeError:  # that loop is closed: nobody awaits these
            with self._lock:
                self._ready.clear()
                self._scheduled = False

    def flush(self) -> None:
        """On the loop: resolve every future added since the last flush."""
        with self._lock:
            ready, self._ready = self._ready, []
            self._scheduled = False
        for future in ready:
            if not future.done():  # a cancelled task's future is done already
                future.set_result(None)


#: The waker of each running loop, by ``id(loop)``; a waker holds its loop, so
#: the id cannot be reused while the entry lives. Streams hold their waker.
_wakers: weakref.WeakValueDictionary[int, _Waker] = weakref.WeakValueDictionary()
_wakers_lock = threading.Lock()


def _waker_of(loop: asyncio.AbstractEventLoop) -> _Waker:
    waker = _wakers.get(id(loop))
    if waker is None or waker.loop is not loop:
        with _wakers_lock:
            waker = _wakers.get(id(loop))
            if waker is None or waker.loop is not loop:
                waker = _wakers[id(loop)] = _Waker(loop)
    return waker


def _on_event_loop() -> bool:
    """Whether this thread runs an asyncio event loop (asyncio not imported: no)."""
    asyncio = sys.modules.get("asyncio")
    return asyncio is not None and asyncio._get_running_loop() is not None


# -- starting workers without waiting ----------------------------------------------

_launch_lock = threading.Lock()
_to_launch: deque[tuple[threading.Thread, _Channel, threading.Event]] = deque()
_launching = False


def _launch(
    thread: threading.Thread, channel: _Channel, launched: threading.Event
) -> None:
    """Have ``thread`` started by the launcher thread; never waits for it."""
    global _launching
    queued = (thread, channel, launched)
    with _launch_lock:
        _to_launch.append(queued)
        if _launching:
            return
        _launching = True
    try:
        threading.Thread(
            target=_launcher, name="chatproviders-launcher", daemon=True
        ).start()
    except BaseException:  # no launcher: the call fails, as Thread.start() would
        with _launch_lock:
            _launching = False
            with contextlib.suppress(ValueError):
                _to_launch.remove(queued)
        raise


def _forget_launches() -> None:
    """In a forked child: the launcher thread did not come along; nor did its queue."""
    global _launch_lock, _launching
    _launch_lock = threading.Lock()
    _to_launch.clear()
    _launching = False


if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_forget_launches)


def _launcher() -> None:
    """Start the queued workers one after another; exit when none is left."""
    global _launching
    while True:
        with _launch_lock:
            if not _to_launch:
                _launching = False
                return
            thread, channel, launched = _to_launch.popleft()
        try:
            thread.start()
        except BaseException as exc:  # no thread to be had: the consumer hears it
            channel.end(exc)
        finally:
            launched.set()


def _work(channel: _Channel, open_chunks: Callable[[_Channel], Iterable[str]]) -> None:
    """The worker thread: open the source, queue its chunks, close it, report."""
    error: Optional[BaseException] = None
    chunks: Optional[Iterator[str]] = None
    time.sleep(0)  # hand the GIL back, so that start() returns to the caller now
    try:
        if channel.cancelled:  # closed before the worker ran: send nothing
            return
        chunks = iter(open_chunks(channel))
        if isinstance(chunks, ChatStream) and chunks.response is not None:
            channel.watch(chunks.response)
        for chunk in chunks:
            if not channel.put(chunk):
                break
    except BaseException as exc:  # handed to the consumer, never printed here
        error = exc
    finally:
        close = getattr(chunks, "close", None)
        if callable(close):
            try:
                close()
            except BaseException as exc:
                error = error or exc
        channel.end(error)
        # The error's traceback holds this frame: drop the frame's hold on the
        # error, or the cycle (and the sockets its frames reach) waits for gc.
        error = None


def _opener(source: Source) -> Callable[[_Channel], Iterable[str]]:
    if isinstance(source, (str, bytes)):
        raise TypeError("source must be an iterable of str chunks, not a string")
    if isinstance(source, Iterable):
        iterable = source
        return lambda channel: iterable
    if callable(source):
        factory = source
        return lambda channel: factory()
    raise TypeError(
        "source must be a ChatStream, an iterable of str, or a zero-argument "
        f"callable returning one, got {type(source).__name__}"
    )


class BackgroundStream(Closing):
    """A stream read on a worker thread, so that the caller never blocks.

    ``source`` is a :class:`ChatStream`, any iterable of ``str``, or a
    zero-argument callable returning one (called on the worker). The worker
    owns it and closes it at the end. At most ``maxsize`` chunks wait in
    memory; then the worker stops reading until the consumer takes some.

    Iterate it (blocking, in order; ``next(stream)`` takes one chunk), ``poll()``
    it (never blocks), or wait for ``result()``; ``async for`` works too and
    never blocks the event loop. An error on the worker is raised by whichever
    of these reaches it, after the chunks that came before it, as the same
    exception object.

    ``close()`` cancels: it shuts the socket down so that a stalled read
    returns, and waits for the worker to close the response and exit. Leaving
    a ``with`` block, ``break``-ing out of a ``for`` or ``async for`` loop over
    it, cancelling the task awaiting it, and garbage collection close it too.
    Two waits cannot be interrupted: a request whose response headers have not
    come (the worker hangs up when they come, at the latest after the read
    timeout) and a user iterable inside ``next()``; ``close()`` then returns
    after half a second and the worker stops as soon as it can.

    Threads: one client may serve background streams from many threads at
    once; its ``requests.Session`` pools connections thread-safely, keeping up
    to 10 per host by default (more concurrent streams to one host work, but
    the extra connections are closed instead of reused, with a warning from
    urllib3; give the client a session with a larger ``pool_maxsize``). One
    BackgroundStream may be read from several threads; each chunk goes to one.
    """

    def __init__(self, source: Source, maxsize: int = BACKGROUND_QUEUE_SIZE) -> None:
        self._start(_opener(source), maxsize)

    def _start(
        self, open_chunks: Callable[[_Channel], Iterable[str]], maxsize: int
    ) -> None:
        check_count(maxsize, "maxsize", minimum=1)
        self._channel = _Channel(maxsize)
        self._parts: list[str] = []  # every chunk taken from the queue, in order
        self._handed = 0  # how many of them iteration or poll() handed out
        self._error_raised = False
        self._waker: Optional[_Waker] = None  # of the loop that last awaited
        self._thread = threading.Thread(
            target=_work,
            args=(self._channel, open_chunks),
            name=f"chatproviders-background-{next(_numbers)}",
            daemon=True,
        )
        self._launched: Optional[threading.Event] = None  # None: started here
        if _on_event_loop():
            self._launched = threading.Event()
            _launch(self._thread, self._channel, self._launched)
        else:
            self._thread.start()

    # -- the consumer's calls -------------------------------------------------

    def __iter__(self) -> Iterator[str]:
        # A generator, so that ``break`` (which drops it) closes the stream.
        try:
            while True:
                chunk = self._wait_next()
                if chunk is None:
                    return
                yield chunk
        finally:
            self.close()

    def __next__(self) -> str:
        """The next chunk, waiting for it; unlike a loop, leaves the stream open."""
        chunk = self._wait_next()
        if chunk is None:
            raise StopIteration
        return chunk

    def poll(self) -> list[str]:
        """The chunks that arrived since the last call; never blocks.

        Raises the worker's error once every chunk before it was handed out.
        """
        with self._channel.lock:
            if self._channel.cancelled:
                return []
            self._fill()
            chunks = self._parts[self._handed :]
            self._handed = len(self._parts)
            if not chunks:
                self._raise_error()
            return chunks

    @property
    def done(self) -> bool:
        """The stream ended (completed, failed or closed) and everything was
        handed out: every chunk, and the error if it failed.
        """
        channel = self._channel
        with channel.lock:
            return channel.cancelled or (
                channel.ended
                and not channel.queue
                and self._handed == len(self._parts)
                and (channel.error is None or self._error_raised)
            )

    def result(self, timeout: Optional[float] = None) -> str:
        """Wait for the end and return the whole reply: every chunk, polled or not.

        Raises the worker's error, or ``TimeoutError`` if the stream has not
        ended within ``timeout`` seconds (it goes on; nothing is lost). After
        ``close()``, the chunks that arrived before it.
        """
        if timeout is not None:  # math.inf: as long as it takes
            check_seconds(timeout, "timeout", zero=True, maximum=math.inf)
        channel = self._channel
        deadline = None
        if timeout is not None and timeout != float("inf"):
            deadline = time.monotonic() + timeout
        with channel.lock:
            while True:
                self._fill()
                if channel.ended or channel.cancelled:
                    break
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError(f"the stream did not end within {timeout} s")
                channel.sleepers += 1
                try:
                    channel.readable.wait(remaining)
                finally:
                    channel.sleepers -= 1
            self._handed = len(self._parts)
            self._raise_error()
            return "".join(self._parts)

    def close(self) -> None:
        """Cancel: stop the worker and its reads, and wait for it to exit.

        Idempotent. Returns at once when the stream has ended; otherwise as soon
        as the worker has closed the response (see the class notes for the two
        cases where it cannot be woken).
        """
        self._channel.cancel()
        if self._thread is not threading.current_thread():
            deadline = time.monotonic() + _CLOSE_WAIT
            launched = self._launched is None or self._launched.wait(_CLOSE_WAIT)
            if launched and self._thread.ident is not None:  # it did start
                self._thread.join(max(0.0, deadline - time.monotonic()))
            if not launched or self._thread.is_alive():
                logger.debug("%s still runs after close()", self._thread.name)

    def __del__(self) -> None:
        # Finalizers run on any thread, at any time: cancel, never wait.
        channel = getattr(self, "_channel", None)
        if channel is not None:
            channel.cancel()

    # -- asyncio --------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[str]:
        return _AsyncChunks(self)

    async def aclose(self) -> None:
        """Cancel like :meth:`close`, awaiting the worker without blocking the loop."""
        import asyncio

        self._channel.cancel()
        if not self._channel.ended:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._ended(), _CLOSE_WAIT)
        if self._channel.ended:
            # The worker is past its last step, but under a crowd of threads
            # it may wait for the GIL to exit: poll, never block the loop.
            pause, deadline = 0.0005, time.monotonic() + _CLOSE_WAIT
            while self._thread.is_alive() and time.monotonic() < deadline:
                await asyncio.sleep(pause)
                pause = min(pause * 2, 0.02)

    async def __aenter__(self) -> BackgroundStream:
        return self

    async def __aexit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        await self.aclose()

    async def _anext(self) -> Optional[str]:
        """The next chunk, None at the end; awaits without blocking the loop.

        Chunks queued since the last wake-up are all moved out under the lock
        taken for the first of them; the next ones are handed out without a wait.
        """
        channel = self._channel
        while True:
            with channel.lock:
                chunk = self._take()
                if chunk is not None or self._exhausted():
                    return chunk
                waiter = self._waiter()
            await waiter

    async def _ended(self) -> None:
        channel = self._channel
        while True:
            with channel.lock:
                if channel.ended:
                    return
                waiter = self._waiter()
            await waiter

    def _waiter(self) -> asyncio.Future[None]:
        """Under the lock: a future of this loop that the worker resolves (through
        the loop's waker) when the next chunk, or the end, comes."""
        import asyncio

        loop = asyncio.get_running_loop()
        waker = self._waker
        if waker is None or waker.loop is not loop:
            waker = self._waker = _waker_of(loop)
        waiter = loop.create_future()
        self._channel.waiters.append((waker, waiter))
        return waiter

    # -- under the lock -------------------------------------------------------

    def _wait_next(self) -> Optional[str]:
        """The next chunk, waiting for it; None at the end."""
        channel = self._channel
        with channel.lock:
            while True:
                chunk = self._take()
                if chunk is not None or self._exhausted():
                    return chunk
                channel.sleepers += 1
                try:
                    channel.readable.wait()
                finally:
                    channel.sleepers -= 1

    def _take(self) -> Optional[str]:
        """The next chunk if one is there; raises the error once all are out."""
        if self._channel.cancelled:
            return None
        if self._handed == len(self._parts):
            self._fill()
        if self._handed < len(self._parts):
            chunk = self._parts[self._handed]
            self._handed += 1
            return chunk
        self._raise_error()
        return None

    def _exhausted(self) -> bool:
        channel = self._channel
        return channel.cancelled or (
            channel.ended and not channel.queue and self._handed == len(self._parts)
        )

    def _fill(self) -> None:
        """Move the queued chunks to ``_parts``; wake a worker waiting for room."""
        queue = self._channel.queue
        if queue:
            was_full = len(queue) >= self._channel.maxsize
            self._parts.extend(queue)
            queue.clear()
            if was_full:
                self._channel.writable.notify()

    def _raise_error(self) -> None:
        error = self._channel.error
        if error is not None and self._channel.ended:
            self._error_raised = True
            raise error

    def __repr__(self) -> str:
        channel = self._channel
        state = (
            "closed" if channel.cancelled else "ended" if channel.ended else "running"
        )
        return f"<BackgroundStream {state}, {len(self._parts)} chunks received>"


class _AsyncChunks:
    """``async for`` over a BackgroundStream; dropping it (``break``) cancels."""

    def __init__(self, stream: BackgroundStream) -> None:
        self._stream: Optional[BackgroundStream] = stream

    def __aiter__(self) -> _AsyncChunks:
        return self

    async def __anext__(self) -> str:
        if self._stream is None:
            raise StopAsyncIteration
        try:
            chunk = await self._stream._anext()
        except BaseException:
            self._stream._channel.cancel()
            self._stream = None
            raise
        if chunk is None:
            self._stream = None
            raise StopAsyncIteration
        return chunk

    async def aclose(self) -> None:
        if self._stream is not None:
            stream, self._stream = self._stream, None
            await stream.aclose()

    def __del__(self) -> None:
        stream: Any = getattr(self, "_stream", None)
        if stream is not None:
            cancel_soon(stream)


_Background = TypeVar("_Background", bound="BackgroundStream")


def background_request(
    send: Callable[..., Iterable[str]],
    maxsize: int = BACKGROUND_QUEUE_SIZE,
    kind: type[_Background] = BackgroundStream,  # type: ignore[assignment]
) -> _Background:
    """A background stream of one request: ``send(on_response=..., cancel=...)``
    (a client's ``send_prepared``) runs on the worker, so that close() can shut
    down every response it opens and stop a wait between two tries. ``kind``
    is the class of stream to make (a subclass of :class:`BackgroundStream`).
    """
    stream = kind.__new__(kind)
    stream._start(
        lambda channel: send(on_response=channel.watch, cancel=channel.cancel_event),
        maxsize,
    )
    return stream


def cancel_soon(stream: BackgroundStream) -> None:
    """Stop ``stream``'s worker without waiting for it: what a finalizer may do
    (``close()`` waits for the worker, which ``__del__`` must not).
    """
    stream._channel.cancel()
