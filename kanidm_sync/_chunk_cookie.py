"""Intermediate "chunk cookies": how a split records its progress in Kanidm.

Owns: :class:`ChunkCookie` (``kanidm-sync-chunk:v1:<digest>:<i>/<n>:<base>``), its
encoding, and recognising one in Kanidm's state when a crashed run resumes. Why chunks
are shaped as they are is in ``_chunk``; docs/runner.md has the operator's view.

Must not: do I/O, log, read a clock, or talk to Kanidm. Pure.
"""

from __future__ import annotations

import base64
from typing import Final

import attrs

from ._proto._state import ActiveState, RefreshState, SyncState

__all__ = ["CHUNK_COOKIE_PREFIX", "DIGEST_CHARS", "ChunkCookie", "parse_chunk_cookie", "root_state"]

CHUNK_COOKIE_PREFIX: Final = b"kanidm-sync-chunk:v1:"
"""Every intermediate cookie starts with these bytes."""

DIGEST_CHARS: Final = 32


@attrs.frozen
class ChunkCookie:
    """A parsed intermediate cookie: Kanidm is part-way through a chunked run.

    Attributes:
        digest: identifies the split (final cookie and chunk layout) being applied.
        index: how many chunks are committed (1-based index of the last one).
        total: how many chunks the split has.
        base: the state the chunked run started from (what the source must be asked
            again to rebuild the same split).
    """

    digest: str
    index: int
    total: int
    base: SyncState

    def encode(self) -> bytes:
        """The cookie bytes (what Kanidm stores as the intermediate state)."""
        if isinstance(self.base, ActiveState):
            base_part = b"A" + base64.urlsafe_b64encode(self.base.cookie).rstrip(b"=")
        else:
            base_part = b"R"
        return b"%s%s:%d/%d:%s" % (
            CHUNK_COOKIE_PREFIX,
            self.digest.encode("ascii"),
            self.index,
            self.total,
            base_part,
        )


def parse_chunk_cookie(state: SyncState) -> ChunkCookie | None:
    """Recognise an intermediate chunk cookie.

    Args:
        state: Kanidm's current state.

    Returns:
        The parsed cookie, or ``None`` when the state is Refresh or an ordinary cookie
        (including a malformed chunk cookie, which is then treated as a source cookie).
    """
    if not isinstance(state, ActiveState) or not state.cookie.startswith(CHUNK_COOKIE_PREFIX):
        return None
    rest = state.cookie[len(CHUNK_COOKIE_PREFIX) :]
    try:
        digest_b, position, base_part = rest.split(b":", 2)
        index_b, total_b = position.split(b"/")
        index, total = int(index_b), int(total_b)
        digest = digest_b.decode("ascii")
        base: SyncState
        if base_part == b"R":
            base = RefreshState()
        elif base_part.startswith(b"A"):
            raw = base_part[1:]
            base = ActiveState(base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4)))
        else:
            return None
    except ValueError:
        return None
    if not 1 <= index < total or len(digest) != DIGEST_CHARS:
        return None
    return ChunkCookie(digest=digest, index=index, total=total, base=base)


def root_state(state: SyncState) -> SyncState:
    """The state a chain of requests started from, to record in its chunk cookies.

    A run that starts over from a chunk cookie (the source moved after a crash), or
    retries from one, records the base of that cookie rather than the cookie itself: a
    cookie nested in a cookie would grow by a third at every such restart.

    Args:
        state: where a chain starts (Refresh, a source cookie or a chunk cookie).

    Returns:
        ``state``, or the base of the chunk cookie it holds.
    """
    chunk = parse_chunk_cookie(state)
    return state if chunk is None else chunk.base
