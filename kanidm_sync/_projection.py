"""Projection: the form an entry is diffed and recorded in, and the local record of it.

Owns: :func:`project_entry` (an entry's wire JSON with secrets digested), the RFC 6902
attribute diff between two projections, :class:`KnownState` (what this runner last
applied for one sync account), reading labels and the unique values Kanidm enforces out
of a projection, and the two mappings a record can be besides a dict:
:class:`RecordEntries` (the record read on demand: ``_record_view`` implements it over
the database) and :class:`UpdatedEntries` (a record plus one run's changes, without a
copy of it).

Must not: do I/O, log, read a clock, or talk to Kanidm. Pure.

Secrets never enter a projection: password and TOTP imports are replaced by a SHA-256
digest salted with the entry id, so a diff shows that a secret changed, never the secret.
"""

from __future__ import annotations

import abc
import hashlib
import json
import uuid
from collections.abc import Collection, Container, ItemsView, Iterable, Iterator, Mapping
from typing import Final

import attrs

from ._proto._codec import dumps, encode_entry
from ._proto._entries import (
    SCHEMA_PREFIX,
    SECRET_ATTRIBUTES,
    Entry,
    GenericEntry,
    Group,
    Person,
    ServiceAccount,
)
from ._proto._state import ActiveState, SyncState
from ._types import JSONObject, JSONValue

__all__ = [
    "UNIQUE_KEYS",
    "KnownState",
    "ProjectionTexts",
    "RecordEntries",
    "UpdatedEntries",
    "all_ids",
    "derived_gidnumber",
    "diff_attributes",
    "entry_kind",
    "external_id_of",
    "external_ids_held",
    "gidnumber_of",
    "gidnumbers_held",
    "kind_of",
    "name_of",
    "prefetch",
    "project_encoded",
    "project_entry",
    "projection_text",
    "unique_values",
]

_SECRET_MARK: Final = "salted-sha256:"


def _digest_secret(value: JSONValue, salt: bytes) -> str:
    # Salted with the entry's id: two accounts with the same password hash get different
    # digests, and no precomputed table applies. The digest only detects a change; the record
    # file that holds it is written with mode 0600.
    return _SECRET_MARK + hashlib.sha256(salt + dumps(value)).hexdigest()


def project_entry(entry: Entry) -> JSONObject:
    """The form an entry is diffed and recorded in: its wire JSON with secrets digested.

    Args:
        entry: any entry.

    Returns:
        The codec's JSON object, where each secret attribute (``password_import``,
        ``unix_password_import``, ``totp_import``) is replaced by ``"salted-sha256:<hex>"``,
        a SHA-256 of the value salted with the entry's id.
    """
    return project_encoded(entry, encode_entry(entry))


def _raw_keys(entry: Entry) -> Iterable[str]:
    # Keys whose values the codec passes through as the user gave them (tuples, mappings).
    if isinstance(entry, GenericEntry):
        return entry.attributes.keys()
    return entry.extra.keys()


def project_encoded(entry: Entry, encoded: JSONObject) -> JSONObject:
    """:func:`project_entry` for an entry already encoded (``encode_entry(entry)``)."""
    # The codec may hand out tuples (schemas, raw values); the record comes back from JSON
    # with lists. Normalise so that equal entries compare equal across runs. The typed
    # attributes are already lists of dicts, so only the schemas and raw values need it.
    out = dict(encoded)
    schemas = out.get("schemas")
    if schemas is not None:
        out["schemas"] = _as_plain_json(schemas)
    for key in _raw_keys(entry):
        if key in out:
            out[key] = _as_plain_json(out[key])
    for name in SECRET_ATTRIBUTES.intersection(out):
        out[name] = _digest_secret(out[name], entry.id.bytes)
    return out


def _as_plain_json(value: JSONValue) -> JSONValue:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): _as_plain_json(v) for k, v in value.items()}
    return [_as_plain_json(v) for v in value]


def _pointer(key: str) -> str:
    return "/" + key.replace("~", "~0").replace("/", "~1")


