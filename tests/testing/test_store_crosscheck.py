"""The double's own recognisers agree with the SDK's local checks (kanidm_sync._proto._checks).

The double keeps separate implementations on purpose (a bug must not hide in both); this test
pins that they accept and refuse the same samples, so a divergence is seen at once.
"""

from __future__ import annotations

import uuid

import pytest
from store_helpers import SSH_KEY

from kanidm_sync._proto import _checks
from kanidm_sync.testing import _values

NAMES = ["alice", "a", "a" * 64, "a" * 65, "1abc", "root", "dn=token", "al ice", "al_ice.x-y",
         str(uuid.uuid4()), "Alice", ""]  # fmt: skip
MAILS = ["a@b", "a.b+c@example.org", "a@-b.org", "no-at", "a@b..c", "a b@c.org", "a@b.c-"]
GIDS = [0, 999, 1000, 60000, 60001, 60578, 61183, 65519, 65520, 65533, 65534, 65536,
        1879048191, 1879048192, 2147483647, 2147483648]  # fmt: skip
PASSWORDS = [
    "ipaNTHash: iEb36u6PsRetBr3YMLdYbA",
    "sambaNTPassword: 31d6cfe0d16ae931b73c59d7e0c089c0",
    "pbkdf2_sha256$36000$xIEozuZVAoYm$uW1b35DUKyhvQAf1mBqMvoBDcqSD06juzyO/nmyV0+w=",
    "{SSHA512}" + "A" * 96,
    "{SHA}" + "A" * 27 + "=",
    "{CRYPT}$6$rounds=5000$salt$" + "a" * 86,
    "{PBKDF2_SHA256}AAAA",
    "plaintext",
    "{SHA}short",
]
SSH = [SSH_KEY, "ssh-rsa AAAA", "not a key", SSH_KEY.replace("ssh-ed25519 ", "ssh-rsa ", 1)]


@pytest.mark.parametrize("name", NAMES)
def test_iname(name: str) -> None:
    """Name syntax."""
    low = name.lower()
    assert _checks.is_valid_iname(low) == _values.iname_ok(low)


@pytest.mark.parametrize("mail", MAILS)
def test_mail(mail: str) -> None:
    """Mail regex."""
    assert _checks.mail_ok(mail) == _values.mail_ok(mail)


@pytest.mark.parametrize("gid", GIDS)
def test_gid_ranges(gid: int) -> None:
    """The gidnumber ranges."""
    assert _checks.gidnumber_allowed(gid) == _values.gid_in_allowed_range(gid)


def test_generated_gid() -> None:
    """The gidnumber generated from a UUID."""
    uid = uuid.UUID("9a7c1f52-4c7d-4b0e-8a43-1e4f6f1c2d10")
    assert _checks.derived_gidnumber(uid.int) == _values.gid_from_uuid(uid)


@pytest.mark.parametrize("value", PASSWORDS)
def test_password_formats(value: str) -> None:
    """Password-import formats."""
    assert _checks.password_import_format_ok(value) == (
        _values.parse_password_hash(value) is not None
    )


@pytest.mark.parametrize("line", SSH)
def test_ssh_keys(line: str) -> None:
    """OpenSSH public-key lines."""
    assert (_checks.parse_ssh_public_key(line) is not None) == (
        _values.parse_ssh_key(line) is not None
    )
