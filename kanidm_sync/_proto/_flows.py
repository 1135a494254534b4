"""Multi-step operations written once, as generators that yield calls and receive replies.

Pure (the httpx ``_auth.py`` pattern): a flow yields a :class:`Call`, the driver performs it
and sends back a :class:`Reply` (or a :class:`Lost` when no reply came), and the flow decides
what to do next. The blocking and async clients each drive the same flow with a loop of a few
lines, so the logic exists once and is tested without any HTTP (tests/client/test_flows.py
drives the generators by hand). This module must not import httpx, touch a socket, read a
clock, draw randomness or log.

Flows:

* :func:`apply_flow`: ``POST /scim/v1/Sync`` with lost-reply recovery. An apply is
  conditional on ``from_state``, so a blind retry after a lost reply would fail with
  ``invalidsyncstate`` although the first attempt committed. Instead, when no usable answer
  came (a lost reply, a timeout, a 408, a redirect, a proxy's page or 502/504) the flow
  re-reads the state: Kanidm holding the ``to_state`` sent means the apply committed (spec
  §2.1, §4.7). Anything else proves "not applied" only after kanidmd's own 408 (kanidmd
  drops a request it times out before applying anything:
  :class:`~kanidm_sync.NotAppliedError`); after a lost reply Kanidm may still be applying
  the request, so the outcome is :class:`~kanidm_sync.ApplyOutcomeUnknownError`.
* :func:`login_flow`: the ``/v1/auth`` handshake (init2, begin, cred..., kanidm-auth.md §1),
  echoing the ``X-KANIDM-AUTH-SESSION-ID`` header on every step.
* :func:`reauth_flow`: ``POST /v1/reauth`` then the cred steps (kanidm-auth.md §2.3).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator, Mapping
from typing import Final, Literal, TypeAlias

import attrs

from .._exceptions import (
    APIConnectionError,
    APIStatusError,
    ApplyOutcomeUnknownError,
    DecodeError,
    LoginError,
    NotAppliedError,
    ProtocolError,
)
from ._codec import decode_sync_state
from ._encode_body import ChangeSetBody
from ._state import SyncState
from ._status import error_from_response, is_kanidm_error, success_problem

__all__ = [
    "AUTH_PATH",
    "AUTH_SESSION_HEADER",
    "OPID_HEADER",
    "REAUTH_PATH",
    "SYNC_PATH",
    "Call",
    "LoginCredentials",
    "Lost",
    "Outcome",
    "Reply",
    "SecondFactor",
    "apply_flow",
    "login_flow",
    "reauth_flow",
    "reply_error",
    "unexpected_reply",
]

SYNC_PATH: Final = "/scim/v1/Sync"
AUTH_PATH: Final = "/v1/auth"
REAUTH_PATH: Final = "/v1/reauth"
AUTH_SESSION_HEADER: Final = "X-KANIDM-AUTH-SESSION-ID"
"""kanidm: proto/src/constants.rs ``KSESSIONID``; echoed verbatim on begin and cred steps."""

OPID_HEADER: Final = "x-kanidm-opid"

# 500 bodies meaning "the handshake was lost; restart from init2" (kanidm-auth.md §1.6).
_HANDSHAKE_LOST: Final = frozenset({"invalidauthstate", "invalidsessionstate"})


@attrs.frozen
class Call:
    """One HTTP request a flow wants made.

    Attributes:
        method: ``"GET"``, ``"POST"``, ...
        path: the absolute path (``"/scim/v1/Sync"``).
        body: the JSON body: bytes, a :class:`~._encode_body.ChangeSetBody` (a large
            apply, streamed), or ``None``.
        headers: extra headers (never the Authorization header: the driver adds it).
        idempotent: the driver may retry it on connection errors and 408/429/5xx.
        authenticated: the driver attaches the bearer token.
    """

    method: str
    path: str
    body: bytes | ChangeSetBody | None = None
    headers: tuple[tuple[str, str], ...] = ()
    idempotent: bool = False
    authenticated: bool = True


@attrs.frozen
class Reply:
    """The response to a :class:`Call`.

    Attributes:
        status: the HTTP status.
        body: the body bytes.
        headers: response headers with lower-case names.
    """

    status: int
    body: bytes = b""
    headers: Mapping[str, str] = attrs.field(factory=dict)

    def header(self, name: str) -> str | None:
        """A response header by case-insensitive name, or ``None``."""
        return self.headers.get(name.lower())


@attrs.frozen
class Lost:
    """No usable reply came for a :class:`Call`.

    Attributes:
        error: the translated error: an :class:`~kanidm_sync.APIConnectionError` (its
            ``__cause__`` is the transport's exception), or a
            :class:`~kanidm_sync.ProtocolError` when the reply could not be read (larger
            than the client's size cap).
        sent: whether the request may have reached the server (``False`` for connect
            errors: the server cannot have acted on it).
    """

    error: APIConnectionError | ProtocolError
    sent: bool


Outcome: TypeAlias = Reply | Lost
"""What a driver sends back into a flow."""


def reply_error(reply: Reply, call: Call, base_url: str = "") -> APIStatusError:
    """The typed exception for an error reply, through the one table in ``_status``.

    Args:
        reply: the error reply (status >= 400).
        call: the call it answers (for the message).
        base_url: prefixed to the path in the exception's ``url``.

    Returns:
        The matching :class:`~kanidm_sync.APIStatusError` subclass instance.
    """
    return error_from_response(
        reply.status,
        reply.body.decode("utf-8", errors="replace"),
        operation_id=reply.header(OPID_HEADER),
        method=call.method,
        url=base_url + call.path,
    )


def unexpected_reply(reply: Reply, call: Call, base_url: str = "") -> ProtocolError | None:
    """The error for a reply below 400 that is not Kanidm's success answer, or ``None``.

    Args:
        reply: a reply with a status below 400.
        call: the call it answers (for the message).
        base_url: prefixed to the path in the message.

    Returns:
        A :class:`~kanidm_sync.ProtocolError` naming the request, the status and (for a
        redirect) where it pointed, without credentials or query; ``None`` for a 200 JSON
        reply.
    """
    problem = success_problem(reply.status, reply.header("content-type"), reply.header("location"))
    if problem is None:
        return None
    return ProtocolError(f"{call.method} {base_url}{call.path}: {problem}")


def _json(reply: Reply, what: str) -> object:
    try:
        return json.loads(reply.body)
    except ValueError:
        problem = "the reply is not JSON"
    except RecursionError:
        problem = "the reply is nested too deeply to be Kanidm's"
    raise DecodeError([("$", f"{what}: {problem}")])


def _decode_state(reply: Reply) -> SyncState:
    return decode_sync_state(_json(reply, "sync state"))


def _unknown(message: str, state: SyncState | None) -> ApplyOutcomeUnknownError:
    return ApplyOutcomeUnknownError(message, state=state, method="POST", url=SYNC_PATH)


_MAY_STILL_COMMIT: Final = (
    "Kanidm may still be applying the request and commit it later (a request can outlive "
    "the client's timeout or a proxy's), so this does not prove it was not applied. "
    "Sending the same ChangeSet again is safe (Kanidm applies it only while its state is "
    "the from_state); a runner's next run re-reads the state and converges"
)


def apply_flow(
    body: bytes | ChangeSetBody, to_state: SyncState, from_state: SyncState
) -> Generator[Call, Outcome, None]:
    """Apply a ChangeSet, settling an answer that did not come (or was not Kanidm's).

    Args:
        body: the ChangeSet JSON (bytes, or a body streamed as it is sent).
        to_state: the ChangeSet's ``to_state``.
        from_state: the ChangeSet's ``from_state``.

    Yields:
        The POST, then (only when no usable answer came) one state GET.

    Raises:
        APIStatusError: Kanidm refused the apply (the subclass says why).
        APIConnectionError: the request never reached Kanidm: nothing was applied.
        NotAppliedError: Kanidm answered 408 and the state shows the apply did not commit.
        ApplyOutcomeUnknownError: no usable answer came and the state cannot prove the
            outcome, or re-reading it failed too.
    """
    post = Call("POST", SYNC_PATH, body=body, headers=(("Content-Type", "application/json"),))
    outcome = yield post
    cause: Exception
    what: str
    provable = False  # whether a state other than to_state proves "not applied"
    if isinstance(outcome, Lost):
        if not outcome.sent and isinstance(outcome.error, APIConnectionError):
            # Refused, or no connection in time: no byte reached Kanidm. The only case
            # where "nothing was applied" is certain without reading the state.
            never = outcome.error
            raise type(never)(
                f"{never}; the apply never reached Kanidm: nothing was applied, safe to retry",
                method=never.method,
                url=never.url,
            ) from never.__cause__
        cause, what = outcome.error, "the reply was lost"
    elif outcome.status >= 400:
        error = reply_error(outcome, post)
        text = outcome.body.decode("utf-8", errors="replace")
        if outcome.status == 408:
            # kanidmd's own timeout (300 s) drops the request before it applies anything:
            # the apply runs without yielding once it has the write lock, and tower's
            # timeout polls the request first (kanidm: server/core/src/actors/v1_scim.rs).
            cause, what, provable = error, "Kanidm answered 408 (it gave up)", True
        elif not is_kanidm_error(outcome.status, text):
            cause, what = error, f"HTTP {outcome.status} came without a Kanidm error"
        else:
            raise error
    else:
        problem = unexpected_reply(outcome, post) or _null_problem(outcome, post)
        if problem is None:
            return
        cause, what = problem, "the answer was not Kanidm's"
    get = Call("GET", SYNC_PATH, idempotent=True)
    check = yield get
    if isinstance(check, Lost):
        raise _unknown(
            f"apply outcome unknown: {what} ({cause}) and re-reading the sync state failed "
            f"too ({check.error}); {_MAY_STILL_COMMIT}",
            None,
        ) from cause
    if check.status >= 400:
        raise reply_error(check, get) from cause
    try:
        unusable = unexpected_reply(check, get)
        if unusable is not None:
            raise unusable
        state = _decode_state(check)
    except ProtocolError as exc:
        raise _unknown(
            f"apply outcome unknown: {what} ({cause}) and re-reading the sync state gave "
            f"no state ({exc}); {_MAY_STILL_COMMIT}",
            None,
        ) from cause
    if state == to_state and to_state != from_state:
        return
    if state == to_state:
        raise _unknown(
            f"apply outcome unknown: {what} ({cause}) and the ChangeSet's to_state equals "
            f"its from_state ({state!r}), so the state cannot tell; Kanidm still accepts "
            "that from_state, so sending the ChangeSet again is safe",
            state,
        ) from cause
    if provable:
        raise NotAppliedError(
            f"not applied: {what} ({cause}) and Kanidm is in {state!r}, not the to_state "
            f"sent; kanidmd applies nothing of a request it times out: safe to retry from "
            f"{state!r}",
            state=state,
            method="POST",
            url=SYNC_PATH,
        ) from cause
    raise _unknown(
        f"apply outcome unknown: {what} ({cause}) and Kanidm is in {state!r}, not the "
        f"to_state sent; {_MAY_STILL_COMMIT}",
        state,
    ) from cause


def _null_problem(reply: Reply, call: Call) -> ProtocolError | None:
    # kanidmd answers a committed apply with the JSON body null (axum Json of ()).
    if reply.body.strip() == b"null":
        return None
    return ProtocolError(
        f"{call.method} {call.path}: HTTP 200 with a body that is not null "
        f"({len(reply.body)} bytes): not Kanidm's answer to an apply"
    )


# --- /v1/auth ---------------------------------------------------------------------------

SecondFactor: TypeAlias = Callable[[], "str | int"]
"""A callback returning the current TOTP code (``"012345"`` or ``12345``)."""


@attrs.frozen(kw_only=True)
class LoginCredentials:
    """What a login may use; secrets never appear in the repr.

    Attributes:
        username: name, SPN or UUID of the account.
        password: the account's password.
        totp: a callback giving the current TOTP code, for ``passwordmfa``.
        backup_code: a backup code, for ``passwordbackupcode`` (used once by Kanidm).
        privileged: ask for a read-write session at login (``init2`` ``privileged``).
    """

    username: str
    password: str = attrs.field(repr=False)
    totp: SecondFactor | None = attrs.field(default=None, repr=False)
    backup_code: str | None = attrs.field(default=None, repr=False)
    privileged: bool = True


_AuthState = tuple[Literal["choose", "continue", "denied", "success"], tuple[str, ...], str]


def _auth_state(reply: Reply) -> _AuthState:
    obj = _json(reply, "auth response")
    state = obj.get("state") if isinstance(obj, dict) else None
    if isinstance(state, dict) and len(state) == 1:
        ((key, value),) = state.items()
        if key in ("choose", "continue") and isinstance(value, list):
            # Items are strings ("password") or one-key objects ({"passkey": challenge}).
            names = tuple(
                v if isinstance(v, str) else next(iter(v)) if isinstance(v, dict) and v else "?"
                for v in value
            )
            return key, names, ""
        if key in ("denied", "success") and isinstance(value, str):
            return key, (), value
    raise DecodeError([("$.state", "expected choose, continue, denied or success")])


def _auth_call(step: object, session: str | None, *, path: str = AUTH_PATH) -> Call:
    headers = [("Content-Type", "application/json")]
    if session is not None:
        headers.append((AUTH_SESSION_HEADER, session))
    body = json.dumps(step, separators=(",", ":")).encode()
    return Call("POST", path, body=body, headers=tuple(headers), authenticated=False)


def _pick_mechanism(offered: tuple[str, ...], creds: LoginCredentials) -> str:
    # kanidm-auth.md §1.5: never begin a mechanism that was not offered.
    if "password" in offered:
        return "password"
    if "passwordmfa" in offered and creds.totp is not None:
        return "passwordmfa"
    if "passwordbackupcode" in offered and creds.backup_code is not None:
        return "passwordbackupcode"
    needs = ""
    if "passwordmfa" in offered:
        needs = " (a TOTP code is required: pass totp=<callback returning the code>)"
    raise LoginError(
        f"cannot log in as {creds.username!r}: the server requires one of {list(offered)}{needs}",
        reason="no usable mechanism",
        offered=offered,
        url=AUTH_PATH,
    )


def _credential(wanted: tuple[str, ...], creds: LoginCredentials) -> object:
    # The second factor always comes before the password (kanidm-auth.md §1.5).
    if "totp" in wanted:
        if creds.totp is None:
            raise LoginError(
                f"the server asks {creds.username!r} for a TOTP code and no totp callback "
                "was given",
                reason="second factor required",
                offered=wanted,
                url=AUTH_PATH,
            )
        code = str(creds.totp()).strip()
        if not code.isdigit():
            raise LoginError(
                "the totp callback returned something that is not digits",
                reason="bad totp code",
                url=AUTH_PATH,
            )
        # A JSON number: a code with leading zeros is sent as its numeric value.
        return {"totp": int(code)}
    if "backupcode" in wanted and creds.backup_code is not None:
        return {"backupcode": creds.backup_code}
    if "password" in wanted:
        return {"password": creds.password}
    raise LoginError(
        f"cannot continue the login of {creds.username!r}: the server asks for one of "
        f"{list(wanted)}",
        reason="unsupported credential",
        offered=wanted,
        url=AUTH_PATH,
    )


class _Restart(Exception):
    """The handshake was lost (500 invalidauthstate / invalidsessionstate)."""

    def __init__(self, error: APIStatusError) -> None:
        super().__init__(str(error))
        self.error = error


def _checked(reply: Reply, call: Call) -> _AuthState:
    if reply.status >= 400:
        error = reply_error(reply, call)
        if error.variant in _HANDSHAKE_LOST:
            raise _Restart(error)
        raise error
    unusable = unexpected_reply(reply, call)
    if unusable is not None:
        raise unusable
    return _auth_state(reply)


def _denied(creds: LoginCredentials, reason: str) -> LoginError:
    return LoginError(
        f"Kanidm denied the login of {creds.username!r}: {reason}", reason=reason, url=AUTH_PATH
    )


def _cred_steps(
    state: _AuthState, session: str | None, creds: LoginCredentials
) -> Generator[Call, Reply, str]:
    kind, items, text = state
    while kind == "continue":
        call = _auth_call({"step": {"cred": _credential(items, creds)}}, session)
        reply = yield call
        session = reply.header(AUTH_SESSION_HEADER) or session
        kind, items, text = _checked(reply, call)
    if kind == "success":
        return text
    if kind == "denied":
        raise _denied(creds, text)
    raise DecodeError([("$.state", f"unexpected {kind!r} after a credential")])


def login_flow(creds: LoginCredentials) -> Generator[Call, Reply, str]:
    """Log in through ``/v1/auth`` and return the session token.

    Restarts once from ``init2`` when the server lost the handshake
    (kanidm-auth.md §1.6); never retries a ``denied`` (that feeds the soft lock).

    Args:
        creds: who logs in, with what.

    Yields:
        The init2, begin and cred calls.

    Returns:
        The bearer token (``state.success``).

    Raises:
        LoginError: denied, or no mechanism the credentials can satisfy.
        APIStatusError: an HTTP error (404 ``nomatchingentries`` for an unknown user).
    """
    for attempt in range(2):
        try:
            return (yield from _login_once(creds))
        except _Restart as restart:
            if attempt == 1:
                raise restart.error from None
    raise AssertionError("unreachable")  # pragma: no cover


def _login_once(creds: LoginCredentials) -> Generator[Call, Reply, str]:
    init = {
        "step": {
            "init2": {"username": creds.username, "issue": "token", "privileged": creds.privileged}
        }
    }
    call = _auth_call(init, None)
    reply = yield call
    session = reply.header(AUTH_SESSION_HEADER)
    state = _checked(reply, call)
    if state[0] == "choose":
        mech = _pick_mechanism(state[1], creds)
        call = _auth_call({"step": {"begin": mech}}, session)
        reply = yield call
        session = reply.header(AUTH_SESSION_HEADER) or session
        state = _checked(reply, call)
    return (yield from _cred_steps(state, session, creds))


def reauth_flow(creds: LoginCredentials) -> Generator[Call, Reply, str]:
    """Elevate a privilege-capable session: ``/v1/reauth`` then cred steps on ``/v1/auth``.

    The driver sends the first call with the current bearer token.

    Args:
        creds: the credentials the session logged in with.

    Yields:
        The reauth call, then the cred calls.

    Returns:
        The re-issued token (same session, new read-write window).

    Raises:
        LoginError: denied.
        APIStatusError: 500 ``sessionmaynotreauth`` for a read-write login (log in again
            instead), 401 for an expired session.
    """
    call = attrs.evolve(_auth_call("token", None, path=REAUTH_PATH), authenticated=True)
    reply = yield call
    if reply.status >= 400:
        raise reply_error(reply, call)
    unusable = unexpected_reply(reply, call)
    if unusable is not None:
        raise unusable
    session = reply.header(AUTH_SESSION_HEADER)
    return (yield from _cred_steps(_auth_state(reply), session, creds))
