"""The in-memory state of Kanidm as far as sync is concerned, and its apply semantics.

Owns: entries (live, recycled, tombstone), sync accounts (entries of class
``sync_account``), the server-wide uniqueness and external-id indexes, referential
integrity on delete, derived ``memberof``, and every state-changing operation of spec §2.2,
§4 and §5: :meth:`Store.apply` (phases 1-5, all or nothing), finalise, terminate,
force-refresh (patch), destroy-token, set-attribute. Must not: speak HTTP, mint or verify
tokens, or decide who the caller is (the HTTP half passes the caller's rights in).

Errors are raised as :class:`Rejection`, which carries exactly the status, body and
content type kanidmd would send; the HTTP half only renders it.

All or nothing without deep copies: a transaction (:class:`_Txn`) starts from *shallow*
copies of the entry table and the indexes (a few milliseconds for 66,000 entries) and
clones an entry only the first time it touches it (copy-on-write). The committed table is
never mutated during an apply; on success the transaction's tables replace it, on failure
they are simply dropped. A failed apply therefore leaves the store identical, object for
object.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import re
import urllib.parse
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Final, Literal

import attrs

from .._proto._status import OperationError
from ._attr_order import attr_rank
from ._parse import (
    FrameworkRejection,
    ScimEntry,
    SyncRequest,
    parse_rust_uuid,
)
from ._parse import (
    parse_sync_request as _parse_sync_request,
)
from ._schema_table import (
    ATTRIBUTES,
    CLASSES,
    REFERENCE_ATTRS,
    SYNC_ALLOWED_CLASSES,
    SYNC_URN_PREFIX,
    UNIQUE_ATTRS,
    class_rules,
    owned_attributes,
)
from ._values import (
    Credential,
    ImportedTotp,
    MailValue,
    Reject,
    SshKeyValue,
    convert,
    credential_for,
    gid_from_uuid,
    gid_in_allowed_range,
    iname_ok,
    mail_ok,
    parse_password_hash,
    utf8_ok,
)

__all__ = [
    "EntryState",
    "Rejection",
    "Store",
    "StoredEntry",
    "StoredValue",
    "SyncRequest",
    "TokenSession",
    "parse_sync_request",
]

EntryState = Literal["live", "recycled", "tombstone"]
StoredValue = str | int | bool
"""A value as :class:`StoredEntry` renders it (Kanidm's own string rendering for most)."""

_JSON: Final = "application/json"
_TEXT: Final = "text/plain; charset=utf-8"
_BUILTIN_LIMIT: Final = uuid.UUID("00000000-0000-0000-0001-000000000000")
_RI_MESSAGE: Final = "Uuid referenced not found in database"


class Rejection(Exception):
    """An HTTP error response kanidmd would send. Raised by the core, rendered by HTTP.

    Attributes:
        status: the HTTP status.
        body: the exact body bytes.
        content_type: ``application/json`` (operation errors) or
            ``text/plain; charset=utf-8`` (framework rejections).
        error: the operation error, or ``None`` for a framework rejection.
    """

    def __init__(
        self,
        status: int,
        body: bytes,
        content_type: str,
        error: OperationError | None = None,
    ) -> None:
        super().__init__(f"HTTP {status}: {body.decode('utf-8', 'replace')}")
        self.status = status
        self.body = body
        self.content_type = content_type
        self.error = error

    @classmethod
    def operation(cls, err: OperationError) -> Rejection:
        """The JSON error response for a Kanidm ``OperationError``."""
        return cls(err.status, err.body(), _JSON, err)

    @classmethod
    def text(cls, status: int, message: str) -> Rejection:
        """A plain-text framework rejection (400/413/415/422)."""
        return cls(status, message.encode(), _TEXT)

    @classmethod
    def of(cls, variant: str, detail: object = None) -> Rejection:
        """Shorthand for :meth:`operation` from a variant and its detail."""
        return cls.operation(OperationError(variant, detail))  # type: ignore[arg-type]  # details are JSON built here

    @property
    def variant(self) -> str | None:
        """The lowercase error variant, or ``None`` for a framework rejection."""
        return self.error.variant if self.error is not None else None

    def json(self) -> object:
        """The body parsed as JSON (framework rejections: the text)."""
        if self.content_type == _JSON:
            return json.loads(self.body)
        return self.body.decode()


@contextlib.contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector (bulk work that builds only acyclic objects)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _schema(kind: str, detail: object) -> Rejection:
    return Rejection.of("schemaviolation", {kind: detail})


def _uniqueness(names: Iterable[str]) -> Rejection:
    # kanidm: server/lib/src/plugins/attrunique.rs enforce_unique collects one attribute per
    # conflicting (attribute, value) key of a BTreeMap, so the list is in Attribute order and
    # keeps duplicates (two names taken: ["name", "name", "spn", "spn"]);
    # server/core/src/https/errors.rs renders AttributeUniqueness(attrs) as the 409 body.
    return Rejection.of("attributeuniqueness", sorted(names, key=attr_rank))


def parse_sync_request(body: bytes) -> SyncRequest:
    """HTTP-layer parsing of a ``POST /scim/v1/Sync`` body (spec §4.0 step 3, §3.5).

    Args:
        body: the raw request body (the HTTP half checks size and content type first).

    Returns:
        The parsed, generic (``ScimEntry``-level) request.

    Raises:
        Rejection: 400 text for non-JSON, 422 text for shape errors (``null`` values,
            bad UUIDs, missing keys, unknown enum variants, bad cookie base64).
    """
    try:
        with _no_cyclic_gc():
            return _parse_sync_request(body)
    except FrameworkRejection as exc:
        raise Rejection.text(exc.status, exc.message) from None


@attrs.frozen
class TokenSession:
    """One value of ``sync_token_session`` (the token itself lives in the HTTP half).

    Attributes:
        token_id: the token UUID the JWS names.
        label: the label given at generation.
        issued_at: when it was issued (UTC).
        issued_by: the UUID of the admin who generated it.
    """

    token_id: uuid.UUID
    label: str
    issued_at: datetime
    issued_by: uuid.UUID

    def render(self) -> str:
        """The v1 rendering: ``<token uuid>: <debug dump of the session>`` (opaque)."""
        return (
            f"{self.token_id}: ApiToken {{ label: {json.dumps(self.label)}, expiry: None, "
            f"issued_at: {_render_datetime(self.issued_at)}, issued_by: {self.issued_by}, "
            f"scope: Synchronise }}"
        )


@attrs.frozen
class StoredEntry:
    """A read-only view of one stored entry.

    Attributes:
        uuid: the entry UUID.
        classes: the entry's classes.
        attrs: attribute name to values in Kanidm's rendering (``uuid`` and ``class``
            included; ``memberof``/``directmemberof`` derived for live entries; the sync
            cookie shown as ``private_binary``; no secret ever appears).
        state: ``live``, ``recycled`` or ``tombstone``.
    """

    uuid: uuid.UUID
    classes: frozenset[str]
    attrs: Mapping[str, tuple[StoredValue, ...]]
    state: EntryState

    def get(self, attr: str) -> tuple[StoredValue, ...]:
        """All values of ``attr`` (empty when absent)."""
        return self.attrs.get(attr, ())

    def first(self, attr: str) -> StoredValue | None:
        """The first value of ``attr``, or ``None``."""
        values = self.attrs.get(attr, ())
        return values[0] if values else None

    @property
    def name(self) -> str | None:
        """The entry's ``name``, if any."""
        value = self.first("name")
        return value if isinstance(value, str) else None


# --- internal representation ---------------------------------------------------------------


class _Entry:
    """A mutable stored entry. Attribute values are kept in insertion order, deduplicated."""

    __slots__ = ("attrs", "classes", "state", "uuid")

    def __init__(
        self,
        uid: uuid.UUID,
        classes: set[str],
        attrs_: dict[str, list[object]],
        state: EntryState = "live",
    ) -> None:
        self.uuid = uid
        self.classes = classes
        self.attrs = attrs_
        self.state: EntryState = state

    def clone(self) -> _Entry:
        return _Entry(
            self.uuid, set(self.classes), {k: list(v) for k, v in self.attrs.items()}, self.state
        )

    def first(self, attr: str) -> object | None:
        values = self.attrs.get(attr)
        return values[0] if values else None

    def set(self, attr: str, values: Iterable[object]) -> None:
        vals = list(dict.fromkeys(values))
        if vals:
            self.attrs[attr] = vals
        else:
            self.attrs.pop(attr, None)

    def add(self, attr: str, value: object) -> None:
        values = self.attrs.setdefault(attr, [])
        if value not in values:
            values.append(value)

    def owner(self) -> object | None:
        return self.first("sync_parent_uuid") if "sync_object" in self.classes else None


def _render_datetime(value: datetime) -> str:
    value = value.astimezone(UTC)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    return text + "Z"


def _render(value: object) -> StoredValue:
    if isinstance(value, str | int | bool):
        return value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return _render_datetime(value)
    if isinstance(value, SshKeyValue):
        return f"{value.label}: {value.key}"
    if isinstance(value, Credential | TokenSession):
        return value.render()
    if isinstance(value, bytes):
        return "private_binary"
    return str(value)


def _fingerprint_value(value: object) -> str:
    # Like _render, but secrets contribute through digests so that two different
    # cookies or credentials never compare equal.
    if isinstance(value, bytes):
        return "bytes:" + hashlib.sha256(value).hexdigest()
    if isinstance(value, Credential):
        return f"cred:{value.kind}:{value.digest}:{','.join(value.totp_labels)}"
    return f"{type(value).__name__}:{_render(value)}"


_INDEXED: Final = tuple(a for a in UNIQUE_ATTRS if a != "uuid")


def _unique_keys(entry: _Entry) -> list[tuple[str, object]]:
    attrs_ = entry.attrs
    keys = [(attr, v) for attr in _INDEXED if attr in attrs_ for v in attrs_[attr]]
    if "sync_token_session" in attrs_:
        # Token sessions are indexed by their token id (what §4.1 looks up).
        keys = [(a, v.token_id if isinstance(v, TokenSession) else v) for a, v in keys]
    return keys


class _Txn:
    """A copy-on-write transaction over the store's tables."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.entries: dict[uuid.UUID, _Entry] = dict(store._entries)
        self.unique: dict[tuple[str, object], uuid.UUID] = dict(store._unique)
        self._owned: set[uuid.UUID] = set()

    def get(self, uid: uuid.UUID) -> _Entry | None:
        return self.entries.get(uid)

    def live(self, uid: uuid.UUID) -> _Entry | None:
        e = self.entries.get(uid)
        return e if e is not None and e.state == "live" else None

    def mut(self, uid: uuid.UUID) -> _Entry:
        """The entry, cloned on first touch in this transaction."""
        if uid in self._owned:
            return self.entries[uid]
        e = self.entries[uid].clone()
        self.entries[uid] = e
        self._owned.add(uid)
        return e

    def create(self, entry: _Entry) -> None:
        self.entries[entry.uuid] = entry
        self._owned.add(entry.uuid)
        self.index(entry)

    def unindex(self, entry: _Entry) -> None:
        if entry.state != "live":
            return
        for key in _unique_keys(entry):
            if self.unique.get(key) == entry.uuid:
                del self.unique[key]

    def index(self, entry: _Entry) -> None:
        if entry.state != "live":
            return
        for key in _unique_keys(entry):
            self.unique[key] = entry.uuid

    def resolve_external_id(self, external_id: str) -> uuid.UUID | None:
        return self.unique.get(("sync_external_id", external_id))

    def check_unique(self, cands: Sequence[_Entry]) -> None:
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
            for key in _unique_keys(e):
                holders.setdefault(key, []).append(e.uuid)
        clashes = [key[0] for key, uids in holders.items() if len(uids) > 1]
        if clashes:
            raise _uniqueness(clashes)
        conflicts = []
        for key, (uid,) in holders.items():
            holder = self.unique.get(key)
            if holder is not None and holder != uid:
                conflicts.append(key[0])
        if conflicts:
            raise _uniqueness(conflicts)

    def write_unique(
        self, cands: Sequence[_Entry], before: Mapping[uuid.UUID, list[tuple[str, object]]]
    ) -> None:
        """Check uniqueness (:meth:`check_unique`), then re-index the candidates.

        Args:
            cands: the candidates, already holding the values the write stores.
            before: each modified candidate's unique keys from before the write (from
                :func:`_unique_keys`); candidates absent from it are new or unchanged.
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


