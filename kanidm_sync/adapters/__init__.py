"""Source adapters: the protocols a source implements, and the sources kanidm_sync ships.

A source answers one question: given Kanidm's current :data:`~kanidm_sync.SyncState`,
what changed? It returns a :data:`SourceBatch`; the runner turns it into a ChangeSet.
"""

from __future__ import annotations

from ._protocols import (
    AsyncSourceAdapter,
    Delta,
    FullImage,
    RefreshRequired,
    SourceAdapter,
    SourceBatch,
)
from ._snapshot import SnapshotAdapter, SnapshotSource

__all__ = [
    "AsyncSourceAdapter",
    "Delta",
    "FullImage",
    "RefreshRequired",
    "SnapshotAdapter",
    "SnapshotSource",
    "SourceAdapter",
    "SourceBatch",
]
