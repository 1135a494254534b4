"""Who is calling the in-memory Kanidm: admin identities, sessions, tokens and ``/v1/auth``.

This module owns everything the auth spec (``kanidm-auth.md``) describes for the double:
the built-in ``admin`` and ``idm_admin`` service accounts, human administrators added by tests,
API tokens, user auth tokens (UATs) with their read-only / privilege-capable / read-write
scopes, the ``/v1/auth`` handshake (init2, begin, cred with password and TOTP), ``/v1/reauth``,
and the validation of bearer tokens for admin endpoints and for the sync endpoint (protocol
spec §4.1 and §6). It knows nothing about routes or sync accounts' contents: it raises
:class:`~kanidm_sync.testing.Rejection` and the HTTP layer renders it.

Must not: import pytest, log, or let a password, TOTP secret or token reach a repr or an
exception message.

Simplifications (listed in docs/testing.md): no credential soft-lock, no backup codes, no
WebAuthn, no account policy groups (privilege expiry is always 600 s, person sessions 24 h),
no API-token grace window.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import struct
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Final, Literal

import attrs

from .._proto._status import OperationError
from .._types import JSONValue
from ._store import Rejection
from ._tokens import JwsKeys, VerifiedJws, b64url_decode

__all__ = [
    "ADMIN_UUID",
    "IDM_ADMIN_UUID",
    "AdminAccount",
    "Authority",
    "Identity",
    "totp_code",
]

ADMIN_UUID: Final = uuid.UUID("00000000-0000-0000-0000-000000000000")
IDM_ADMIN_UUID: Final = uuid.UUID("00000000-0000-0000-0000-000000000018")

AUTH_SESSION_TIMEOUT: Final = 300  # kanidm: server/lib/src/constants/mod.rs
LIMITED_EXPIRY: Final = 3600  # DEFAULT_AUTH_SESSION_LIMITED_EXPIRY
PERSON_SESSION_EXPIRY: Final = 86400  # default auth_session_expiry
PRIVILEGE_EXPIRY: Final = 600  # DEFAULT_AUTH_PRIVILEGE_EXPIRY on idm_all_accounts

AUTH_SESSION_HEADER: Final = "X-KANIDM-AUTH-SESSION-ID"
AUTH_SESSION_COOKIE: Final = "auth-session-id"

_ADMIN_GROUPS: Final = ("system_admins", "domain_admins", "idm_high_privilege", "idm_all_accounts")
_IDM_ADMIN_GROUPS: Final = ("idm_admins", "idm_high_privilege", "idm_all_accounts")


def totp_code(secret: bytes, *, at: float | None = None, step: int = 30, digits: int = 6) -> int:
    """The RFC 6238 TOTP code (HMAC-SHA1) for a secret, as an authenticator shows it.

    Args:
        secret: the raw TOTP key (the bytes given to ``FakeKanidm.add_admin``).
        at: the Unix time to compute the code for; now when omitted.
        step: the time step in seconds.
        digits: the number of digits.

    Returns:
        The code as an integer, the way ``{"totp": 123456}`` carries it on the wire.
    """
    counter = int((time.time() if at is None else at) // step)
    mac = hmac.new(secret, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return int(value % (10**digits))


def _op(variant: str, detail: JSONValue = None) -> Rejection:
    return Rejection.operation(OperationError(variant, detail))


def _not_authenticated() -> Rejection:
    return _op("notauthenticated")


@attrs.define(eq=False)
class AdminAccount:
    """An account that can log in to the double (not a synced entry).

    Attributes:
        uuid: the account's UUID.
        name: its name (lower case).
        displayname: its display name.
        kind: ``"service_account"`` (``admin``, ``idm_admin``) or ``"person"``.
        groups: names of the groups it is (transitively) a member of.
        password: its password, or ``None`` when it has none (never shown in reprs).
        totp_secret: its TOTP key, or ``None`` (never shown in reprs).
        generated_password: whether the password was generated (``recover-account``):
            such logins are always read-write for one hour and cannot re-authenticate.
    """

    uuid: uuid.UUID
    name: str
    displayname: str
    kind: Literal["service_account", "person"]
    groups: tuple[str, ...]
    password: str | None = attrs.field(default=None, repr=False)
    totp_secret: bytes | None = attrs.field(default=None, repr=False)
    generated_password: bool = False

    @property
    def domain_admin(self) -> bool:
        """Whether the account may manage sync accounts (member of ``domain_admins``)."""
        return "domain_admins" in self.groups


@attrs.frozen
class Identity:
    """The caller behind a validated admin bearer token.

    Attributes:
        account: the account the token belongs to.
        kind: ``"uat"`` (from ``/v1/auth``) or ``"api"`` (a service-account API token).
        read_write: whether this request may write (auth spec §2.1, evaluated now).
        session_id: the user session or API-token id.
    """

    account: AdminAccount
    kind: Literal["uat", "api"]
    read_write: bool
    session_id: uuid.UUID


@attrs.define(eq=False)
class _UserSession:
    account: uuid.UUID
    scope: Literal["privilege_capable", "read_write"]
    issued_at: int
    expiry: int
    mech: Literal["password", "passwordmfa"]
    revoked: bool = False


@attrs.define(eq=False)
class _ApiSession:
    account: uuid.UUID
    read_write: bool
    label: str


@attrs.define(eq=False)
class _Handshake:
    account: AdminAccount
    created: float
    privileged: bool
    mechs: tuple[str, ...]
    # choose -> (begin) -> totp -> password -> done; reauth starts at totp or password.
    step: Literal["choose", "totp", "password", "done"]
    reauth_of: uuid.UUID | None = None


_MECHS: Final = frozenset(
    {
        "anonymous",
        "password",
        "passwordmfa",
        "passwordbackupcode",
        "passwordsecuritykey",
        "passkey",
        "oauth2trust",
    }
)


def _unprocessable(message: str) -> Rejection:
    return Rejection.text(
        422, f"Failed to deserialize the JSON body into the target type: {message}"
    )


@attrs.define(eq=False)
class Authority:
    """Tokens, accounts and sessions of one ``FakeKanidm``.

    Args:
        domain: the Kanidm domain name used in SPNs.
        clock: returns the current Unix time (tests pass a fake one to exercise expiry).
        directory: finds the classes of a live store entry by name, or ``None``.
    """

    domain: str
    clock: Callable[[], float] = time.time
    # Looks a login name up among the store's entries (classes of a live entry, or None), so
    # that names of entries that cannot log in answer as kanidmd does.
    directory: Callable[[str], frozenset[str] | None] | None = None
    keys: JwsKeys = attrs.field(factory=JwsKeys)
    _accounts: dict[uuid.UUID, AdminAccount] = attrs.field(factory=dict)
    _user_sessions: dict[uuid.UUID, _UserSession] = attrs.field(factory=dict)
    _api_sessions: dict[uuid.UUID, _ApiSession] = attrs.field(factory=dict)
    _handshakes: dict[uuid.UUID, _Handshake] = attrs.field(factory=dict)
    # The auth-session header is HMAC-signed with a per-process key in kanidmd too.
    _session_key: bytes = attrs.field(factory=lambda: secrets.token_bytes(32), repr=False)

    def __attrs_post_init__(self) -> None:
        self._accounts[ADMIN_UUID] = AdminAccount(
            ADMIN_UUID, "admin", "System Administrator", "service_account", _ADMIN_GROUPS
        )
        self._accounts[IDM_ADMIN_UUID] = AdminAccount(
            IDM_ADMIN_UUID, "idm_admin", "IDM Administrator", "service_account", _IDM_ADMIN_GROUPS
        )

    # -- accounts ---------------------------------------------------------------------------

    def account(self, key: str | uuid.UUID) -> AdminAccount | None:
        """Find an account by UUID, name or SPN (case-insensitive)."""
        if isinstance(key, uuid.UUID):
            return self._accounts.get(key)
        text = key.strip().lower()
        try:
            return self._accounts.get(uuid.UUID(text))
        except ValueError:
            pass
        suffix = "@" + self.domain.lower()
        if text.endswith(suffix):
            text = text[: -len(suffix)]
        return next((a for a in self._accounts.values() if a.name == text), None)

    def add(self, account: AdminAccount) -> None:
        """Register an account that can log in."""
        if self.account(account.name) is not None:
            raise ValueError(f"an admin account named {account.name!r} already exists")
        self._accounts[account.uuid] = account

    def recover(self, name: str) -> str:
        """Generate a new password for a built-in account (``kanidmd recover-account``)."""
        acct = self.account(name)
        if acct is None or acct.kind != "service_account":
            raise ValueError(f"no built-in service account named {name!r}")
        acct.password = secrets.token_urlsafe(36)
        acct.generated_password = True
        return acct.password

    def spn(self, account: AdminAccount) -> str:
        """The account's SPN."""
        return f"{account.name}@{self.domain}"

    # -- minting ----------------------------------------------------------------------------

    def mint_api_token(self, account: AdminAccount, *, read_write: bool, label: str) -> str:
        """Issue an API token (auth spec §4.1, normal non-compact form)."""
        token_id = uuid.uuid4()
        self._api_sessions[token_id] = _ApiSession(account.uuid, read_write, label)
        payload: dict[str, JSONValue] = {
            "account_id": str(account.uuid),
            "token_id": str(token_id),
            "label": label,
            "expiry": None,
            "issued_at": int(self.clock()),
            "purpose": "readwrite" if read_write else "readonly",
        }
        return self.keys.sign(payload, alg="HS256")

    def mint_sync_token(self, token_id: uuid.UUID) -> str:
        """Sign a sync token for a session the store already holds (spec §6)."""
        payload: dict[str, JSONValue] = {
            "token_id": str(token_id),
            "issued_at": int(self.clock()),
            "purpose": "synchronise",
        }
        return self.keys.sign(payload, alg="ES256")

    def _mint_uat(self, session_id: uuid.UUID, rw_expiry: int | None) -> str:
        session = self._user_sessions[session_id]
        account = self._accounts[session.account]
        purpose: JSONValue = {"readwrite": {"expiry": rw_expiry}}
        payload: dict[str, JSONValue] = {
            "session_id": str(session_id),
            "issued_at": session.issued_at,
            "expiry": session.expiry,
            "purpose": purpose,
            "uuid": str(account.uuid),
            "displayname": account.displayname,
            "spn": self.spn(account),
            "ui_hints": [],
        }
        return self.keys.sign(payload, alg="ES256")

    # -- validation -------------------------------------------------------------------------

    def identify(self, bearer: str | None) -> Identity:
        """Validate a bearer token for an admin endpoint or ``/v1/self``.

        Args:
            bearer: the token from ``Authorization: Bearer``, or ``None``.

        Returns:
            The caller.

        Raises:
            Rejection: 401 ``notauthenticated`` (missing, not a JWS, bad signature, sync
                token, unknown API token) or 401 ``sessionexpired`` (expired or logged out).
        """
        if bearer is None:
            raise _not_authenticated()
        verified = self.keys.verify(bearer)
        if not isinstance(verified, VerifiedJws) or not isinstance(verified.payload, dict):
            raise _not_authenticated()
        payload: dict[str, object] = verified.payload
        now = self.clock()
        if verified.alg == "HS256" and "account_id" in payload:
            token_id = _uuid_or_none(payload.get("token_id"))
            api = self._api_sessions.get(token_id) if token_id is not None else None
            if api is None or token_id is None:
                raise _not_authenticated()
            return Identity(self._accounts[api.account], "api", api.read_write, token_id)
        if verified.alg == "ES256" and "session_id" in payload:
            session_id = _uuid_or_none(payload.get("session_id"))
            session = self._user_sessions.get(session_id) if session_id is not None else None
            if session is None or session_id is None:
                raise _not_authenticated()
            expiry = payload.get("expiry")
            if session.revoked or (isinstance(expiry, int) and now >= expiry):
                raise _op("sessionexpired")
            purpose = payload.get("purpose")
            read_write = False
            if isinstance(purpose, dict):
                inner = purpose.get("readwrite")
                if isinstance(inner, dict):
                    rw_expiry = inner.get("expiry")
                    read_write = isinstance(rw_expiry, int) and now < rw_expiry
            return Identity(self._accounts[session.account], "uat", read_write, session_id)
        # A sync token parses neither as a UAT nor as an API token (spec §2.2).
        raise _not_authenticated()

    def sync_token_id(self, bearer: str | None) -> uuid.UUID:
        """Validate a bearer token for ``/scim/v1/Sync`` up to the session lookup (§4.1).

        Args:
            bearer: the token from ``Authorization: Bearer``, or ``None``.

        Returns:
            The token id; the caller still has to find the live account holding it
            (absent ⇒ 401).

        Raises:
            Rejection: 401 ``notauthenticated`` (steps 1, 2, 5) or 500 ``serdejsonerror``
                (step 3: a valid Kanidm JWS whose payload is not a sync token).
        """
        if bearer is None:
            raise _not_authenticated()
        verified = self.keys.verify(bearer)
        if not isinstance(verified, VerifiedJws) or verified.alg != "ES256":
            # Checked against kanidmd 1.11.1: an API token (HS256) on /scim/v1/Sync is 401
            # "notauthenticated" on both S1 and S2; only ES256 tokens (sync tokens and user
            # sessions) reach the payload check.
            raise _not_authenticated()
        token_id = _sync_payload(verified.payload)
        if token_id is None:
            raise _op("serdejsonerror")
        token_id_value, purpose = token_id
        if purpose != "synchronise":
            raise _not_authenticated()
        return token_id_value

    # -- /v1/auth ---------------------------------------------------------------------------

    def _sign_handshake(self, handshake_id: uuid.UUID) -> str:
        # kanidmd signs the auth-session id with an ephemeral HMAC key: a JWS whose payload is
        # the session UUID.
        from ._tokens import b64url_encode

        header = b64url_encode(b'{"alg":"HS256"}')
        payload = b64url_encode(f'"{handshake_id}"'.encode())
        sig = hmac.new(self._session_key, f"{header}.{payload}".encode(), hashlib.sha256)
        return f"{header}.{payload}.{b64url_encode(sig.digest())}"

    def _handshake_from(self, value: str | None) -> uuid.UUID | None:
        if value is None:
            return None
        parts = value.split(".")
        if len(parts) != 3:
            return None
        expected = hmac.new(
            self._session_key, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256
        ).digest()
        try:
            if not hmac.compare_digest(expected, b64url_decode(parts[2])):
                return None
            text = b64url_decode(parts[1]).decode().strip('"')
            return uuid.UUID(text)
        except (ValueError, UnicodeDecodeError):
            return None

    def _expire_handshakes(self) -> None:
        now = self.clock()
        for key in [
            k for k, h in self._handshakes.items() if now - h.created >= AUTH_SESSION_TIMEOUT
        ]:
            del self._handshakes[key]

    def auth_step(
        self, body: object, session_value: str | None
    ) -> tuple[dict[str, JSONValue], str | None]:
        """Run one ``POST /v1/auth`` step (auth spec §1).

        Args:
            body: the parsed JSON body.
            session_value: the ``X-KANIDM-AUTH-SESSION-ID`` header, else the
                ``auth-session-id`` cookie, else ``None``.

        Returns:
            The response JSON and the session header to send (``None`` on terminal states).

        Raises:
            Rejection: 422 for a malformed step, and the operation errors of auth spec §1.6.
        """
        step = _parse_auth_request(body)
        self._expire_handshakes()
        kind, value = step
        if kind == "init":
            assert isinstance(value, tuple)
            username, privileged = value
            return self._init(username, privileged=privileged)
        handshake_id = self._handshake_from(session_value)
        if handshake_id is None:
            # [inferred] the cred step's wording differs slightly in kanidmd.
            where = "presented to 'begin' step" if kind == "begin" else "presented to 'cred' step"
            raise _op("invalidauthstate", f"session id not present in cred {where}")
        handshake = self._handshakes.get(handshake_id)
        if handshake is None:
            raise _op("invalidsessionstate")
        if kind == "begin":
            assert isinstance(value, str)
            return self._begin(handshake_id, handshake, value)
        assert isinstance(value, dict)
        return self._cred(handshake_id, handshake, value)

    def _init(self, username: str, *, privileged: bool) -> tuple[dict[str, JSONValue], str | None]:
        if not username.strip():
            raise _op("emptyrequest")
        account = self.account(username)
        handshake_id = uuid.uuid4()
        if account is None:
            classes = self.directory(username) if self.directory is not None else None
            if classes is None:
                raise _op("nomatchingentries")
            if "account" not in classes:
                raise _op("missingclass", "account")
            # [inferred] a synced or seeded account without a credential the double knows.
            return _auth_response(handshake_id, {"denied": "invalid credential state"}), None
        if account.password is None:
            return _auth_response(handshake_id, {"denied": "invalid credential state"}), None
        mechs = ("passwordmfa",) if account.totp_secret is not None else ("password",)
        self._handshakes[handshake_id] = _Handshake(
            account, self.clock(), privileged, mechs, "choose"
        )
        state: dict[str, JSONValue] = {"choose": list(mechs)}
        return _auth_response(handshake_id, state), self._sign_handshake(handshake_id)

    def _deny(self, handshake_id: uuid.UUID, reason: str) -> tuple[dict[str, JSONValue], None]:
        self._handshakes[handshake_id].step = "done"
        return _auth_response(handshake_id, {"denied": reason}), None

    def _begin(
        self, handshake_id: uuid.UUID, handshake: _Handshake, mech: str
    ) -> tuple[dict[str, JSONValue], str | None]:
        if handshake.step != "choose":
            raise _op("invalidauthstate", "session already finalised!")
        if mech not in handshake.mechs:
            return self._deny(handshake_id, "invalid credential message")
        handshake.step = "totp" if mech == "passwordmfa" else "password"
        state: dict[str, JSONValue] = {"continue": [handshake.step]}
        return _auth_response(handshake_id, state), self._sign_handshake(handshake_id)

    def _cred(
        self, handshake_id: uuid.UUID, handshake: _Handshake, cred: dict[str, object]
    ) -> tuple[dict[str, JSONValue], str | None]:
        if handshake.step == "done":
            raise _op("invalidauthstate", "session already finalised!")
        if handshake.step == "choose":
            # [inferred] kanidmd has no mechanism to check the credential against yet.
            raise _op("invalidauthstate", "no authentication mechanism selected")
        account = handshake.account
        if handshake.step == "totp":
            code = cred.get("totp")
            if "totp" not in cred or not isinstance(code, int):
                return self._deny(handshake_id, "invalid authentication method in this context")
            secret = account.totp_secret
            now = self.clock()
            if secret is None or code not in {
                totp_code(secret, at=now + delta) for delta in (-30, 0, 30)
            }:
                return self._deny(handshake_id, "incorrect totp")
            handshake.step = "password"
            state: dict[str, JSONValue] = {"continue": ["password"]}
            return _auth_response(handshake_id, state), self._sign_handshake(handshake_id)
        password = cred.get("password")
        if "password" not in cred or not isinstance(password, str):
            return self._deny(handshake_id, "invalid authentication method in this context")
        if account.password is None or not hmac.compare_digest(
            password.encode(), account.password.encode()
        ):
            return self._deny(handshake_id, "incorrect password")
        handshake.step = "done"
        token = self._success(handshake)
        return _auth_response(handshake_id, {"success": token}), None

    def _success(self, handshake: _Handshake) -> str:
        now = int(self.clock())
        account = handshake.account
        if handshake.reauth_of is not None:
            session_id = handshake.reauth_of
            session = self._user_sessions[session_id]
            rw_until = min(now + PRIVILEGE_EXPIRY, session.expiry)
            return self._mint_uat(session_id, rw_until)
        session_id = uuid.uuid4()
        mech: Literal["password", "passwordmfa"] = (
            "passwordmfa" if account.totp_secret is not None else "password"
        )
        if account.generated_password or handshake.privileged:
            expiry = now + LIMITED_EXPIRY
            self._user_sessions[session_id] = _UserSession(
                account.uuid, "read_write", now, expiry, mech
            )
            return self._mint_uat(session_id, expiry)
        self._user_sessions[session_id] = _UserSession(
            account.uuid, "privilege_capable", now, now + PERSON_SESSION_EXPIRY, mech
        )
        return self._mint_uat(session_id, None)

    def reauth(self, identity: Identity, body: object) -> tuple[dict[str, JSONValue], str]:
        """Start a re-authentication (``POST /v1/reauth``, auth spec §2.3).

        Args:
            identity: the validated caller.
            body: the parsed JSON body (must be ``"token"`` or ``"cookie"``).

        Returns:
            The ``continue`` response and the session header value.

        Raises:
            Rejection: 422 for a bad body, 500 ``invalidstate`` for API tokens, 500
                ``sessionmaynotreauth`` for read-write sessions.
        """
        if body not in ("token", "cookie"):
            raise _unprocessable("unknown variant, expected `token` or `cookie`")
        if identity.kind == "api":
            raise _op("invalidstate")
        session = self._user_sessions[identity.session_id]
        if session.scope == "read_write":
            raise _op("sessionmaynotreauth")
        self._expire_handshakes()
        handshake_id = uuid.uuid4()
        first: Literal["totp", "password"] = "totp" if session.mech == "passwordmfa" else "password"
        self._handshakes[handshake_id] = _Handshake(
            identity.account, self.clock(), False, (session.mech,), first, identity.session_id
        )
        state: dict[str, JSONValue] = {"continue": [first]}
        return _auth_response(handshake_id, state), self._sign_handshake(handshake_id)

    def logout(self, bearer: str | None) -> None:
        """Revoke the user session behind a token, if any (``GET /v1/logout``)."""
        if bearer is None:
            return
        verified = self.keys.verify(bearer)
        if isinstance(verified, VerifiedJws) and isinstance(verified.payload, dict):
            session_id = _uuid_or_none(verified.payload.get("session_id"))
            session = self._user_sessions.get(session_id) if session_id is not None else None
            if session is not None:
                session.revoked = True

    def uat(self, identity: Identity, bearer: str) -> Mapping[str, object]:
        """The decoded UAT of a user session (``GET /v1/self/_uat``)."""
        if identity.kind != "uat":
            raise _not_authenticated()
        verified = self.keys.verify(bearer)
        if not isinstance(verified, VerifiedJws) or not isinstance(verified.payload, dict):
            raise _not_authenticated()
        return verified.payload


