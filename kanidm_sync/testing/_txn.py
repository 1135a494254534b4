"""The store's tables and the copy-on-write transaction every write goes through.

Owns: :class:`StoreState` (the entry table, the uniqueness index, the cached membership map
and the denied names, plus the lookups every part of the store uses) and :class:`Txn`.
Must not: decide what an operation does (the apply phases, the administrative operations
and the seeding aids live in ``_apply``, ``_admin`` and ``_seed``).

All or nothing without deep copies: a transaction starts from *shallow* copies of the entry
table and the index (a few milliseconds for 66,000 entries) and clones an entry only the
first time it touches it (copy-on-write). The committed table is never mutated during a
write; on success the transaction's tables replace it, on failure they are simply dropped.
A failed write therefore leaves the store identical, object for object.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

from ._builtins import BUILTINS
from ._entry import MutEntry, unique_keys
from ._parse import parse_rust_uuid
from ._rejection import Rejection, uniqueness_error
from ._schema_table import REFERENCE_ATTRS

__all__ = ["BUILTIN_LIMIT", "BUILTIN_UUIDS", "RI_MESSAGE", "StoreState", "Txn", "single_name"]

BUILTIN_LIMIT: Final = uuid.UUID("00000000-0000-0000-0001-000000000000")
"""kanidm's ``DYNAMIC_RANGE_MINIMUM_UUID``: UUIDs below it are the system's own."""
RI_MESSAGE: Final = "Uuid referenced not found in database"
"""The message of kanidmd's ``referentialintegrity`` plugin error."""
BUILTIN_UUIDS: Final = frozenset(b.uuid for b in BUILTINS)
"""The UUIDs of the entries kanidmd creates at its first start."""


class StoreState:
    """The tables of an in-memory Kanidm; the base of :class:`~._store.Store`.

    Args:
        domain: the domain name used to build SPNs (``name@domain``).
    """

    def __init__(self, domain: str = "kanidm.test") -> None:
        self.domain = domain
        self._entries: dict[uuid.UUID, MutEntry] = {}
        self._unique: dict[tuple[str, object], uuid.UUID] = {}
        self._memberof: dict[uuid.UUID, set[uuid.UUID]] | None = None
        self._denied_names: frozenset[str] = frozenset()
        self._load_builtins()

    def _load_builtins(self) -> None:
        """Create the entries a fresh kanidmd holds (``_builtins``), each with its SPN.

        kanidm: server/lib/src/server/migrations.rs ``migrate_domain_1_10_to_1_11`` creates
        them through internal creates, whose plugins add the SPN of every account and group
        (server/lib/src/plugins/spn.rs) and index their unique values like any entry's.
        """
        for b in BUILTINS:
            attrs_ = {attr: list(values) for attr, values in b.attrs.items()}
            if b.name is not None and b.classes & {"group", "account"}:
                attrs_["spn"] = [f"{b.name}@{self.domain}"]
            entry = MutEntry(b.uuid, set(b.classes), attrs_)
            self._entries[b.uuid] = entry
            for key in unique_keys(entry):
                self._unique[key] = b.uuid

    def is_builtin(self, uid: uuid.UUID) -> bool:
        """Whether ``uid`` names one of the entries kanidmd creates at its first start."""
        return uid in BUILTIN_UUIDS

    def set_denied_names(self, names: Iterable[str]) -> None:
        """Set the system's ``denied_name`` list (names refused with ``valuedenyname``)."""
        self._denied_names = frozenset(n.lower() for n in names)

    def name_denied(self, before: str | None, after: MutEntry, *, create: bool = False) -> bool:
        """Whether the value-deny plugin refuses ``after``, whose name was ``before``.

        kanidm: server/lib/src/plugins/valuedeny.rs ``pre_create_transform`` and ``modify``:
        entries below ``DYNAMIC_RANGE_MINIMUM_UUID`` are exempt; on a create the single
        ``name`` is checked, on a modify only a name that differs from the one before. A name
        with several values is not looked at (``get_ava_single_iname``); schema validation
        refuses it later.
        """
        if not self._denied_names or after.uuid < BUILTIN_LIMIT:
            return False
        post = single_name(after)
        if post is None or (not create and before == post):
            return False
        return post in self._denied_names

    def _require_sync_account(self, account: uuid.UUID) -> MutEntry:
        e = self._entries.get(account)
        if e is None or e.state != "live" or "sync_account" not in e.classes:
            raise Rejection.of("nomatchingentries")
        return e

    def resolve(self, ident: str) -> uuid.UUID | None:
        """Resolve a path ``{id}`` among all live entries: UUID, SPN or name (any case).

        A UUID-shaped ident is returned as is, existing or not, as kanidmd does before it
        loads the entry.
        """
        parsed = parse_rust_uuid(ident)
        if parsed is not None:
            return parsed
        low = ident.lower()
        hit = self._unique.get(("name", low)) or self._unique.get(("spn", low))
        if hit is None and low.endswith("@" + self.domain):
            hit = self._unique.get(("name", low[: -len(self.domain) - 1]))
        return hit


