"""Seeding aids and inspection of the in-memory Kanidm's state, for tests.

Owns: native persons and groups, admin-style attribute changes, recycling and tombstoning
(what an admin or the purge would do), read-only views of entries, and the fingerprint of the
whole state. Must not: take part in an apply.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence

from ._entry import MutEntry, StoredEntry, StoredValue, fingerprint_value, render, unique_keys
from ._rejection import Rejection
from ._schema_check import validate_entry
from ._schema_table import ATTRIBUTES
from ._txn import RI_MESSAGE, StoreState, Txn

__all__ = ["NoSuchEntryError", "SeedMixin"]


class NoSuchEntryError(KeyError):
    """``store[key]`` found no entry: the key names no live entry, or no entry has the UUID.

    A :class:`KeyError`, so ``except KeyError`` catches it; unlike a plain ``KeyError`` its
    message reads as a sentence.

    Attributes:
        key: the name, SPN or UUID that was looked up.
    """

    key: uuid.UUID | str

    def __init__(self, key: uuid.UUID | str) -> None:
        self.key = key
        if isinstance(key, uuid.UUID):
            message = f"no entry with uuid {key} in the in-memory Kanidm"
        else:
            message = (
                f"no live entry named {key!r} in the in-memory Kanidm (names and SPNs find "
                "live entries only: look up a recycled entry or a tombstone by its uuid.UUID)"
            )
        super().__init__(message)

    def __str__(self) -> str:
        return str(self.args[0])


class SeedMixin(StoreState):
    """The seeding aids and the inspection methods of :class:`~._store.Store`."""

    def _seed(self, entry: MutEntry) -> uuid.UUID:
        if entry.uuid in self._entries:
            raise ValueError(f"an entry with uuid {entry.uuid} exists already")
        txn = Txn(self)
        txn.check_unique([entry])
        validate_entry(entry)
        txn.create(entry)
        txn.commit()
        return entry.uuid

    def add_person(
        self,
        name: str,
        *,
        uuid: uuid.UUID | None = None,
        displayname: str | None = None,
        mail: Sequence[str] = (),
        legalname: str | None = None,
    ) -> uuid.UUID:
        """Seed a native (not synced) person, e.g. to provoke a name conflict.

        Raises:
            Rejection: 409 when name or mail collide, 400 for an invalid name.
        """
        import uuid as _uuid

        uid = uuid or _uuid.uuid4()
        low = name.lower()
        e = MutEntry(uid, {"object", "account", "person"}, {})
        e.set("name", [low])
        e.set("displayname", [displayname if displayname is not None else name])
        e.set("spn", [f"{low}@{self.domain}"])
        e.set("mail", list(mail))
        if legalname is not None:
            e.set("legalname", [legalname])
        return self._seed(e)

    def add_group(
        self,
        name: str,
        *,
        uuid: uuid.UUID | None = None,
        members: Sequence[uuid.UUID] = (),
    ) -> uuid.UUID:
        """Seed a native (not synced) group.

        Raises:
            Rejection: 409 when the name collides; 500 referentialintegrity when a member
                is not a live entry.
        """
        import uuid as _uuid

        uid = uuid or _uuid.uuid4()
        low = name.lower()
        for m in members:
            if m not in self._entries or self._entries[m].state != "live":
                raise Rejection.of("plugin", {"referentialintegrity": RI_MESSAGE})
        e = MutEntry(uid, {"object", "group"}, {})
        e.set("name", [low])
        e.set("spn", [f"{low}@{self.domain}"])
        e.set("member", list(members))
        return self._seed(e)

    def set_attribute(self, target: uuid.UUID, attr: str, values: Sequence[str]) -> None:
        """Set a plain string attribute on a live entry, as an admin would (seeding aid).

        Used by tests to model local changes between syncs (e.g. a yielded ``legalname``).
        No access control is applied here (spec §4.10 is the HTTP half's business).
        """
        adef = ATTRIBUTES.get(attr)
        if adef is None:
            raise Rejection.of("invalidattributename", attr)
        txn = Txn(self)
        if txn.live(target) is None:
            raise Rejection.of("nomatchingentries")
        before = {target: unique_keys(txn.entries[target])}
        e = txn.mut(target)
        e.set(attr, [v.lower() if adef.syntax in ("iname", "utf8_ci") else v for v in values])
        if attr == "name" and e.classes & {"group", "account"} and e.first("name") is not None:
            e.set("spn", [f"{e.first('name')}@{self.domain}"])
        txn.write_unique([e], before)
        validate_entry(e)
        txn.commit()

    def recycle(self, uid: uuid.UUID) -> None:
        """Delete (recycle) a live entry with the usual side effects."""
        txn = Txn(self)
        if txn.live(uid) is None:
            raise Rejection.of("nomatchingentries")
        txn.delete([uid])
        txn.commit()

    def tombstone(self, uid: uuid.UUID) -> None:
        """Turn a recycled entry into a tombstone (what the purge does after 7 days)."""
        txn = Txn(self)
        e = txn.get(uid)
        if e is None or e.state != "recycled":
            raise Rejection.of("nomatchingentries")
        e = txn.mut(uid)
        e.state = "tombstone"
        # Tombstones keep only their uuid and class (spec §5: no sync attributes).
        e.attrs.clear()
        e.classes = {"object"}
        txn.commit()

    # --- inspection ----------------------------------------------------------------------

    def _memberof_map(self) -> dict[uuid.UUID, set[uuid.UUID]]:
        if self._memberof is None:
            direct: dict[uuid.UUID, set[uuid.UUID]] = {}
            for e in self._entries.values():
                if e.state != "live" or "group" not in e.classes:
                    continue
                for m in e.attrs.get("member", ()):
                    if isinstance(m, uuid.UUID):
                        direct.setdefault(m, set()).add(e.uuid)
            self._memberof = direct
        return self._memberof

    def _view(self, e: MutEntry) -> StoredEntry:
        out: dict[str, tuple[StoredValue, ...]] = {
            "uuid": (str(e.uuid),),
            "class": tuple(sorted(e.classes)),
        }
        for attr, values in e.attrs.items():
            rendered = [render(v) for v in values]
            if attr in ("member", "sync_class", "sync_yield_authority"):
                rendered.sort(key=str)
            out[attr] = tuple(rendered)
        if e.state == "live":
            direct = self._memberof_map()
            dm = direct.get(e.uuid, set())
            if dm:
                out["directmemberof"] = tuple(sorted(str(g) for g in dm))
                closure: set[uuid.UUID] = set()
                todo = list(dm)
                while todo:
                    g = todo.pop()
                    if g in closure:
                        continue
                    closure.add(g)
                    todo.extend(direct.get(g, ()))
                out["memberof"] = tuple(sorted(str(g) for g in closure))
        return StoredEntry(e.uuid, frozenset(e.classes), dict(sorted(out.items())), e.state)

    def entry(self, key: uuid.UUID | str) -> StoredEntry | None:
        """One entry by UUID (any state), or by name/SPN (live entries only), or ``None``.

        ``store[key]`` is the same lookup for an entry that must exist: it returns a
        :class:`StoredEntry` (no ``None`` to narrow away) and raises
        :class:`NoSuchEntryError` otherwise.

        Args:
            key: a :class:`uuid.UUID`, or a name, SPN or UUID string.

        Returns:
            The entry, or ``None`` when there is none.
        """
        uid = key if isinstance(key, uuid.UUID) else self.resolve(key)
        if uid is None:
            return None
        e = self._entries.get(uid)
        if e is None or (not isinstance(key, uuid.UUID) and e.state != "live"):
            return None
        return self._view(e)

    def __getitem__(self, key: uuid.UUID | str) -> StoredEntry:
        """``store[key]``: the entry by UUID (any state) or name/SPN (live), which must exist.

        Raises:
            NoSuchEntryError: (a ``KeyError``) when there is no such entry; the message
                names the key.
        """
        found = self.entry(key)
        if found is None:
            raise NoSuchEntryError(key)
        return found

    def __contains__(self, key: object) -> bool:
        """``key in store``: whether ``store[key]`` would find an entry."""
        return isinstance(key, uuid.UUID | str) and self.entry(key) is not None

    def entries(
        self,
        *,
        include_recycled: bool = False,
        owned_by: uuid.UUID | None = None,
        include_builtin: bool = True,
    ) -> list[StoredEntry]:
        """Entries ordered by UUID: live ones, plus recycled/tombstones if asked.

        Args:
            include_recycled: also return recycled entries and tombstones.
            owned_by: only entries with ``sync_parent_uuid`` equal to this account.
            include_builtin: also return the entries kanidmd creates at its first start
                (``admin``, ``idm_admins``, the access control profiles, …), as a search
                on kanidmd would; ``False`` keeps what was written since.
        """
        out = []
        for uid in sorted(self._entries):
            e = self._entries[uid]
            if e.state != "live" and not include_recycled:
                continue
            if owned_by is not None and e.owner() != owned_by:
                continue
            if not include_builtin and self.is_builtin(uid):
                continue
            out.append(self._view(e))
        return out

    def __len__(self) -> int:
        return sum(1 for e in self._entries.values() if e.state == "live")

    def snapshot(self) -> tuple[object, ...]:
        """A comparable image of the whole state (secrets only as digests)."""
        return (
            self._denied_names,
            tuple(
                (
                    e.uuid,
                    e.state,
                    tuple(sorted(e.classes)),
                    tuple(
                        (a, tuple(fingerprint_value(v) for v in vals))
                        for a, vals in sorted(e.attrs.items())
                    ),
                )
                for e in sorted(self._entries.values(), key=lambda x: x.uuid)
            ),
        )

    def fingerprint(self) -> str:
        """A SHA-256 of :meth:`snapshot`: equal fingerprints mean an identical state."""
        return hashlib.sha256(repr(self.snapshot()).encode()).hexdigest()
