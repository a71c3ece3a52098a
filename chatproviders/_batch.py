"""Many chats through one client: in input order, paced, resumable.

:func:`batch` checks every input first, then sends them. The caller's thread
does all the bookkeeping (pacing, retries, the checkpoint, progress); the
calls run on a thread pool of ``concurrency`` workers, or on the ``executor``
given (a Dask cluster's, say), through ``client.with_options(max_retries=0)``:
retries are the batch's, so that a 429 pauses every worker, not one.
"""

from __future__ import annotations

import heapq
import logging
import math
import queue
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Protocol, Union

from ._batch_inputs import Call, Input, make_calls
from ._checkpoint import Checkpoint, PathLike
from ._constants import DEFAULT_MAX_RETRIES
from ._progress import Progress
from ._retry import backoff_delay, is_retryable
from ._streaming import ChatResponse
from .exceptions import (
    AllProvidersFailedError,
    APIError,
    APIStatusError,
    ChatProvidersError,
)

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


@dataclass(frozen=True)
class BatchItem:
    """One input's outcome. ``text`` is None when it failed; then ``error``
    says why. Items read back from a checkpoint have ``reply=None``. In a
    batch given a ``schema``, ``parsed`` is the reply read into it (None when
    the model refused), and the checkpoint keeps it as JSON.
    """

    index: int
    id: Any
    input: Any = field(repr=False)
    text: Optional[str] = None
    reply: Optional[ChatResponse] = field(default=None, repr=False)
    error: Optional[ChatProvidersError] = None
    provider: Optional[str] = None
    usage: Any = field(default=None, repr=False)
    tries: int = 0
    parsed: Any = None

    @property
    def ok(self) -> bool:
        """True when the item has its reply."""
        return self.error is None

    def record(self, input_sha: str) -> dict[str, Any]:
        """The item as a checkpoint line (see :mod:`chatproviders._checkpoint`)."""
        error = None if self.error is None else f"{type(self.error).__name__}: "
        record: dict[str, Any] = {
            "index": self.index,
            "id": self.id,
            "text": self.text,
            "error": None if self.error is None else f"{error}{self.error}",
            "provider": self.provider,
            "model": self.reply.model if self.reply is not None else None,
        }
        if self.usage is not None:
            record["usage"] = self.usage
        record["input_sha"] = input_sha
        return record


