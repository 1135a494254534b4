"""The apply of a sync request (spec §4): phases 1-5, all or nothing.

Owns: :meth:`ApplyMixin.apply` and its phases, the modification list of one request entry,
and the plugins kanidmd runs on it (value-deny names, OAuth2, credential import, gidnumber,
SPN, uniqueness, schema, referential integrity). Must not: parse HTTP bodies or check
tokens (the HTTP half does both before calling :meth:`ApplyMixin.apply`).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

import attrs

from ._entry import MutEntry, unique_keys
from ._parse import ScimEntry, SyncRequest
from ._rejection import Rejection, no_cyclic_gc, schema_error
from ._schema_check import validate_entry
from ._schema_table import (
    ATTRIBUTES,
    REFERENCE_ATTRS,
    SYNC_ALLOWED_CLASSES,
    SYNC_URN_PREFIX,
    owned_attributes,
)
from ._txn import BUILTIN_LIMIT, RI_MESSAGE, StoreState, Txn, single_name
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

__all__ = ["ApplyMixin"]


@attrs.frozen
class EntryPlan:
    """The modification list phase 3 builds for one request entry."""

    uuid: uuid.UUID
    classes: tuple[str, ...]
    purge: frozenset[str]
    values: dict[str, list[object]]
    phantoms: dict[str, list[object]]


class ApplyMixin(StoreState):
    """The apply of :class:`~._store.Store`."""

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
        with no_cyclic_gc():
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

        txn = Txn(self)
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

    def _phase_2(self, txn: Txn, account: uuid.UUID, ordered: list[ScimEntry]) -> None:
        for entry in ordered:
            e = txn.get(entry.id)
            if e is not None and e.state != "live":
                raise Rejection.of("invalidentrystate")
        for entry in ordered:
            if txn.get(entry.id) is None:
                classes = {"object", "sync_object"}
                if entry.id.int < BUILTIN_LIMIT.int:
                    classes.add("builtin")
                txn.create(MutEntry(entry.id, classes, {"sync_parent_uuid": [account]}))
        with_ext = [e for e in ordered if e.external_id is not None]
        if not with_ext:
            raise Rejection.of("emptyrequest")
        for entry in with_ext:
            if not utf8_ok(str(entry.external_id)):
                raise schema_error("invalidattributesyntax", "sync_external_id")
        for entry in with_ext:
            target = txn.get(entry.id)
            if target is None or target.owner() != account:
                raise Rejection.of("modifyassertionfailed")
        # One batch modify over every entry with an externalId, unchanged ones included
        # (kanidm: server/lib/src/idm/scim.rs scim_sync_apply_phase_2): uniqueness is checked
        # against the database before the batch, so two entries trading external ids in
        # one request conflict.
        cands: list[MutEntry] = []
        before: dict[uuid.UUID, list[tuple[str, object]]] = {}
        for entry in with_ext:
            external_id = str(entry.external_id).lower()
            current = txn.entries[entry.id]
            if current.attrs.get("sync_external_id") == [external_id]:
                cands.append(current)  # unchanged: no copy needed
                continue
            before[entry.id] = unique_keys(current)
            e = txn.mut(entry.id)
            e.set("sync_external_id", [external_id])
            cands.append(e)
        txn.write_unique(cands, before)

    def _plan(
        self,
        txn: Txn,
        entry: ScimEntry,
        yielded: frozenset[str],
    ) -> EntryPlan:
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
        return EntryPlan(entry.id, tuple(classes), purge, values, phantom_values)

    def _phase_3(
        self,
        txn: Txn,
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
                        raise schema_error("invalidattributesyntax", attr)
            for attr, vals in plan.phantoms.items():
                for v in vals:
                    bad = (isinstance(v, str) and not utf8_ok(v)) or (
                        isinstance(v, ImportedTotp) and not utf8_ok(v.label)
                    )
                    if bad:
                        raise schema_error("invalidattributesyntax", attr)
        # b. apply the lists; the first modification asserts ownership.
        for plan in plans:
            target = txn.live(plan.uuid)
            if target is None or target.owner() != account:
                raise Rejection.of("modifyassertionfailed")
        cands: list[MutEntry] = []
        before: dict[uuid.UUID, list[tuple[str, object]]] = {}
        pre_names: dict[uuid.UUID, str | None] = {}
        for plan in plans:
            before[plan.uuid] = unique_keys(txn.entries[plan.uuid])
            pre_names[plan.uuid] = single_name(txn.entries[plan.uuid])
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
            if self.name_denied(pre_names[e.uuid], e):  # only a changed name (plugins/valuedeny.rs)
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
                # kanidm: server/lib/src/plugins/spn.rs modify_inner with entry.rs
                # generate_spn: the SPN follows the name; an entry without a name keeps the
                # SPN it has (spn is not sync-owned, so a re-sent group without name keeps its
                # old SPN); one with neither (a new stub) is InvalidEntryState.
                name = e.first("name")
                if name is not None:
                    e.set("spn", [f"{name}@{self.domain}"])
                elif not e.attrs.get("spn"):
                    raise Rejection.of("invalidentrystate")
        txn.write_unique(cands, before)
        # d. schema validation.
        for e in cands:
            validate_entry(e)
        # e. write, then referential integrity.
        for e in cands:
            for attr in REFERENCE_ATTRS:
                for ref in e.attrs.get(attr, ()):
                    if not isinstance(ref, uuid.UUID) or txn.live(ref) is None:
                        raise Rejection.of("plugin", {"referentialintegrity": RI_MESSAGE})

    def _phase_4(self, txn: Txn, account: uuid.UUID, request: SyncRequest) -> None:
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


def _credential_import(e: MutEntry, phantoms: Mapping[str, list[object]]) -> None:
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
