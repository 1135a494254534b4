"""Source adapters: the protocols a source implements, and the sources kanidm_sync ships.

A source answers one question: given Kanidm's current :data:`~kanidm_sync.SyncState`,
what changed? It returns a :data:`SourceBatch`; the runner turns it into a ChangeSet.

Every adapter needs stable entry UUIDs: :func:`uuid_for` derives one from an external id
(a uuid5 under :data:`EXTERNAL_ID_NAMESPACE`), the same way the shipped sources do.
"""

from __future__ import annotations

from .._proto._ids import EXTERNAL_ID_NAMESPACE, uuid_for
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
    "EXTERNAL_ID_NAMESPACE",
    "AsyncSourceAdapter",
    "Delta",
    "FullImage",
    "RefreshRequired",
    "SnapshotAdapter",
    "SnapshotSource",
    "SourceAdapter",
    "SourceBatch",
    "uuid_for",
]

# Not a public name: the "from __future__" import leaves it in dir().
del annotations
