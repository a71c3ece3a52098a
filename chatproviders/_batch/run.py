"""Many chats through one client: in input order, paced, resumable.

:func:`batch` checks every input first, then sends them. The caller's thread
does all the bookkeeping (pacing, retries, the checkpoint, progress); the
calls run on a thread pool of ``concurrency`` workers, or on the ``executor``
given (a Dask cluster's, say), through ``client.with_options(max_retries=0)``:
retries are the batch's, so that a 429 pauses every worker, not one.
"""

from __future__ import annotations

import dataclasses
import functools
import heapq
import logging
import math
import queue
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Callable, Optional, Protocol, Union

from .._client import Client
from .._constants import DEFAULT_MAX_RETRIES, MAX_RETRY_AFTER
from .._numbers import check_count, check_rate
from .._streams.chat_stream import ChatResponse
from .._wire.retry import backoff_delay, is_retryable
from ..exceptions import (
    AllProvidersFailedError,
    APIError,
    APIStatusError,
    ChatProvidersError,
    CheckpointError,
)
from .checkpoint import Checkpoint, PathLike
from .inputs import Call, Input, describe_client, make_calls
from .items import BatchItem, BatchResult
from .progress import Progress

__all__ = ["BatchItem", "BatchResult", "batch"]

logger = logging.getLogger("chatproviders")

#: The clock and the sleep of the pacing; tests replace both, together.
monotonic: Callable[[], float] = time.monotonic
sleep: Callable[[float], None] = time.sleep

#: Statuses that pause the whole batch: the server asked everyone to wait.
PAUSE_STATUSES = frozenset({429, 503})


