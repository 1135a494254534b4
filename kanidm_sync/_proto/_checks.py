"""Pure value recognisers for what kanidmd accepts in a sync entry (spec §3.9).

Each function answers one question about one value, with no server state: is this a
valid Kanidm name, a mail address kanidmd's regex accepts, a password hash format its
importer understands, an OpenSSH public key line, an RFC 3339 timestamp, and so on.
They are shared by the ChangeSet validator (``_validate.py``) and the in-memory Kanidm
double (``kanidm_sync.testing``), so they are plain functions over plain values.

The recognisers live in one module per kind of value; this module gathers them under the
one name their users import:

* ``_check_strings.py`` - control characters, UUIDs, names (``iname``), mail addresses;
* ``_check_primitives.py`` - gidnumber ranges, the 32-bit bound, strict base64;
* ``_check_credentials.py`` - password hash imports and TOTP imports;
* ``_check_ssh.py`` - OpenSSH public key lines;
* ``_check_dates.py`` - RFC 3339 timestamps.

Rules for these modules:

* pure: no I/O, no clock, no logging, no randomness; standard library only;
* never put a secret (a password hash, a TOTP secret) in a returned message: messages say
  which *format* was not recognised and why, never the value;
* where kanidmd's exact rule was read from its source it is cited; where it was inferred
  the comment says **[inferred]**, and the check leans towards accepting.
"""

from __future__ import annotations

from ._check_credentials import (
    TOTP_ALGORITHMS,
    password_import_format_ok,
    password_import_problem,
    password_import_scheme,
    totp_problems,
)
from ._check_dates import RFC3339_CRASH, is_rfc3339, parse_rfc3339, rfc3339_problem
from ._check_primitives import (
    GID_ALLOWED_RANGES,
    b64decode_strict,
    derived_gidnumber,
    gidnumber_allowed,
)
from ._check_primitives import U32_MAX as U32_MAX
from ._check_ssh import (
    SSH_KEY_CRASH,
    SshPublicKeyInfo,
    parse_ssh_public_key,
    ssh_public_key_oddity,
    ssh_public_key_problem,
)
from ._check_strings import (
    has_c1_control_chars,
    has_control_chars,
    iname_problem,
    is_uuid,
    is_valid_iname,
    mail_ok,
)

__all__ = [
    "GID_ALLOWED_RANGES",
    "RFC3339_CRASH",
    "SSH_KEY_CRASH",
    "TOTP_ALGORITHMS",
    "SshPublicKeyInfo",
    "b64decode_strict",
    "derived_gidnumber",
    "gidnumber_allowed",
    "has_c1_control_chars",
    "has_control_chars",
    "iname_problem",
    "is_rfc3339",
    "is_uuid",
    "is_valid_iname",
    "mail_ok",
    "parse_rfc3339",
    "parse_ssh_public_key",
    "password_import_format_ok",
    "password_import_problem",
    "password_import_scheme",
    "rfc3339_problem",
    "ssh_public_key_oddity",
    "ssh_public_key_problem",
    "totp_problems",
]
