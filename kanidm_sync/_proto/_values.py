"""The values entries hold: mail addresses, SSH keys, TOTP imports, and the POSIX and OAuth2 facets.

Pure values; no I/O. Field names are Kanidm's attribute names, as in ``_entries.py``.
Every class refuses a wrong type when built, with a :class:`TypeError` naming the class,
the field and the type (never the value: a misplaced secret stays out of tracebacks).
Secrets (password hashes, TOTP secrets) are masked in every ``repr``.
"""

from __future__ import annotations

import base64
import binascii
from typing import Final, Literal, TypeAlias

import attrs

from . import _entry_fields as _f

__all__ = [
    "Mail",
    "OAuth2Account",
    "PosixAccount",
    "PosixGroup",
    "SshPublicKey",
    "Totp",
    "TotpAlgorithm",
]

TotpAlgorithm: TypeAlias = Literal["sha1", "sha256", "sha512"]
"""The TOTP hash algorithms kanidmd accepts."""

_MASK: Final = "'***'"


def mask(value: object) -> str:
    """The repr of a secret field: ``None``, or ``'***'``."""
    return "None" if value is None else _MASK


_str = _f.check_str
_opt_str = _f.check_opt_str
_opt_int = _f.check_opt_int


# --- value items ---------------------------------------------------------------------------


@attrs.frozen
class Mail:
    """One mail address of a person, group or service account.

    Attributes:
        value: the address.
        primary: ``True`` to make it the primary address; ``None`` sends no flag. With no
            flag anywhere Kanidm makes the first address primary; with several flags the
            last flagged one wins (spec §3.9.6).
    """

    value: str = attrs.field(validator=_str)
    primary: bool | None = attrs.field(default=None, validator=_f.check_opt_bool)


@attrs.frozen
class SshPublicKey:
    """One SSH public key.

    Attributes:
        label: a name for the key, unique within the entry (``"laptop"``).
        value: one OpenSSH public key line (``"ssh-ed25519 AAAA... alice@laptop"``).
    """

    label: str = attrs.field(validator=_str)
    value: str = attrs.field(validator=_str)


@attrs.frozen(kw_only=True)
class Totp:
    """A TOTP token imported onto a person's primary credential (spec §3.9.4).

    Kanidm expects the *raw key in base64* (not base32, which authenticator apps show);
    use :meth:`from_key` or :meth:`from_base32` to build one from either. A TOTP import
    needs a ``password_import`` on the same person.

    Attributes:
        external_id: the token's label in Kanidm.
        secret: the raw key, base64 with canonical padding. Masked in ``repr``.
        algo: ``"sha1"``, ``"sha256"`` or ``"sha512"``.
        step: the period in seconds, at least 30.
        digits: 6 or 8.
    """

    external_id: str = attrs.field(validator=_str)
    secret: str = attrs.field(validator=_str, repr=mask)
    algo: str = attrs.field(default="sha1", validator=_str)
    step: int = attrs.field(default=30, validator=_f.check_int)
    digits: int = attrs.field(default=6, validator=_f.check_int)

    @classmethod
    def from_key(
        cls,
        key: bytes,
        *,
        external_id: str,
        algo: TotpAlgorithm = "sha1",
        step: int = 30,
        digits: int = 6,
    ) -> Totp:
        """Build a TOTP import from the raw key bytes.

        Args:
            key: the shared secret as bytes.
            external_id: the token's label in Kanidm.
            algo: the hash algorithm.
            step: the period in seconds.
            digits: the code length.

        Returns:
            The import, with the key in canonical padded base64.
        """
        secret = base64.b64encode(key).decode("ascii")
        return cls(external_id=external_id, secret=secret, algo=algo, step=step, digits=digits)

    @classmethod
    def from_base32(
        cls,
        secret: str,
        *,
        external_id: str,
        algo: TotpAlgorithm = "sha1",
        step: int = 30,
        digits: int = 6,
    ) -> Totp:
        """Build a TOTP import from a base32 secret, as authenticator apps show it.

        Spaces are ignored, case and missing padding are tolerated.

        Args:
            secret: the base32 text (``"JBSWY3DPEHPK3PXP"``).
            external_id: the token's label in Kanidm.
            algo: the hash algorithm.
            step: the period in seconds.
            digits: the code length.

        Returns:
            The import, with the key converted to base64 as Kanidm needs.

        Raises:
            ValueError: the text is not base32 (the message does not repeat it).
        """
        text = "".join(secret.split()).upper()
        text += "=" * (-len(text) % 8)
        try:
            key = base64.b32decode(text)
        except (binascii.Error, ValueError):
            raise ValueError("the TOTP secret is not valid base32") from None
        return cls.from_key(key, external_id=external_id, algo=algo, step=step, digits=digits)


# --- facets --------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class PosixAccount:
    """The POSIX facet of a person or service account (schema ``posixaccount``).

    Attributes:
        gidnumber: the account's gid (and uid); ``None`` lets Kanidm derive one from the
            entry's UUID.
        loginshell: the login shell (Kanidm lower-cases it).
        unix_password_import: a password hash for the unix password. Masked in ``repr``.
            Unlike the primary password it is not removed when later applies omit it.
    """

    gidnumber: int | None = attrs.field(default=None, validator=_opt_int)
    loginshell: str | None = attrs.field(default=None, validator=_opt_str)
    unix_password_import: str | None = attrs.field(default=None, validator=_opt_str, repr=mask)


@attrs.frozen(kw_only=True)
class OAuth2Account:
    """The OAuth2 facet of a person (schema ``oauth2_account``, Kanidm >= 1.9).

    Attributes:
        provider: the OAuth2 client provider entry: a UUID, or an external id.
        unique_user_id: the user's id at the provider.
        unique_user_sub: the provider's ``sub`` claim for the user; required by
            Kanidm >= 1.11 (spec §8.2).
    """

    provider: str = attrs.field(converter=_f.as_reference, validator=_f.check_reference)
    unique_user_id: str = attrs.field(validator=_str)
    unique_user_sub: str | None = attrs.field(default=None, validator=_opt_str)


@attrs.frozen(kw_only=True)
class PosixGroup:
    """The POSIX facet of a group (schema ``posixgroup``).

    Attributes:
        gidnumber: the group's gid; ``None`` lets Kanidm derive one from the UUID.
    """

    gidnumber: int | None = attrs.field(default=None, validator=_opt_int)
