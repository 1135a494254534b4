"""The pure generator flows, driven by hand (no HTTP at all)."""

from __future__ import annotations

import json

import pytest

from kanidm_sync import (
    REFRESH,
    ActiveState,
    APIConnectionError,
    AuthenticationError,
    DecodeError,
    LoginError,
    NotAppliedError,
    NotFoundError,
    ProtocolError,
    ServerError,
    StateConflictError,
)
from kanidm_sync._exceptions import ApplyOutcomeUnknownError
from kanidm_sync._proto._flows import (
    AUTH_SESSION_HEADER,
    LoginCredentials,
    Lost,
    Reply,
    apply_flow,
    login_flow,
    reauth_flow,
)

HDR = AUTH_SESSION_HEADER.lower()
JSON = {"content-type": "application/json"}
NULL = Reply(200, b"null", JSON)


def _state(value: object) -> Reply:
    return Reply(200, json.dumps(value).encode(), JSON)


def _lost(sent: bool) -> Lost:
    return Lost(error=APIConnectionError("lost"), sent=sent)


def test_apply_success_needs_one_call() -> None:
    """A 200 ends the flow after the POST."""
    flow = apply_flow(b"{}", ActiveState(b"1"), REFRESH)
    call = next(flow)
    assert ("POST", "/scim/v1/Sync", b"{}") == (call.method, call.path, call.body)
    with pytest.raises(StopIteration):
        flow.send(NULL)


def test_apply_lost_then_state_matches_is_success() -> None:
    """Lost reply, re-read shows to_state: the flow ends quietly."""
    flow = apply_flow(b"{}", ActiveState(b"1"), REFRESH)
    next(flow)
    get = flow.send(_lost(sent=True))
    assert ("GET", True) == (get.method, get.idempotent)
    with pytest.raises(StopIteration):
        flow.send(_state({"Active": {"cookie": "MQ"}}))


def test_apply_lost_then_other_state_is_unknown() -> None:
    """Lost reply, re-read shows the old state: Kanidm may still commit, so "unknown"."""
    flow = apply_flow(b"{}", ActiveState(b"1"), REFRESH)
    next(flow)
    flow.send(_lost(sent=True))
    with pytest.raises(ApplyOutcomeUnknownError, match="may still be applying") as info:
        flow.send(_state("Refresh"))
    assert REFRESH == info.value.state
    assert not isinstance(info.value, NotAppliedError)
    assert "safe to retry" not in str(info.value)


def test_apply_408_then_other_state_is_not_applied() -> None:
    """A 408 from kanidmd means unapplied: NotAppliedError with the state re-read."""
    flow = apply_flow(b"{}", ActiveState(b"1"), REFRESH)
    next(flow)
    get = flow.send(Reply(408, b""))
    assert ("GET", "/scim/v1/Sync") == (get.method, get.path)
    with pytest.raises(NotAppliedError, match="safe to retry") as info:
        flow.send(_state("Refresh"))
    assert REFRESH == info.value.state
    assert 408 == getattr(info.value.__cause__, "status_code", None)


def test_apply_same_from_and_to_state_is_reported_as_unknown() -> None:
    """When to_state equals from_state the re-read cannot decide: say so, safely."""
    flow = apply_flow(b"{}", REFRESH, REFRESH)
    next(flow)
    flow.send(_lost(sent=True))
    with pytest.raises(ApplyOutcomeUnknownError, match="outcome unknown") as info:
        flow.send(_state("Refresh"))
    assert REFRESH == info.value.state


@pytest.mark.parametrize(
    ("reply", "what"),
    [
        (Reply(307, b"", {"location": "https://u:pw@sso.example.com/login?next=x"}), "307"),
        (Reply(301, b"null", {**JSON, "location": "/elsewhere"}), "301"),
        (Reply(204, b""), "204"),
        (Reply(200, b"<html>portal</html>", {"content-type": "text/html"}), "text/html"),
        (Reply(200, b"null"), "Content-Type none"),
        (Reply(200, b'{"ok":true}', JSON), "not null"),
        (Reply(502, b"<html>bad gateway</html>"), "502"),
        (Reply(504, b""), "504"),
        (Reply(500, b""), "500"),
    ],
)
def test_apply_answer_not_kanidms_is_settled_by_the_state(reply: Reply, what: str) -> None:
    """A redirect, a 2xx/200 that is not Kanidm's, a proxy's 5xx: the state decides."""
    committed = apply_flow(b"{}", ActiveState(b"1"), REFRESH)
    next(committed)
    assert "GET" == committed.send(reply).method
    with pytest.raises(StopIteration):
        committed.send(_state({"Active": {"cookie": "MQ"}}))
    pending = apply_flow(b"{}", ActiveState(b"1"), REFRESH)
    next(pending)
    pending.send(reply)
    with pytest.raises(ApplyOutcomeUnknownError) as info:
        pending.send(_state("Refresh"))
    assert what in str(info.value)
    assert "u:pw" not in str(info.value)
    assert "next=" not in str(info.value)
    assert isinstance(info.value.__cause__, ProtocolError | ServerError)


