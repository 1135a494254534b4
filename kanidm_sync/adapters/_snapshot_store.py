"""The snapshot store of :class:`~kanidm_sync.adapters.SnapshotAdapter`: its file format.

Owns: the two snapshots the store keeps (committed and pending, as entry id -> digest
maps), their JSON encoding and strict decoding (anything unexpected is a corrupt store,
never an exception of another kind), the digests and cookies that name snapshots.
``_snapshot`` has the theory of operation.

Must not: read or write files, or talk to Kanidm. Pure.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from typing import Final

import attrs

from .._proto._codec import encode_entry
from .._proto._entries import Entry

__all__ = ["STORE_FORMAT", "STORE_VERSION"]

STORE_FORMAT: Final = "kanidm-sync snapshot store"
"""The ``format`` field of a snapshot store file."""

STORE_VERSION: Final = 1
"""The ``version`` field this release writes and reads; any other is a mismatch."""

_COOKIE_PREFIX: Final = b"kanidm-sync:snapshot:1:"

# One compact JSON writer for digests: the wire form with its key order, no whitespace.
# Only equality matters here (not serde byte-compatibility), so the plain stdlib encoder
# is enough and faster than the codec's exact-float writer.
_canonical_json = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=False, check_circular=False, allow_nan=False
).encode


@attrs.frozen
class _Snapshot:
    """One snapshot as the store keeps it: entry id (text) -> entry digest (text)."""

    cookie: bytes
    generation: int
    digests: Mapping[str, str]


@attrs.frozen
class _Pending:
    """A snapshot returned but perhaps not committed, as a change list against ``base``."""

    cookie: bytes
    generation: int
    base: bytes | None
    changed: Mapping[str, str]
    deleted: tuple[str, ...]


@attrs.frozen
class _Store:
    fingerprint: str
    committed: _Snapshot | None
    pending: _Pending | None
    # Cookies of snapshots a full image replaced (a rules change, a reset store, a plan
    # that fetched without applying): Kanidm still holding one of them is expected, not
    # a stranger's cookie.
    retired: tuple[bytes, ...] = ()


class _CorruptStoreError(Exception):
    """The store file exists but cannot be used; the message says why."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii")


