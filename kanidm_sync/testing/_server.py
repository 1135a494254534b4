"""The HTTP face of the in-memory Kanidm: :class:`FakeKanidm`, routes, faults and history.

This module owns the request handler (an ``httpx.Request -> httpx.Response`` callable) that
serves every endpoint of spec §2 (A1-A11, S1, S2) and the auth endpoints of the auth spec
(``/v1/auth``, ``/v1/reauth``, ``/v1/auth/valid``, ``/v1/self``, ``/v1/self/_uat``,
``/v1/logout``), with kanidmd's statuses, bodies and quirks: 200 ``null`` for "nothing",
405 with ``Allow`` for a wrong method, ``Route not found`` for an unknown path, 413/415/400/422
framework rejections *before* the token is checked (§2.1), and every operation error rendered
through :class:`~kanidm_sync._proto._status.OperationError` (via the core's ``Rejection``).
It also owns fault injection (fail, drop the reply, latency) and the request history.

Must not: hold sync state itself (that is the core's :class:`Store`), import pytest, or put a
token, password or request body into a repr, a log line or an exception message.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from typing import Final

import anyio
import attrs
import httpx

from .._proto._status import OperationError
from .._types import JSONValue
from ._auth import (
    ADMIN_UUID,
    AUTH_SESSION_COOKIE,
    AUTH_SESSION_HEADER,
    AdminAccount,
    Authority,
    Identity,
)
from ._store import Rejection, Store, parse_sync_request
from ._tokens import b64url_encode
from ._values import ServerPanic

__all__ = ["FakeKanidm", "ProvisionedSyncAccount", "RecordedRequest"]

KANIDM_VERSION: Final = "1.12.0-dev"
DEFAULT_URL: Final = "https://kanidm.test"
SYNC_BODY_LIMIT: Final = 32 * 1024 * 1024  # DEFAULT_SCIM_SYNC_BYTES
BODY_LIMIT: Final = 2 * 1024 * 1024  # axum's default body limit


def _op(variant: str, detail: JSONValue = None) -> Rejection:
    return Rejection.operation(OperationError(variant, detail))


@attrs.frozen
class RecordedRequest:
    """One request the double saw, as kept in :attr:`FakeKanidm.history`.

    Attributes:
        method: the HTTP method.
        path: the URL path.
        status: the status answered (also when the reply was then dropped); 0 when the
            double closed the connection unanswered, as kanidmd does when it panics.
        operation_id: the ``X-KANIDM-OPID`` sent back (empty for 404 and injected faults).
        body: for ``POST /scim/v1/Sync`` only, the raw request body (the ChangeSet JSON);
            ``None`` otherwise. Hidden from the repr: it can hold password hashes.
        committed: whether the request changed state and committed (S2 and admin writes).
        injected: whether :meth:`FakeKanidm.fail_next` answered instead of the server.
        dropped: whether :meth:`FakeKanidm.drop_next_response` swallowed the reply.
    """

    method: str
    path: str
    status: int
    operation_id: str = ""
    body: bytes | None = attrs.field(default=None, repr=False)
    committed: bool = False
    injected: bool = False
    dropped: bool = False

    def json(self) -> JSONValue:
        """The recorded S2 body parsed as JSON.

        Returns:
            The ChangeSet as sent.

        Raises:
            ValueError: when there is no recorded body or it is not JSON.
        """
        if self.body is None:
            raise ValueError(f"no body was recorded for {self.method} {self.path}")
        value: JSONValue = json.loads(self.body)
        return value


@attrs.frozen
class ProvisionedSyncAccount:
    """A sync account created on a :class:`FakeKanidm`, with its token.

    Attributes:
        name: the sync account's name.
        uuid: its UUID.
        token: the sync token (masked in the repr).
        url: the base URL to send it to.
    """

    name: str
    uuid: uuid.UUID
    token: str = attrs.field(repr=lambda _: "'***'")
    url: str


@attrs.define
class _Fault:
    remaining: int
    path: str | None
    status: int = 0
    body: bytes = b""


@attrs.frozen
class _Reply:
    status: int
    body: bytes
    content_type: str | None
    headers: tuple[tuple[str, str], ...] = ()


def _json_reply(value: JSONValue, headers: tuple[tuple[str, str], ...] = ()) -> _Reply:
    body = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    return _Reply(200, body, "application/json", headers)


def _unprocessable(message: str) -> Rejection:
    return Rejection.text(
        422, f"Failed to deserialize the JSON body into the target type: {message}"
    )


def _is_json_content_type(value: str | None) -> bool:
    if value is None:
        return False
    mime = value.split(";", 1)[0].strip().lower()
    if mime == "application/json":
        return True
    # axum 0.8 also accepts application/*+json (spec §2.1).
    return mime.startswith("application/") and mime.endswith("+json")


@attrs.define(eq=False)
class _Ctx:
    request: httpx.Request
    method: str
    path: str
    bearer: str | None
    params: dict[str, str]
    committed: bool = False


def _bearer(request: httpx.Request) -> str | None:
    headers = request.headers.get_list("authorization")
    if headers:
        # kanidm: server/core/src/https/extractors/mod.rs takes the first Authorization
        # header (`headers.get`), needs it to be visible ASCII or tab (http's
        # `HeaderValue::to_str`), splits it at its first space (`split_once(' ')`), matches
        # the scheme word case-insensitively and parses the rest as a compact JWS
        # (compact_jwt `JwsCompact::from_str`); anything else is silently ignored (spec
        # §2.1). So `Bearer  <token>` (two spaces) leaves " <token>", not a JWS:
        # unauthenticated (checked against kanidmd 1.11.1), and so is `Bearer\t<token>`.
        # httparse trims spaces and tabs at the value's ends before any of this.
        header = headers[0].strip(" \t")
        if not all(" " <= char <= "~" or char == "\t" for char in header):
            return None
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.count(".") == 2 and not _has_space(value):
            return value
        # Spec §2.1: the `bearer` cookie is only looked at *without* an Authorization
        # header; an unusable header leaves the request unauthenticated.
        return None
    cookies = _cookies(request)
    return cookies.get("bearer")


def _has_space(value: str) -> bool:
    return any(char.isspace() for char in value)


def _cookies(request: httpx.Request) -> dict[str, str]:
    jar: dict[str, str] = {}
    for header in request.headers.get_list("cookie"):
        for part in header.split(";"):
            name, sep, value = part.strip().partition("=")
            if sep:
                jar[name] = value
    return jar


Handler = Callable[["FakeKanidm", _Ctx], "_Reply | JSONValue"]


class FakeKanidm:
    """An in-memory Kanidm that answers the sync-account HTTP API like kanidmd does.

    Call it with an ``httpx.Request`` to get an ``httpx.Response``, or plug
    :attr:`transport` into an ``httpx.Client`` or ``httpx.AsyncClient``; :func:`serve`
    exposes the same handler over real HTTP. State lives in :attr:`store`.

    Args:
        store: the state to serve; a fresh :class:`Store` when omitted.
        url: the base URL clients use with :attr:`transport`.
        clock: returns the current Unix time (for token and handshake expiry).

    Attributes:
        url: the base URL for the MockTransport (``https://kanidm.test``).
        store: the in-memory state (entries, sync accounts, cookies).
        latency: seconds added to every request (``time.sleep`` under a blocking client,
            an awaited sleep under an ``AsyncClient`` that uses :attr:`transport`).
        history: every request seen, in order (:class:`RecordedRequest`).
        admin_token: a read-write API token of the built-in ``admin`` account.
    """

    url: str
    store: Store
    latency: float
    history: list[RecordedRequest]
    admin_token: str

    def __init__(
        self,
        *,
        store: Store | None = None,
        url: str = DEFAULT_URL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url.rstrip("/")
        self.store = store if store is not None else Store()
        self.latency = 0.0
        self.history = []
        self._lock = threading.RLock()
        self._faults: list[_Fault] = []
        self._drops: list[_Fault] = []
        self._auth = Authority(
            domain=_domain_of(self.store, self.url), clock=clock, directory=self._classes_of
        )
        self.admin_token = self._auth.mint_api_token(
            self._admin("admin"), read_write=True, label="admin_token"
        )

    def __repr__(self) -> str:
        return f"<FakeKanidm url={self.url!r} requests={len(self.history)}>"

    # -- public set-up API ------------------------------------------------------------------

    @property
    def transport(self) -> httpx.MockTransport:
        """A transport for ``httpx.Client(transport=...)`` and ``httpx.AsyncClient``."""
        return _FakeTransport(self)

    @property
    def domain(self) -> str:
        """The Kanidm domain name used in SPNs (``name@domain``)."""
        return self._auth.domain

    def _admin(self, name: str) -> AdminAccount:
        account = self._auth.account(name)
        if account is None:
            raise ValueError(f"no admin account named {name!r}")
        return account

    def read_only_admin_token(self) -> str:
        """Mint a read-only API token of ``admin``: reads work, writes get 403 / 500."""
        with self._lock:
            return self._auth.mint_api_token(
                self._admin("admin"), read_write=False, label="read_only"
            )

    def api_token(self, account: str = "admin", *, read_write: bool = True) -> str:
        """Mint an API token for a built-in service account (``admin`` or ``idm_admin``).

        Args:
            account: the service account; ``idm_admin`` is not a member of
                ``domain_admins`` and sees no sync accounts.
            read_write: whether the token may write.

        Returns:
            The bearer token.
        """
        with self._lock:
            acct = self._admin(account)
            if acct.kind != "service_account":
                raise ValueError(f"{account!r} is not a service account")
            return self._auth.mint_api_token(acct, read_write=read_write, label="api")

    def recover_account(self, name: str = "admin") -> str:
        """Set a generated password on ``admin`` or ``idm_admin`` (``kanidmd recover-account``).

        Logins with a generated password are read-write for one hour and cannot
        re-authenticate (auth spec §2.2).

        Args:
            name: ``"admin"`` or ``"idm_admin"``.

        Returns:
            The new password.
        """
        with self._lock:
            return self._auth.recover(name)

    def add_admin(
        self,
        name: str,
        password: str,
        *,
        totp_secret: bytes | None = None,
        domain_admin: bool = True,
        displayname: str | None = None,
    ) -> uuid.UUID:
        """Add a human administrator (a person) who can log in through ``/v1/auth``.

        A person's login is privilege-capable but read-only unless ``"privileged": true`` is
        sent in ``init2`` or the session re-authenticates through ``/v1/reauth``.

        Args:
            name: the login name.
            password: the password.
            totp_secret: a TOTP key (RFC 6238, SHA-1, 30 s, 6 digits); when given the server
                offers only ``passwordmfa`` (TOTP first, then password). Compute codes with
                :func:`totp_code`.
            domain_admin: whether the person is a member of ``domain_admins``.
            displayname: the display name (defaults to the name).

        Returns:
            The person's UUID.
        """
        with self._lock:
            lowered = name.lower()
            display = displayname if displayname is not None else name
            if self._auth.account(lowered) is not None:
                raise ValueError(f"an admin account named {name!r} already exists")
            person = self.store.add_person(lowered, displayname=display)
            groups: tuple[str, ...] = ("idm_all_persons", "idm_all_accounts")
            if domain_admin:
                groups = ("domain_admins", *groups)
            self._auth.add(
                AdminAccount(
                    person, lowered, display, "person", groups, password, totp_secret, False
                )
            )
            return person

    def create_sync_account(self, name: str, description: str | None = None) -> uuid.UUID:
        """Create a sync account directly (what A3 does).

        Args:
            name: the account name.
            description: an optional description.

        Returns:
            The account's UUID.

        Raises:
            Rejection: for an invalid or duplicate name.
        """
        with self._lock:
            return self.store.create_sync_account(name, description)

    def generate_sync_token(self, account: str, label: str = "test") -> str:
        """Issue a sync token for an account directly (what A4 does).

        Args:
            account: the account's name, SPN or UUID.
            label: the token label.

        Returns:
            The sync token.

        Raises:
            Rejection: when the account already holds a token (destroy it first).
            KeyError: when there is no such sync account.
        """
        with self._lock:
            target = self._resolve_or_raise(account)
            token_id = uuid.uuid4()
            self.store.add_token_session(target, token_id, label, ADMIN_UUID)
            return self._auth.mint_sync_token(token_id)

    def provision_sync_account(
        self, name: str, *, description: str | None = None, label: str = "test"
    ) -> ProvisionedSyncAccount:
        """Create a sync account and issue its token in one call.

        Args:
            name: the account name.
            description: an optional description.
            label: the token label.

        Returns:
            The account's name, UUID, token and this server's URL.
        """
        with self._lock:
            account = self.create_sync_account(name, description)
            token = self.generate_sync_token(str(account), label)
            return ProvisionedSyncAccount(name=name, uuid=account, token=token, url=self.url)

    def revoke_signing_key(self) -> None:
        """Replace the domain's token signing key (kanidmd's ``key_action_revoke``).

        Every sync token and user session token issued before stops validating (401).
        """
        with self._lock:
            self._auth.keys.revoke_es256()

    def cookie(self, account: str) -> bytes | None:
        """The cookie stored for a sync account (``None`` = state Refresh).

        Args:
            account: the account's name, SPN or UUID.

        Returns:
            The cookie bytes or ``None``.

        Raises:
            KeyError: when there is no such live sync account.
        """
        with self._lock:
            return self.store.get_cookie(self._resolve_or_raise(account))

    def _classes_of(self, name: str) -> frozenset[str] | None:
        entry = self.store.entry(name)
        return entry.classes if entry is not None and entry.state == "live" else None

    def _resolve_or_raise(self, account: str) -> uuid.UUID:
        target = self.store.resolve_sync_account(account)
        if target is None:
            raise KeyError(f"no live sync account {account!r}")
        return target

    # -- fault injection --------------------------------------------------------------------

    def fail_next(
        self, count: int = 1, *, status: int = 503, body: bytes = b"", path: str | None = None
    ) -> None:
        """Answer the next ``count`` requests with an error instead of processing them.

        Args:
            count: how many requests to fail.
            status: the status to answer with.
            body: the body to answer with (sent as JSON when it parses as JSON).
            path: only fail requests to this exact URL path (any path when ``None``).

        Raises:
            ValueError: when ``count`` is below 1.
        """
        if count < 1:
            raise ValueError("count must be at least 1")
        with self._lock:
            self._faults.append(_Fault(count, path, status, body))

    def drop_next_response(self, count: int = 1, *, path: str | None = "/scim/v1/Sync") -> None:
        """Process the next ``count`` matching requests, then lose their replies.

        The request is handled and committed; the client then sees ``httpx.ReadError`` (over
        :attr:`transport`) or a closed connection (over :func:`serve`), as when a reply is
        lost on the network.

        Args:
            count: how many replies to drop.
            path: only requests to this exact URL path (any path when ``None``).

        Raises:
            ValueError: when ``count`` is below 1.
        """
        if count < 1:
            raise ValueError("count must be at least 1")
        with self._lock:
            self._drops.append(_Fault(count, path))

    # -- request handling -------------------------------------------------------------------

    def __call__(self, request: httpx.Request) -> httpx.Response:
        """Handle one request the way kanidmd would (sleeping :attr:`latency` first).

        Args:
            request: the request (its body is read if it was not yet).

        Returns:
            The response.

        Raises:
            httpx.ReadError: when :meth:`drop_next_response` asked to lose this reply.
        """
        if self.latency > 0:
            time.sleep(self.latency)
        return self.handle(request)

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Handle one request without the added latency (used by the transports).

        Args:
            request: the request.

        Returns:
            The response.

        Raises:
            httpx.ReadError: when :meth:`drop_next_response` asked to lose this reply.
            httpx.RemoteProtocolError: a value on which kanidmd panics (a zero-length RSA
                number in an SSH key, a datetime outside years 0000-9999 in UTC): like
                kanidmd, the double closes the connection without answering, and nothing
                is written.
        """
        request.read()
        with self._lock:
            try:
                response, record = self._process(request)
            except ServerPanic:
                path = request.url.path
                body = request.content if path == "/scim/v1/Sync" else None
                self.history.append(
                    RecordedRequest(request.method.upper(), path, 0, body=body, dropped=True)
                )
                raise httpx.RemoteProtocolError(
                    "Server disconnected without sending a response.", request=request
                ) from None
            drop = _take(self._drops, record.path)
            if drop is not None:
                record = attrs.evolve(record, dropped=True)
            self.history.append(record)
        if drop is not None:
            raise httpx.ReadError("the fake Kanidm dropped this reply", request=request)
        return response

    def _process(self, request: httpx.Request) -> tuple[httpx.Response, RecordedRequest]:
        method = request.method.upper()
        path = request.url.path
        fault = _take(self._faults, path)
        if fault is not None:
            headers = [("x-kanidm-version", KANIDM_VERSION)]
            if fault.body:
                try:
                    json.loads(fault.body)
                    headers.append(("content-type", "application/json"))
                except ValueError:
                    headers.append(("content-type", "text/plain; charset=utf-8"))
            response = httpx.Response(fault.status, headers=headers, content=fault.body)
            return response, RecordedRequest(method, path, fault.status, injected=True)
        match = _match_route(path)
        if match is None:
            # kanidm: server/core/src/https/mod.rs handler_404; no operation id.
            response = _render(
                _Reply(404, b"Route not found", "text/plain; charset=utf-8"), opid=None
            )
            return response, RecordedRequest(method, path, 404)
        methods, params = match
        opid = str(uuid.uuid4())
        lookup = "GET" if method == "HEAD" else method
        handler = methods.get(lookup)
        if handler is None:
            allow = ",".join(_allow(methods))
            reply = _Reply(405, b"", None, (("allow", allow),))
            return _render(reply, opid=opid), RecordedRequest(method, path, 405, opid)
        ctx = _Ctx(request, method, path, _bearer(request), params)
        try:
            result = handler(self, ctx)
            reply = result if isinstance(result, _Reply) else _json_reply(result)
        except Rejection as rejection:
            ctx.committed = False
            reply = _rejection_reply(rejection)
        if method == "HEAD":
            reply = attrs.evolve(reply, body=b"")
        body = request.content if (path == "/scim/v1/Sync" and method == "POST") else None
        record = RecordedRequest(method, path, reply.status, opid, body, ctx.committed)
        return _render(reply, opid=opid), record

    # -- helpers used by route handlers -----------------------------------------------------

    def _json_body(self, ctx: _Ctx, *, limit: int = BODY_LIMIT) -> object:
        """Extract a JSON body: 413, then 415, then 400 (axum's Json extractor order)."""
        content = ctx.request.content
        if len(content) > limit:
            raise Rejection.text(413, "Failed to buffer the request body: length limit exceeded")
        if not _is_json_content_type(ctx.request.headers.get("content-type")):
            raise Rejection.text(415, "Expected request with `Content-Type: application/json`")
        try:
            value: object = json.loads(content)
        except ValueError as exc:
            raise Rejection.text(400, f"Failed to parse the request body as JSON: {exc}") from None
        return value

    def _proto_entry(self, ctx: _Ctx) -> dict[str, list[str]]:
        value = self._json_body(ctx)
        if not isinstance(value, dict) or "attrs" not in value:
            raise _unprocessable("missing field `attrs`")
        raw = value["attrs"]
        if not isinstance(raw, dict):
            raise _unprocessable("attrs: invalid type, expected a map")
        result: dict[str, list[str]] = {}
        for key, values in raw.items():
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise _unprocessable(f"attrs.{key}: invalid type, expected a sequence of strings")
            result[str(key).lower()] = list(values)
        return result

    def _string_list(self, ctx: _Ctx) -> list[str]:
        value = self._json_body(ctx)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise _unprocessable("invalid type, expected a sequence of strings")
        return list(value)

    def _identify(self, ctx: _Ctx) -> Identity:
        return self._auth.identify(ctx.bearer)

    def _target_for_write(self, ctx: _Ctx, identity: Identity) -> uuid.UUID:
        """Resolve ``{id}`` as the caller would see it, then require write rights (§2.5)."""
        target = self.store.resolve_sync_account(ctx.params["id"])
        # Modifies search as the caller first: outside domain_admins nothing is visible (404);
        # a visible target with a read-only session fails the modify check (403).
        if target is None or not identity.account.domain_admin:
            raise _op("nomatchingentries")
        if not identity.read_write:
            raise _op("accessdenied")
        return target

    def _destructive(self, ctx: _Ctx, action: Callable[..., None]) -> JSONValue:
        identity = self._identify(ctx)
        target = self.store.resolve(ctx.params["id"])
        if target is None:
            raise _op("nomatchingentries")
        # The effective-permission check answers NotAuthorised (500), not 403 (§2.2, §5);
        # the store raises it after its 404 / missingclass checks, in kanidmd's order.
        action(target, caller_can_delete=identity.account.domain_admin and identity.read_write)
        ctx.committed = True
        return None

    # -- routes -----------------------------------------------------------------------------

    def _a1_list(self, ctx: _Ctx) -> JSONValue:
        identity = self._identify(ctx)
        if not identity.account.domain_admin:
            return []
        return [{"attrs": self._v1(u)} for u in self.store.sync_accounts()]

    def _v1(self, account: uuid.UUID) -> JSONValue:
        attrs_ = self.store.sync_account_v1(account)
        return {k: list(v) for k, v in attrs_.items()}

    def _a2_get(self, ctx: _Ctx) -> JSONValue:
        identity = self._identify(ctx)
        target = self.store.resolve_sync_account(ctx.params["id"])
        if target is None or not identity.account.domain_admin:
            return None
        return {"attrs": self._v1(target)}

    def _a3_create(self, ctx: _Ctx) -> JSONValue:
        entry = self._proto_entry(ctx)
        identity = self._identify(ctx)
        if not (identity.account.domain_admin and identity.read_write):
            raise _op("accessdenied")
        # The store overwrites class and applies the create ACP (403 for other attributes).
        self.store.create_sync_account_v1(entry)
        ctx.committed = True
        return None

    def _a4_generate(self, ctx: _Ctx) -> JSONValue:
        label = self._json_body(ctx)
        if not isinstance(label, str):
            raise _unprocessable("invalid type, expected a string")
        identity = self._identify(ctx)
        target = self._target_for_write(ctx, identity)
        token_id = uuid.uuid4()
        self.store.add_token_session(target, token_id, label, identity.account.uuid)
        ctx.committed = True
        return self._auth.mint_sync_token(token_id)

    def _a5_destroy(self, ctx: _Ctx) -> JSONValue:
        # kanidmd's handler takes no body: the Rust client's `[]` is ignored.
        identity = self._identify(ctx)
        target = self._target_for_write(ctx, identity)
        self.store.destroy_token_sessions(target)
        ctx.committed = True
        return None

    def _a6_patch(self, ctx: _Ctx) -> JSONValue:
        entry = self._proto_entry(ctx)
        identity = self._identify(ctx)
        target = self._target_for_write(ctx, identity)
        self.store.patch_sync_account(target, entry)
        ctx.committed = True
        return None

    def _a7_read_attr(self, ctx: _Ctx) -> JSONValue:
        identity = self._identify(ctx)
        target = self.store.resolve_sync_account(ctx.params["id"])
        if target is None or not identity.account.domain_admin:
            return None
        values = self.store.sync_account_v1(target).get(ctx.params["attr"].lower())
        return list(values) if values else None

    def _a8_put_attr(self, ctx: _Ctx) -> JSONValue:
        values = self._string_list(ctx)
        identity = self._identify(ctx)
        target = self._target_for_write(ctx, identity)
        attr = ctx.params["attr"].lower()
        self.store.set_sync_account_attr(target, attr, values)
        ctx.committed = True
        return None

    def _a10_finalise(self, ctx: _Ctx) -> JSONValue:
        return self._destructive(ctx, self.store.finalise)

    def _a11_terminate(self, ctx: _Ctx) -> JSONValue:
        return self._destructive(ctx, self.store.terminate)

    def _sync_account(self, ctx: _Ctx) -> uuid.UUID:
        token_id = self._auth.sync_token_id(ctx.bearer)
        account = self.store.account_for_token(token_id)
        if account is None:
            raise _op("notauthenticated")
        return account

    def _s1_state(self, ctx: _Ctx) -> JSONValue:
        account = self._sync_account(ctx)
        cookie = self.store.get_cookie(account)
        if cookie is None:
            return "Refresh"
        return {"Active": {"cookie": b64url_encode(cookie)}}

    def _s2_apply(self, ctx: _Ctx) -> JSONValue:
        content = ctx.request.content
        if len(content) > SYNC_BODY_LIMIT:
            raise Rejection.text(413, "Failed to buffer the request body: length limit exceeded")
        if not _is_json_content_type(ctx.request.headers.get("content-type")):
            raise Rejection.text(415, "Expected request with `Content-Type: application/json`")
        parsed = parse_sync_request(content)
        account = self._sync_account(ctx)
        self.store.apply(account, parsed)
        ctx.committed = True
        return None

    def _auth_reply(self, state: dict[str, JSONValue], session: str | None) -> _Reply:
        headers: tuple[tuple[str, str], ...] = ()
        if session is not None:
            headers = (
                (AUTH_SESSION_HEADER, session),
                (
                    "set-cookie",
                    f"{AUTH_SESSION_COOKIE}={session}; HttpOnly; SameSite=Strict; Secure",
                ),
            )
        return _json_reply(state, headers)

    def _v1_auth(self, ctx: _Ctx) -> _Reply:
        body = self._json_body(ctx)
        session = ctx.request.headers.get(AUTH_SESSION_HEADER)
        if session is None:
            session = _cookies(ctx.request).get(AUTH_SESSION_COOKIE)
        state, new_session = self._auth.auth_step(body, session)
        return self._auth_reply(state, new_session)

    def _reauth(self, ctx: _Ctx) -> _Reply:
        body = self._json_body(ctx)
        if body not in ("token", "cookie"):
            raise _unprocessable("unknown variant, expected `token` or `cookie`")
        identity = self._identify(ctx)
        state, session = self._auth.reauth(identity, body)
        return self._auth_reply(state, session)

    def _auth_valid(self, ctx: _Ctx) -> JSONValue:
        self._identify(ctx)
        return None

    def _self(self, ctx: _Ctx) -> JSONValue:
        identity = self._identify(ctx)
        account = identity.account
        classes = ["account", "memberof", "object", account.kind]
        attrs_: dict[str, JSONValue] = {
            "class": sorted(classes),
            "name": [account.name],
            "spn": [self._auth.spn(account)],
            "uuid": [str(account.uuid)],
            "displayname": [account.displayname],
            "memberof": [f"{g}@{self.domain}" for g in account.groups],
        }
        return {"youare": {"attrs": attrs_}}

    def _self_uat(self, ctx: _Ctx) -> JSONValue:
        identity = self._identify(ctx)
        assert ctx.bearer is not None
        payload = self._auth.uat(identity, ctx.bearer)
        return json.loads(json.dumps(payload))  # type: ignore[no-any-return]  # JSON round trip

    def _logout(self, ctx: _Ctx) -> JSONValue:
        self._auth.logout(ctx.bearer)
        return None


