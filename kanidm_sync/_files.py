"""Atomic file replacement, shared by the runner's record, the snapshot store and the CLI.

Owns writing a whole text file so that a reader (or a crash) sees either the old content
or the new one, never a part, and removing the temporary files that writers killed
mid-write left behind. Must not decide what is written, nor translate errors: the callers
own their formats and messages.

A temporary file is named ``.<name>.tmp-<pid>-<random>``, next to ``<name>``: the pid says
whose it is, so the next write can remove those of processes that no longer run (a
``kill -9`` or a power cut between create and rename), and leave a running writer's alone.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import secrets
import sys
from typing import Final

__all__ = ["create_temp", "remove_stale", "temp_prefix", "write_atomic"]

_ATTEMPTS: Final = 16


def temp_prefix(path: pathlib.Path) -> str:
    """The name every temporary file of ``path`` starts with: ``.<name>.tmp-``.

    Args:
        path: the file written atomically.

    Returns:
        The prefix (a file name, without directory).
    """
    return f".{path.name}.tmp-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # EPERM: it exists, under another user
    return True


def remove_stale(path: pathlib.Path) -> None:
    """Remove the temporary files of ``path`` whose writer no longer runs."""
    if sys.platform == "win32":  # pragma: no cover - no signal 0 to ask with
        return
    prefix = temp_prefix(path)
    with contextlib.suppress(OSError), os.scandir(path.parent) as entries:
        for entry in entries:
            if not entry.name.startswith(prefix):
                continue
            pid_text, dash, rest = entry.name[len(prefix) :].partition("-")
            if not (dash and rest and pid_text.isascii() and pid_text.isdigit()):
                continue  # not one of ours
            pid = int(pid_text)
            if pid <= 0 or pid == os.getpid() or _alive(pid):
                continue
            if entry.is_file(follow_symlinks=False):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


def create_temp(path: pathlib.Path) -> tuple[int, str]:
    """A new temporary file next to ``path`` (mode 0600): its descriptor and name."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(_ATTEMPTS):
        tmp = path.parent / f"{temp_prefix(path)}{os.getpid()}-{secrets.token_hex(4)}"
        try:
            return os.open(tmp, flags, 0o600), str(tmp)
        except FileExistsError:
            continue
    raise FileExistsError(f"{path.parent}: no free temporary name for {path.name}")


def write_atomic(path: pathlib.Path, text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8): temporary file, fsync, rename.

    The temporary file is created next to ``path`` with mode 0600 (the callers store
    entries' data); the directory is created on first use. On any failure the temporary
    file is removed and ``path`` is left as it was. Temporary files of ``path`` left by
    writers that were killed are removed first.

    Args:
        path: the file to replace.
        text: its new content.

    Raises:
        OSError: the directory, the temporary file or the rename failed.
    """
    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True)
    remove_stale(path)
    fd, tmp = create_temp(path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
