"""Progress of a long job as plain lines on stderr, one every N items or steps.

Lines rather than a redrawn bar: these jobs (feature statistics, the w2v-BERT stand-in's CTC training) run
for many minutes inside recipes whose output goes to log files, where a bar is one unreadable line.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressLines:
    """``update(done)`` prints ``<label>: <done>/<total> <unit><note>, 12 s, ~30 s left`` each time ``done``
    passes a multiple of ``every``, and once at ``total``; ``every`` 0 prints nothing."""

    def __init__(self, label: str, total: int, unit: str, every: int, stream: TextIO | None = None):
        if every < 0:
            raise ValueError(f"progress every {every} {unit}: must be >= 0")
        self.label, self.total, self.unit, self.every = label, total, unit, every
        self.stream = stream
        self.started = time.perf_counter()
        self.next = every  # print when done reaches this
        self.finished = False

    def update(self, done: int, note: str = "") -> None:
        if not self.every or self.finished or (done < self.next and done < self.total):
            return
        self.next = (done // self.every + 1) * self.every
        self.finished = done >= self.total
        elapsed = time.perf_counter() - self.started
        left = f", ~{elapsed * (self.total - done) / done:.0f} s left" if 0 < done < self.total else ""
        print(
            f"{self.label}: {done}/{self.total} {self.unit}{note}, {elapsed:.0f} s{left}",
            file=self.stream or sys.stderr,
            flush=True,
        )
