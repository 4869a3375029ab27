"""One thread owns the model: every request that touches it is a job in one bounded queue.

Why a single worker: the networks hold no per-request state but torch runs one forward at a time best on
the cores it has; a second thread would only interleave two syntheses and make both slower. The public
API generates one utterance per call (``clone_batch`` loops over requests), so the worker takes the jobs in
arrival order, one at a time; a full queue is refused at once (HTTP 503) instead of growing without bound.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any


class QueueFull(RuntimeError):
    """The queue already holds its maximum of waiting jobs."""


class Worker:
    """``submit(fn)`` → a ``Future`` of ``fn()``, run on the worker thread in arrival order."""

    def __init__(self, max_queue: int = 16):
        if max_queue < 1:
            raise ValueError(f"the queue must hold at least 1 job, not {max_queue}")
        self.jobs: queue.Queue[tuple[Future, Callable[[], Any]] | None] = queue.Queue(maxsize=max_queue)
        self.thread = threading.Thread(target=self._run, name="maskgct-worker", daemon=True)
        self.thread.start()

    def submit(self, fn: Callable[[], Any]) -> Future:
        future: Future = Future()
        try:
            self.jobs.put_nowait((future, fn))
        except queue.Full:
            raise QueueFull(f"the server is busy: {self.jobs.maxsize} requests are already waiting") from None
        return future

    @property
    def waiting(self) -> int:
        return self.jobs.qsize()

    def close(self) -> None:
        """Finish the queued jobs, then stop the thread."""
        self.jobs.put(None)
        self.thread.join()

    def _run(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            future, fn = job
            # A client that gave up (timeout) cancelled its future: skip the work.
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn())
            except BaseException as err:  # reported to the request that made it; the worker goes on
                future.set_exception(err)