def _uuid_or_none(value: object) -> uuid.UUID | None:
    if not isinstance(value, str):
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


_SYNC_TOKEN_KEYS: Final = frozenset({"token_id", "issued_at", "purpose"})
_PURPOSES: Final = frozenset({"readonly", "readwrite", "synchronise"})


def _sync_payload(payload: object) -> tuple[uuid.UUID, str] | None:
    """Deserialise a payload as kanidmd's ``ScimSyncToken``; ``None`` = serde error.

    Unknown keys are treated as a deserialisation failure, so a user session token (UAT)
    on the sync endpoint answers 500 ``serdejsonerror`` (checked against kanidmd 1.11.1).
    API tokens never get here: their HS256 signature is refused first (401).
    """
    if not isinstance(payload, dict) or not set(payload) <= _SYNC_TOKEN_KEYS:
        return None
    token_id = _uuid_or_none(payload.get("token_id"))
    issued_at = payload.get("issued_at")
    purpose = payload.get("purpose", "readonly")
    if token_id is None or not isinstance(issued_at, int) or isinstance(issued_at, bool):
        return None
    if not isinstance(purpose, str) or purpose not in _PURPOSES:
        return None
    return token_id, purpose


def _auth_response(handshake_id: uuid.UUID, state: dict[str, JSONValue]) -> dict[str, JSONValue]:
    return {"sessionid": str(handshake_id), "state": state}


