"""One thread owns the model: every request that touches it is a job in one bounded queue.

Why a single worker: the networks hold no per-request state but torch runs one forward at a time best on
the cores it has; a second thread would only interleave two syntheses and make both slower. So the worker
takes the jobs in arrival order, one at a time; a full queue is refused at once (HTTP 503) instead of
growing without bound. Batching is the one exception to one-at-a-time: when the job it takes is a
*batchable* one (speech), the worker also takes up to ``max_batch - 1`` more batchable jobs waiting
behind it and runs them together through ``run_batch`` (``MaskGCT.clone_batch``: one padded decode),
leaving the other jobs in their order.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any


class QueueFull(RuntimeError):
    """The queue already holds its maximum of waiting jobs."""


# items -> one result (or the exception raised for it) per item
BatchFn = Callable[[Sequence[Any]], Sequence[Any]]


class Worker:
    """``submit(fn)`` → a ``Future`` of ``fn()``; ``submit_batchable(item)`` → a ``Future`` of this item's
    result from ``run_batch``. Jobs run on the worker thread in arrival order."""

    def __init__(self, max_queue: int = 16, max_batch: int = 1, run_batch: BatchFn | None = None):
        if max_queue < 1 or max_batch < 1:
            raise ValueError(f"the queue must hold at least 1 job, not {max_queue}, batches at least 1")
        self.max_queue, self.max_batch, self.run_batch = max_queue, max_batch, run_batch
        # (future, fn, item): fn for a plain job, None for a batchable item; None alone: stop.
        self.jobs: deque[tuple[Future, Callable[[], Any] | None, Any] | None] = deque()
        self.ready = threading.Condition()
        self.thread = threading.Thread(target=self._run, name="maskgct-worker", daemon=True)
        self.thread.start()

    def submit(self, fn: Callable[[], Any]) -> Future:
        return self._put(fn, None)

    def submit_batchable(self, item: Any) -> Future:
        if self.run_batch is None:
            raise RuntimeError("this worker has no batch function")
        return self._put(None, item)

    def _put(self, fn, item) -> Future:
        future: Future = Future()
        with self.ready:
            if len(self.jobs) >= self.max_queue:
                raise QueueFull(f"the server is busy: {self.max_queue} requests are already waiting")
            self.jobs.append((future, fn, item))
            self.ready.notify()
        return future

    @property
    def waiting(self) -> int:
        return len(self.jobs)

    def close(self) -> None:
        """Finish the queued jobs, then stop the thread."""
        with self.ready:
            self.jobs.append(None)
            self.ready.notify()
        self.thread.join()

    def _take(self) -> list | None:
        """The next job, with the batchable jobs behind it when it is one (None: stop)."""
        with self.ready:
            while not self.jobs:
                self.ready.wait()
            job = self.jobs.popleft()
            if job is None:
                return None
            if job[1] is not None:  # a plain job runs alone
                return [job]
            batch = [job]
            for other in list(self.jobs):
                if len(batch) == self.max_batch:
                    break
                if other is not None and other[1] is None:
                    self.jobs.remove(other)
                    batch.append(other)
            return batch

    def _run(self) -> None:
        while (jobs := self._take()) is not None:
            # A client that gave up (timeout) cancelled its future: skip its work.
            jobs = [job for job in jobs if job[0].set_running_or_notify_cancel()]
            if not jobs:
                continue
            future, fn, _ = jobs[0]
            if fn is not None:
                try:
                    future.set_result(fn())
                except BaseException as err:  # reported to the request that made it; the worker goes on
                    future.set_exception(err)
                continue
            try:
                results = self.run_batch([item for _, _, item in jobs])
            except BaseException as err:
                results = [err] * len(jobs)
            for (future, _, _), result in zip(jobs, results, strict=True):
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)
