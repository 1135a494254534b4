"""Projection: the form an entry is diffed and recorded in, and the local record of it.

Owns: :func:`project_entry` (an entry's wire JSON with secrets digested), the RFC 6902
attribute diff between two projections, :class:`KnownState` (what this runner last
applied for one sync account), and reading labels and the unique values Kanidm enforces
out of a projection.

Must not: do I/O, log, read a clock, or talk to Kanidm. Pure.

Secrets never enter a projection: password and TOTP imports are replaced by a SHA-256
digest salted with the entry id, so a diff shows that a secret changed, never the secret.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Mapping
from typing import Final

import attrs

from ._proto._codec import dumps, encode_entry
from ._proto._entries import (
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
    "diff_attributes",
    "entry_kind",
    "external_id_of",
    "kind_of",
    "name_of",
    "project_encoded",
    "project_entry",
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
            account owns.
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
