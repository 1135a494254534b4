"""The in-memory state of Kanidm as far as sync is concerned, and its apply semantics.

Owns: entries (live, recycled, tombstone), sync accounts (entries of class
``sync_account``), the server-wide uniqueness and external-id indexes, referential
integrity on delete, derived ``memberof``, and every state-changing operation of spec §2.2,
§4 and §5: :meth:`Store.apply` (phases 1-5, all or nothing), finalise, terminate,
force-refresh (patch), destroy-token, set-attribute. Must not: speak HTTP, mint or verify
tokens, or decide who the caller is (the HTTP half passes the caller's rights in).

Errors are raised as :class:`Rejection`, which carries exactly the status, body and
content type kanidmd would send; the HTTP half only renders it.

:class:`Store` is assembled from parts that each live in their own module: the tables and
the copy-on-write transaction (``_txn``), the apply phases (``_apply``), the administrative
operations (``_admin``), the seeding and inspection aids (``_seed``), schema validation
(``_schema_check``), entries and their renderings (``_entry``) and errors (``_rejection``).
This module keeps the names tests and the HTTP half import.
"""

from __future__ import annotations

from ._admin import AdminMixin
from ._apply import ApplyMixin
from ._entry import EntryState, StoredEntry, StoredValue, TokenSession
from ._parse import SyncRequest
from ._rejection import Rejection, parse_sync_request
from ._seed import NoSuchEntryError, SeedMixin

__all__ = [
    "EntryState",
    "NoSuchEntryError",
    "Rejection",
    "Store",
    "StoredEntry",
    "StoredValue",
    "SyncRequest",
    "TokenSession",
    "parse_sync_request",
]


class Store(ApplyMixin, AdminMixin, SeedMixin):
    """An in-memory Kanidm holding sync accounts, synced and native entries.

    Read an entry that must exist with ``store[key]`` (a :class:`StoredEntry`, or
    :class:`NoSuchEntryError`, a ``KeyError``), one that may not with ``store.entry(key)``
    (``None`` when absent), and test with ``key in store``; ``key`` is a ``uuid.UUID``
    (entries in any state) or a name, SPN or UUID string (live entries only).

    Args:
        domain: the domain name used to build SPNs (``name@domain``).

    Attributes:
        domain: the domain name used to build SPNs.
    """

    domain: str