def _domain_of(store: Store, url: str) -> str:
    domain = getattr(store, "domain", None)
    if isinstance(domain, str) and domain:
        return domain
    return httpx.URL(url).host or "kanidm.test"


def _take(faults: list[_Fault], path: str) -> _Fault | None:
    for fault in faults:
        if fault.path is None or fault.path == path:
            fault.remaining -= 1
            if fault.remaining == 0:
                faults.remove(fault)
            return fault
    return None


def _allow(methods: dict[str, Handler]) -> list[str]:
    names = set(methods)
    if "GET" in names:
        names.add("HEAD")  # axum answers HEAD on every GET route
    order = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
    return [m for m in order if m in names]


def _rejection_reply(rejection: Rejection) -> _Reply:
    headers: tuple[tuple[str, str], ...] = ()
    if rejection.status == 401:
        headers = (("www-authenticate", "Bearer"),)
    return _Reply(rejection.status, rejection.body, rejection.content_type, headers)


def _render(reply: _Reply, *, opid: str | None) -> httpx.Response:
    headers: list[tuple[str, str]] = []
    if reply.content_type is not None:
        headers.append(("content-type", reply.content_type))
    headers.extend(reply.headers)
    headers.append(("x-kanidm-version", KANIDM_VERSION))
    if opid is not None:
        headers.append(("x-kanidm-opid", opid))
    return httpx.Response(reply.status, headers=headers, content=reply.body)


