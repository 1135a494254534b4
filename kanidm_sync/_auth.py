"""Admin authentication: bearer tokens and logins (the CLI's files: ``_kanidm_files.py``).

Owns (kanidm-auth.md):

* :class:`KanidmAuth`, the ``httpx.Auth`` both clients use. It sends a bearer token as
  given (an API token, a session, a sync token) and, when it holds login credentials, logs in
  through ``/v1/auth`` (§1), re-authenticates through ``/v1/reauth`` (§2.3) or logs in again
  when a write needs a read-write window that has ended (§2.6), and logs in again once after
  a 401. The multi-step exchanges are the pure generator flows of ``_proto/_flows.py``;
  httpx drives them for the blocking and the async client alike.
* re-exported from ``_kanidm_files.py``: :func:`load_cached_token` (the CLI's token cache,
  read-only, §3.1) and :class:`ClientConfig` / :func:`load_client_config` (its TOML config
  files, §3.2);
* :func:`clean_token`: the one check of a bearer token given to the SDK (surrounding
  whitespace dropped; anything RFC 6750 does not allow refused, without showing it).

It must never log, repr or put in an exception text a token or a password.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Final, Self

import httpx
from typing_extensions import override

from ._exceptions import APIStatusError, ConfigError, DecodeError, LoginError
from ._kanidm_files import (
    DEFAULT_CONFIG_PATHS,
    DEFAULT_TOKEN_CACHE,
    ClientConfig,
    load_cached_token,
    load_client_config,
)
from ._proto._admin import TokenInfo, inspect_token
from ._proto._flows import (
    Call,
    LoginCredentials,
    Reply,
    SecondFactor,
    login_flow,
    reauth_flow,
)
from ._transport import (
    DEFAULT_MAX_RESPONSE_BYTES,
    MAX_RESPONSE_EXTENSION,
    PREFIX_EXTENSION,
    aread_limited,
    call_to_request,
    log_response,
    read_limited,
    reply_from_response,
)

__all__ = [
    "DEFAULT_CONFIG_PATHS",
    "DEFAULT_TOKEN_CACHE",
    "WRITE_EXTENSION",
    "ClientConfig",
    "KanidmAuth",
    "clean_token",
    "is_bearer_token",
    "load_cached_token",
    "load_client_config",
]

WRITE_EXTENSION: Final = "kanidm_sync.write"
"""Request extension marking an admin call that needs a read-write session."""

_CARRIED_HEADERS: Final = frozenset({"user-agent", "accept"})


# RFC 6750 §2.1 b64token: what may follow "Bearer " (Kanidm's tokens are compact JWS).
_B64TOKEN: Final = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_B64TOKEN_CHARS: Final = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/"
)


def is_bearer_token(value: str) -> bool:
    """Whether ``value`` can go after ``Bearer`` in an Authorization header (RFC 6750)."""
    return _B64TOKEN.fullmatch(value) is not None


def _first_bad(token: str) -> tuple[int, str]:
    tail = len(token.rstrip("="))
    for index, char in enumerate(token):
        if char in _B64TOKEN_CHARS or (char == "=" and index >= tail):
            continue
        if char.isspace():
            kind = "whitespace"
        elif ord(char) < 32 or ord(char) == 127:
            kind = "a control character"
        elif ord(char) > 127:
            kind = "a non-ASCII character"
        elif char == "=":
            kind = "an '=' before the end"
        else:
            kind = "a character bearer tokens do not use"
        return index, kind
    raise AssertionError("unreachable: called on a valid token")  # pragma: no cover


def clean_token(token: str, *, what: str = "the token") -> str:
    """Drop surrounding whitespace from a bearer token and check what is left.

    A token read from a file ends with a newline; that newline in an Authorization header
    made httpx refuse the request with the whole header, token included, in its message.

    Args:
        token: the token as given.
        what: how the message names it (``"KANIDM_SYNC_TOKEN"``).

    Returns:
        The token without surrounding whitespace.

    Raises:
        ConfigError: the token is empty, or holds whitespace, a control character, a
            non-ASCII character or anything else RFC 6750 does not allow; the message
            names the kind of character and its position, never the token.
        TypeError: ``token`` is not a str.
    """
    if not isinstance(token, str):
        raise TypeError(f"a token must be a str, not {type(token).__name__}")
    stripped = token.strip()
    if not stripped:
        raise ConfigError(f"{what} is empty")
    if not is_bearer_token(stripped):
        index, kind = _first_bad(stripped)
        raise ConfigError(
            f"{what} is not a bearer token: it holds {kind} at character {index + 1} of "
            f"{len(stripped)} (a bearer token is letters, digits and -._~+/, with = only at "
            "the end; the token is not shown)"
        )
    return stripped


class KanidmAuth(httpx.Auth):
    """How the clients authenticate: a bearer token, login credentials, or both.

    Build one with :meth:`from_token`, :meth:`password` or :meth:`from_token_cache` and pass
    it as ``auth=`` to :class:`~kanidm_sync.Client` / :class:`~kanidm_sync.AsyncClient`
    (a plain ``token=`` string is wrapped in one for you).

    With credentials, before a call that changes a sync account it makes sure the session
    can write: a privilege-capable session is re-authenticated, an ended read-write login is
    replaced by a new login; and a 401 leads to one new login and one resend. Without
    credentials, a user session known to be read-only fails fast with
    :class:`~kanidm_sync.LoginError` instead of reaching the server.

    The token and the password never appear in the repr. One instance may serve one client
    at a time (it keeps the current session).

    Raises:
        ConfigError: the token is empty or not a bearer token (see :func:`clean_token`;
            surrounding whitespace is dropped first).
    """

    # Bodies are read by sync_auth_flow / async_auth_flow below, under the size cap.
    requires_response_body = False

    def __init__(
        self,
        *,
        token: str | None = None,
        credentials: LoginCredentials | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if token is None and credentials is None:
            raise ValueError("KanidmAuth needs a token, credentials, or both")
        self._token = clean_token(token) if token is not None else None
        self._credentials = credentials
        self._clock = clock

    @classmethod
    def from_token(
        cls,
        token: str,
        *,
        username: str | None = None,
        password: str | None = None,
        totp: SecondFactor | None = None,
    ) -> Self:
        """Send ``token`` as given; with a username and password, re-authenticate as needed.

        Args:
            token: an API token, a session token, or a sync token.
            username: the session's account, to re-authenticate or log in again.
            password: that account's password.
            totp: a callback returning the current TOTP code, when the account has one.

        Returns:
            The auth object.
        """
        creds = None
        if username is not None and password is not None:
            creds = LoginCredentials(username=username, password=password, totp=totp)
        return cls(token=token, credentials=creds)

    @classmethod
    def password(
        cls,
        username: str,
        password: str,
        *,
        totp: SecondFactor | None = None,
        backup_code: str | None = None,
        privileged: bool = True,
    ) -> Self:
        """Log in through ``/v1/auth`` on first use, asking for a read-write session.

        Args:
            username: name, SPN or UUID (``"admin"``).
            password: the password (for ``admin``, the one ``kanidmd recover-account`` set).
            totp: a callback returning the current TOTP code; needed when the account has
                TOTP (without it, a login that needs one raises LoginError saying so).
            backup_code: a backup code, used when TOTP is not available.
            privileged: send ``privileged: true`` in ``init2`` (a read-write session of up
                to one hour). With ``False`` a person gets a read-only session and is
                re-authenticated before each write window.

        Returns:
            The auth object.
        """
        creds = LoginCredentials(
            username=username,
            password=password,
            totp=totp,
            backup_code=backup_code,
            privileged=privileged,
        )
        return cls(credentials=creds)

    @classmethod
    def from_token_cache(
        cls,
        name: str | None = None,
        *,
        url: str | None = None,
        instance: str | None = None,
        path: str | os.PathLike[str] | None = None,
        password: str | None = None,
        totp: SecondFactor | None = None,
    ) -> Self:
        """Reuse the session of ``kanidm login`` (see :func:`load_cached_token`).

        Args:
            name: the account name or SPN (default ``KANIDM_NAME``).
            url: the server URL, to match ``name@host``.
            instance: the CLI instance (default ``KANIDM_INSTANCE`` or the default one).
            path: the cache file (default ``KANIDM_TOKEN_CACHE_PATH`` or
                ``~/.cache/kanidm_tokens``).
            password: the account's password, to re-authenticate when the session must
                write and is not elevated (otherwise run ``kanidm reauth`` first).
            totp: a TOTP callback for that re-authentication.

        Returns:
            The auth object.

        Raises:
            ConfigError: no usable token in the cache.
        """
        token = load_cached_token(name, url=url, instance=instance, path=path)
        info = inspect_token(token)
        username = info.spn or name
        return cls.from_token(token, username=username, password=password, totp=totp)

    def __repr__(self) -> str:
        who = self._credentials.username if self._credentials else None
        token = "<none>" if self._token is None else "***"
        return f"KanidmAuth(token={token}, username={who!r})"

    @property
    def token_info(self) -> TokenInfo | None:
        """What the current token's payload says (kind, scope, expiry), or ``None``."""
        return inspect_token(self._token) if self._token is not None else None

    # --- the flow ---------------------------------------------------------------------

    def _run(
        self, flow: Generator[Call, Reply, str], request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, str]:
        """Drive a pure flow inside httpx's auth machinery.

        The steps go through the same httpx client, so its cookie jar keeps a load
        balancer's stickiness cookie for the whole handshake (kanidm-auth.md §1.1).
        """
        # Only the client-wide headers carry over; Content-Length and friends describe the
        # original request's body, not the login step's.
        common = httpx.Headers(
            {k: v for k, v in request.headers.items() if k.lower() in _CARRIED_HEADERS}
        )
        prefix = request.extensions.get(PREFIX_EXTENSION, "")
        # The steps share the request's timeout, size cap and path prefix.
        carried = {
            k: v
            for k, v in request.extensions.items()
            if k in ("timeout", MAX_RESPONSE_EXTENSION, PREFIX_EXTENSION)
        }
        try:
            call = next(flow)
            while True:
                outgoing = call_to_request(call, request.url, common, prefix=prefix)
                outgoing.extensions = dict(carried)
                if call.authenticated and self._token is not None:
                    outgoing.headers["Authorization"] = f"Bearer {self._token}"
                response = yield outgoing
                log_response(response)
                call = flow.send(reply_from_response(response))
        except StopIteration as stop:
            token: str = stop.value
        if not is_bearer_token(token):
            raise DecodeError(
                [("$.state.success", "the token Kanidm issued is not a bearer token")]
            )
        return token

    def _login(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        assert self._credentials is not None
        self._token = None
        self._token = yield from self._run(login_flow(self._credentials), request)

    def _elevate(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        assert self._credentials is not None
        info = self.token_info
        if info is not None and info.purpose == "privilege_capable":
            try:
                self._token = yield from self._run(reauth_flow(self._credentials), request)
                return
            except APIStatusError as exc:
                # 500 sessionmaynotreauth: a read-write login; log in again instead.
                # 500 invalidstate: the session record is not written yet right after a
                # login [inferred, kanidm-auth.md §2.3]; a fresh login is the safe answer.
                if exc.variant not in ("sessionmaynotreauth", "invalidstate"):
                    raise
        yield from self._login(request)

    @override
    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        """Drive :meth:`auth_flow`, reading each response under the client's size cap."""
        flow = self.auth_flow(request)
        outgoing = next(flow)
        while True:
            response = yield outgoing
            read_limited(response, _cap(outgoing))
            try:
                outgoing = flow.send(response)
            except StopIteration:
                return

    @override
    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """The async :meth:`sync_auth_flow`."""
        flow = self.auth_flow(request)
        outgoing = next(flow)
        while True:
            response = yield outgoing
            await aread_limited(response, _cap(outgoing))
            try:
                outgoing = flow.send(response)
            except StopIteration:
                return

    @override
    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Attach the bearer token, logging in or elevating first when needed."""
        now = self._clock()
        fresh = False
        if self._credentials is not None:
            info = self.token_info
            if info is None or info.expired(now):
                yield from self._login(request)
                fresh = True
            elif request.extensions.get(WRITE_EXTENSION) and info.can_write(now) is False:
                yield from self._elevate(request)
                fresh = True
        elif request.extensions.get(WRITE_EXTENSION):
            info = self.token_info
            if info is not None and info.kind == "user" and info.can_write(now) is False:
                raise LoginError(
                    f"{request.method} {request.url.path} needs a read-write session and the "
                    f"token of {info.spn or 'this session'} is {info.purpose.replace('_', '-')}"
                    " now: run `kanidm reauth`, or give KanidmAuth a username and password",
                    reason="read-write session required",
                    method=request.method,
                    url=str(request.url),
                )
        request.headers["Authorization"] = f"Bearer {self._token}"
        response = yield request
        if response.status_code == 401 and self._credentials is not None and not fresh:
            # kanidm-auth.md §2.6: on 401 drop the token, log in again, resend once.
            log_response(response)
            yield from self._login(request)
            request.headers["Authorization"] = f"Bearer {self._token}"
            yield request


def _cap(request: httpx.Request) -> int:
    cap = request.extensions.get(MAX_RESPONSE_EXTENSION)
    return cap if isinstance(cap, int) else DEFAULT_MAX_RESPONSE_BYTES