def diff_attributes(old: Mapping[str, JSONValue], new: Mapping[str, JSONValue]) -> list[JSONObject]:
    """Attribute-level RFC 6902 operations turning ``old`` into ``new``.

    One operation per attribute (``add``, ``remove`` or ``replace`` of the whole value):
    that is Kanidm's own granularity, since an apply replaces every sync-owned attribute.

    Args:
        old: the last known projection.
        new: the new projection.

    Returns:
        The operations, ``remove`` first, then ``add``/``replace`` in key order.
    """
    ops: list[JSONObject] = [
        {"op": "remove", "path": _pointer(k)} for k in sorted(old) if k not in new
    ]
    for key in sorted(new):
        if key not in old:
            ops.append({"op": "add", "path": _pointer(key), "value": new[key]})
        elif old[key] != new[key]:
            ops.append({"op": "replace", "path": _pointer(key), "value": new[key]})
    return ops


@attrs.frozen(repr=False)
class KnownState:
    """What this runner last applied successfully for one sync account.

    Attributes:
        cookie: the cookie Kanidm recorded with that apply; the record describes Kanidm
            only while Kanidm still holds exactly this cookie.
        entries: entry id -> projection (see :func:`project_entry`) of every entry the
            account owns. A dict, or a :class:`RecordEntries` that reads the local record
            on demand (what the runner loads: a run then reads the rows it touches, not
            the whole record), or an :class:`UpdatedEntries` (a record plus one run's
            changes).
        deleted: ids this runner deleted (Kanidm keeps them recycled, so re-using one
            fails with ``invalidentrystate``); most recent last, bounded.
    """

    cookie: bytes
    entries: Mapping[uuid.UUID, JSONObject] = attrs.field(factory=dict)
    deleted: tuple[uuid.UUID, ...] = ()

    def matches(self, state: SyncState) -> bool:
        """Whether this record describes Kanidm in ``state``."""
        return isinstance(state, ActiveState) and state.cookie == self.cookie

    def __repr__(self) -> str:
        return f"KnownState(<{len(self.entries)} entries>, cookie=<{len(self.cookie)} bytes>)"


def entry_kind(entry: Entry) -> str:
    """``"person"``, ``"group"``, ``"service_account"`` or ``"entry"``, by class."""
    if isinstance(entry, Person):
        return "person"
    if isinstance(entry, Group):
        return "group"
    if isinstance(entry, ServiceAccount):
        return "service_account"
    return "entry"


def name_of(projection: Mapping[str, JSONValue]) -> str | None:
    """The ``name`` of a projection, when it has one."""
    name = projection.get("name")
    return name if isinstance(name, str) else None


def external_id_of(projection: Mapping[str, JSONValue]) -> str | None:
    """The ``externalId`` of a projection, when it has one."""
    ext = projection.get("externalId")
    return ext if isinstance(ext, str) else None


def kind_of(projection: Mapping[str, JSONValue]) -> str:
    """Like :func:`entry_kind`, from the schema URNs of a projection."""
    schemas = projection.get("schemas")
    names = {str(s).rsplit(":", 1)[-1] for s in schemas} if isinstance(schemas, list) else set()
    for kind in ("person", "group", "service_account"):
        if kind in names:
            return kind
    return "entry"


UNIQUE_KEYS: Final = ("name", "externalId", "gidnumber", "mail")
"""The wire keys of the values Kanidm keeps unique server-wide (spec §3.9.2, §4.3)."""


def unique_values(projection: Mapping[str, JSONValue]) -> Iterable[tuple[str, str]]:
    """The ``(wire key, value)`` pairs of a projection that Kanidm keeps unique.

    kanidmd 1.11.1 (server/lib/src/plugins/attrunique.rs over the schema's ``unique``
    attributes) compares ``name`` (syntax iname, stored lower-cased; the ``spn`` derived
    from it follows) and ``sync_external_id`` (stored lower-cased) case-insensitively, and
    ``gidnumber`` as a number. It stores ``mail`` as given and compares it exactly; it is
    lower-cased here all the same, so two addresses differing only in case count as one
    value: a superset, which at worst releases or deletes first once more than needed.

    Args:
        projection: an entry's projection (see :func:`project_entry`).

    Yields:
        ``(key, value)`` with the key one of :data:`UNIQUE_KEYS` and the value a string.
    """
    for key in UNIQUE_KEYS:
        value = projection.get(key)
        if isinstance(value, str):
            yield key, value.lower()
        elif isinstance(value, int) and not isinstance(value, bool):
            yield key, str(value)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict) and isinstance(item.get("value"), str):
                    yield key, str(item["value"]).lower()


