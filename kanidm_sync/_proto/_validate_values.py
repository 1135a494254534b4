"""Per-value checks of one ChangeSet validation pass (spec §3.9).

Owns :class:`_ValueChecks`: names (syntax, case, uniqueness), mail addresses, gidnumbers,
empty strings, datetimes, password hash imports, SSH public keys and TOTP imports. Each
check reports through :class:`~._validate_state._ValidatorBase` and records what the
cross-entry checks need (names, mails, gids). The value recognisers themselves live in
``_checks.py``. Pure: no I/O; no message contains a secret.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from ._checks import (
    RFC3339_CRASH,
    SSH_KEY_CRASH,
    derived_gidnumber,
    gidnumber_allowed,
    has_control_chars,
    iname_problem,
    mail_ok,
    password_import_problem,
    rfc3339_problem,
    ssh_public_key_oddity,
    ssh_public_key_problem,
    totp_problems,
)
from ._entries import Mail, SshPublicKey, Totp
from ._validate_state import _ERROR, _U32_MAX, _WARNING, _ValidatorBase

__all__ = ["_ValueChecks"]

# Same pattern as _checks.iname_problem(); used for the fast path of valid names.
_INAME_RE: Final = re.compile(r"[a-z][a-z0-9\-_.]{0,63}")


class _ValueChecks(_ValidatorBase):
    """Checks of one value each, and the per-entry rules between them (labels, TOTP)."""

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