def test_apply_reread_that_is_not_kanidms_is_unknown() -> None:
    """A re-read answered by something else gives no state: the outcome stays unknown."""
    flow = apply_flow(b"{}", ActiveState(b"1"), REFRESH)
    next(flow)
    flow.send(_lost(sent=True))
    with pytest.raises(ApplyOutcomeUnknownError, match="gave no state") as info:
        flow.send(Reply(302, b"", {"location": "https://portal.example/"}))
    assert None is info.value.state


def test_apply_never_sent_raises_the_connection_error() -> None:
    """A request that never left is not re-read: its error is raised."""
    flow = apply_flow(b"{}", ActiveState(b"1"), REFRESH)
    next(flow)
    with pytest.raises(APIConnectionError, match="lost"):
        flow.send(_lost(sent=False))


def test_apply_reread_lost_too_is_unknown() -> None:
    """When the re-read also fails the outcome is unknown (a connection error)."""
    flow = apply_flow(b"{}", ActiveState(b"1"), REFRESH)
    next(flow)
    flow.send(_lost(sent=True))
    with pytest.raises(ApplyOutcomeUnknownError, match="outcome unknown") as info:
        flow.send(_lost(sent=True))
    assert None is info.value.state


def test_apply_error_status_raises_without_reread() -> None:
    """An error reply other than 408 is final."""
    flow = apply_flow(b"{}", ActiveState(b"1"), REFRESH)
    next(flow)
    with pytest.raises(StateConflictError):
        flow.send(Reply(500, b'"invalidsyncstate"'))


def _auth(state: dict[str, object], session: str | None = "S1") -> Reply:
    headers = {HDR: session, **JSON} if session else JSON
    return Reply(200, json.dumps({"sessionid": "x", "state": state}).encode(), headers)


def _body(call: object) -> object:
    return json.loads(call.body)  # type: ignore[attr-defined]


def test_login_password_three_steps_echo_session_header() -> None:
    """init2 (privileged), begin password, cred password; the header is echoed."""
    flow = login_flow(LoginCredentials(username="admin", password="pw"))
    init = next(flow)
    assert {
        "step": {"init2": {"username": "admin", "issue": "token", "privileged": True}}
    } == _body(init)
    assert HDR not in {k.lower() for k, _ in init.headers}
    begin = flow.send(_auth({"choose": ["password"]}, "S1"))
    assert {"step": {"begin": "password"}} == _body(begin)
    assert ("X-KANIDM-AUTH-SESSION-ID", "S1") in begin.headers
    cred = flow.send(_auth({"continue": ["password"]}, "S2"))
    assert {"step": {"cred": {"password": "pw"}}} == _body(cred)
    assert ("X-KANIDM-AUTH-SESSION-ID", "S2") in cred.headers
    with pytest.raises(StopIteration) as done:
        flow.send(_auth({"success": "TOKEN"}, None))
    assert "TOKEN" == done.value.value


def test_login_totp_comes_first_and_is_a_number() -> None:
    """passwordmfa: the TOTP code goes first, as a JSON number (leading zeros dropped)."""
    flow = login_flow(LoginCredentials(username="alice", password="pw", totp=lambda: "012345"))
    next(flow)
    begin = flow.send(_auth({"choose": ["passwordmfa"]}))
    assert {"step": {"begin": "passwordmfa"}} == _body(begin)
    totp = flow.send(_auth({"continue": ["totp"]}))
    assert {"step": {"cred": {"totp": 12345}}} == _body(totp)
    pw = flow.send(_auth({"continue": ["password"]}))
    assert {"step": {"cred": {"password": "pw"}}} == _body(pw)