_ROUTES: Final[list[tuple[tuple[str, ...], dict[str, Handler]]]] = [
    (("v1", "sync_account"), {"GET": FakeKanidm._a1_list, "POST": FakeKanidm._a3_create}),
    (("v1", "sync_account", "{id}"), {"GET": FakeKanidm._a2_get, "PATCH": FakeKanidm._a6_patch}),
    (
        ("v1", "sync_account", "{id}", "_sync_token"),
        {"POST": FakeKanidm._a4_generate, "DELETE": FakeKanidm._a5_destroy},
    ),
    (
        ("v1", "sync_account", "{id}", "_attr", "{attr}"),
        {"GET": FakeKanidm._a7_read_attr, "PUT": FakeKanidm._a8_put_attr},
    ),
    (("v1", "sync_account", "{id}", "_finalise"), {"GET": FakeKanidm._a10_finalise}),
    (("v1", "sync_account", "{id}", "_terminate"), {"GET": FakeKanidm._a11_terminate}),
    (("scim", "v1", "Sync"), {"GET": FakeKanidm._s1_state, "POST": FakeKanidm._s2_apply}),
    (("v1", "auth"), {"POST": FakeKanidm._v1_auth}),
    (("v1", "auth", "valid"), {"GET": FakeKanidm._auth_valid}),
    (("v1", "reauth"), {"POST": FakeKanidm._reauth}),
    (("v1", "self"), {"GET": FakeKanidm._self}),
    (("v1", "self", "_uat"), {"GET": FakeKanidm._self_uat}),
    (("v1", "logout"), {"GET": FakeKanidm._logout}),
]


def _match_route(path: str) -> tuple[dict[str, Handler], dict[str, str]] | None:
    segments = path.strip("/").split("/") if path.strip("/") else []
    if path != "/" + "/".join(segments):
        return None  # trailing or doubled slashes: axum routes match exactly
    for pattern, methods in _ROUTES:
        if len(pattern) != len(segments):
            continue
        params: dict[str, str] = {}
        for want, got in zip(pattern, segments, strict=True):
            if want.startswith("{"):
                if not got:
                    break
                params[want[1:-1]] = got
            elif want != got:
                break
        else:
            return methods, params
    return None


class _FakeTransport(httpx.MockTransport):
    """MockTransport whose async path awaits the latency instead of blocking the loop."""

    def __init__(self, fake: FakeKanidm) -> None:
        super().__init__(fake)
        self._fake = fake

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Serve a request from a blocking ``httpx.Client``."""
        request.read()
        return self._fake(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Serve a request from an ``httpx.AsyncClient``."""
        await request.aread()
        if self._fake.latency > 0:
            await anyio.sleep(self._fake.latency)
        return self._fake.handle(request)
