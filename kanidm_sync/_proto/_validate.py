"""One-pass local validation of a ChangeSet (spec §3.5-§3.9, §4.2-§4.9).

It finds everything kanidmd would refuse that needs no server state.

This module owns :func:`validate_changeset` (``ChangeSet.validate()``). It reads a
ChangeSet and returns a :class:`~kanidm_sync.ValidationReport` with *every* problem, in
entry order, never stopping at the first. It must not do I/O, consult a server, raise for
bad data, or put a secret (password hash, TOTP secret) into a message. The value
recognisers live in ``_checks.py`` and the schema table in ``_schema.py``; both are
shared with the in-memory Kanidm double.

This module walks the entries and runs the cross-entry checks; the pass builds on
``_validate_state.py`` (pass state and reporting), ``_validate_values.py`` (per-value
checks) and ``_validate_schema.py`` (generic entries and attributes against the schema).

Severity policy:

* **error** - kanidmd refuses the whole ChangeSet (any HTTP error of §4.9), *or* the
  apply would silently lose data the caller sent (a duplicate entry id: kanidmd keeps
  only the last occurrence, §4.2 step 5; that is never what a caller meant).
* **warning** - kanidmd accepts it but probably does not do what was meant: a member
  external id that matches no entry of the ChangeSet (dropped silently), an entry that is
  sent and then deleted by the retention mode, an entry without external id among
  others, an attribute name this SDK does not know (an admin may have added it), a
  name with upper-case letters (stored lower-cased), C1 control characters, an SSH key
  kanidmd stores although sshd cannot use it (wrong sizes, leftovers, certificates).
* Values on which kanidmd 1.11.1 panics (a datetime outside years 0000-9999 in UTC, an SSH
  key with a zero-length RSA/DSA number) are errors: the request would get no answer.

Decisions worth knowing (each has a test):

* A member that parses as a UUID is a direct reference (spec §3.9.1): it is not looked up
  and produces no problem, even when no entry of the ChangeSet has that id, because
  referencing native Kanidm entries by UUID is legitimate. (If it does not exist, kanidmd
  fails with ``referentialintegrity``; only the server can know.)
* Cross-entry uniqueness (names, external ids, mails, gidnumbers) considers only the
  entry that kanidmd keeps for each id (the last occurrence).
* A posix entry without gidnumber gets one derived from its UUID (§3.9.3); derived gids
  take part in the gidnumber uniqueness check.
* Mails are compared exactly for the uniqueness error (kanidmd stores them as given
  [inferred]); addresses equal except for case get a warning.
"""

from __future__ import annotations

import uuid
from typing import Final

from ._changeset import ChangeSet
from ._checks import is_uuid
from ._codec import (
    _GROUP_KEYS,
    _OAUTH2_KEYS,
    _PERSON_KEYS,
    _POSIXACCOUNT_KEYS,
    _POSIXGROUP_KEYS,
    _SERVICE_KEYS,
)
from ._entries import Entry, Group, Person, PosixAccount, ServiceAccount
from ._report import ValidationReport
from ._schema import DEFAULT_SCHEMA, Schema
from ._state import DeleteOnly, RefreshState, RetainOnly
from ._validate_schema import _SchemaChecks
from ._validate_state import _ERROR, _HAS_CONTROL, _POSIX_CLASS, _WARNING

__all__ = ["validate_changeset"]

# Below this UUID kanidmd gives a created stub the extra class `builtin` (spec §4.3 step 3).
_BUILTIN_UUID_LIMIT: Final = uuid.UUID("00000000-0000-0000-0001-000000000000").int

# The attributes each typed class sends from its own fields, every facet included (the
# codec's tables: wire names live there).
_PERSON_FIELDS: Final = _PERSON_KEYS | _POSIXACCOUNT_KEYS | _OAUTH2_KEYS
_GROUP_FIELDS: Final = _GROUP_KEYS | _POSIXGROUP_KEYS
_SERVICE_FIELDS: Final = _SERVICE_KEYS | _POSIXACCOUNT_KEYS

_PERSON_CLASSES: Final = frozenset({"account", "person"})
_SERVICE_CLASSES: Final = frozenset({"account", "service_account"})


def validate_changeset(cs: ChangeSet, *, schema: Schema = DEFAULT_SCHEMA) -> ValidationReport:
    """Check a ChangeSet for everything kanidmd would refuse without looking at its data.

    One pass over the entries, plus cross-entry checks (duplicates, member resolution,
    retention) from the indexes built on the way.

    Args:
        cs: the ChangeSet.
        schema: the Kanidm schema to check attributes against (an admin may have added
            sync-allowed attributes or classes).

    Returns:
        Every problem found, errors and warnings, in entry order, then ChangeSet-wide
        problems.
    """
    return _Validator(cs, schema).run()


