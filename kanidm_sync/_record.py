"""The runner's local record of what it last applied for one sync account.

Owns: :class:`_RecordStore`, the file that holds the last known state (``_projection.KnownState``):
its JSON format, reading it back (a missing, unreadable or corrupt file means "unknown"),
and writing it atomically with mode 0600.

Must not: plan, talk to Kanidm, or decide anything: the runner's flows load and save it.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import pathlib
import uuid
from typing import Final, cast

from ._files import write_atomic
from ._projection import KnownState
from ._types import JSONObject

__all__ = ["RECORD_FORMAT", "RECORD_VERSION"]

_log = logging.getLogger("kanidm_sync.runner")

RECORD_FORMAT: Final = "kanidm-sync applied record"
RECORD_VERSION: Final = 1


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii")


class _RecordStore:
    """The file holding the last known state of one sync account (see ``_plan``).

    Written atomically (temporary file, fsync, rename) with mode 0600: it holds the
    entries' wire JSON, with password and TOTP imports replaced by digests.
    """

    def __init__(self, path: pathlib.Path | None) -> None:
        self.path = path

    def load(self) -> KnownState | None:
        if self.path is None:
            return None
        try:
            data: object = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, RecursionError) as exc:
            # RecursionError: json's scanner on a hostile, deeply nested file.
            _log.warning("%s: unreadable record (%s); diff base unknown", self.path, exc)
            return None
        try:
            return self._decode(data)
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            _log.warning("%s: corrupt record (%s); diff base unknown", self.path, exc)
            return None

    @staticmethod
    def _decode(data: object) -> KnownState:
        if not isinstance(data, dict) or data.get("format") != RECORD_FORMAT:
            raise ValueError("not a kanidm-sync record")
        if data.get("version") != RECORD_VERSION:
            raise ValueError(f"record version {data.get('version')!r}")
        cookie = base64.urlsafe_b64decode(str(data["cookie"]))
        raw = data["entries"]
        if not isinstance(raw, dict):
            raise TypeError("entries is not an object")
        entries: dict[uuid.UUID, JSONObject] = {}
        for key, value in raw.items():
            if not isinstance(value, dict):
                raise TypeError(f"entry {key} is not an object")
            entries[uuid.UUID(key)] = cast("JSONObject", value)
        deleted = data.get("deleted", [])
        if not isinstance(deleted, list):
            raise TypeError("deleted is not a list")
        return KnownState(
            cookie=cookie, entries=entries, deleted=tuple(uuid.UUID(str(d)) for d in deleted)
        )

    def save(self, known: KnownState | None) -> None:
        if self.path is None:
            return
        if known is None:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            return
        doc: JSONObject = {
            "format": RECORD_FORMAT,
            "version": RECORD_VERSION,
            "cookie": _b64(known.cookie),
            "count": len(known.entries),
            "deleted": [str(d) for d in known.deleted],
            "entries": {str(k): v for k, v in known.entries.items()},
        }
        write_atomic(self.path, json.dumps(doc, ensure_ascii=False, separators=(",", ":")))
