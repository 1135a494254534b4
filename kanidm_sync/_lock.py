"""One run at a time per local record: an advisory lock next to the record file.

Owns: :class:`RunLock` (``<state_path>.lock``, ``fcntl.flock``, non-blocking, the holder's
pid written inside) and :class:`ConcurrentRunError`.

Must not: plan or talk to Kanidm. The runner takes the lock around each run.

Why. Two runners on one record (two cron entries, a service and a manual run, two pods
on one volume) interleave: each plans against the record, one apply wins, the other is
refused with a stale ``from_state``, and the loser's record write can overwrite the
winner's. Kanidm's data stays right (its from_state check), but the record and the
status are lost. The lock makes the second run fail at once, naming the first.

The lock is advisory and per host (``flock``); on platforms without ``fcntl`` (Windows)
runs are not locked. The lock file is left in place (removing it would race with a
third run taking it); it holds only the last holder's pid.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import sys
import types
from typing import Final

from ._exceptions import KanidmSyncError

if sys.platform != "win32":
    import fcntl

__all__ = ["LOCK_SUFFIX", "ConcurrentRunError", "RunLock"]

LOCK_SUFFIX: Final = ".lock"


class ConcurrentRunError(KanidmSyncError):
    """Raised when another run holds the lock of the same local record; nothing was done.

    Attributes:
        lock_path: the lock file.
        holder: the pid written in the lock file by the run holding it, when readable.
    """

    lock_path: pathlib.Path
    holder: int | None

    def __init__(self, message: str, *, lock_path: pathlib.Path, holder: int | None) -> None:
        super().__init__(message)
        self.lock_path = lock_path
        self.holder = holder


class RunLock:
    """An exclusive, non-blocking lock on ``<record>.lock`` for the length of a run."""

    def __init__(self, record: pathlib.Path) -> None:
        self.path = record.with_name(record.name + LOCK_SUFFIX)
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock.

        Raises:
            ConcurrentRunError: another process (or another runner) holds it.
        """
        if sys.platform == "win32":  # pragma: no cover - no flock
            return
        if self._fd is not None:
            raise ConcurrentRunError(
                f"{self.path}: this runner is already running (a run started from a progress "
                "callback or another thread?)",
                lock_path=self.path,
                holder=os.getpid(),
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _holder(fd)
            os.close(fd)
            who = f"process {holder}" if holder is not None else "another process"
            raise ConcurrentRunError(
                f"another run of this sync ({who}) holds {self.path}: two runners on one "
                "state file would overwrite each other's record. Wait for it to finish, or "
                "give each runner its own state_path (one per sync account)",
                lock_path=self.path,
                holder=holder,
            ) from None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        self._fd = fd

    def release(self) -> None:
        """Release the lock (the file stays)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing releases the flock

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self.release()


def _holder(fd: int) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text else None
    return None