class _Validator(_SchemaChecks):
    """One validation pass: the entry walk, typed entries and cross-entry checks."""

    # --- the pass ------------------------------------------------------------------------

    def run(self) -> ValidationReport:
        entries = self.cs.entries
        # Keyed by UUID.int: int hashing is C code, UUID.__hash__ is Python (110k entries).
        last = {e.id.int: i for i, e in enumerate(entries)}
        first: dict[int, int] = {}
        any_external = False
        without_external: list[int] = []
        for i, e in enumerate(entries):
            self.index = i
            self.entry_id = e.id
            self.external_id = e.external_id
            key = e.id.int
            self.kept = last[key] == i
            seen = first.setdefault(key, i)
            if seen != i:
                self.duplicate_id(seen, last[key])
            if e.external_id is None:
                without_external.append(i)
            else:
                any_external = True
            self.header(e)
            if isinstance(e, Person):
                self.person(e)
            elif isinstance(e, Group):
                self.group(e)
            elif isinstance(e, ServiceAccount):
                self.service_account(e)
            else:
                self.generic(e)
        self.index = self.entry_id = self.external_id = None
        if entries and not any_external:
            self.add(
                _ERROR,
                "changeset.no_external_id",
                "no entry has an external id: kanidmd answers 'emptyrequest' (400); give "
                "every entry the source's identifier",
            )
        elif without_external:
            for i in without_external:
                self.at(i)
                self.add(
                    _WARNING,
                    "external_id.missing",
                    "no external id: no member can refer to this entry, and it keeps "
                    "whatever external id it had before",
                )
            self.index = self.entry_id = self.external_id = None
        self.resolve_members()
        self.retention(first)
        # Entry problems first, in entry order; ChangeSet-wide ones (index None) last.
        self.problems.sort(key=lambda p: (p.index is None, p.index or 0))
        return ValidationReport(tuple(self.problems))

    def duplicate_id(self, first: int, last: int) -> None:
        kept = "this one" if last == self.index else f"entries[{last}]"
        self.add(
            _ERROR,
            "duplicate.id",
            f"the id is also used by entries[{first}]; kanidmd silently applies only the last "
            f"occurrence ({kept}) and drops the others",
            "id",
        )

    # --- header and shared fields --------------------------------------------------------

    def header(self, e: Entry) -> None:
        if e.id.int < _BUILTIN_UUID_LIMIT:
            self.add(
                _WARNING,
                "id.reserved",
                "the id lies in Kanidm's reserved range (below "
                "00000000-0000-0000-0001-000000000000); kanidmd marks such entries 'builtin'",
                "id",
            )
        ext = e.external_id
        if ext is None:
            return
        if _HAS_CONTROL(ext):
            self.text(ext, "external_id")
        if len(ext) in (32, 36, 38, 45) and is_uuid(ext):
            self.add(
                _WARNING,
                "external_id.uuid",
                "the external id parses as a UUID: a member written with it is taken as a "
                "direct UUID reference, not looked up by external id",
                "external_id",
            )
        if self.kept:
            key = ext.lower()
            if key == ext:
                key = ext  # keep one string alive, not two (memory on 100k entries)
            seen = self.external_ids.setdefault(key, self.index or 0)
            if seen != self.index:
                self.add(
                    _ERROR,
                    "duplicate.external_id",
                    f"entries[{seen}] has the same external id (compared case-insensitively); "
                    "kanidmd answers 409",
                    "external_id",
                )

    # --- typed entries -------------------------------------------------------------------

    def account(self, e: Person | ServiceAccount) -> None:
        """What persons and service accounts share: mail, keys, validity, password."""
        if e.mail:
            self.mails(e.mail)
        if e.ssh_publickey:
            self.ssh_keys(e.ssh_publickey)
        self.date(e.account_valid_from, "account_valid_from")
        self.date(e.account_expire, "account_expire")
        self.date(e.account_softlock_expire, "account_softlock_expire")
        self.password(e.password_import, "password_import")

    def posix_account(self, posix: PosixAccount) -> None:
        """The POSIX facet of a person or service account."""
        self.gidnumber(posix.gidnumber)
        if posix.loginshell is not None and _HAS_CONTROL(posix.loginshell):
            self.text(posix.loginshell, "loginshell")
        self.password(posix.unix_password_import, "unix_password_import")

    def person(self, e: Person) -> None:
        self.name(e.name)
        if _HAS_CONTROL(e.displayname):
            self.text(e.displayname, "displayname")
        self.empty(e.displayname, "displayname")
        if e.legalname is not None:
            self.text(e.legalname, "legalname")
            self.empty(e.legalname, "legalname")
        self.account(e)
        self.totps(e.totp_import, e.password_import is not None)
        if e.posix is not None:
            self.posix_account(e.posix)
        if e.oauth2 is not None:
            o = e.oauth2
            self.text(o.provider, "oauth2_account_provider")
            if not is_uuid(o.provider):
                # OAuth2 clients are not sync-allowed entries, so no external id can name
                # one; kanidmd then fails the single reference [inferred].
                self.add(
                    _WARNING,
                    "oauth2.provider_reference",
                    "the provider is not a UUID; kanidmd looks it up by external id, and an "
                    "OAuth2 client normally has none (400 if it does not resolve)",
                    "oauth2_account_provider",
                )
            self.text(o.unique_user_id, "oauth2_account_unique_user_id")
            self.empty(o.unique_user_id, "oauth2_account_unique_user_id")
            if o.unique_user_sub is None:
                self.add(
                    _ERROR,
                    "schema.must",
                    "oauth2_account needs oauth2_account_unique_user_sub since Kanidm 1.11 "
                    "(missingmustattribute)",
                    "oauth2_account_unique_user_sub",
                )
            else:
                self.text(o.unique_user_sub, "oauth2_account_unique_user_sub")
                self.empty(o.unique_user_sub, "oauth2_account_unique_user_sub")
        if e.extra:
            classes = set(_PERSON_CLASSES)
            if e.posix is not None:
                classes.add(_POSIX_CLASS)
            if e.oauth2 is not None:
                classes.add("oauth2_account")
            self.attributes(e.extra, classes, _PERSON_FIELDS)

    def group(self, e: Group) -> None:
        self.name(e.name)
        if e.description is not None:
            if _HAS_CONTROL(e.description):
                self.text(e.description, "description")
            self.empty(e.description, "description")
        if e.mail:
            self.mails(e.mail)
        if e.member:
            i = self.index or 0
            append = self.members.append
            for n, ref in enumerate(e.member):
                if _HAS_CONTROL(ref):
                    self.text(ref, f"member[{n}]")
                append((i, n, ref))
        if e.posix is not None:
            self.gidnumber(e.posix.gidnumber)
        if e.extra:
            classes = {"group", "posixgroup"} if e.posix is not None else {"group"}
            self.attributes(e.extra, classes, _GROUP_FIELDS)

    def service_account(self, e: ServiceAccount) -> None:
        self.name(e.name)
        self.text(e.displayname, "displayname")
        self.empty(e.displayname, "displayname")
        if e.description is not None:
            self.text(e.description, "description")
            self.empty(e.description, "description")
        self.account(e)
        if e.posix is not None:
            self.posix_account(e.posix)
        if e.extra:
            classes = set(_SERVICE_CLASSES)
            if e.posix is not None:
                classes.add(_POSIX_CLASS)
            self.attributes(e.extra, classes, _SERVICE_FIELDS)

    # --- cross-entry checks --------------------------------------------------------------

    def resolve_members(self) -> None:
        for i, n, ref in self.members:
            if ref.lower() in self.external_ids:
                continue
            if len(ref) in (32, 36, 38, 45) and is_uuid(ref):
                # A direct reference: not looked up; see the module docstring.
                continue
            self.at(i)
            refresh = isinstance(self.cs.from_state, RefreshState)
            where = (
                "this refresh deletes every entry it does not carry"
                if refresh
                else "unless an entry with it already exists in Kanidm"
            )
            self.add(
                _WARNING,
                "member.unresolved",
                f"no entry of this ChangeSet has the external id {ref!r}; kanidmd drops the "
                f"member silently ({where})",
                f"member[{n}]",
            )
        self.index = self.entry_id = self.external_id = None

    def retention(self, first: dict[int, int]) -> None:
        retain = self.cs.retain
        if isinstance(retain, DeleteOnly):
            for uid in dict.fromkeys(retain.ids):
                i = first.get(uid.int)
                if i is not None:
                    self.at(i)
                    self.add(
                        _WARNING,
                        "retain.deletes_sent_entry",
                        "the retention mode deletes this entry right after writing it",
                        "id",
                    )
        elif isinstance(retain, RetainOnly):
            keep = frozenset(u.int for u in retain.ids)
            for key, i in first.items():
                if key not in keep:
                    self.at(i)
                    self.add(
                        _WARNING,
                        "retain.drops_sent_entry",
                        "the retention mode does not list this entry, so kanidmd deletes it "
                        "right after writing it",
                        "id",
                    )
        self.index = self.entry_id = self.external_id = None