class Executor(Protocol):
    """What ``executor=`` needs: ``submit`` returning a future."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any: ...


def batch(
    client: Any,
    inputs: Iterable[Input],
    *,
    concurrency: int = 4,
    rate: Optional[float] = None,
    checkpoint: Optional[PathLike] = None,
    progress: Union[bool, Callable[[BatchItem], Any], None] = None,
    executor: Optional[Executor] = None,
    schema: Any = None,
    **call_kwargs: Any,
) -> BatchResult:
    """Send every input through ``client``; the items come back in input order.

    An input is a prompt ``str`` (one user message), a messages list, or a
    dict with ``"prompt"`` or ``"messages"`` and optionally ``"id"``,
    ``"model"`` and call parameters; ``call_kwargs`` (``model=``,
    ``temperature=``...) apply to every input that does not set its own.
    Every input is checked before anything is sent; a bad one raises naming
    its index. A failed item never stops the batch: it has ``error`` set.

    At most ``concurrency`` requests are in flight (a thread is started only
    when a request needs one). With ``rate``, the server never sees more than
    ``rate`` requests arrive in any one second (``rate`` below 1: one in any
    ``1/rate`` s), however unevenly the network delivers them: starts are
    spaced ``1/rate`` s apart, and a request starts only once all but
    ``rate - 1`` of those before it are known to have reached the server
    over a second ago (their reply's first chunk, or their error, came back).
    So a server slow to answer holds the rate below ``rate``; with an
    ``executor``, a request counts as arrived only once it has finished.

    A 429 or 503 always pauses the whole batch, not only its item, for its
    ``Retry-After`` (or the backoff), even when the item has no try left;
    then the item is tried again, up to the client's ``max_retries``. A
    ``Retry-After`` longer than a client waits (60 s; a daily quota, say)
    stops the batch instead of waiting: nothing more is
    sent, the requests in flight finish, and every item not done fails with
    that error (``tries`` 0 for those never sent), so that running the same
    batch with the same checkpoint once the wait is over sends exactly them.

    ``checkpoint``: a JSONL file with one line per finished item, written as
    it finishes; run the same batch again and the items that succeeded are
    read back, not sent. When the batch ends the file is rewritten, one line
    per item in input order. A file written for other inputs or another
    client (another class, base URL, model or parameters) raises ValueError
    naming what changed. The file is locked while the batch runs: another
    process on it gets :class:`~chatproviders.CheckpointError` at once, as
    does a path that is no regular file (a FIFO, a device, a folder). A
    failed write (a full disk) raises CheckpointError naming the file, with
    ``partial``, and nothing more is sent (with an ``executor``, the calls
    already running there finish as they would).

    ``progress``: None shows a tqdm bar (when tqdm is installed) if the run
    lasts over 2 s and stderr is a terminal (or in a Jupyter notebook), True
    always, False never; a callable is called with each finished item
    instead. ``executor``: any ``concurrent.futures.Executor``-like object to
    run the calls on (the client must then pickle); pacing and the checkpoint
    stay here.

    ``schema``: each input is sent with ``client.parse(..., schema)`` (see
    :meth:`~chatproviders.Client.parse`) and its item gets ``parsed``; an
    input whose reply never validates fails with
    :class:`~chatproviders.StructuredOutputError`.

    Ctrl-C stops sending and raises KeyboardInterrupt; its ``partial``
    attribute is a :class:`BatchResult` of the items finished so far.
    """
    options = RunOptions(concurrency, rate, checkpoint, progress, executor, schema)
    return run(client, make_calls(client, inputs, call_kwargs), options)


@dataclass(frozen=True)
class RunOptions:
    """How a batch runs (see :func:`batch`), checked when made."""

    concurrency: int = 4
    rate: Optional[float] = None
    checkpoint: Optional[PathLike] = None
    progress: Union[bool, Callable[[BatchItem], Any], None] = None
    executor: Optional[Executor] = None
    schema: Any = None

    def __post_init__(self) -> None:
        check_count(self.concurrency, "concurrency", minimum=1)
        if self.rate is not None:
            check_rate(self.rate, "rate")
        progress = self.progress
        if not (progress is None or isinstance(progress, bool) or callable(progress)):
            raise TypeError(
                f"progress must be None, True, False or a callable, got {progress!r}"
            )
        executor = self.executor
        if executor is not None and not callable(getattr(executor, "submit", None)):
            raise TypeError(
                "executor must have submit() returning a future, like "
                f"concurrent.futures.Executor; got {type(executor).__name__}"
            )


def run(
    client: Any, calls: Sequence[Call], options: RunOptions = RunOptions()
) -> BatchResult:
    """Send ``calls`` (from :func:`make_calls`); see :func:`batch`."""
    concurrency, rate, checkpoint = (
        options.concurrency,
        options.rate,
        options.checkpoint,
    )
    progress, executor, schema = options.progress, options.executor, options.schema
    structured: Any = None
    if schema is not None:
        from .._structured import _batch as parsing

        parsing.check(schema)  # before anything is read or sent
        structured = parsing
    fingerprints = [call.fingerprint for call in calls]
    done: dict[int, BatchItem] = {}
    records: dict[int, Mapping[str, Any]] = {}
    book = None
    if checkpoint is not None:
        client_described = describe_client(client)
        models = [call.model for call in calls]
        book = Checkpoint(checkpoint, fingerprints, client_described, models)
        book.open()
        try:
            records.update(book.read())
        except BaseException:
            book.close()
            raise
        for index, record in records.items():
            item = BatchItem.from_record(calls[index], record)
            if structured is None and "parsed" in record:
                continue  # answered to a schema's prompt: ask the plain one
            if structured is not None:
                kept, parsed = structured.from_record(schema, record)
                if not kept:  # no value that fits the schema: send it again
                    continue
                item = dataclasses.replace(item, parsed=parsed)
            done[index] = item

    def finished() -> BatchResult:
        return BatchResult(done[i] for i in sorted(done))

    def finish(item: BatchItem) -> None:
        done[item.index] = item
        if book is not None:
            record = item.record(fingerprints[item.index], client_described)
            if structured is not None and item.ok:
                record.update(structured.to_record(schema, item.parsed))
            try:
                book.write(record)
            except CheckpointError as exc:
                exc.partial = finished()
                raise
            records[item.index] = record
        shown(item)

    try:
        shown = Progress(progress, len(calls), len(done))
    except BaseException:
        if book is not None:
            book.close()
        raise
    fast = (
        client.with_options(max_retries=0)
        if hasattr(client, "with_options")
        else client
    )
    if structured is not None:
        fast = structured.ParsingClient(fast, schema)
    own = None
    if executor is None:
        executor = own = _Workers(concurrency)
    interrupted = False
    try:
        _Loop(executor, fast, finish, concurrency, rate, _max_tries(client), own).run(
            [call for call in calls if call.index not in done]
        )
        if book is not None:
            try:
                book.rewrite(records[call.index] for call in calls)
            except CheckpointError as exc:
                exc.partial = finished()
                raise
    except KeyboardInterrupt as exc:
        interrupted = True
        exc.partial = finished()  # type: ignore[attr-defined]
        raise
    except BaseException:
        interrupted = True
        raise
    finally:
        if own is not None:
            own.shutdown(wait=not interrupted)
        shown.close()
        if book is not None:
            book.close()
    return BatchResult(done[call.index] for call in calls)


def send(
    client: Any,
    call: Call,
    cancel: Optional[threading.Event] = None,
    acked: Optional[Callable[[], None]] = None,
) -> ChatResponse:
    """One call, on a worker (a thread here, or a process of an executor).

    Once ``cancel`` is set (the batch stopped), nothing is sent: not this
    call if it has not started, nor a FallbackProvider's next member.
    ``acked`` is called once the reply's first chunk is in: the server has
    the request.
    """
    if cancel is not None and isinstance(client, Client):
        if cancel.is_set():
            why = "the client was closed" if client.closed else "the batch stopped"
            raise ChatProvidersError(f"{why} before this item was sent")
        prepared = client.prepare(call.messages, call.model, call.params)
        stream = client.send_prepared(prepared, cancel=cancel)
        if acked is not None:
            acked()
        return stream.until_done()
    reply: ChatResponse = client.complete(call.messages, call.model, **call.params)
    return reply


class _Workers:
    """The batch's own threads, started only as requests need them (one
    input, one thread, whatever ``concurrency``), and daemon ones: after
    Ctrl-C, a request still in flight does not hold up the interpreter's exit
    until its read times out, as ThreadPoolExecutor's threads, joined at
    exit, would.
    """

    def __init__(self, most: int) -> None:
        self._most = most
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = 0  # threads waiting for a job, not yet promised one
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future[Any]:
        future: Future[Any] = Future()
        self._jobs.put((future, fn, args))
        with self._lock:
            if self._idle:
                self._idle -= 1  # that thread takes this job
            elif len(self._threads) < self._most:
                thread = threading.Thread(
                    target=self._work,
                    name=f"chatproviders-batch-{len(self._threads)}",
                    daemon=True,
                )
                self._threads.append(thread)
                thread.start()
        return future

    def shutdown(self, wait: bool) -> None:
        """Let every thread end once it is idle; with ``wait``, join them."""
        with self._lock:
            threads = list(self._threads)
        for _ in threads:
            self._jobs.put(None)
        if wait:
            for thread in threads:
                thread.join()

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            future, fn, args = job
            if future.set_running_or_notify_cancel():  # else cancelled meanwhile
                try:
                    result = fn(*args)
                except BaseException as exc:
                    future.set_exception(exc)
                else:
                    future.set_result(result)
            del future, fn, args, job  # nothing kept while idle
            with self._lock:
                self._idle += 1


class _Start:
    """One request the pacer let start: when, and when it is known to have
    reached the server (its first chunk or its error came back), or None.
    """

    __slots__ = ("ack", "at")

    def __init__(self, at: float) -> None:
        self.at = at
        self.ack: Optional[float] = None


class _Pacer:
    """When the next request may start: the rate, and the batch's pause.

    The rate holds at the server by construction: a request that starts at
    ``now`` arrives at ``now`` or later, and one acknowledged at ``ack``
    arrived at ``ack`` or earlier; so once fewer than ``capacity`` of the
    requests before it may still arrive within ``window`` of ``now``, no
    window of the server's holds more than ``capacity`` arrivals.
    """

    def __init__(self, rate: Optional[float]) -> None:
        self.capacity = 0 if rate is None else max(1, int(rate))
        self.window = 1.0 if rate is None or rate >= 1 else 1.0 / rate
        self.interval = 0.0 if rate is None else 1.0 / rate
        self.last = -math.inf
        self.recent: list[_Start] = []  # may still arrive within a window
        self.paused_until = -math.inf

    def wait(self, now: float) -> float:
        """Seconds until a request may start (0: now; inf: once one more of
        those started is acknowledged).
        """
        wait = max(self.paused_until - now, self.last + self.interval - now, 0.0)
        if not self.capacity:
            return wait
        horizon = now - self.window
        self.recent = [s for s in self.recent if s.ack is None or s.ack > horizon]
        excess = len(self.recent) - self.capacity + 1
        if excess > 0:
            acks = sorted(s.ack for s in self.recent if s.ack is not None)
            if len(acks) < excess:
                return math.inf
            wait = max(wait, acks[excess - 1] + self.window - now)
        return wait

    def started(self, now: float) -> _Start:
        self.last = now
        start = _Start(now)
        if self.capacity:
            self.recent.append(start)
        return start

    def pause(self, now: float, seconds: float) -> None:
        self.paused_until = max(self.paused_until, now + seconds)


class _Loop:
    """Start calls as pacing allows, collect them as they finish, retry some."""

    def __init__(
        self,
        pool: Executor,
        client: Any,
        finish: Callable[[BatchItem], None],
        concurrency: int,
        rate: Optional[float],
        max_tries: int,
        own: Optional[_Workers] = None,
    ) -> None:
        self.pool = pool
        self.client = client
        self.finish = finish
        self.concurrency = concurrency
        self.pacer = _Pacer(rate)
        self.max_tries = max_tries
        self.retries: list[tuple[float, int, int, Call]] = []  # a heap
        self.running: dict[Any, tuple[Call, int]] = {}
        # Futures as they finish, and None when a request was acknowledged.
        self.finished: queue.SimpleQueue[Any] = queue.SimpleQueue()
        # Our own threads see the batch stop; another executor's workers
        # (processes, maybe) cannot share an Event.
        self.cancel = threading.Event() if own is not None else None
        self.stopped: Optional[ChatProvidersError] = None

    def run(self, calls: Sequence[Call]) -> None:
        fresh = deque(calls)
        try:
            while fresh or self.retries or self.running:
                if self.stopped is not None and not self.running:
                    self._fail_the_rest(fresh, self.stopped)
                    return
                wait = self._start(fresh)
                if self.running:
                    try:
                        timeout = None if wait == math.inf else wait
                        future = self.finished.get(timeout=timeout)
                    except queue.Empty:
                        continue
                    self._collect(future)
                    while not self.finished.empty():
                        self._collect(self.finished.get())
                elif wait is not None and wait < math.inf:
                    sleep(wait)
        except BaseException:
            if self.cancel is not None:
                self.cancel.set()
            for future in self.running:
                future.cancel()
            raise

    def _start(self, fresh: deque[Call]) -> Optional[float]:
        """Start what may start now; seconds until the next may, or None."""
        while (
            self.stopped is None
            and len(self.running) < self.concurrency
            and (fresh or self.retries)
        ):
            now = monotonic()
            wait = self.pacer.wait(now)
            due = bool(self.retries) and self.retries[0][0] <= now
            if not due and not fresh:
                wait = max(wait, self.retries[0][0] - now)
            if wait > 0:
                return wait
            if due:
                _, _, tries, call = heapq.heappop(self.retries)
            else:
                call, tries = fresh.popleft(), 0
            start = self.pacer.started(now)
            if self.cancel is None:
                future = self.pool.submit(send, self.client, call)
            else:
                acked = functools.partial(self._acked, start)
                future = self.pool.submit(send, self.client, call, self.cancel, acked)
            self.running[future] = (call, tries + 1)
            future.add_done_callback(functools.partial(self._done, start))
        return None

    def _acked(self, start: _Start) -> None:
        """On the worker: the request's first chunk is in."""
        if start.ack is None:
            start.ack = monotonic()
            self.finished.put(None)  # the pacer may let another start

    def _done(self, start: _Start, future: Future[ChatResponse]) -> None:
        if start.ack is None:
            start.ack = monotonic()
        self.finished.put(future)

    def _collect(self, future: Optional[Future[ChatResponse]]) -> None:
        if future is None:  # an acknowledgement: only the pacer cares
            return
        call, tries = self.running.pop(future)
        try:
            reply = future.result()
        except ChatProvidersError as error:
            now = monotonic()
            if _asks_everyone_to_wait(error):
                wait = _pause_for(error, tries)
                if wait > MAX_RETRY_AFTER:
                    self._stop(error, wait)
                    self.finish(_item(call, tries, error=error))
                    return
                self.pacer.pause(now, wait)
                logger.info("batch: every request waits %.2f s after: %s", wait, error)
                if tries < self.max_tries:
                    heapq.heappush(self.retries, (now, call.index, tries, call))
                else:
                    self.finish(_item(call, tries, error=error))
                return
            delay = _retry_delay(error, tries) if tries < self.max_tries else None
            if delay is None:
                self.finish(_item(call, tries, error=error))
                return
            heapq.heappush(self.retries, (now + delay, call.index, tries, call))
            return
        self.finish(_item(call, tries, reply=reply))

    def _stop(self, error: ChatProvidersError, wait: float) -> None:
        """Send nothing more: the server asked for a longer wait than allowed."""
        if self.stopped is None:
            logger.warning(
                "batch: stopped: the server asks every request to wait %.0f s, "
                "over the %.0f s a client waits; the items not done fail: %s",
                wait,
                MAX_RETRY_AFTER,
                error,
            )
            self.stopped = error
            if self.cancel is not None:
                self.cancel.set()

    def _fail_the_rest(self, fresh: deque[Call], error: ChatProvidersError) -> None:
        waiting = [(tries, call) for _, _, tries, call in self.retries]
        waiting += [(0, call) for call in fresh]
        self.retries.clear()
        fresh.clear()
        for tries, call in sorted(waiting, key=lambda pair: pair[1].index):
            self.finish(_item(call, tries, error=error))