def single_name(entry: MutEntry) -> str | None:
    """The entry's ``name`` if it has exactly one (kanidm's ``get_ava_single_iname``)."""
    names = entry.attrs.get("name", ())
    return str(names[0]) if len(names) == 1 else None


class Txn:
    """A copy-on-write transaction over the store's tables."""

    def __init__(self, store: StoreState) -> None:
        self.store = store
        self.entries: dict[uuid.UUID, MutEntry] = dict(store._entries)
        self.unique: dict[tuple[str, object], uuid.UUID] = dict(store._unique)
        self._owned: set[uuid.UUID] = set()

    def get(self, uid: uuid.UUID) -> MutEntry | None:
        return self.entries.get(uid)

    def live(self, uid: uuid.UUID) -> MutEntry | None:
        e = self.entries.get(uid)
        return e if e is not None and e.state == "live" else None

    def mut(self, uid: uuid.UUID) -> MutEntry:
        """The entry, cloned on first touch in this transaction."""
        if uid in self._owned:
            return self.entries[uid]
        e = self.entries[uid].clone()
        self.entries[uid] = e
        self._owned.add(uid)
        return e

    def create(self, entry: MutEntry) -> None:
        self.entries[entry.uuid] = entry
        self._owned.add(entry.uuid)
        self.index(entry)

    def unindex(self, entry: MutEntry) -> None:
        if entry.state != "live":
            return
        for key in unique_keys(entry):
            if self.unique.get(key) == entry.uuid:
                del self.unique[key]

    def index(self, entry: MutEntry) -> None:
        if entry.state != "live":
            return
        for key in unique_keys(entry):
            self.unique[key] = entry.uuid

    def resolve_external_id(self, external_id: str) -> uuid.UUID | None:
        return self.unique.get(("sync_external_id", external_id))

    def check_unique(self, cands: Sequence[MutEntry]) -> None:
        """Attribute uniqueness of a write, checked against the index as it was before it.

        ``cands`` hold the values the write would store; the index still holds every
        entry's values from before the write (the candidates' old values included), as
        kanidmd's database does while its pre-write plugins run (kanidm:
        server/lib/src/plugins/attrunique.rs ``enforce_unique``, called by
        ``pre_create_transform`` / ``pre_modify`` / ``pre_batch_modify``; the write itself
        happens afterwards, server/lib/src/server/batch_modify.rs ``batch_modify``). So two
        entries trading a value in one write conflict with each other's old value.

        Raises:
            Rejection: 409 ``attributeuniqueness``. Values shared by two candidates are
                reported alone, before the database is looked at (``get_cand_attr_set``);
                otherwise every candidate value held by another live entry
                (``attr=value AND NOT uuid=self``; recycled entries are hidden by
                ``filter!``). One attribute per conflicting value, in Attribute order.
        """
        holders: dict[tuple[str, object], list[uuid.UUID]] = {}
        for e in cands:
            if e.state != "live":  # get_cand_attr_set: mask_recycled_ts
                continue
            for key in unique_keys(e):
                holders.setdefault(key, []).append(e.uuid)
        clashes = [key[0] for key, uids in holders.items() if len(uids) > 1]
        if clashes:
            raise uniqueness_error(clashes)
        conflicts = []
        for key, (uid,) in holders.items():
            holder = self.unique.get(key)
            if holder is not None and holder != uid:
                conflicts.append(key[0])
        if conflicts:
            raise uniqueness_error(conflicts)

    def write_unique(
        self, cands: Sequence[MutEntry], before: Mapping[uuid.UUID, list[tuple[str, object]]]
    ) -> None:
        """Check uniqueness (:meth:`check_unique`), then re-index the candidates.

        Args:
            cands: the candidates, already holding the values the write stores.
            before: each modified candidate's unique keys from before the write (from
                :func:`unique_keys`); candidates absent from it are new or unchanged.
        """
        self.check_unique(cands)
        for uid, keys in before.items():
            for key in keys:
                if self.unique.get(key) == uid:
                    del self.unique[key]
        for e in cands:
            self.index(e)

    def delete(self, uids: Iterable[uuid.UUID]) -> None:
        """Recycle live entries with kanidmd's delete side effects (spec §4.4, §9)."""
        gone: set[uuid.UUID] = set()
        for uid in uids:
            e = self.live(uid)
            if e is None:
                continue
            e = self.mut(uid)
            self.unindex(e)
            e.state = "recycled"
            gone.add(uid)
        if gone:
            self.remove_references(gone)

    def remove_references(self, gone: set[uuid.UUID]) -> None:
        # Referential integrity: references to deleted entries vanish from live entries.
        for uid, e in list(self.entries.items()):
            if e.state != "live":
                continue
            for attr in REFERENCE_ATTRS:
                values = e.attrs.get(attr)
                if values and not gone.isdisjoint(values):
                    m = self.mut(uid)
                    m.set(attr, [v for v in m.attrs.get(attr, ()) if v not in gone])

    def commit(self) -> None:
        self.store._entries = self.entries
        self.store._unique = self.unique
        self.store._memberof = None