def _parse_auth_request(
    body: object,
) -> tuple[Literal["init", "begin", "cred"], tuple[str, bool] | str | dict[str, object]]:
    """Check the shape of an ``AuthRequest`` the way serde would (422 on mismatch)."""
    if not isinstance(body, dict) or "step" not in body:
        raise _unprocessable("missing field `step`")
    step = body["step"]
    if isinstance(step, dict) and len(step) == 1:
        ((variant, value),) = step.items()
    else:
        raise _unprocessable("step: expected an externally tagged enum")
    if variant == "init":
        if not isinstance(value, str):
            raise _unprocessable("step.init: invalid type, expected a string")
        return "init", (value, False)
    if variant == "init2":
        if not isinstance(value, dict):
            raise _unprocessable("step.init2: invalid type, expected struct Init2")
        username = value.get("username")
        issue = value.get("issue")
        privileged = value.get("privileged", False)
        if not isinstance(username, str):
            raise _unprocessable("step.init2: missing field `username`")
        if issue not in ("token", "cookie"):
            raise _unprocessable("step.init2: missing or invalid field `issue`")
        if not isinstance(privileged, bool):
            raise _unprocessable("step.init2.privileged: invalid type, expected a boolean")
        return "init", (username, privileged)
    if variant == "begin":
        if not isinstance(value, str) or value not in _MECHS:
            raise _unprocessable("step.begin: unknown variant")
        return "begin", value
    if variant == "cred":
        if value == "anonymous":
            return "cred", {"anonymous": None}
        if not isinstance(value, dict) or len(value) != 1:
            raise _unprocessable("step.cred: expected an externally tagged enum")
        ((ckind, cvalue),) = value.items()
        if ckind == "password" and isinstance(cvalue, str):
            return "cred", {"password": cvalue}
        if ckind == "totp" and isinstance(cvalue, int) and not isinstance(cvalue, bool):
            if not 0 <= cvalue <= 0xFFFFFFFF:
                raise _unprocessable("step.cred.totp: invalid value, expected u32")
            return "cred", {"totp": cvalue}
        if ckind == "backupcode" and isinstance(cvalue, str):
            return "cred", {"backupcode": cvalue}
        if ckind in ("securitykey", "passkey"):
            return "cred", {ckind: cvalue}
        raise _unprocessable(f"step.cred: unknown variant or invalid type `{ckind}`")
    raise _unprocessable(f"step: unknown variant `{variant}`")