@attrs.frozen
class _EntryPlan:
    """The modification list phase 3 builds for one request entry."""

    uuid: uuid.UUID
    classes: tuple[str, ...]
    purge: frozenset[str]
    values: dict[str, list[object]]
    phantoms: dict[str, list[object]]


class Store:
    """An in-memory Kanidm holding sync accounts, synced and native entries.

    Args:
        domain: the domain name used to build SPNs (``name@domain``).
    """

    def __init__(self, domain: str = "kanidm.test") -> None:
        self.domain = domain
        self._entries: dict[uuid.UUID, _Entry] = {}
        self._unique: dict[tuple[str, object], uuid.UUID] = {}
        self._memberof: dict[uuid.UUID, set[uuid.UUID]] | None = None
        self._denied_names: frozenset[str] = frozenset()

    # --- configuration -------------------------------------------------------------------

    def set_denied_names(self, names: Iterable[str]) -> None:
        """Set the system's ``denied_name`` list (names refused with ``valuedenyname``)."""
        self._denied_names = frozenset(n.lower() for n in names)

    # --- sync accounts -------------------------------------------------------------------

    def create_sync_account(self, name: str, description: str | None = None) -> uuid.UUID:
        """Create a sync account (A3) and return its UUID.

        Args:
            name: the account name.
            description: an optional description.

        Returns:
            The new account's UUID.

        Raises:
            Rejection: as :meth:`create_sync_account_v1`.
        """
        attrs_: dict[str, list[str]] = {"name": [name]}
        if description is not None:
            attrs_["description"] = [description]
        return self.create_sync_account_v1(attrs_)

    def create_sync_account_v1(self, attrs_: Mapping[str, Sequence[str]]) -> uuid.UUID:
        """Create a sync account from the ``attrs`` of a v1 entry (A3, spec §2.2).

        The ``class`` key is overwritten; any attribute but class/name/description is
        refused with 403 ``accessdenied``.

        Args:
            attrs_: the v1 ``attrs`` map as the admin sent it.

        Returns:
            The new account's UUID.

        Raises:
            Rejection: 403 ``accessdenied``, 500 ``valuedenyname``, 409 on a duplicate
                name, 400 ``schemaviolation`` (missing or invalid name, control
                characters in the description).
        """
        norm = {k.lower(): list(v) for k, v in attrs_.items()}
        for key in norm:
            if key not in ("class", "name", "description"):
                raise Rejection.of("accessdenied")
        names = [n.lower() for n in norm.get("name", [])]
        descriptions = norm.get("description", [])
        uid = uuid.uuid4()
        entry = _Entry(uid, {"object", "sync_account"}, {})
        entry.set("name", names)
        entry.set("description", descriptions)
        txn = _Txn(self)
        if any(n in self._denied_names for n in names):
            raise Rejection.of("valuedenyname")
        txn.check_unique([entry])
        self._validate_entry(entry)
        txn.create(entry)
        txn.commit()
        return uid

    def _require_sync_account(self, account: uuid.UUID) -> _Entry:
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

    def resolve_sync_account(self, ident: str) -> uuid.UUID | None:
        """Resolve a UUID, name or SPN (case-insensitive) to a live sync account, or None."""
        uid = self.resolve(ident)
        if uid is None:
            return None
        e = self._entries.get(uid)
        if e is None or e.state != "live" or "sync_account" not in e.classes:
            return None
        return uid

    def sync_accounts(self) -> list[uuid.UUID]:
        """The UUIDs of every live sync account, ordered by name."""
        found = [
            e for e in self._entries.values() if e.state == "live" and "sync_account" in e.classes
        ]
        return [e.uuid for e in sorted(found, key=lambda e: str(e.first("name")))]

    def sync_account_v1(self, account: uuid.UUID) -> dict[str, list[str]]:
        """The ``attrs`` of the account's v1 entry, in the renderings of spec §2.2.

        Raises:
            Rejection: 404 ``nomatchingentries`` if ``account`` is not a live sync account.
        """
        e = self._require_sync_account(account)
        out: dict[str, list[str]] = {
            "class": sorted(e.classes),
            "uuid": [str(e.uuid)],
        }
        for attr in sorted(e.attrs):
            out[attr] = [str(_render(v)) for v in e.attrs[attr]]
        return dict(sorted(out.items()))

    def get_cookie(self, account: uuid.UUID) -> bytes | None:
        """The account's stored cookie (``None`` = state Refresh)."""
        value = self._require_sync_account(account).first("sync_cookie")
        return value if isinstance(value, bytes) else None

    def yielded(self, account: uuid.UUID) -> frozenset[str]:
        """The account's ``sync_yield_authority`` (lower-case attribute names)."""
        e = self._require_sync_account(account)
        return frozenset(str(v) for v in e.attrs.get("sync_yield_authority", ()))

    def credential_portal(self, account: uuid.UUID) -> str | None:
        """The account's ``sync_credential_portal``, or ``None``."""
        value = self._require_sync_account(account).first("sync_credential_portal")
        return value if isinstance(value, str) else None

    def add_token_session(
        self,
        account: uuid.UUID,
        token_id: uuid.UUID,
        label: str,
        issued_by: uuid.UUID,
        *,
        issued_at: datetime | None = None,
    ) -> None:
        """Record a new sync token session on the account (A4).

        Raises:
            Rejection: 404 if the account is not a live sync account; 400
                ``{"schemaviolation":{"invalidattributesyntax":"sync_token_session"}}`` if
                a token exists already (single-valued attribute, **[inferred]**) or the
                label is not a single line without control characters.
        """
        self._require_sync_account(account)
        if not utf8_ok(label) or self._entries[account].attrs.get("sync_token_session"):
            raise _schema("invalidattributesyntax", "sync_token_session")
        txn = _Txn(self)
        e = txn.mut(account)
        session = TokenSession(token_id, label, issued_at or datetime.now(UTC), issued_by)
        e.set("sync_token_session", [session])
        txn.index(e)
        txn.commit()

    def destroy_token_sessions(self, account: uuid.UUID) -> None:
        """Purge every ``sync_token_session`` of the account (A5); fine if none exists."""
        self._require_sync_account(account)
        txn = _Txn(self)
        e = txn.mut(account)
        txn.unindex(e)
        e.set("sync_token_session", [])
        txn.index(e)
        txn.commit()

    def token_sessions(self, account: uuid.UUID) -> list[TokenSession]:
        """The account's token sessions (at most one)."""
        e = self._require_sync_account(account)
        return [v for v in e.attrs.get("sync_token_session", ()) if isinstance(v, TokenSession)]

    def account_for_token(self, token_id: uuid.UUID) -> uuid.UUID | None:
        """The live sync account whose ``sync_token_session`` holds ``token_id`` (§4.1)."""
        holder = self._unique.get(("sync_token_session", token_id))
        if holder is None:
            return None
        e = self._entries.get(holder)
        if e is None or e.state != "live" or "sync_account" not in e.classes:
            return None
        return holder

    def patch_sync_account(self, account: uuid.UUID, attrs_: Mapping[str, Sequence[str]]) -> None:
        """Generic v1 patch of a sync account (A6): purge each key, then add its values.

        ``{"sync_cookie": []}`` is the force-refresh of spec §5.

        Raises:
            Rejection: 404 (not a live sync account); 400 ``emptyrequest`` (no attribute
                at all, **[inferred]**); 400 ``invalidattributename`` (unknown
                attribute with values), ``schemaviolation`` (unknown attribute without
                values **[inferred]**, invalid name, two portals, missing name),
                ``invalidattribute`` (a cookie value, a bad URL); 403 ``accessdenied``
                (an attribute the manage ACP does not grant); 500 ``valuedenyname``;
                409 duplicate name.
        """
        e0 = self._require_sync_account(account)
        norm = {k.lower(): list(v) for k, v in attrs_.items()}
        if not norm:
            # [inferred] kanidmd's modify refuses an empty modification list with
            # EmptyRequest before anything else; `{"attrs":{}}` builds exactly that.
            raise Rejection.of("emptyrequest")
        converted: dict[str, list[object]] = {}
        for attr, values in norm.items():
            adef = ATTRIBUTES.get(attr)
            if adef is None:
                if values:
                    raise Rejection.of("invalidattributename", attr)
                raise _schema("invalidattribute", attr)
            converted[attr] = [self._v1_value(attr, v) for v in values]
        granted_present = {
            "name",
            "description",
            "sync_token_session",
            "sync_credential_portal",
            "sync_yield_authority",
        }
        granted_remove = granted_present | {"sync_cookie"}
        for attr, conv in converted.items():
            if attr not in granted_remove or (conv and attr not in granted_present):
                raise Rejection.of("accessdenied")
        txn = _Txn(self)
        before = {e0.uuid: _unique_keys(e0)}
        e = txn.mut(e0.uuid)
        for attr, conv in converted.items():
            e.set(attr, conv)
        for v in e.attrs.get("name", ()):
            if str(v) in self._denied_names:
                raise Rejection.of("valuedenyname")
        txn.write_unique([e], before)
        self._validate_entry(e)
        txn.commit()

    def set_sync_account_attr(self, account: uuid.UUID, attr: str, values: Sequence[str]) -> None:
        """Set one attribute of a sync account (A8/A9: ``PUT .../_attr/{attr}``).

        Same semantics as :meth:`patch_sync_account` with a single key (purge, then add).
        """
        self.patch_sync_account(account, {attr: values})

    def _v1_value(self, attr: str, value: str) -> object:
        syntax = ATTRIBUTES[attr].syntax
        if syntax == "private_binary":
            raise Rejection.of(
                "invalidattribute", "Private Binary Values can not be supplied through modification"
            )
        if syntax == "url":
            normalised = _normalise_url(value)
            if normalised is None:
                raise Rejection.of("invalidattribute", "Invalid Url (whatwg/url) syntax")
            return normalised
        if syntax == "apitoken":
            # [inferred] kanidmd has no string form for an API token session.
            raise Rejection.of(
                "invalidattribute", "ApiToken Values can not be supplied through modification"
            )
        if syntax in ("iname", "utf8_ci"):
            return value.lower()
        return value

    def _validate_entry(self, e: _Entry) -> None:
        """Schema validation of one entry (spec §4.5 d), in kanidmd's precedence."""
        for cls in sorted(e.classes):
            if cls not in CLASSES:
                raise _schema("invalidclass", [cls])
        for cls in sorted(e.classes):
            sup = CLASSES[cls].supplements
            if sup and not any(s in e.classes for s in sup):
                raise _schema("supplementsnotsatisfied", list(sup))
        for cls in sorted(e.classes):
            excluded = [x for x in CLASSES[cls].excludes if x in e.classes]
            if excluded:
                # [inferred] the body lists the excluded classes that are present.
                raise _schema("excludesnotsatisfied", excluded)
        must, allowed = class_rules(frozenset(e.classes))
        missing = sorted(a for a in must if a not in ("uuid", "class") and a not in e.attrs)
        if missing:
            raise _schema("missingmustattribute", missing)
        for attr in sorted(e.attrs):
            if attr not in allowed:
                raise _schema("attributenotvalidforclass", attr)
            if not ATTRIBUTES[attr].multi and len(e.attrs[attr]) > 1:
                raise _schema("invalidattributesyntax", attr)
            if attr == "name" and not all(iname_ok(str(v)) for v in e.attrs[attr]):
                raise _schema("invalidattributesyntax", attr)
            if ATTRIBUTES[attr].syntax in ("utf8", "utf8_ci") and not all(
                utf8_ok(str(v)) for v in e.attrs[attr]
            ):
                raise _schema("invalidattributesyntax", attr)

    # --- finalise / terminate (spec §5) ------------------------------------------------------

    def _preamble(self, account: uuid.UUID, caller_can_delete: bool) -> _Entry:
        e = self._entries.get(account)
        if e is None or e.state != "live":
            raise Rejection.of("nomatchingentries")
        if "sync_account" not in e.classes:
            raise Rejection.of("missingclass", "sync_account")
        if not caller_can_delete:
            raise Rejection.of("notauthorised")
        return e

    def _strip_markers(self, txn: _Txn, account: uuid.UUID) -> list[uuid.UUID]:
        owned = [
            e.uuid
            for e in self._entries.values()
            if e.state != "tombstone" and e.owner() == account
        ]
        for uid in owned:
            e = txn.mut(uid)
            txn.unindex(e)
            e.classes.discard("sync_object")
            for attr in ("sync_external_id", "sync_class", "sync_parent_uuid"):
                e.attrs.pop(attr, None)
            txn.index(e)
        return owned

    def finalise(self, account: uuid.UUID, *, caller_can_delete: bool = True) -> None:
        """Finalise a sync account: Kanidm takes over its entries (A10, spec §5).

        Args:
            account: the resolved ``{id}``.
            caller_can_delete: whether the caller may delete the account (decided by the
                HTTP half from the caller's identity).

        Raises:
            Rejection: 404 ``nomatchingentries``; 500 ``{"missingclass":"sync_account"}``;
                500 ``notauthorised``.
        """
        self._preamble(account, caller_can_delete)
        txn = _Txn(self)
        self._strip_markers(txn, account)
        txn.delete([account])
        txn.commit()

    def terminate(self, account: uuid.UUID, *, caller_can_delete: bool = True) -> None:
        """Terminate a sync account: delete it and every live entry it owns (A11, §5).

        Raises:
            Rejection: as :meth:`finalise`.
        """
        self._preamble(account, caller_can_delete)
        txn = _Txn(self)
        owned = self._strip_markers(txn, account)
        txn.delete([account, *owned])
        txn.commit()

    # --- seeding -------------------------------------------------------------------------

    def _seed(self, entry: _Entry) -> uuid.UUID:
        if entry.uuid in self._entries:
            raise ValueError(f"an entry with uuid {entry.uuid} exists already")
        txn = _Txn(self)
        txn.check_unique([entry])
        self._validate_entry(entry)
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
        e = _Entry(uid, {"object", "account", "person"}, {})
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
                raise Rejection.of("plugin", {"referentialintegrity": _RI_MESSAGE})
        e = _Entry(uid, {"object", "group"}, {})
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
        txn = _Txn(self)
        if txn.live(target) is None:
            raise Rejection.of("nomatchingentries")
        before = {target: _unique_keys(txn.entries[target])}
        e = txn.mut(target)
        e.set(attr, [v.lower() if adef.syntax in ("iname", "utf8_ci") else v for v in values])
        if attr == "name" and e.classes & {"group", "account"} and e.first("name") is not None:
            e.set("spn", [f"{e.first('name')}@{self.domain}"])
        txn.write_unique([e], before)
        self._validate_entry(e)
        txn.commit()

    def recycle(self, uid: uuid.UUID) -> None:
        """Delete (recycle) a live entry with the usual side effects."""
        txn = _Txn(self)
        if txn.live(uid) is None:
            raise Rejection.of("nomatchingentries")
        txn.delete([uid])
        txn.commit()

    def tombstone(self, uid: uuid.UUID) -> None:
        """Turn a recycled entry into a tombstone (what the purge does after 7 days)."""
        txn = _Txn(self)
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

    def _view(self, e: _Entry) -> StoredEntry:
        out: dict[str, tuple[StoredValue, ...]] = {
            "uuid": (str(e.uuid),),
            "class": tuple(sorted(e.classes)),
        }
        for attr, values in e.attrs.items():
            rendered = [_render(v) for v in values]
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
        """One entry by UUID (any state), or by name/SPN (live entries only)."""
        uid = key if isinstance(key, uuid.UUID) else self.resolve(key)
        if uid is None:
            return None
        e = self._entries.get(uid)
        if e is None or (not isinstance(key, uuid.UUID) and e.state != "live"):
            return None
        return self._view(e)

    def entries(
        self, *, include_recycled: bool = False, owned_by: uuid.UUID | None = None
    ) -> list[StoredEntry]:
        """Entries ordered by UUID: live ones, plus recycled/tombstones if asked.

        Args:
            include_recycled: also return recycled entries and tombstones.
            owned_by: only entries with ``sync_parent_uuid`` equal to this account.
        """
        out = []
        for uid in sorted(self._entries):
            e = self._entries[uid]
            if e.state != "live" and not include_recycled:
                continue
            if owned_by is not None and e.owner() != owned_by:
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
                        (a, tuple(_fingerprint_value(v) for v in vals))
                        for a, vals in sorted(e.attrs.items())
                    ),
                )
                for e in sorted(self._entries.values(), key=lambda x: x.uuid)
            ),
        )

    def fingerprint(self) -> str:
        """A SHA-256 of :meth:`snapshot`: equal fingerprints mean an identical state."""
        return hashlib.sha256(repr(self.snapshot()).encode()).hexdigest()

    # --- apply (spec §4) -----------------------------------------------------------------

    def apply(self, account: uuid.UUID, request: SyncRequest) -> None:
        """Apply a sync request for ``account``: phases 1-5 of spec §4, all or nothing.

        Args:
            account: the sync account the token belongs to (``S``).
            request: the parsed request (:func:`parse_sync_request`).

        Raises:
            Rejection: the first failing check, exactly as kanidmd reports it; the store
                is then left exactly as before.
        """
        # The transaction allocates hundreds of thousands of acyclic containers for a large
        # refresh; the cyclic collector would rescan the whole store many times over.
        with _no_cyclic_gc():
            self._apply(account, request)

    def _apply(self, account: uuid.UUID, request: SyncRequest) -> None:
        acct = self._require_sync_account(account)
        # Phase 1: state check.
        stored = acct.first("sync_cookie")
        refresh = request.from_cookie is None
        if not refresh and (not isinstance(stored, bytes) or stored != request.from_cookie):
            raise Rejection.of("invalidsyncstate")
        yielded = frozenset(str(v) for v in acct.attrs.get("sync_yield_authority", ()))
        by_id: dict[uuid.UUID, ScimEntry] = {}
        for entry in request.entries:
            by_id[entry.id] = entry  # duplicate ids: the last occurrence wins
        ordered = [by_id[u] for u in sorted(by_id, key=lambda u: u.bytes)]

        txn = _Txn(self)
        if ordered:
            self._phase_2(txn, account, ordered)
        if refresh:
            keep = set(by_id)
            txn.delete(
                [
                    e.uuid
                    for e in txn.entries.values()
                    if e.state == "live" and e.owner() == account and e.uuid not in keep
                ]
            )
        if ordered:
            self._phase_3(txn, account, ordered, yielded)
        self._phase_4(txn, account, request)
        # Phase 5: record the new state.
        a = txn.mut(account)
        a.set("sync_cookie", [] if request.to_cookie is None else [request.to_cookie])
        txn.commit()

    def _phase_2(self, txn: _Txn, account: uuid.UUID, ordered: list[ScimEntry]) -> None:
        for entry in ordered:
            e = txn.get(entry.id)
            if e is not None and e.state != "live":
                raise Rejection.of("invalidentrystate")
        for entry in ordered:
            if txn.get(entry.id) is None:
                classes = {"object", "sync_object"}
                if entry.id.int < _BUILTIN_LIMIT.int:
                    classes.add("builtin")
                txn.create(_Entry(entry.id, classes, {"sync_parent_uuid": [account]}))
        with_ext = [e for e in ordered if e.external_id is not None]
        if not with_ext:
            raise Rejection.of("emptyrequest")
        for entry in with_ext:
            if not utf8_ok(str(entry.external_id)):
                raise _schema("invalidattributesyntax", "sync_external_id")
        for entry in with_ext:
            target = txn.get(entry.id)
            if target is None or target.owner() != account:
                raise Rejection.of("modifyassertionfailed")
        # One batch modify over every entry with an externalId, unchanged ones included
        # (kanidm: server/lib/src/idm/scim.rs scim_sync_apply_phase_2): uniqueness is checked
        # against the database before the batch, so two entries trading external ids in
        # one request conflict.
        cands: list[_Entry] = []
        before: dict[uuid.UUID, list[tuple[str, object]]] = {}
        for entry in with_ext:
            external_id = str(entry.external_id).lower()
            current = txn.entries[entry.id]
            if current.attrs.get("sync_external_id") == [external_id]:
                cands.append(current)  # unchanged: no copy needed
                continue
            before[entry.id] = _unique_keys(current)
            e = txn.mut(entry.id)
            e.set("sync_external_id", [external_id])
            cands.append(e)
        txn.write_unique(cands, before)

    def _plan(
        self,
        txn: _Txn,
        entry: ScimEntry,
        yielded: frozenset[str],
    ) -> _EntryPlan:
        classes: list[str] = []
        for urn in entry.schemas:
            cls = urn[len(SYNC_URN_PREFIX) :] if urn.startswith(SYNC_URN_PREFIX) else None
            if cls is None or cls not in SYNC_ALLOWED_CLASSES:
                raise Rejection.of("invalidentrystate")
            if cls not in classes:
                classes.append(cls)
        purge, phantoms = owned_attributes(classes, yielded)
        values: dict[str, list[object]] = {}
        phantom_values: dict[str, list[object]] = {}
        for key in sorted(entry.attrs):
            attr = key.lower() if key.lower() in ATTRIBUTES else key
            if attr not in purge and attr not in phantoms:
                raise Rejection.of("invalidentrystate")
            try:
                converted = convert(ATTRIBUTES[attr], entry.attrs[key], txn.resolve_external_id)
            except Reject as exc:
                raise Rejection.of(exc.variant, exc.detail) from None
            target = phantom_values if attr in phantoms else values
            target.setdefault(attr, []).extend(converted)
        return _EntryPlan(entry.id, tuple(classes), purge, values, phantom_values)

    def _phase_3(
        self,
        txn: _Txn,
        account: uuid.UUID,
        ordered: list[ScimEntry],
        yielded: frozenset[str],
    ) -> None:
        plans = [self._plan(txn, entry, yielded) for entry in ordered]
        # a. value validation (§3.9.2).
        for plan in plans:
            for attr, vals in plan.values.items():
                syntax = ATTRIBUTES[attr].syntax
                for v in vals:
                    ok = True
                    if syntax == "iname":
                        ok = iname_ok(str(v))
                    elif syntax in ("utf8", "utf8_ci"):
                        ok = utf8_ok(str(v))
                    elif syntax == "email" and isinstance(v, MailValue):
                        ok = mail_ok(v.address)
                    elif syntax == "sshkey" and isinstance(v, SshKeyValue):
                        ok = utf8_ok(v.label)
                    if not ok:
                        raise _schema("invalidattributesyntax", attr)
            for attr, vals in plan.phantoms.items():
                for v in vals:
                    bad = (isinstance(v, str) and not utf8_ok(v)) or (
                        isinstance(v, ImportedTotp) and not utf8_ok(v.label)
                    )
                    if bad:
                        raise _schema("invalidattributesyntax", attr)
        # b. apply the lists; the first modification asserts ownership.
        for plan in plans:
            target = txn.live(plan.uuid)
            if target is None or target.owner() != account:
                raise Rejection.of("modifyassertionfailed")
        cands: list[_Entry] = []
        before: dict[uuid.UUID, list[tuple[str, object]]] = {}
        for plan in plans:
            before[plan.uuid] = _unique_keys(txn.entries[plan.uuid])
            e = txn.mut(plan.uuid)
            for cls in plan.classes:
                e.classes.add(cls)
                e.add("sync_class", cls)
            for attr in plan.purge:
                e.attrs.pop(attr, None)
            for attr, vals in plan.values.items():
                if attr == "mail":
                    e.set(attr, _order_mail(vals))
                elif attr == "ssh_publickey":
                    e.set(attr, _dedup_ssh(vals))
                else:
                    for v in vals:
                        e.add(attr, v)
            cands.append(e)
        # c. pre-processing plugins, each over all entries before the next.
        for e in cands:
            if any(str(n) in self._denied_names for n in e.attrs.get("name", ())):
                raise Rejection.of("valuedenyname")
        for e in cands:
            if "oauth2_account" in e.classes and not e.attrs.get("oauth2_account_credential_uuid"):
                e.set("oauth2_account_credential_uuid", [uuid.uuid4()])
        for plan, e in zip(plans, cands, strict=True):
            _credential_import(e, plan.phantoms)
        for e in cands:
            if e.classes & {"posixaccount", "posixgroup"}:
                if not e.attrs.get("gidnumber"):
                    e.set("gidnumber", [gid_from_uuid(e.uuid)])
                # kanidm: plugins/gidnumber.rs checks get_ava_single_uint32: two values (two
                # keys) skip the range check and fail schema validation later.
                gids = e.attrs["gidnumber"]
                if len(gids) == 1 and not (
                    isinstance(gids[0], int) and gid_in_allowed_range(gids[0])
                ):
                    raise Rejection.of("pl0001gidoverlapssystemrange")
        for e in cands:
            if e.classes & {"group", "account"}:
                name = e.first("name")
                if name is None:
                    # kanidm: plugins/spn.rs - no name, no SPN: InvalidEntryState.
                    raise Rejection.of("invalidentrystate")
                e.set("spn", [f"{name}@{self.domain}"])
        txn.write_unique(cands, before)
        # d. schema validation.
        for e in cands:
            self._validate_entry(e)
        # e. write, then referential integrity.
        for e in cands:
            for attr in REFERENCE_ATTRS:
                for ref in e.attrs.get(attr, ()):
                    if not isinstance(ref, uuid.UUID) or txn.live(ref) is None:
                        raise Rejection.of("plugin", {"referentialintegrity": _RI_MESSAGE})

    def _phase_4(self, txn: _Txn, account: uuid.UUID, request: SyncRequest) -> None:
        if request.retain == "retain":
            keep = set(request.retain_ids)
            txn.delete(
                [
                    e.uuid
                    for e in txn.entries.values()
                    if e.state == "live" and e.owner() == account and e.uuid not in keep
                ]
            )
        elif request.retain == "delete" and request.retain_ids:
            doomed: list[uuid.UUID] = []
            for uid in request.retain_ids:
                e = txn.get(uid)
                if e is None or e.state != "live":
                    continue
                if e.owner() != account:
                    raise Rejection.of("accessdenied")
                doomed.append(uid)
            txn.delete(doomed)