# --- gidnumbers --------------------------------------------------------------------------

_GID_GENERATED: Final = 0x7000_0000
_GID_MASK: Final = 0x0FFF_FFFF
_POSIX_SCHEMAS: Final = frozenset({SCHEMA_PREFIX + "posixaccount", SCHEMA_PREFIX + "posixgroup"})


def derived_gidnumber(entry_id: uuid.UUID) -> int:
    """The gidnumber kanidmd derives for a POSIX entry without one (spec §3.9.3)."""
    return _GID_GENERATED | (int.from_bytes(entry_id.bytes[-4:], "big") & _GID_MASK)


def gidnumber_of(entry_id: uuid.UUID, projection: Mapping[str, JSONValue]) -> int | None:
    """The gidnumber a projection holds, or the one kanidmd derives for it, or ``None``."""
    gid = projection.get("gidnumber")
    if isinstance(gid, int) and not isinstance(gid, bool):
        return gid
    schemas = projection.get("schemas")
    if isinstance(schemas, list) and not _POSIX_SCHEMAS.isdisjoint(str(s) for s in schemas):
        return derived_gidnumber(entry_id)
    return None


# --- records read on demand ----------------------------------------------------------------


class RecordEntries(Mapping[uuid.UUID, JSONObject], abc.ABC):
    """The entries of a local record, read on demand (``_record_view`` reads the database).

    A mapping like a dict (iterating it reads every row once), plus the lookups a run
    needs without reading every row: rows by id in bulk, every id without the
    projections, and whether a gidnumber or an external id is held (an index in the
    record). A planner uses them through :func:`prefetch`, :func:`all_ids`,
    :func:`gidnumbers_held` and :func:`external_ids_held`, which also take a dict.
    """

    @abc.abstractmethod
    def prefetch(self, ids: Iterable[uuid.UUID]) -> None:
        """Read the rows of ``ids`` in bulk, so that looking them up costs nothing."""

    @abc.abstractmethod
    def ids(self) -> set[uuid.UUID]:
        """Every entry id of the record (projections not read)."""

    @abc.abstractmethod
    def holds_gidnumber(self, gid: int) -> bool:
        """Whether an entry holds ``gid`` or kanidmd derives it for one (:func:`gidnumber_of`)."""

    @abc.abstractmethod
    def holds_external_id(self, value: str) -> bool:
        """Whether an entry's external id is ``value`` (lower-cased)."""


def prefetch(entries: Mapping[uuid.UUID, JSONObject], ids: Iterable[uuid.UUID]) -> None:
    """Read the rows of ``ids`` of a record read on demand in bulk (nothing for a dict)."""
    if isinstance(entries, RecordEntries):
        entries.prefetch(ids)


def all_ids(entries: Mapping[uuid.UUID, JSONObject]) -> set[uuid.UUID]:
    """Every id of a record, without reading the projections of one read on demand."""
    if isinstance(entries, RecordEntries):
        return entries.ids()
    return set(entries)


class _GidnumbersHeld(Container[int]):
    def __init__(self, record: RecordEntries, extra: set[int]) -> None:
        self._record = record
        self._extra = extra

    def __contains__(self, gid: object) -> bool:
        if gid in self._extra:
            return True
        return isinstance(gid, int) and self._record.holds_gidnumber(gid)


def gidnumbers_held(
    entries: Mapping[uuid.UUID, JSONObject],
    more: Iterable[tuple[uuid.UUID, Mapping[str, JSONValue]]] = (),
) -> Container[int]:
    """The gidnumbers held or derived (:func:`gidnumber_of`) by ``entries`` and ``more``.

    Over a record read on demand, a question answered by its index per number asked.
    """
    extra = {g for eid, p in more if (g := gidnumber_of(eid, p)) is not None}
    if isinstance(entries, RecordEntries):
        return _GidnumbersHeld(entries, extra)
    extra.update(g for eid, p in entries.items() if (g := gidnumber_of(eid, p)) is not None)
    return extra


