"""An overall deadline for a blocking exchange: worker threads the caller stops waiting for.

httpx's timeouts bound each phase and each socket read, so a server dripping one byte
within every read timeout holds a blocking request for ever, and a blocking socket read
cannot be interrupted from Python. :func:`call_with_deadline` runs the exchange in a
worker thread and stops *waiting* at the deadline: the caller gets
:class:`~kanidm_sync.APITimeoutError` on time, and the worker is abandoned; it ends at its
own next socket timeout or body chunk (the clients' reader checks the deadline between
chunks) and what it returns is dropped.

Workers are daemon threads (they never hold the interpreter's exit) kept in one pool and
reused: handing a job to an idle worker costs about 20 µs, starting a thread about
100 µs, and a thread per call stalls on the GIL's switch interval (about 2 ms a call).
An idle worker ends after :data:`_IDLE_SECONDS`; a forked child starts with an empty
pool. This module must not import httpx or log.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from typing import Final, TypeVar

from ._exceptions import APITimeoutError

__all__ = ["WORKER_NAME", "call_with_deadline"]

WORKER_NAME: Final = "kanidm-sync-request"
"""The name of a worker thread; an abandoned one is renamed ``<name> (abandoned)``."""

_IDLE_SECONDS: Final = 30.0

_T = TypeVar("_T")
_Job = Callable[[], None]


class _Worker:
    """One daemon thread running the jobs put in its queue, one at a time."""

    def __init__(self, pool: _Pool) -> None:
        self.pool = pool
        self.jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self.abandoned = False
        self.thread = threading.Thread(target=self._loop, name=WORKER_NAME, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while True:
            try:
                job = self.jobs.get(timeout=_IDLE_SECONDS)
            except queue.Empty:
                # Idle for long: leave, unless a caller took this worker meanwhile (its job
                # is then on the way).
                if self.abandoned or self.pool.retire(self):
                    return
                continue
            job()
            if self.abandoned:
                return

    def abandon(self) -> None:
        """Let the worker end after its current job; it is never handed another."""
        self.abandoned = True
        self.thread.name = f"{WORKER_NAME} (abandoned)"


class _Pool:
    """Idle workers, shared by every client of the process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []

    def take(self) -> _Worker:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return _Worker(self)

    def give_back(self, worker: _Worker) -> None:
        with self._lock:
            self._idle.append(worker)

    def retire(self, worker: _Worker) -> bool:
        with self._lock:
            if worker in self._idle:
                self._idle.remove(worker)
                return True
            return False

    def forget(self) -> None:
        # In a forked child the parent's workers do not exist.
        self._lock = threading.Lock()
        self._idle = []


_POOL: Final = _Pool()
os.register_at_fork(after_in_child=_POOL.forget)


def call_with_deadline(work: Callable[[], _T], seconds: float | None, what: str) -> _T:
    """Run blocking ``work`` and give up waiting for it after ``seconds``.

    Args:
        work: the blocking exchange.
        seconds: the deadline, or ``None`` to run ``work`` in the caller's thread, unbounded.
        what: ``"GET https://..."``, for the message.

    Returns:
        What ``work`` returned.

    Raises:
        APITimeoutError: the deadline passed; the worker is abandoned.
        Exception: what ``work`` raised.
    """
    if seconds is None:
        return work()
    outcome: list[tuple[bool, object]] = []
    done = threading.Event()

    def job() -> None:
        try:
            outcome.append((True, work()))
        except BaseException as exc:  # handed to the caller, or dropped after the deadline
            outcome.append((False, exc))
        finally:
            done.set()

    worker = _POOL.take()
    worker.jobs.put(job)
    if not done.wait(seconds):
        worker.abandon()
        method, _, url = what.partition(" ")
        raise APITimeoutError(
            f"{what}: no complete response within {seconds:g} s (the overall deadline of "
            "the request's timeout)",
            method=method,
            url=url,
        )
    _POOL.give_back(worker)
    ok, value = outcome[0]
    if ok:
        return value  # type: ignore[return-value]  # work() returned it: it is a _T
    assert isinstance(value, BaseException)
    raise value
