"""One-pass local validation of a ChangeSet (spec §3.5-§3.9, §4.2-§4.9).

It finds everything kanidmd would refuse that needs no server state.

This module owns :func:`validate_changeset` (``ChangeSet.validate()``). It reads a
ChangeSet and returns a :class:`~kanidm_sync.ValidationReport` with *every* problem, in
entry order, never stopping at the first. It must not do I/O, consult a server, raise for
bad data, or put a secret (password hash, TOTP secret) into a message. The value
recognisers live in ``_checks.py`` and the schema table in ``_schema.py``; both are
shared with the in-memory Kanidm double.

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

import re
import uuid
from collections.abc import Iterable, Mapping
from typing import Final

from .._types import JSONValue
from ._changeset import ChangeSet
from ._checks import (
    RFC3339_CRASH,
    SSH_KEY_CRASH,
    derived_gidnumber,
    gidnumber_allowed,
    has_control_chars,
    iname_problem,
    is_uuid,
    mail_ok,
    password_import_problem,
    rfc3339_problem,
    ssh_public_key_oddity,
    ssh_public_key_problem,
    totp_problems,
)
from ._codec import (
    _GROUP_KEYS,
    _OAUTH2_KEYS,
    _PERSON_KEYS,
    _POSIXACCOUNT_KEYS,
    _POSIXGROUP_KEYS,
    _SERVICE_KEYS,
)
from ._entries import (
    Entry,
    GenericEntry,
    Group,
    Mail,
    Person,
    PosixAccount,
    ServiceAccount,
    SshPublicKey,
    Totp,
)
from ._report import Problem, Severity, ValidationReport
from ._schema import DEFAULT_SCHEMA, HEADER_KEYS, AttributeSchema, Schema, Syntax, class_from_urn
from ._state import DeleteOnly, RefreshState, RetainOnly

__all__ = ["validate_changeset"]

_ERROR: Final = Severity.ERROR
_WARNING: Final = Severity.WARNING

# C0 controls and DEL are refused by kanidmd; C1 (0x80-0x9f) only warned about. One
# search finds either; the rare hit is then told apart.
_ANY_CONTROL_RE: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_C0_RE: Final = re.compile(r"[\x00-\x1f\x7f]")
_HAS_CONTROL: Final = _ANY_CONTROL_RE.search
# Same pattern as _checks.iname_problem(); used for the fast path of valid names.
_INAME_RE: Final = re.compile(r"[a-z][a-z0-9\-_.]{0,63}")

# Below this UUID kanidmd gives a created stub the extra class `builtin` (spec §4.3 step 3).
_BUILTIN_UUID_LIMIT: Final = uuid.UUID("00000000-0000-0000-0001-000000000000").int

_U32_MAX: Final = 0xFFFFFFFF

# The attributes each typed class sends from its own fields, every facet included (the
# codec's tables: wire names live there).
_PERSON_FIELDS: Final = _PERSON_KEYS | _POSIXACCOUNT_KEYS | _OAUTH2_KEYS
_GROUP_FIELDS: Final = _GROUP_KEYS | _POSIXGROUP_KEYS
_SERVICE_FIELDS: Final = _SERVICE_KEYS | _POSIXACCOUNT_KEYS

# Attribute keys that no schema will ever own; an `extra` or generic attribute with one
# of these names is a known refusal (error), not an unknown name (warning).
_REFUSED_NAMES: Final = frozenset({"external_id", "members", "memberuid"})

_PERSON_CLASSES: Final = frozenset({"account", "person"})
_SERVICE_CLASSES: Final = frozenset({"account", "service_account"})
_POSIX_CLASS: Final = "posixaccount"


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


class _Validator:
    """The state of one validation pass (indexes for the cross-entry checks)."""

    def __init__(self, cs: ChangeSet, schema: Schema) -> None:
        self.cs = cs
        self.schema = schema
        self.problems: list[Problem] = []
        # Context of the entry being checked; Problem() reads these.
        self.index: int | None = None
        self.entry_id: uuid.UUID | None = None
        self.external_id: str | None = None
        # Cross-entry indexes: key -> index of the first entry that holds it.
        self.external_ids: dict[str, int] = {}
        self.names: dict[str, int] = {}
        self.mail_index: dict[str, int] = {}
        self.mails_folded: dict[str, int] = {}
        self.gids: dict[int, int] = {}
        # (entry index, position, reference) of every member reference.
        self.members: list[tuple[int, int, str]] = []
        self.kept = True  # whether kanidmd keeps the current entry (last with its id)
        self.owned_cache: dict[frozenset[str], frozenset[str]] = {}

    # --- reporting -----------------------------------------------------------------------

    def add(self, severity: Severity, code: str, message: str, field: str | None = None) -> None:
        self.problems.append(
            Problem(
                severity=severity,
                code=code,
                message=message,
                index=self.index,
                entry_id=self.entry_id,
                external_id=self.external_id,
                field=field,
            )
        )

    def text(self, value: str, field: str) -> None:
        """Control characters in one UTF-8 string value (spec §3.9.2)."""
        if _ANY_CONTROL_RE.search(value) is None:
            return
        if _C0_RE.search(value) is not None:
            self.add(
                _ERROR,
                "value.control_chars",
                "contains a line break, tab or other control character; kanidmd refuses it",
                field,
            )
        else:
            # Rust's [[:cntrl:]] is ASCII-only, so kanidmd stores C1 characters.
            self.add(
                _WARNING,
                "value.control_chars",
                "contains a C1 control character (U+0080-U+009F), probably mis-decoded text",
                field,
            )

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

    def at(self, i: int) -> None:
        e = self.cs.entries[i]
        self.index, self.entry_id, self.external_id = i, e.id, e.external_id

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

    def name(self, value: str, field: str = "name") -> None:
        lowered = value.lower()
        # Fast path for the common valid name; iname_problem() explains the rest.
        if (
            _INAME_RE.fullmatch(lowered) is not None
            and len(lowered) not in (32, 36)
            and lowered != "root"
        ):
            reason = None
        else:
            reason = iname_problem(value)
        if reason is not None:
            if reason in ("reserved", "uuid"):
                what = "parses as a UUID" if reason == "uuid" else "is reserved by Kanidm"
                self.add(_ERROR, "name.reserved", f"the name {value!r} {what}", field)
            else:
                self.add(
                    _ERROR,
                    "name.syntax",
                    f"the name {value!r} is not valid in Kanidm: {reason} "
                    "(^[a-z][a-z0-9-_.]{0,63}$ after lower-casing)",
                    field,
                )
            return
        if lowered == value:
            lowered = value  # keep one string alive, not two
        else:
            self.add(
                _WARNING,
                "name.case",
                f"Kanidm stores the name lower-cased as {lowered!r}",
                field,
            )
        if self.kept:
            seen = self.names.setdefault(lowered, self.index or 0)
            if seen != self.index:
                self.add(
                    _ERROR,
                    "duplicate.name",
                    f"entries[{seen}] has the same name {lowered!r}; names are unique across "
                    "persons, groups and service accounts (409)",
                    field,
                )

    def mail(self, value: str, field: str) -> None:
        if not mail_ok(value):
            self.text(value, field)
            self.add(_ERROR, "mail.syntax", f"{value!r} is not a valid mail address", field)
            return
        if not self.kept:
            return
        seen = self.mail_index.setdefault(value, self.index or 0)
        if seen != self.index:
            self.add(
                _ERROR,
                "duplicate.mail",
                f"entries[{seen}] has the same mail address; mail is unique in Kanidm (409)",
                field,
            )
            return
        folded = value.lower()
        if folded == value:
            folded = value  # keep one string alive, not two
        seen = self.mails_folded.setdefault(folded, self.index or 0)
        if seen != self.index:
            self.add(
                _WARNING,
                "duplicate.mail",
                f"entries[{seen}] has the same mail address up to letter case",
                field,
            )

    def mails(self, items: Iterable[Mail]) -> None:
        for n, m in enumerate(items):
            self.mail(m.value, f"mail[{n}]")

    def gidnumber(self, value: int | None, field: str = "gidnumber") -> None:
        if value is None:
            gid = derived_gidnumber(self.entry_id.int if self.entry_id else 0)
            derived = True
        else:
            if not 0 <= value <= _U32_MAX:
                self.add(
                    _ERROR,
                    "gidnumber.out_of_bounds",
                    f"gidnumber {value} does not fit an unsigned 32-bit integer",
                    field,
                )
                return
            if not gidnumber_allowed(value):
                self.add(
                    _ERROR,
                    "gidnumber.reserved_range",
                    f"gidnumber {value} lies in a range Kanidm reserves for the system "
                    "(pl0001gidoverlapssystemrange); allowed: 1000-60000, 60578-61183, "
                    "65520-65533, 65536-2147483647",
                    field,
                )
                return
            gid, derived = value, False
        if not self.kept:
            return
        seen = self.gids.setdefault(gid, self.index or 0)
        if seen != self.index:
            how = f"derived from the id, {gid}," if derived else str(gid)
            self.add(
                _ERROR,
                "duplicate.gidnumber",
                f"entries[{seen}] has the same gidnumber ({how}); gidnumbers are unique (409)",
                field,
            )

    def empty(self, value: str, field: str) -> None:
        """An empty UTF-8 string (kanidm: server/lib/src/valueset/utf8.rs ``validate``)."""
        if not value:
            self.add(
                _ERROR,
                "value.empty",
                "an empty string is refused (invalidattributesyntax); omit the attribute",
                field,
            )

    def date(self, value: str | None, field: str) -> None:
        if value is None:
            return
        problem = rfc3339_problem(value)
        if problem is None:
            return
        if problem == RFC3339_CRASH:
            self.add(
                _ERROR,
                "date.range",
                f"{value!r} lies outside years 0000-9999 in UTC: kanidmd crashes on it and "
                "the request gets no answer",
                field,
            )
        else:
            self.add(
                _ERROR,
                "date.rfc3339",
                f"{value!r} is not an RFC 3339 timestamp (like 2030-01-31T00:00:00Z): {problem}",
                field,
            )

    def password(self, value: str | None, field: str) -> None:
        if value is None:
            return
        if has_control_chars(value):
            # Checked as a UTF-8 value before the importer runs; the hash is not shown.
            self.add(
                _ERROR,
                f"{field}.control_chars",
                "the hash contains a line break, tab or other control character; kanidmd "
                "refuses it (invalidattributesyntax)",
                field,
            )
            return
        problem = password_import_problem(value)
        if problem is not None:
            # The reason names the format, never the hash.
            self.add(
                _ERROR,
                f"{field}.format",
                f"kanidmd cannot import this hash ({problem}); it answers 'credimport' (500)",
                field,
            )

    def ssh_key(self, label: str, value: str, field: str, labels: set[str]) -> None:
        self.text(label, f"{field}.label")
        if not label:
            # kanidm: server/lib/src/valueset/ssh.rs `validate` refuses an empty label.
            self.add(
                _ERROR,
                "ssh_publickey.label",
                "an empty label is refused (invalidattributesyntax ssh_publickey)",
                f"{field}.label",
            )
        if label in labels:
            self.add(
                _WARNING,
                "ssh_publickey.duplicate_label",
                f"another key of this entry has the label {label!r}; only one is kept",
                f"{field}.label",
            )
        labels.add(label)
        problem = ssh_public_key_problem(value)
        if problem == SSH_KEY_CRASH:
            self.add(
                _ERROR,
                "ssh_publickey.crash",
                f"key {label!r}: {problem}; the request gets no answer",
                field,
            )
        elif problem is not None:
            self.add(
                _ERROR,
                "ssh_publickey.syntax",
                f"key {label!r}: {problem}; kanidmd answers 'sc0001incomingsshpublickey' (500)",
                field,
            )
        else:
            oddity = ssh_public_key_oddity(value)
            if oddity is not None:
                self.add(
                    _WARNING,
                    "ssh_publickey.odd",
                    f"key {label!r}: kanidmd stores it, but {oddity}; sshd will not use it",
                    field,
                )

    def ssh_keys(self, items: Iterable[SshPublicKey]) -> None:
        labels: set[str] = set()
        for n, k in enumerate(items):
            self.ssh_key(k.label, k.value, f"ssh_publickey[{n}]", labels)

    def totp(
        self,
        n: int,
        labels: set[str],
        *,
        external_id: object,
        secret: object,
        algo: object,
        step: object,
        digits: object,
    ) -> None:
        field = f"totp_import[{n}]"
        for code, message in totp_problems(
            external_id=external_id, secret=secret, algo=algo, step=step, digits=digits
        ):
            # kanidmd's messages never contain the secret; the field names the key.
            self.add(_ERROR, code, message, f"{field}.{code.split('.', 1)[1]}")
        if isinstance(external_id, str):
            self.text(external_id, f"{field}.external_id")
            if external_id in labels:
                self.add(
                    _WARNING,
                    "totp.duplicate_label",
                    f"another TOTP of this entry has the label {external_id!r}; kanidmd keeps "
                    "the first and drops this one",
                    f"{field}.external_id",
                )
            labels.add(external_id)

    def totps(self, items: tuple[Totp, ...], has_password: bool) -> None:
        if not items:
            return
        labels: set[str] = set()
        for n, t in enumerate(items):
            self.totp(
                n,
                labels,
                external_id=t.external_id,
                secret=t.secret,
                algo=t.algo,
                step=t.step,
                digits=t.digits,
            )
        if not has_password:
            self.totp_without_password()

    def totp_without_password(self) -> None:
        self.add(
            _ERROR,
            "totp.without_password",
            "totp_import needs a password_import in the same entry: kanidmd removes the "
            "primary credential on every apply and then cannot attach the TOTP (credimport)",
            "totp_import",
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

    # --- generic entries and extra attributes --------------------------------------------

    def generic(self, e: GenericEntry) -> None:
        classes: set[str] = set()
        for n, urn in enumerate(e.schemas):
            field = f"schemas[{n}]"
            cname = class_from_urn(urn)
            cls = self.schema.classes.get(cname) if cname is not None else None
            if cname is None:
                self.add(
                    _ERROR,
                    "schema.urn",
                    f"{urn!r} is not a Kanidm sync schema URN (urn:ietf:params:scim:schemas:"
                    "kanidm:sync:1:<class>); kanidmd answers 'invalidentrystate'",
                    field,
                )
            elif cls is None:
                self.add(
                    _WARNING,
                    "schema.unknown_class",
                    f"class {cname!r} is not in Kanidm's default schema; it must be a "
                    "sync-allowed class an admin added, else kanidmd answers "
                    "'invalidentrystate'",
                    field,
                )
                classes.add(cname)
            elif not cls.sync_allowed:
                self.add(
                    _ERROR,
                    "schema.not_sync_allowed",
                    f"class {cname!r} cannot be requested by a sync account ('invalidentrystate')",
                    field,
                )
            else:
                classes.add(cname)
        if not e.schemas:
            self.add(
                _WARNING,
                "schema.empty",
                "no schema URN: the entry owns only the import attributes",
                "schemas",
            )
        for code, cname, detail in self.schema.class_problems(classes):
            if code == "schema.supplements":
                msg = f"class {cname!r} needs {detail} as well (supplementsnotsatisfied)"
            else:
                msg = f"class {cname!r} excludes {detail!r} (schema violation)"
            self.add(_ERROR, code, msg, "schemas")
        known = all(c in self.schema.classes for c in classes)
        present = {k.lower() for k in e.attributes}
        if known:
            for missing in self.schema.missing_must(classes, present):
                self.add(
                    _ERROR,
                    "schema.must",
                    f"the classes {sorted(classes)} require {missing!r} (missingmustattribute)",
                    missing,
                )
        self.attributes(e.attributes, classes, frozenset())
        if classes & {"posixaccount", "posixgroup"} and "gidnumber" not in present:
            self.gidnumber(None)

    def attributes(
        self,
        values: Mapping[str, JSONValue],
        classes: set[str],
        typed: frozenset[str],
    ) -> None:
        frozen = frozenset(classes)
        owned = self.owned_cache.get(frozen)
        if owned is None:
            owned = self.owned_cache[frozen] = self.schema.owned(frozen)
        all_known = all(c in self.schema.classes for c in classes)
        password_seen = False
        totp_field: str | None = None
        lowered_seen: dict[str, str] = {}
        for key, value in values.items():
            name = key.lower()
            # The field is the attribute as written: typed fields and extra keys never
            # overlap (extra.shadows_field), so the name alone says where it came from.
            field = key
            if name != key:
                self.add(
                    _WARNING,
                    "attribute.case",
                    f"send attribute names in lower case ({name!r})",
                    field,
                )
            if name in lowered_seen:
                self.add(
                    _ERROR,
                    "attribute.duplicate",
                    f"{key!r} and {lowered_seen[name]!r} are the same Kanidm attribute",
                    field,
                )
            lowered_seen[name] = key
            if not self.shape(value, field):
                continue
            if name in typed:
                self.add(
                    _ERROR,
                    "extra.shadows_field",
                    f"{name!r} is a field of the typed entry; set it there, not in extra",
                    field,
                )
                continue
            if name in HEADER_KEYS:
                self.add(
                    _ERROR,
                    "attribute.header_key",
                    f"{key!r} is an entry header key, not an attribute",
                    field,
                )
                continue
            spec = self.schema.attributes.get(name)
            if spec is None:
                if name in _REFUSED_NAMES:
                    hint = " (the header key is externalId)" if name == "external_id" else ""
                    self.add(
                        _ERROR,
                        "attribute.not_owned",
                        f"no Kanidm schema owns {name!r}{hint}; kanidmd answers "
                        "'invalidentrystate'",
                        field,
                    )
                else:
                    self.add(
                        _WARNING,
                        "attribute.unknown",
                        f"{name!r} is not in Kanidm's default schema; it must be a "
                        "sync-allowed attribute an admin added to one of this entry's "
                        "classes, else kanidmd answers 'invalidentrystate'",
                        field,
                    )
                    self.strings(value, field)
                continue
            if spec.phantom:
                if spec.syntax is Syntax.TOTP_IMPORT:
                    totp_field = field
                elif name == "password_import":
                    password_seen = True
                self.phantom_class_check(name, classes, field)
            elif name not in owned:
                if not spec.sync_allowed:
                    why = "is managed by Kanidm and cannot be set by a sync account"
                    sev = _ERROR
                else:
                    why = f"is not owned by the classes {sorted(classes)}"
                    # With an admin-added class in play the owned set is unknown.
                    sev = _ERROR if all_known else _WARNING
                self.add(
                    sev,
                    "attribute.not_owned",
                    f"{name!r} {why}; kanidmd answers 'invalidentrystate'",
                    field,
                )
                continue
            elif not spec.convertible:
                self.add(
                    _ERROR,
                    "attribute.unsupported",
                    f"{name!r} cannot be written by a sync account (kanidmd: 'Unsupported "
                    f"attribute conversion - {name}'); it can only be yielded",
                    field,
                )
                continue
            self.value(spec, value, field)
        if totp_field is not None and not password_seen:
            self.totp_without_password()

    def phantom_class_check(self, name: str, classes: set[str], field: str) -> None:
        if name == "unix_password_import":
            if _POSIX_CLASS not in classes:
                self.add(
                    _ERROR,
                    "unix_password_import.class",
                    "unix_password_import needs the posixaccount schema "
                    "(attributenotvalidforclass)",
                    field,
                )
        elif not classes & {"person", "service_account"} and all(
            c in self.schema.classes for c in classes
        ):
            self.add(
                _ERROR,
                f"{name}.class",
                f"{name} sets a primary credential, which only persons and service accounts "
                "have (attributenotvalidforclass primary_credential)",
                field,
            )

    def shape(self, value: JSONValue, field: str) -> bool:
        """The generic JSON value model of spec §3.5; ``False`` stops further checks."""
        if value is None:
            self.add(_ERROR, "value.null", "null is never valid; omit the attribute (422)", field)
            return False
        if isinstance(value, str | bool | int | float):
            return True
        if isinstance(value, Mapping):
            return self.flat_object(value, field)
        if not isinstance(value, list | tuple):  # pragma: no cover - JSONValue is closed
            return True
        if not value:
            self.add(
                _ERROR,
                "value.empty_list",
                "an empty list parses as binary and kanidmd answers 'Unsupported attribute "
                "conversion' (400); omit the attribute to clear it",
                field,
            )
            return False
        if all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in value):
            self.add(
                _ERROR,
                "value.shape",
                "a list of small integers parses as binary data, which no sync attribute takes",
                field,
            )
            return False
        if all(isinstance(v, Mapping) for v in value):
            return all([self.flat_object(v, f"{field}[{n}]") for n, v in enumerate(value)])
        if any(v is None for v in value):
            self.add(_ERROR, "value.null", "null is never valid inside a list (422)", field)
            return False
        if all(isinstance(v, str | bool | int | float) for v in value):
            return True
        self.add(
            _ERROR,
            "value.shape",
            "a list must hold only scalars or only flat objects (422)",
            field,
        )
        return False

    def flat_object(self, value: Mapping[str, JSONValue], field: str) -> bool:
        ok = True
        for k, v in value.items():
            if v is None:
                self.add(_ERROR, "value.null", f"{k!r} is null; omit it (422)", f"{field}.{k}")
                ok = False
            elif not isinstance(v, str | bool | int | float):
                self.add(
                    _ERROR,
                    "value.shape",
                    f"{k!r} holds a nested value; objects must be flat (422)",
                    f"{field}.{k}",
                )
                ok = False
        return ok

    def strings(self, value: JSONValue, field: str) -> None:
        if isinstance(value, str):
            self.text(value, field)
        elif isinstance(value, Mapping):
            for k, v in value.items():
                self.strings(v, f"{field}.{k}")
        elif isinstance(value, list | tuple):
            for n, v in enumerate(value):
                self.strings(v, f"{field}[{n}]")

    def wrong_type(self, spec: AttributeSchema, field: str, expected: str) -> None:
        self.add(
            _ERROR,
            "value.type",
            f"{spec.name} takes {expected} (kanidmd answers 'invalidattribute')",
            field,
        )

    def value(self, spec: AttributeSchema, value: JSONValue, field: str) -> None:
        """Syntax checks for one known, owned attribute value (spec §3.9)."""
        syntax = spec.syntax
        if not spec.multi:
            if syntax is Syntax.UINT32:
                if isinstance(value, int) and not isinstance(value, bool):
                    if spec.name == "gidnumber":
                        self.gidnumber(value, field)
                    elif not 0 <= value <= _U32_MAX:
                        self.add(
                            _ERROR,
                            "value.out_of_bounds",
                            f"{value} does not fit an unsigned 32-bit integer",
                            field,
                        )
                else:
                    self.wrong_type(spec, field, "a JSON integer")
                return
            if not isinstance(value, str):
                self.wrong_type(spec, field, "a string")
                return
            if syntax is Syntax.INAME:
                self.text(value, field)
                self.name(value, field)
            elif syntax is Syntax.DATETIME:
                self.date(value, field)
            elif syntax is Syntax.PASSWORD_IMPORT:
                self.password(value, spec.name)
            else:
                self.text(value, field)
                if syntax is Syntax.UTF8:
                    self.empty(value, field)
            return
        if not isinstance(value, list | tuple) or not all(isinstance(v, Mapping) for v in value):
            self.wrong_type(spec, field, "a list of objects")
            return
        labels: set[str] = set()
        for n, item in enumerate(value):
            if not isinstance(item, Mapping):  # pragma: no cover - checked just above
                continue
            f = f"{field}[{n}]"
            if syntax is Syntax.EMAIL:
                v = item.get("value")
                if not isinstance(v, str):
                    self.add(_ERROR, "value.type", "value must be a string", f"{f}.value")
                else:
                    self.mail(v, f)
                p = item.get("primary")
                if p is not None and not isinstance(p, bool):
                    self.add(_ERROR, "value.type", "primary must be a boolean", f"{f}.primary")
            elif syntax is Syntax.SSHKEY:
                label, key = item.get("label"), item.get("value")
                if not isinstance(label, str) or not isinstance(key, str):
                    self.add(_ERROR, "value.type", "label and value must be strings", f)
                else:
                    self.ssh_key(label, key, f, labels)
            elif syntax is Syntax.REFERENCE_UUID:
                ref = item.get("external_id")
                if not isinstance(ref, str):
                    self.add(
                        _ERROR, "value.type", "external_id must be a string", f"{f}.external_id"
                    )
                else:
                    self.text(ref, f)
                    self.members.append((self.index or 0, n, ref))
            elif syntax is Syntax.TOTP_IMPORT:
                missing = [
                    k for k in ("external_id", "secret", "algo", "step", "digits") if k not in item
                ]
                for k in missing:
                    self.add(_ERROR, f"totp.{k}", f"missing required key {k}", f"{f}.{k}")
                self.totp(
                    n,
                    labels,
                    external_id=item.get("external_id", ""),
                    secret=item.get("secret", ""),
                    algo=item.get("algo", "sha1"),
                    step=item.get("step", 30),
                    digits=item.get("digits", 6),
                )
            else:  # pragma: no cover - every multi-valued convertible syntax is handled
                self.strings(item, f)

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