class _ExternalIdsHeld(Container[str]):
    def __init__(self, record: RecordEntries) -> None:
        self._record = record

    def __contains__(self, value: object) -> bool:
        return isinstance(value, str) and self._record.holds_external_id(value)


def external_ids_held(entries: Mapping[uuid.UUID, JSONObject]) -> Container[str]:
    """The external ids (lower-cased) ``entries`` hold; over a record, asked per value."""
    if isinstance(entries, RecordEntries):
        return _ExternalIdsHeld(entries)
    return {x.lower() for x in map(external_id_of, entries.values()) if x}


#: The compact JSON text of a projection: what the local record stores and digests.
projection_text: Final = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=False, check_circular=False, allow_nan=False
).encode


class ProjectionTexts(Mapping[uuid.UUID, JSONObject]):
    """Projections kept as their compact JSON text (:func:`projection_text`), decoded when read.

    What a plan holds for the entries it carries (``Plan.projections``): a first run of
    200,000 entries held every projection as dicts, about 1 KiB each, from planning until
    the record was written; as text, about a third of that. Reading one decodes it (a
    fresh dict each time); the local record writes the texts as they are.
    """

    __slots__ = ("_texts",)

    def __init__(self) -> None:
        """An empty mapping; :meth:`add` fills it."""
        self._texts: dict[uuid.UUID, str] = {}

    def add(self, key: uuid.UUID, projection: JSONObject) -> None:
        """Keep ``projection`` (any JSON object; a projection has no NaN) as text."""
        self._texts[key] = projection_text(projection)

    def texts(self) -> ItemsView[uuid.UUID, str]:
        """Id -> JSON text of every projection, in insertion order."""
        return self._texts.items()

    def __getitem__(self, key: uuid.UUID) -> JSONObject:
        value: JSONObject = json.loads(self._texts[key])
        return value

    def __contains__(self, key: object) -> bool:
        return key in self._texts

    def __iter__(self) -> Iterator[uuid.UUID]:
        return iter(self._texts)

    def __len__(self) -> int:
        return len(self._texts)

    def __repr__(self) -> str:
        return f"<ProjectionTexts: {len(self._texts)} entries>"


class UpdatedEntries(Mapping[uuid.UUID, JSONObject]):
    """A record (``base``) with one run's changes on top, without copying the record.

    What ``_plan.apply_to_known`` returns over a record read on demand: the local record
    then writes only ``changed`` and ``removed`` (see ``_record``).

    Args:
        base: the record before the run.
        changed: id -> new projection of each entry the run sent or kept (an entry equal
            to its base is not written again).
        removed: ids the run deleted (a removal wins over a change of the same id).
    """

    def __init__(
        self,
        base: Mapping[uuid.UUID, JSONObject],
        changed: Mapping[uuid.UUID, JSONObject],
        removed: Collection[uuid.UUID],
    ) -> None:
        self.base = base
        self.removed = frozenset(removed)
        self.changed = {k: v for k, v in changed.items() if k not in self.removed}
        prefetch(base, [*self.changed, *self.removed])
        added = sum(1 for k in self.changed if k not in base)
        gone = sum(1 for k in self.removed if k in base)
        self._len = len(base) + added - gone

    def __getitem__(self, key: uuid.UUID) -> JSONObject:
        if key in self.removed:
            raise KeyError(key)
        found = self.changed.get(key)
        return found if found is not None else self.base[key]

    def __contains__(self, key: object) -> bool:
        if key in self.removed:
            return False
        return key in self.changed or key in self.base

    def __iter__(self) -> Iterator[uuid.UUID]:
        skip = self.removed | self.changed.keys()
        for key in self.base:
            if key not in skip:
                yield key
        yield from self.changed

    def __len__(self) -> int:
        return self._len
