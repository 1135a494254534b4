"""Atomic file replacement, shared by the runner's record and the snapshot store.

Owns writing a whole text file so that a reader (or a crash) sees either the old content
or the new one, never a part. Must not decide what is written, nor translate errors: the
callers own their formats and messages.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import tempfile

__all__ = ["write_atomic"]


def write_atomic(path: pathlib.Path, text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8): temporary file, fsync, rename.

    The temporary file is created next to ``path`` with mode 0600 (both callers store
    entries' data); the directory is created on first use. On any failure the temporary
    file is removed and ``path`` is left as it was.

    Args:
        path: the file to replace.
        text: its new content.

    Raises:
        OSError: the directory, the temporary file or the rename failed.
    """
    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
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
