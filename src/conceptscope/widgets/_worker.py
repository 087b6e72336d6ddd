"""A worker thread for the views' CRP work, so the kernel's message handlers return at once.

Jobs run one at a time, in submission order, except that a job may ask to wait ``delay`` seconds
first: work that can come a moment later (a composition tree, a gallery) then lets the result the
user is waiting for reach the screen before it competes for the CPU, and is skipped if superseded
meanwhile. Each job has a key; a newer job with the same key supersedes it: a superseded job that
has not started is skipped, and one that was running when it was superseded has its result
dropped (its ``finish`` is never called). So only the latest job of a key ever reaches the screen.
Views that share a worker (the views of an explorer) also share its re-entrant ``lock``, which
guards their state against the kernel's message threads.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

log = logging.getLogger("conceptscope.widgets")

Finish = Callable[[Any, BaseException | None], None]


class Worker:
    """One daemon thread running submitted jobs; the latest job per key wins."""

    def __init__(self, name: str = "conceptscope-worker"):
        self.name = name
        self.lock = threading.RLock()
        self._jobs: list[tuple[float, int, Hashable, Callable[[], Any], Finish]] = []  # heap by start time
        self._latest: dict[Hashable, int] = {}
        self._counter = itertools.count(1)
        self._state = threading.Condition(threading.Lock())  # guards _jobs, _latest, _thread, _running
        self._thread: threading.Thread | None = None
        self._running = False

    def submit(self, key: Hashable, compute: Callable[[], Any], finish: Finish, delay: float = 0.0) -> None:
        """Run ``compute()`` (not before ``delay`` seconds from now), then ``finish(result, None)`` or
        ``finish(None, exc)``, unless a newer job with the same key came first."""
        with self._state:
            ticket = next(self._counter)
            self._latest[key] = ticket
            heapq.heappush(self._jobs, (time.monotonic() + delay, ticket, key, compute, finish))
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
                self._thread.start()
            self._state.notify_all()

    def is_latest(self, key: Hashable, ticket: int) -> bool:
        with self._state:
            return self._latest.get(key) == ticket

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until every submitted job has run or been skipped; False on timeout."""
        with self._state:
            return self._state.wait_for(lambda: not self._jobs and not self._running, timeout)

    def _next(self) -> tuple[int, Hashable, Callable[[], Any], Finish]:
        """The next job to run: the earliest due, waiting for it (skipping superseded ones)."""
        with self._state:
            self._running = False
            self._state.notify_all()
            while True:
                if not self._jobs:
                    self._state.wait()
                    continue
                start, ticket, key, compute, finish = self._jobs[0]
                if self._latest.get(key) != ticket:  # superseded while queued: skip the work
                    heapq.heappop(self._jobs)
                    self._state.notify_all()
                    continue
                wait = start - time.monotonic()
                if wait > 0:
                    self._state.wait(wait)
                    continue
                heapq.heappop(self._jobs)
                self._running = True
                return ticket, key, compute, finish

    def _loop(self) -> None:
        while True:
            self._run(*self._next())

    def _run(self, ticket: int, key: Hashable, compute: Callable[[], Any], finish: Finish) -> None:
        try:
            result, error = compute(), None
        except Exception as exc:
            result, error = None, exc
        with self.lock:  # submitters hold the lock too, so no newer job slips in before finish
            if not self.is_latest(key, ticket):
                return  # superseded while running: drop the stale result
            try:
                finish(result, error)
            except Exception:
                log.exception("%s: applying the result of job %r failed", self.name, key)
