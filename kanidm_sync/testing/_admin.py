"""Administrative operations on sync accounts (spec §2.2 A3-A11, §5).

Owns: creating sync accounts, their v1 view and patches (A3, A6-A9), token sessions (A4, A5,
and the §4.1 lookup), finalise and terminate (A10, A11). Must not: mint or verify tokens or
decide who the caller is (the HTTP half passes the caller's rights in).
"""

from __future__ import annotations

import re
import urllib.parse
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Final

from ._entry import MutEntry, TokenSession, render, unique_keys
from ._rejection import Rejection, schema_error
from ._schema_check import validate_entry
from ._schema_table import ATTRIBUTES
from ._txn import StoreState, Txn, single_name
from ._values import utf8_ok

__all__ = ["AdminMixin"]


class AdminMixin(StoreState):
    """The administrative operations of :class:`~._store.Store`."""

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
        entry = MutEntry(uid, {"object", "sync_account"}, {})
        entry.set("name", names)
        entry.set("description", descriptions)
        txn = Txn(self)
        if self.name_denied(None, entry, create=True):
            raise Rejection.of("valuedenyname")
        txn.check_unique([entry])
        validate_entry(entry)
        txn.create(entry)
        txn.commit()
        return uid

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
            out[attr] = [str(render(v)) for v in e.attrs[attr]]
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
            raise schema_error("invalidattributesyntax", "sync_token_session")
        txn = Txn(self)
        e = txn.mut(account)
        session = TokenSession(token_id, label, issued_at or datetime.now(UTC), issued_by)
        e.set("sync_token_session", [session])
        txn.index(e)
        txn.commit()

    def destroy_token_sessions(self, account: uuid.UUID) -> None:
        """Purge every ``sync_token_session`` of the account (A5); fine if none exists."""
        self._require_sync_account(account)
        txn = Txn(self)
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
                raise schema_error("invalidattribute", attr)
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
        txn = Txn(self)
        before = {e0.uuid: unique_keys(e0)}
        pre_name = single_name(e0)
        e = txn.mut(e0.uuid)
        for attr, conv in converted.items():
            e.set(attr, conv)
        if self.name_denied(pre_name, e):
            raise Rejection.of("valuedenyname")
        txn.write_unique([e], before)
        validate_entry(e)
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

    # --- finalise / terminate (spec §5) ------------------------------------------------------

    def _preamble(self, account: uuid.UUID, caller_can_delete: bool) -> MutEntry:
        e = self._entries.get(account)
        if e is None or e.state != "live":
            raise Rejection.of("nomatchingentries")
        if "sync_account" not in e.classes:
            raise Rejection.of("missingclass", "sync_account")
        if not caller_can_delete:
            raise Rejection.of("notauthorised")
        return e

    def _strip_markers(self, txn: Txn, account: uuid.UUID) -> list[uuid.UUID]:
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
        txn = Txn(self)
        self._strip_markers(txn, account)
        txn.delete([account])
        txn.commit()

    def terminate(self, account: uuid.UUID, *, caller_can_delete: bool = True) -> None:
        """Terminate a sync account: delete it and every live entry it owns (A11, §5).

        Raises:
            Rejection: as :meth:`finalise`.
        """
        self._preamble(account, caller_can_delete)
        txn = Txn(self)
        owned = self._strip_markers(txn, account)
        txn.delete([account, *owned])
        txn.commit()


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