class BatchResult(list[BatchItem]):
    """The items of a batch, in input order: a list, plus summaries."""

    @property
    def succeeded(self) -> list[BatchItem]:
        return [item for item in self if item.error is None]

    @property
    def failed(self) -> list[BatchItem]:
        return [item for item in self if item.error is not None]

    @property
    def texts(self) -> list[Optional[str]]:
        """Each item's text, None where it failed: a column for a DataFrame."""
        return [item.text for item in self]

    @property
    def parsed(self) -> list[Any]:
        """Each item's parsed value (a batch given a ``schema``), None where
        it failed or the model refused: rows for a DataFrame.
        """
        return [item.parsed for item in self]

    def __repr__(self) -> str:
        return (
            f"<BatchResult of {len(self)} items: {len(self.succeeded)} "
            f"succeeded, {len(self.failed)} failed>"
        )


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

    At most ``concurrency`` requests are in flight, and with ``rate`` at most
    ``rate`` start in any one second (below 1: one every ``1/rate`` s). A 429
    or 503 pauses the whole batch for its ``Retry-After`` (or the backoff),
    then the item is tried again, up to the client's ``max_retries``.

    ``checkpoint``: a JSONL file with one line per finished item, written as
    it finishes; run the same batch again and the items that succeeded are
    read back, not sent. ``progress``: None shows a tqdm bar (when tqdm is
    installed) if the run lasts over 2 s, True always, False never; a
    callable is called with each finished item instead. ``executor``: any
    ``concurrent.futures.Executor``-like object to run the calls on (the
    client must then pickle); pacing and the checkpoint stay here.

    ``schema``: each input is sent with ``client.parse(..., schema)`` (see
    :meth:`~chatproviders.Client.parse`) and its item gets ``parsed``; an
    input whose reply never validates fails with
    :class:`~chatproviders.StructuredOutputError`.

    Ctrl-C stops sending and raises KeyboardInterrupt; its ``partial``
    attribute is a :class:`BatchResult` of the items finished so far.
    """
    calls = make_calls(client, inputs, call_kwargs)
    return run(
        client,
        calls,
        concurrency=concurrency,
        rate=rate,
        checkpoint=checkpoint,
        progress=progress,
        executor=executor,
        schema=schema,
    )


def run(
    client: Any,
    calls: Sequence[Call],
    *,
    concurrency: int = 4,
    rate: Optional[float] = None,
    checkpoint: Optional[PathLike] = None,
    progress: Union[bool, Callable[[BatchItem], Any], None] = None,
    executor: Optional[Executor] = None,
    schema: Any = None,
) -> BatchResult:
    """Send ``calls`` (from :func:`make_calls`); see :func:`batch`."""
    _check_options(concurrency, rate, progress, executor)
    if schema is not None:
        from ._structured import _batch as structured

        structured.check(schema)  # before anything is read or sent
    fingerprints = [call.fingerprint for call in calls]
    book = None if checkpoint is None else Checkpoint(checkpoint, fingerprints)
    done: dict[int, BatchItem] = {}
    if book is not None:
        for index, record in book.read().items():
            call = calls[index]
            parsed = None
            if schema is not None:
                kept, parsed = structured.from_record(schema, record)
                if not kept:  # no value that fits the schema: send it again
                    continue
            done[index] = BatchItem(
                index,
                call.id,
                call.input,
                text=record.get("text"),
                provider=record.get("provider"),
                usage=record.get("usage"),
                parsed=parsed,
            )
        book.open()
    shown = Progress(progress, len(calls), len(done))

    def finish(item: BatchItem) -> None:
        done[item.index] = item
        if book is not None:
            record = item.record(fingerprints[item.index])
            if schema is not None and item.ok:
                record["parsed"] = structured.to_record(schema, item.parsed)
            book.write(record)
        shown(item)

    fast = (
        client.with_options(max_retries=0)
        if hasattr(client, "with_options")
        else client
    )
    if schema is not None:
        fast = structured.ParsingClient(fast, schema)
    own = None
    if executor is None:
        executor = own = _Workers(concurrency)
    interrupted = False
    try:
        _Loop(executor, fast, finish, concurrency, rate, _max_tries(client)).run(
            [call for call in calls if call.index not in done]
        )
    except KeyboardInterrupt as exc:
        interrupted = True
        exc.partial = BatchResult(done[i] for i in sorted(done))  # type: ignore[attr-defined]
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


def send(client: Any, call: Call) -> ChatResponse:
    """One call, on a worker (a thread here, or a process of an executor)."""
    reply: ChatResponse = client.complete(call.messages, call.model, **call.params)
    return reply


class _Workers:
    """The batch's own threads, daemon ones: after Ctrl-C, a request still in
    flight does not hold up the interpreter's exit until its read times out,
    as ThreadPoolExecutor's threads, joined at exit, would.
    """

    def __init__(self, count: int) -> None:
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(
                target=self._work, name=f"chatproviders-batch-{i}", daemon=True
            )
            for i in range(count)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future[Any]:
        future: Future[Any] = Future()
        self._jobs.put((future, fn, args))
        return future

    def shutdown(self, wait: bool) -> None:
        """Let every thread end once it is idle; with ``wait``, join them."""
        for _ in self._threads:
            self._jobs.put(None)
        if wait:
            for thread in self._threads:
                thread.join()

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            future, fn, args = job
            if not future.set_running_or_notify_cancel():
                continue  # cancelled while it waited
            try:
                result = fn(*args)
            except BaseException as exc:
                future.set_exception(exc)
            else:
                future.set_result(result)
            del future, fn, args, job  # nothing kept while idle


class _Pacer:
    """When the next request may start: the rate window and the batch's pause."""

    def __init__(self, rate: Optional[float]) -> None:
        self.capacity = 0 if rate is None else max(1, int(rate))
        self.window = 1.0 if rate is None or rate >= 1 else 1.0 / rate
        self.starts: deque[float] = deque()
        self.paused_until = -math.inf

    def wait(self, now: float) -> float:
        """Seconds until a request may start (0: now)."""
        wait = self.paused_until - now
        if self.capacity:
            while self.starts and self.starts[0] <= now - self.window:
                self.starts.popleft()
            if len(self.starts) >= self.capacity:
                wait = max(wait, self.starts[0] + self.window - now)
        return max(wait, 0.0)

    def started(self, now: float) -> None:
        if self.capacity:
            self.starts.append(now)

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
    ) -> None:
        self.pool = pool
        self.client = client
        self.finish = finish
        self.concurrency = concurrency
        self.pacer = _Pacer(rate)
        self.max_tries = max_tries
        self.retries: list[tuple[float, int, int, Call]] = []  # a heap
        self.running: dict[Any, tuple[Call, int]] = {}
        self.finished: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def run(self, calls: Sequence[Call]) -> None:
        fresh = deque(calls)
        try:
            while fresh or self.retries or self.running:
                wait = self._start(fresh)
                if self.running:
                    try:
                        future = self.finished.get(timeout=wait)
                    except queue.Empty:
                        continue
                    self._collect(future)
                    while not self.finished.empty():
                        self._collect(self.finished.get())
                elif wait is not None:
                    sleep(wait)
        except BaseException:
            for future in self.running:
                future.cancel()
            raise

    def _start(self, fresh: deque[Call]) -> Optional[float]:
        """Start what may start now; seconds until the next may, or None."""
        while len(self.running) < self.concurrency and (fresh or self.retries):
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
            self.pacer.started(now)
            future = self.pool.submit(send, self.client, call)
            self.running[future] = (call, tries + 1)
            future.add_done_callback(self.finished.put)
        return None

    def _collect(self, future: Future[ChatResponse]) -> None:
        call, tries = self.running.pop(future)
        try:
            reply = future.result()
        except ChatProvidersError as error:
            delay = _retry_delay(error, tries) if tries < self.max_tries else None
            if delay is None:
                self.finish(_item(call, tries, error=error))
                return
            now = monotonic()
            not_before = now + delay
            if _asks_everyone_to_wait(error):
                self.pacer.pause(now, delay)
                logger.info("batch: every request waits %.2f s after: %s", delay, error)
                not_before = now
            heapq.heappush(self.retries, (not_before, call.index, tries, call))
            return
        self.finish(_item(call, tries, reply=reply))


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


def _check_options(
    concurrency: int, rate: Optional[float], progress: Any, executor: Any
) -> None:
    if (
        not isinstance(concurrency, int)
        or isinstance(concurrency, bool)
        or concurrency < 1
    ):
        raise ValueError(f"concurrency must be an int >= 1, got {concurrency!r}")
    if rate is not None and (
        not isinstance(rate, (int, float))
        or isinstance(rate, bool)
        or not 0 < rate < math.inf
    ):
        raise ValueError(
            f"rate must be a number of requests per second > 0, got {rate!r}"
        )
    if not (progress is None or isinstance(progress, bool) or callable(progress)):
        raise TypeError(
            f"progress must be None, True, False or a callable, got {progress!r}"
        )
    if executor is not None and not callable(getattr(executor, "submit", None)):
        raise TypeError(
            "executor must have submit() returning a future, like "
            f"concurrent.futures.Executor; got {type(executor).__name__}"
        )
