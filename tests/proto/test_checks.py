"""Tests for the pure value recognisers in kanidm_sync._proto._checks (spec §3.9)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import uuid
from typing import ClassVar

import pytest

from kanidm_sync._proto._checks import (
    GID_ALLOWED_RANGES,
    b64decode_strict,
    derived_gidnumber,
    gidnumber_allowed,
    has_c1_control_chars,
    has_control_chars,
    iname_problem,
    is_rfc3339,
    is_uuid,
    is_valid_iname,
    mail_ok,
    parse_rfc3339,
    parse_ssh_public_key,
    password_import_format_ok,
    password_import_problem,
    password_import_scheme,
    rfc3339_problem,
    ssh_public_key_oddity,
    ssh_public_key_problem,
    totp_problems,
)

# Keys from kanidmd's own tests (server/lib/src/value.rs, the IPA sync fixture).
ED25519 = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAeGW1P6Pc2rPq0XqbRaDKBcXZUPRklo0L1EyR30CwoP"
    " william@amethyst"
)
ECDSA521 = (
    "ecdsa-sha2-nistp521 AAAAE2VjZHNhLXNoYTItbmlzdHA1MjEAAAAIbmlzdHA1MjEAAACFBAGyIY7o3B"
    "tOzRiJ9vvjj96bRImwmyy5GvFSIUPlK00HitiAWGhiO1jGZKmK7220Oe4rqU3uAwA00a0758UODs+0OQHLMDRtl81l"
    "zPrVSdrYEDldxH9+a86dBZhdm0e15+ODDts2LHUknsJCRRldO4o9R9VrohlF7cbyBlnhJQrR4S+Oag== william@a"
    "methyst"
)
RSA = (
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQDTcXpclurQpyOHZBM/cDY9EvInSYkYSGe51by/wJP0Njgi"
    "GZUJ3HTaPqoGWux0PKd7KJki+onLYt4IwDV1RhV/GtMML2U9v94+pA8RIK4khCxvpUxlM7Kt/svjOzzzqiZfKdV37/"
    "OUXmM7bwVGOvm3EerDOwmO/QdzNGfkca12aWLoz97YrleXnCoAzr3IN7j3rwmfJGDyuUtGTdmyS/QWhK9FPr8Ic3eM"
    "QK1JSAQqVfGhA8lLbJHmnQ/b/KMl2lzzp7SXej0wPUfvI/IP3NGb8irLzq8+JssAzXGJ+HMql+mNHiSuPaktbFzZ6y"
    "ikMR6Rx/psU07nAkxKZDEYpNVv william@amethyst"
)
SK_ECDSA = (
    "sk-ecdsa-sha2-nistp256@openssh.com AAAAInNrLWVjZHNhLXNoYTItbmlzdHAyNTZAb3BlbnNzaC5jb20AAAAI"
    "bmlzdHAyNTYAAABBBENubZikrb8hu+HeVRdZ0pp/VAk2qv4JDbuJhvD0yNdWDL2e3cBbERiDeNPkWx58Q4rVnxkbV1fa"
    "8E2waRtT91wAAAAEc3NoOg== testuser@fidokey"
)


def _ssh_line(key_type: str, *fields: bytes, comment: str = "") -> str:
    blob = b"".join(len(f).to_bytes(4, "big") + f for f in (key_type.encode(), *fields))
    return f"{key_type} {base64.b64encode(blob).decode()}{' ' + comment if comment else ''}"


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _ab64(raw: bytes) -> str:
    return base64.b64encode(raw).decode().rstrip("=").replace("+", ".")


PW = b"correct horse"
SALT = b"saltsaltsalt"


def _valid_hashes() -> dict[str, str]:
    sha1 = hashlib.sha1(PW).digest()
    sha256 = hashlib.sha256(PW + SALT).digest()
    sha512 = hashlib.sha512(PW + SALT).digest()
    return {
        "pbkdf2_sha256": "pbkdf2_sha256$1000$somesalt$"
        + _b64(hashlib.pbkdf2_hmac("sha256", PW, b"somesalt", 1000)),
        "ipaNTHash": "ipaNTHash: iEb36u6PsRetBr3YMLdYbA",
        "ipaNTHash padded": "ipaNTHash: iEb36u6PsRetBr3YMLdYbA==",
        "sambaNTPassword": "sambaNTPassword: 8846F7EAEE8FB117AD06BDD830B7586C",
        "PBKDF2": "{PBKDF2}1000$" + _ab64(SALT) + "$" + _ab64(hashlib.sha1(PW).digest()),
        "PBKDF2-SHA1": "{PBKDF2-SHA1}1000$"
        + _ab64(SALT)
        + "$"
        + _ab64(hashlib.pbkdf2_hmac("sha1", PW, SALT, 1000)),
        "PBKDF2-SHA256": "{PBKDF2-SHA256}1000$"
        + _ab64(SALT)
        + "$"
        + _ab64(hashlib.pbkdf2_hmac("sha256", PW, SALT, 1000)),
        "PBKDF2-SHA512": "{PBKDF2-SHA512}1000$"
        + _ab64(SALT)
        + "$"
        + _ab64(hashlib.pbkdf2_hmac("sha512", PW, SALT, 1000)),
        "ARGON2": "{ARGON2}$argon2id$v=19$m=19456,t=2,p=1$"
        + _b64(b"0123456789abcdef").rstrip("=")
        + "$"
        + _b64(hashlib.sha256(PW).digest()).rstrip("="),
        "ARGON2 without version": "{ARGON2}$argon2id$m=65536,t=3,p=1$c29tZXNhbHQ$"
        + _b64(hashlib.sha256(PW).digest()).rstrip("="),
        "CRYPT md5": "{CRYPT}$1$saltsalt$hOc8SnrOp0WUJtH3Fp.D81",
        "CRYPT sha256": "{CRYPT}$5$saltsalt$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZF9Kxb5m1",
        "crypt sha512": "{crypt}$6$saltsalt$qFmFH.bQmmtXzyBY0s9v7Oicd2z4XSIecDzlB5KiA2",
        "SHA": "{SHA}" + _b64(sha1),
        "sha lower": "{sha}" + _b64(sha1),
        "SSHA": "{SSHA}" + _b64(sha1 + SALT),
        "SHA256": "{SHA256}" + _b64(hashlib.sha256(PW).digest()),
        "SSHA256": "{SSHA256}" + _b64(sha256 + SALT),
        "SHA512": "{SHA512}" + _b64(hashlib.sha512(PW).digest()),
        "SSHA512": "{SSHA512}" + _b64(sha512 + SALT[:8]),
    }


VALID_HASHES = _valid_hashes()


class TestControlChars:
    @pytest.mark.parametrize(
        "text", ["a\nb", "a\rb", "a\tb", "naughty \x1b[31mred", "x\x00", "\x7f"]
    )
    def test_c0_and_del_are_refused(self, text: str) -> None:
        """Kanidmd refuses line breaks, tabs, escapes and DEL in UTF-8 values."""
        assert True is has_control_chars(text)

    @pytest.mark.parametrize("text", ["safe str", "🙃 emoji are 👍", "Zoë Ünïcødé", "a\x85b"])
    def test_printable_text_and_c1_are_accepted(self, text: str) -> None:
        """Ordinary Unicode passes; C1 controls pass too (Rust's [[:cntrl:]] is ASCII)."""
        assert False is has_control_chars(text)

    def test_c1_is_detected_separately(self) -> None:
        """C1 controls are reported by their own predicate."""
        expected = (True, False)
        assert expected == (has_c1_control_chars("a\x85b"), has_c1_control_chars("ab"))


class TestUuid:
    @pytest.mark.parametrize(
        "text",
        [
            "bc23f637-4439-4c07-b95d-eaed0d9e4b8b",
            "BC23F637-4439-4C07-B95D-EAED0D9E4B8B",
            "bc23f63744394c07b95deaed0d9e4b8b",
            "{bc23f637-4439-4c07-b95d-eaed0d9e4b8b}",
            "urn:uuid:bc23f637-4439-4c07-b95d-eaed0d9e4b8b",
        ],
    )
    def test_rust_uuid_forms_parse(self, text: str) -> None:
        """The forms Rust's Uuid::parse_str accepts are UUIDs."""
        assert True is is_uuid(text)

    @pytest.mark.parametrize(
        "text",
        [
            "bc23f6374439-4c07-b95d-eaed0d9e4b8b",
            "{bc23f637-4439-4c07-b95d-eaed0d9e4b8b",
            "urn:uuid:{bc23f637-4439-4c07-b95d-eaed0d9e4b8b}",
            "uid=alice",
            "bc23f637-4439-4c07-b95d-eaed0d9e4b8",
        ],
    )
    def test_other_strings_are_not_uuids(self, text: str) -> None:
        """Misplaced hyphens, unbalanced braces and DNs are external ids, not UUIDs."""
        assert False is is_uuid(text)


class TestIname:
    @pytest.mark.parametrize("name", ["william", "William", "this_is_okay", "a123_456", "a.b-c"])
    def test_valid_names(self, name: str) -> None:
        """Kanidmd's own accepted examples pass (upper case is lower-cased first)."""
        assert None is iname_problem(name)

    @pytest.mark.parametrize(
        ("name", "reason"),
        [
            ("1234", "must start with a letter a-z"),
            ("_bad", "must start with a letter a-z"),
            ("hello@test.com", "may only contain a-z, 0-9, '-', '_' and '.'"),
            ("no spaces", "may only contain a-z, 0-9, '-', '_' and '.'"),
            ("bad=equals", "may only contain a-z, 0-9, '-', '_' and '.'"),
            ("🍿", "must start with a letter a-z"),
            ("", "empty"),
            ("a" * 65, "longer than 64 characters"),
            ("bc23f637-4439-4c07-b95d-eaed0d9e4b8b", "uuid"),
            ("deadbeefdeadbeefdeadbeefdeadbeef", "uuid"),
            ("root", "reserved"),
            ("ROOT", "reserved"),
            # dn=token is on kanidmd's deny list, but its '=' already fails the regex.
            ("dn=token", "may only contain a-z, 0-9, '-', '_' and '.'"),
        ],
    )
    def test_invalid_names(self, name: str, reason: str) -> None:
        """Kanidmd's refused examples fail with the reason that applies."""
        assert reason == iname_problem(name)

    def test_64_characters_is_the_limit(self) -> None:
        """A 64-character name passes and 65 fails."""
        expected = (True, False)
        assert expected == (is_valid_iname("a" * 64), is_valid_iname("a" * 65))


class TestMail:
    @pytest.mark.parametrize(
        "addr",
        ["william@blackhats.net.au", "alice@idm.example.com", "test+mailbox@foo.com", "a@b"],
    )
    def test_valid(self, addr: str) -> None:
        """Kanidmd's accepted examples pass VALIDATE_EMAIL_RE."""
        assert True is mail_ok(addr)

    @pytest.mark.parametrize(
        "addr",
        [
            "william",
            "test~uuid",
            "a@b\n",
            "a b@example.org",
            "a@-example.org",
            "a@example-.org",
            "zoë@example.org",
            "a@" + "x" * 64 + ".org",
        ],
    )
    def test_invalid(self, addr: str) -> None:
        """Missing @, spaces, trailing newline, bad labels and non-ASCII fail."""
        assert False is mail_ok(addr)


class TestGidnumber:
    @pytest.mark.parametrize(("lo", "hi"), GID_ALLOWED_RANGES)
    def test_range_edges_are_allowed(self, lo: int, hi: int) -> None:
        """Both ends of every allowed range are accepted."""
        expected = (True, True)
        assert expected == (gidnumber_allowed(lo), gidnumber_allowed(hi))

    @pytest.mark.parametrize(
        "gid", [0, 999, 60001, 60577, 61184, 65519, 65534, 65535, 2**31, 2**32]
    )
    def test_reserved_values_are_refused(self, gid: int) -> None:
        """System ranges and everything above 2**31-1 are refused."""
        assert False is gidnumber_allowed(gid)

    def test_derived_gid_uses_the_last_28_bits(self) -> None:
        """A missing gid is 0x70000000 | (last 4 UUID bytes & 0x0FFFFFFF)."""
        u = uuid.UUID("00000000-0000-0000-0000-0000ffffffff")
        expected = 0x7FFFFFFF
        assert expected == derived_gidnumber(u.int)


class TestBase64:
    def test_canonical_padding_is_required(self) -> None:
        """Standard base64 needs its '=' padding."""
        expected = (b"ab", None)
        assert expected == (b64decode_strict("YWI="), b64decode_strict("YWI"))

    def test_non_zero_trailing_bits_are_refused(self) -> None:
        """'YWJ=' carries non-zero trailing bits and is not canonical."""
        assert None is b64decode_strict("YWJ=")

    def test_trailing_bits_can_be_allowed(self) -> None:
        """The OpenLDAP PBKDF2 decoder tolerates trailing bits."""
        expected = b"ab"
        assert expected == b64decode_strict("YWJ", padding="optional", trailing_bits=True)

    def test_alphabets_are_separate(self) -> None:
        """'-' is URL-safe only, '+' standard only."""
        expected = (None, b"\xfb\xff")
        assert expected == (
            b64decode_strict("-_8="),
            b64decode_strict("-_8=", urlsafe=True),
        )

    def test_padding_none_refuses_padding(self) -> None:
        """The *_NO_PAD engines refuse '='."""
        expected = (None, b"ab")
        assert expected == (
            b64decode_strict("YWI=", padding="none"),
            b64decode_strict("YWI", padding="none"),
        )


class TestPasswordImport:
    @pytest.mark.parametrize("label", sorted(VALID_HASHES))
    def test_accepted_formats(self, label: str) -> None:
        """Every format of spec §3.9.5 is recognised when well formed."""
        assert None is password_import_problem(VALID_HASHES[label])

    def test_scheme_is_named(self) -> None:
        """The recognised format is reported by name."""
        expected = ("SSHA512", "ipaNTHash")
        assert expected == (
            password_import_scheme(VALID_HASHES["SSHA512"]),
            password_import_scheme(VALID_HASHES["ipaNTHash"]),
        )

    @pytest.mark.parametrize(
        ("value", "needle"),
        [
            ("hunter2", "not a recognised password hash format"),
            ("{PBKDF2_SHA256}AAAIAF...", "389-ds binary form"),
            ("{MD5}" + _b64(hashlib.md5(PW).digest()), "not a recognised"),
            ("{SHA1}" + _b64(b"x" * 20), "not a recognised"),
            ("pbkdf2_sha256$many$salt$" + _b64(b"x" * 32), "iteration count"),
            ("pbkdf2_sha256$1000$salt$" + _b64(b"x" * 31), "shorter than 32 bytes"),
            ("pbkdf2_sha256$1000$salt$" + _b64(b"x" * 32).rstrip("="), "not canonical"),
            ("ipaNTHash: iEb36u6P+RetBr3YMLdYbA", "not URL-safe base64"),
            ("ipaNTHash:iEb36u6PsRetBr3YMLdYbA", "not a recognised"),
            ("sambaNTPassword: 8846F7EAEE8FB117AD06BDD830B7586", "not hexadecimal"),
            ("sambaNTPassword: zz46F7EAEE8FB117AD06BDD830B7586C", "not hexadecimal"),
            ("{SHA}" + _b64(b"x" * 19), "not 20 bytes"),
            ("{SSHA}" + _b64(b"x" * 19), "shorter than the 20-byte digest"),
            ("{SHA256}" + _b64(b"x" * 33), "not 32 bytes"),
            ("{SSHA256}" + _b64(b"x" * 31), "shorter than the 32-byte digest"),
            ("{SHA512}" + _b64(b"x" * 63), "not 64 bytes"),
            ("{SSHA512}" + _b64(b"x" * 63), "64-byte digest"),
            ("{SSHA512}" + _b64(b"x" * 64), "no salt after the 64-byte digest"),
            ("{SSHA512}" + _b64(b"x" * 72).rstrip("=") + "!", "not canonical"),
            ("{CRYPT}$2b$10$abcdefghijklmnopqrstuv", "only $1$"),
            ("{CRYPT}$1$saltonly", "expected salt$hash"),
            ("{PBKDF2-SHA256}1000$" + _ab64(SALT), "expected iterations$salt$hash"),
            ("{PBKDF2-SHA256}x$" + _ab64(SALT) + "$" + _ab64(b"x" * 32), "iteration count"),
            ("{PBKDF2-SHA256}1000$" + _ab64(SALT) + "$" + _ab64(b"x" * 31), "shorter than 32"),
            ("{PBKDF2}1000$" + _ab64(SALT) + "$" + _ab64(b"x" * 18), "shorter than 19"),
            ("{PBKDF2-SHA1}1000$!!$" + _ab64(b"x" * 20), "salt is not ab64"),
            ("{PBKDF2-SHA256}-1$" + _ab64(SALT) + "$" + _ab64(b"x" * 32), "iteration count"),
            ("{ARGON2}$argon2i$v=19$m=65536,t=3,p=1$c29tZXNhbHQ$" + "A" * 43, "argon2id"),
            ("{ARGON2}$argon2id$v=18$m=65536,t=3,p=1$c29tZXNhbHQ$" + "A" * 43, "version"),
            ("{ARGON2}$argon2id$v=19$m=65536,t=3$c29tZXNhbHQ$" + "A" * 43, "m, t and p"),
            ("{ARGON2}$argon2id$v=19$m=x,t=3,p=1$c29tZXNhbHQ$" + "A" * 43, "m, t and p"),
            ("{ARGON2}$argon2id$v=19$m=1;t=3,p=1$c29tZXNhbHQ$" + "A" * 43, "malformed"),
            ("{ARGON2}$argon2id$v=19$m=65536,t=3,p=1$c29tZXNhbHQ", "hash is missing"),
            ("{ARGON2}$argon2id$v=19$m=65536,t=3,p=1$abc$" + "A" * 43, "salt"),
            ("{ARGON2}$argon2id$v=19$m=65536,t=3,p=1$c29tZXNhbHQ$AAAA", "hash"),
        ],
    )
    def test_refused_formats(self, value: str, needle: str) -> None:
        """Malformed or unsupported hashes are refused with a reason naming the format."""
        problem = password_import_problem(value)
        assert problem is not None
        assert needle in problem
        assert False is password_import_format_ok(value)

    @pytest.mark.parametrize(
        "value",
        [
            "{Ssha}" + _b64(b"x" * 28),
            "{pbkdf2-sha256}1000$" + _ab64(SALT) + "$" + _ab64(b"x" * 32),
            "{SSHA}" + _b64(b"x" * 20),
            "pbkdf2_sha256$+1000$$" + _b64(b"x" * 32),
            "ipaNTHash: ",
            "{CRYPT}$6$",
        ],
    )
    def test_odd_but_imported(self, value: str) -> None:
        """Accepted by kanidmd 1.11.1: schemes are lower-cased, little beyond lengths is checked."""
        assert None is password_import_problem(value)

    @pytest.mark.parametrize("label", sorted(VALID_HASHES))
    def test_messages_never_echo_the_hash(self, label: str) -> None:
        """A refusal message never contains the hash text itself."""
        broken = VALID_HASHES[label][:-3] + "!!!"
        problem = password_import_problem(broken) or ""
        body = VALID_HASHES[label].split("$")[-1].split(" ")[-1].split("}")[-1]
        assert body[:12] not in problem


_SIMPLE = "must be scim simple string - totp_import"
_B64 = "secret must be base64 string - totp_import"
_ALGO = "algo must be one of sha1, sha256 or sha512 - totp_import"
_STEP = "step must be a positive integer value equal to or greater than 30 - totp_import"
_DIGITS = "digits must be a positive integer value of 6 OR 8 - totp_import"


class TestTotp:
    GOOD: ClassVar[dict[str, object]] = {
        "external_id": "token-1",
        "secret": base64.b64encode(b"12345678901234567890").decode(),
        "algo": "sha1",
        "step": 30,
        "digits": 6,
    }

    def test_valid_item_has_no_problem(self) -> None:
        """A well-formed TOTP item passes."""
        expected: list[object] = []
        assert expected == totp_problems(**self.GOOD)

    def test_urlsafe_secret_is_accepted(self) -> None:
        """The URL-safe alphabet is tried first."""
        expected: list[object] = []
        assert expected == totp_problems(**{**self.GOOD, "secret": "-_8="})

    @pytest.mark.parametrize(
        ("key", "value", "code", "message"),
        [
            ("external_id", 5, "totp.external_id", f"external_id {_SIMPLE}"),
            ("secret", 5, "totp.secret", f"secret {_SIMPLE}"),
            ("secret", "YWI", "totp.secret", _B64),
            ("secret", "JBSWY3DPEHPK3PXP!", "totp.secret", _B64),
            ("algo", "md5", "totp.algo", _ALGO),
            ("algo", "SHA1", "totp.algo", _ALGO),
            ("algo", 1, "totp.algo", f"algo {_SIMPLE}"),
            ("step", 29, "totp.step", _STEP),
            ("step", 30.0, "totp.step", _STEP),
            ("step", True, "totp.step", _STEP),
            ("digits", 7, "totp.digits", _DIGITS),
            ("digits", "6", "totp.digits", _DIGITS),
        ],
    )
    def test_each_field_is_checked(self, key: str, value: object, code: str, message: str) -> None:
        """Each field's rule reports kanidmd's exact message."""
        expected = [(code, message)]
        assert expected == totp_problems(**{**self.GOOD, key: value})

    def test_all_problems_are_reported(self) -> None:
        """Unlike kanidmd, every bad field is reported, in kanidmd's order."""
        found = totp_problems(external_id="t", secret="?", algo="md5", step=1, digits=9)
        expected = ["totp.secret", "totp.algo", "totp.step", "totp.digits"]
        assert expected == [c for c, _ in found]

    def test_secret_never_in_messages(self) -> None:
        """No message contains the secret."""
        secret = "c2VjcmV0LXNlY3JldA=!"
        found = totp_problems(**{**self.GOOD, "secret": secret})
        assert all(secret not in m for _, m in found)


class TestSsh:
    @pytest.mark.parametrize("line", [ED25519, ECDSA521, RSA, SK_ECDSA])
    def test_kanidm_test_keys_parse(self, line: str) -> None:
        """The keys from kanidmd's tests and the IPA fixture (sk-ecdsa) are accepted."""
        info = parse_ssh_public_key(line)
        assert info is not None
        assert line.split()[0] == info.key_type

    def test_comment_is_optional_and_kept(self) -> None:
        """The comment is returned; a key without one parses too."""
        no_comment = " ".join(ED25519.split()[:2])
        expected = ("william@amethyst", None)
        assert expected == (
            parse_ssh_public_key(ED25519).comment,  # type: ignore[union-attr]
            parse_ssh_public_key(no_comment).comment,  # type: ignore[union-attr]
        )

    def test_sk_ed25519_and_dss_parse(self) -> None:
        """Structurally valid sk-ssh-ed25519 and ssh-dss keys are accepted."""
        sk = _ssh_line("sk-ssh-ed25519@openssh.com", b"k" * 32, b"ssh:")
        dss = _ssh_line("ssh-dss", b"\x01p", b"\x01q", b"\x01g", b"\x01y")
        expected = (None, None)
        assert expected == (ssh_public_key_problem(sk), ssh_public_key_problem(dss))

    @pytest.mark.parametrize(
        ("line", "needle"),
        [
            ("ntaouhtnhtnuehtnuhotnuhtneouhtneouh", "not an OpenSSH public key line"),
            ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAeGW1P6Pc2rPq0XqbRaDKBcXZUPRklo", "truncated"),
            ("ssh-rsa " + ED25519.split()[1], "does not match"),
            ("ssh-ed25519 AAAA!!!!", "not canonical"),
            (ED25519.split()[0] + " " + ED25519.split()[1][:-1], "not canonical"),
            (" " + ED25519, "starts with whitespace"),
            ("ssh-ed448 " + ED25519.split()[1], "unsupported key type"),
            (_ssh_line("ecdsa-sha2-nistp256", b"secp256k1", b"\x04" + b"x" * 64), "curve"),
            (_ssh_line("ssh-rsa", b"", b"\x01n"), "crashes"),
            ("AA", "not an OpenSSH public key line"),
        ],
    )  # fmt: skip
    def test_refused_lines(self, line: str, needle: str) -> None:
        """Garbage, truncated keys, mismatched types and leading whitespace are refused."""
        problem = ssh_public_key_problem(line)
        assert problem is not None
        assert needle in problem
        assert None is parse_ssh_public_key(line)

    @pytest.mark.parametrize(
        ("line", "needle"),
        [
            (_ssh_line("ssh-ed25519", b"k" * 31), "not 32 bytes"),
            (_ssh_line("ssh-ed25519", b"k" * 32, b"extra"), "extra bytes"),
            (_ssh_line("ecdsa-sha2-nistp256", b"nistp384", b"\x04" + b"x" * 96), "curve"),
            (_ssh_line("ecdsa-sha2-nistp256", b"nistp256", b"\x04"), "wrong size"),
            (_ssh_line("ssh-ed25519-cert-v01@openssh.com", b"x"), "certificate"),
            (ED25519 + "\nsecond line", "first line"),
        ],
    )  # fmt: skip
    def test_odd_keys_are_accepted_with_a_note(self, line: str, needle: str) -> None:
        """The sshkeys crate checks neither sizes nor leftovers: kanidmd stores these keys."""
        oddity = ssh_public_key_oddity(line)
        assert None is ssh_public_key_problem(line)
        assert oddity is not None
        assert needle in oddity

    @pytest.mark.parametrize("line", [ED25519, ECDSA521, RSA, SK_ECDSA])
    def test_sound_keys_have_no_oddity(self, line: str) -> None:
        """Real keys are not flagged."""
        assert None is ssh_public_key_oddity(line)


class TestRfc3339:
    @pytest.mark.parametrize(
        "text",
        [
            "2020-09-25T11:22:02+10:00",
            "2020-09-25T01:22:02+00:00",
            "2025-01-31T00:00:00Z",
            "2025-01-31t00:00:00z",
            "2025-01-31T00:00:00.123456789-05:30",
            "1970-01-01T00:00:00+00:00",
            "2016-12-31T23:59:60Z",
            "2016-12-31T22:59:60-01:00",
            "2020-09-25 01:22:02+00:00",
            "2020-09-25x01:22:02Z",
            "0000-01-01T00:00:00Z",
            "2020-09-25T01:22:02.1234567890123Z",
        ],
    )
    def test_accepted(self, text: str) -> None:
        """Offsets, Z, fractions, leap seconds and any ASCII date/time separator pass."""
        assert True is is_rfc3339(text)

    @pytest.mark.parametrize(
        "text",
        [
            "2020-09-25T01:22:02",
            "2020-09-25",
            "2020-09-25T01:22:02+10",
            "2020-09-25\u00a001:22:02+00:00",
            "2020-09-25T01:22:02+10:60",
            "2016-06-30T23:59:60+01:00",
            "2020-02-30T00:00:00Z",
            "2020-09-25T24:00:00Z",
            "2020-09-25T01:22:02+24:00",
            "2020-09-25T01:22Z",
        ],
    )
    def test_refused(self, text: str) -> None:
        """Kanidmd's refused examples and impossible dates fail."""
        assert False is is_rfc3339(text)

    @pytest.mark.parametrize("text", ["9999-12-31T23:00:00-01:00", "0000-01-01T00:30:00+01:00"])
    def test_crash_range(self, text: str) -> None:
        """Outside years 0000-9999 in UTC kanidmd panics; reported as its own problem."""
        assert "crashes" in (rfc3339_problem(text) or "")

    def test_parse_keeps_the_offset(self) -> None:
        """The parsed value is the instant, in UTC."""
        parsed = parse_rfc3339("2020-09-25T11:22:02.5+10:00")
        expected = dt.datetime(2020, 9, 25, 1, 22, 2, 500000, tzinfo=dt.UTC)
        assert expected == parsed