def _item(
    call: Call,
    tries: int,
    reply: Optional[ChatResponse] = None,
    error: Optional[ChatProvidersError] = None,
) -> BatchItem:
    return BatchItem(
        call.index,
        call.id,
        call.input,
        text=None if reply is None else reply.text,
        reply=reply,
        error=error,
        provider=reply.provider
        if reply is not None
        else getattr(error, "provider", None),
        usage=getattr(reply, "usage", None),
        tries=tries,
        parsed=getattr(reply, "parsed", None),
    )


def _errors(error: ChatProvidersError) -> list[BaseException]:
    """The error, or each provider's when a FallbackProvider ran out."""
    if isinstance(error, AllProvidersFailedError):
        return [attempt.error for attempt in error.attempts]
    return [error]


def _retry_delay(error: ChatProvidersError, tries: int) -> Optional[float]:
    """Seconds before trying again, or None when the error is final."""
    errors = _errors(error)
    if not errors or not all(
        isinstance(e, APIError) and is_retryable(e) for e in errors
    ):
        return None
    return max(backoff_delay(tries, getattr(e, "retry_after", None)) for e in errors)


def _pause_for(error: ChatProvidersError, tries: int) -> float:
    """How long the batch waits after a 429 or 503: the longest Retry-After
    (of every provider, for a FallbackProvider), else the backoff.
    """
    return max(
        backoff_delay(tries, getattr(e, "retry_after", None)) for e in _errors(error)
    )


def _asks_everyone_to_wait(error: ChatProvidersError) -> bool:
    """A 429 or 503 (from every provider, for a FallbackProvider)."""
    return all(
        isinstance(e, APIStatusError) and e.status_code in PAUSE_STATUSES
        for e in _errors(error)
    )


def _max_tries(client: Any) -> int:
    """Tries per item: the client's ``max_retries`` (the most of any member) + 1."""
    members = getattr(client, "providers", None) or [client]
    retries = [
        getattr(member, "max_retries", DEFAULT_MAX_RETRIES) for member in members
    ]
    return 1 + max(retries)