def _unb64(text: object, what: str) -> bytes:
    if not isinstance(text, str):
        raise _CorruptStoreError(f"{what} is not a string")
    try:
        return base64.urlsafe_b64decode(text.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise _CorruptStoreError(f"{what} is not base64") from None


_HEX_KEY = re.compile(r"[0-9a-f]{32}\Z")


def _digest_map(value: object, what: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise _CorruptStoreError(f"{what} is not an object")
    for key, item in value.items():
        if not _HEX_KEY.match(key):
            raise _CorruptStoreError(f"{what} has a key that is not an entry id: {key[:40]!r}")
        if not isinstance(item, str):
            raise _CorruptStoreError(f"{what}[{key!r}] is not a string")
    return value


def _generation(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise _CorruptStoreError(f"{what} is not a non-negative integer")
    return value


def _decode_store(data: object) -> _Store:
    if not isinstance(data, dict):
        raise _CorruptStoreError("the top level is not an object")
    if data.get("format") != STORE_FORMAT:
        raise _CorruptStoreError("'format' is not a kanidm-sync snapshot store")
    if data.get("version") != STORE_VERSION:
        raise _CorruptStoreError(f"'version' is {data.get('version')!r}, not {STORE_VERSION}")
    fingerprint = data.get("fingerprint")
    if not isinstance(fingerprint, str):
        raise _CorruptStoreError("'fingerprint' is not a string")
    committed: _Snapshot | None = None
    raw = data.get("committed")
    if raw is not None:
        if not isinstance(raw, dict):
            raise _CorruptStoreError("'committed' is not an object")
        committed = _Snapshot(
            cookie=_unb64(raw.get("cookie"), "committed.cookie"),
            generation=_generation(raw.get("generation"), "committed.generation"),
            digests=_digest_map(raw.get("entries"), "committed.entries"),
        )
    pending: _Pending | None = None
    raw = data.get("pending")
    if raw is not None:
        if not isinstance(raw, dict):
            raise _CorruptStoreError("'pending' is not an object")
        base = raw.get("base")
        deleted = raw.get("deleted")
        if not isinstance(deleted, list) or not all(
            isinstance(d, str) and _HEX_KEY.match(d) for d in deleted
        ):
            raise _CorruptStoreError("'pending.deleted' is not a list of strings")
        pending = _Pending(
            cookie=_unb64(raw.get("cookie"), "pending.cookie"),
            generation=_generation(raw.get("generation"), "pending.generation"),
            base=None if base is None else _unb64(base, "pending.base"),
            changed=_digest_map(raw.get("changed"), "pending.changed"),
            deleted=tuple(deleted),
        )
        if pending.base is not None and (committed is None or committed.cookie != pending.base):
            raise _CorruptStoreError("'pending.base' is not the committed snapshot")
    raw_retired = data.get("retired", [])
    if not isinstance(raw_retired, list):
        raise _CorruptStoreError("'retired' is not a list")
    retired = tuple(_unb64(r, "retired[]") for r in raw_retired)
    return _Store(fingerprint=fingerprint, committed=committed, pending=pending, retired=retired)


def _encode_store(store: _Store) -> str:
    committed = store.committed
    pending = store.pending
    data: dict[str, object] = {
        "format": STORE_FORMAT,
        "version": STORE_VERSION,
        "fingerprint": store.fingerprint,
        "committed": None
        if committed is None
        else {
            "cookie": _b64(committed.cookie),
            "generation": committed.generation,
            "entries": committed.digests,
        },
        "pending": None
        if pending is None
        else {
            "cookie": _b64(pending.cookie),
            "generation": pending.generation,
            "base": None if pending.base is None else _b64(pending.base),
            "changed": pending.changed,
            "deleted": list(pending.deleted),
        },
        "retired": [_b64(r) for r in store.retired],
    }
    return json.dumps(data, separators=(",", ":"))


def _promote(store: _Store) -> _Snapshot:
    """The snapshot Kanidm holds once the pending one committed."""
    pending = store.pending
    assert pending is not None  # only called when Kanidm holds the pending cookie
    if pending.base is None:
        digests = dict(pending.changed)
    else:
        assert store.committed is not None  # _decode_store checked the base
        digests = dict(store.committed.digests)
        digests.update(pending.changed)
        for key in pending.deleted:
            digests.pop(key, None)
    return _Snapshot(cookie=pending.cookie, generation=pending.generation, digests=digests)


def _full_digest(digests: Mapping[str, str]) -> str:
    text = "\n".join([f"{key}={digests[key]}" for key in sorted(digests)])
    return hashlib.sha256(text.encode("ascii")).hexdigest()[:32]


def _delta_digest(base: bytes, changed: Mapping[str, str], deleted: Iterable[str]) -> str:
    # Chained from the base cookie, which names the base content: the result names the
    # new content too, at a cost proportional to the churn, not to the directory.
    text = "\n".join([f"{key}={changed[key]}" for key in sorted(changed)])
    gone = "\n".join(sorted(deleted))
    data = b"%s\n%s\n-\n%s" % (base, text.encode("ascii"), gone.encode("ascii"))
    return hashlib.sha256(data).hexdigest()[:32]


def _make_cookie(generation: int, digest: str) -> bytes:
    return _COOKIE_PREFIX + f"g{generation}:{digest}".encode("ascii")


def _entry_digest(entry: Entry) -> str:
    # The canonical encoding is the entry's wire JSON (header, then sorted attributes).
    # 128 bits of SHA-256 is plenty to detect change, and keeps the store small.
    text = _canonical_json(encode_entry(entry))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


_MAX_RETIRED = 16


def _cookies_of(store: _Store) -> tuple[bytes, ...]:
    """Every cookie ``store`` knows, oldest first (what a full image retires)."""
    own = [s.cookie for s in (store.committed, store.pending) if s is not None]
    return tuple(dict.fromkeys([*store.retired, *own]))