def _order_mail(values: list[object]) -> list[object]:
    # §3.9.6: the first value is primary; any later value flagged primary takes over.
    primary: str | None = None
    order: list[str] = []
    for v in values:
        if not isinstance(v, MailValue):
            continue
        if primary is None or v.primary:
            primary = v.address
        if v.address not in order:
            order.append(v.address)
    if primary is None:
        return []
    return [primary, *(a for a in order if a != primary)]


def _dedup_ssh(values: list[object]) -> list[object]:
    # [inferred] two keys with the same label: the first one is kept.
    seen: dict[str, object] = {}
    for v in values:
        if isinstance(v, SshKeyValue) and v.label not in seen:
            seen[v.label] = v
    return list(seen.values())


def _credential_import(e: _Entry, phantoms: Mapping[str, list[object]]) -> None:
    """The credential-import plugin (spec §3.9.4, §3.9.5): password, TOTP, unix password."""
    for value in phantoms.get("password_import", ()):
        kind = parse_password_hash(str(value))
        if kind is None:
            raise Rejection.of(
                "plugin", {"credimport": "password_import was unable to convert hash format"}
            )
        existing = e.first("primary_credential")
        totps = existing.totp_labels if isinstance(existing, Credential) else ()
        e.set("primary_credential", [credential_for(kind, str(value), totps)])
    totps_in = [v for v in phantoms.get("totp_import", ()) if isinstance(v, ImportedTotp)]
    if totps_in:
        cred = e.first("primary_credential")
        if not isinstance(cred, Credential):
            raise Rejection.of(
                "plugin",
                {
                    "credimport": "totp_import can not be used if primary_credential "
                    "(password) is missing"
                },
            )
        labels = list(cred.totp_labels)
        for t in totps_in:
            if t.label not in labels:  # duplicate labels: the first wins
                labels.append(t.label)
        e.set("primary_credential", [attrs.evolve(cred, totp_labels=tuple(labels))])
    for value in phantoms.get("unix_password_import", ()):
        kind = parse_password_hash(str(value))
        if kind is None:
            raise Rejection.of(
                "plugin",
                {"credimport": "unix_password_import was unable to convert hash format"},
            )
        e.set("unix_password", [credential_for(kind, str(value))])


_SPECIAL_PORTS: Final = {"http": 80, "https": 443, "ws": 80, "wss": 443, "ftp": 21}


def _normalise_url(value: str) -> str | None:
    """A small WHATWG-URL approximation: absolute URL, lower-case scheme and host."""
    value = value.strip()
    if re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", value) is None:
        return None
    try:
        parts = urllib.parse.urlsplit(value)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme in _SPECIAL_PORTS:
        host = (parts.hostname or "").lower()
        if not host or any(c in host for c in " <>^|%"):
            return None
        netloc = host
        if parts.username is not None:
            userinfo = parts.username + (f":{parts.password}" if parts.password else "")
            netloc = f"{userinfo}@{host}"
        if port is not None and port != _SPECIAL_PORTS[scheme]:
            netloc += f":{port}"
        path = parts.path or "/"
        return urllib.parse.urlunsplit((scheme, netloc, path, parts.query, parts.fragment)) + (
            "#" if value.endswith("#") and not parts.fragment else ""
        )
    return scheme + value[len(scheme) :]