def test_login_mfa_without_callback_is_a_clear_error() -> None:
    """The server offers only passwordmfa and no totp callback was given."""
    flow = login_flow(LoginCredentials(username="alice", password="pw"))
    next(flow)
    with pytest.raises(LoginError, match="TOTP") as info:
        flow.send(_auth({"choose": ["passwordmfa", "passkey"]}))
    assert ("passwordmfa", "passkey") == info.value.offered


def test_login_denied_is_not_retried() -> None:
    """Denied raises LoginError with Kanidm's reason, no further call."""
    flow = login_flow(LoginCredentials(username="admin", password="bad"))
    next(flow)
    flow.send(_auth({"choose": ["password"]}))
    flow.send(_auth({"continue": ["password"]}))
    with pytest.raises(LoginError) as info:
        flow.send(_auth({"denied": "incorrect password"}))
    assert "incorrect password" == info.value.reason
    assert "bad" not in str(info.value)


def test_login_restarts_once_when_handshake_lost() -> None:
    """500 invalidsessionstate restarts from init2 once, then gives up."""
    flow = login_flow(LoginCredentials(username="admin", password="pw"))
    next(flow)
    flow.send(_auth({"choose": ["password"]}))
    again = flow.send(Reply(500, b'"invalidsessionstate"'))
    assert "init2" in _body(again)["step"]  # type: ignore[index]
    flow.send(_auth({"choose": ["password"]}))
    with pytest.raises(AuthenticationError) as info:
        flow.send(Reply(500, b'{"invalidauthstate":"session id not present"}'))
    assert "invalidauthstate" == info.value.variant


def test_login_unknown_user_is_not_found() -> None:
    """404 nomatchingentries at init2."""
    flow = login_flow(LoginCredentials(username="ghost", password="pw"))
    next(flow)
    with pytest.raises(NotFoundError):
        flow.send(Reply(404, b'"nomatchingentries"'))


def test_reauth_flow_posts_token_then_creds() -> None:
    """/v1/reauth with body "token" (authenticated), then cred steps on /v1/auth."""
    flow = reauth_flow(LoginCredentials(username="alice", password="pw", privileged=False))
    first = next(flow)
    assert ("/v1/reauth", True, "token") == (first.path, first.authenticated, _body(first))
    cred = flow.send(_auth({"continue": ["password"]}, "R1"))
    assert ("/v1/auth", ("X-KANIDM-AUTH-SESSION-ID", "R1")) == (cred.path, cred.headers[1])
    with pytest.raises(StopIteration) as done:
        flow.send(_auth({"success": "NEW"}, None))
    assert "NEW" == done.value.value


def test_reauth_refused_raises_status_error() -> None:
    """500 sessionmaynotreauth surfaces as a status error the caller can act on."""
    flow = reauth_flow(LoginCredentials(username="admin", password="pw"))
    next(flow)
    with pytest.raises(AuthenticationError) as info:
        flow.send(Reply(500, b'"sessionmaynotreauth"'))
    assert "sessionmaynotreauth" == info.value.variant
    flow2 = reauth_flow(LoginCredentials(username="admin", password="pw"))
    next(flow2)
    with pytest.raises(AuthenticationError):
        flow2.send(Reply(401, b'"sessionexpired"'))


def test_login_redirect_is_a_protocol_error() -> None:
    """A login step redirected (a proxy's SSO page) is refused, the password not resent."""
    flow = login_flow(LoginCredentials(username="admin", password="pw"))
    next(flow)
    with pytest.raises(ProtocolError, match="302"):
        flow.send(Reply(302, b"", {"location": "https://sso.example/"}))
    reauth = reauth_flow(LoginCredentials(username="admin", password="pw"))
    next(reauth)
    with pytest.raises(ProtocolError, match="text/html"):
        reauth.send(Reply(200, b"<html/>", {"content-type": "text/html"}))


def test_deep_json_reply_is_a_decode_error() -> None:
    """A state or auth body nested 100 000 deep is a DecodeError, never a RecursionError."""
    deep = b"[" * 100_000 + b"]" * 100_000
    flow = apply_flow(b"{}", ActiveState(b"1"), REFRESH)
    next(flow)
    flow.send(_lost(sent=True))
    with pytest.raises(ApplyOutcomeUnknownError, match="nested too deeply"):
        flow.send(Reply(200, deep, JSON))
    login = login_flow(LoginCredentials(username="admin", password="pw"))
    next(login)
    with pytest.raises(DecodeError, match="nested too deeply"):
        login.send(Reply(200, deep, JSON))
