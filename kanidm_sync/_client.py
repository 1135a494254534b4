"""The HTTP clients: a pure core (:class:`BaseClient`) and two thin I/O shells.

:class:`BaseClient` builds every ``httpx.Request`` (``_build_*``), interprets every
``httpx.Response`` (``_handle_*``, errors through the one table in ``_proto/_status.py``) and
decides retries; it performs no I/O. :class:`Client` (blocking) and :class:`AsyncClient`
(async) only send: each public method is build, send, handle. Multi-step operations (the
apply with lost-reply recovery) are generator flows from ``_proto/_flows.py`` driven by a
ten-line loop in each shell. tests/client/test_parity.py proves the two shells expose the
same methods with the same parameters.

Retries: an idempotent read (a GET that changes nothing) is retried on connection errors
and on 408/429/transient 5xx with exponential backoff and jitter, honouring
``Retry-After``. Nothing else is retried blindly; a request that certainly never left
(connection refused) may be resent whatever its method.
"""

from __future__ import annotations

import json
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Generator, Iterable
from types import TracebackType
from typing import Final, Self
from urllib.parse import quote

import anyio
import httpx

from ._auth import WRITE_EXTENSION, ClientConfig, KanidmAuth
from ._exceptions import APIConnectionError, ConfigError, DecodeError
from ._proto._admin import (
    SyncAccountInfo,
    decode_string_list,
    decode_sync_account,
    decode_sync_account_list,
)
from ._proto._changeset import ChangeSet
from ._proto._codec import decode_sync_state
from ._proto._flows import SYNC_PATH, Call, Lost, Outcome, apply_flow, reply_error
from ._proto._state import SyncState
from ._transport import (
    APPLY_TIMEOUT,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    USER_AGENT,
    call_to_request,
    log_response,
    parse_retry_after,
    reply_from_response,
    retry_delay,
    should_retry_status,
    ssl_verify,
    translate_errors,
    was_sent,
)

__all__ = ["AsyncClient", "BaseClient", "Client"]

_ACCOUNTS: Final = "/v1/sync_account"
_YIELD_ATTR: Final = "sync_yield_authority"
_PORTAL_ATTR: Final = "sync_credential_portal"
_IDEMPOTENT: Final = "kanidm_sync.idempotent"


def _ident(ident: str) -> str:
    if not ident:
        raise ValueError("a sync account name, SPN or UUID is required")
    return quote(str(ident), safe="")


class BaseClient:
    """What both clients share: configuration, request building, response reading.

    Not used directly; see :class:`Client` and :class:`AsyncClient`.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None,
        auth: KanidmAuth | None,
        timeout: httpx.Timeout | float | None,
        max_retries: int,
        verify: bool | ssl.SSLContext,
        ca_path: str | None,
        allow_insecure_http: bool,
        has_http_client: bool,
    ) -> None:
        url = httpx.URL(base_url)
        if url.scheme not in ("https", "http") or not url.host:
            raise ValueError(f"base_url must be an https:// URL, not {base_url!r}")
        if url.scheme == "http" and not allow_insecure_http:
            raise ValueError(
                f"refusing plain http to {url.host}: tokens would travel unencrypted "
                "(pass allow_insecure_http=True for a loopback test server)"
            )
        if token is not None and auth is not None:
            raise ValueError("pass token= or auth=, not both")
        if has_http_client and (ca_path is not None or verify is not True):
            raise ValueError(
                "verify/ca_path configure the client's own httpx client; "
                "set TLS on the http_client you pass instead"
            )
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        # Kanidm's paths are absolute: keep the origin only (the Rust client does the same).
        self._base_url = url.copy_with(path="/", query=None, fragment=None)
        self._auth = auth if auth is not None else KanidmAuth(token=token) if token else None
        self._timeout = (
            timeout
            if isinstance(timeout, httpx.Timeout)
            else (DEFAULT_TIMEOUT if timeout is None else httpx.Timeout(timeout))
        )
        # An apply waits for kanidmd's own 408 unless the caller chose a timeout.
        self._apply_timeout = APPLY_TIMEOUT if timeout is None else self._timeout
        self._verify = ssl_verify(verify, ca_path) if isinstance(verify, bool) else verify
        self._max_retries = max_retries
        self._headers = httpx.Headers({"User-Agent": USER_AGENT, "Accept": "application/json"})
        # Injection points for tests: no real sleeping, deterministic jitter.
        self._random: Callable[[], float] = random.random
        self._clock: Callable[[], float] = time.time

    @staticmethod
    def _config_settings(config: ClientConfig) -> tuple[str, httpx.Timeout, bool | ssl.SSLContext]:
        # What from_config takes from a Kanidm client config: uri, timeout, TLS verification.
        if not config.uri:
            raise ConfigError("the Kanidm client config has no uri (set KANIDM_URL)")
        timeout = httpx.Timeout(DEFAULT_TIMEOUT.read, connect=config.connect_timeout or 10.0)
        return config.uri, timeout, config.verify()

    @property
    def base_url(self) -> str:
        """The server origin requests go to (``https://idm.example.com``)."""
        return str(self._base_url).rstrip("/")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, auth={self._auth!r})"

    # --- request building (pure) -----------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        body: object = None,
        has_body: bool = False,
        write: bool = False,
        idempotent: bool = False,
    ) -> httpx.Request:
        headers = httpx.Headers(self._headers)
        content = None
        if has_body:
            content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
            headers["Content-Type"] = "application/json"
        return httpx.Request(
            method,
            self._base_url.copy_with(path=path),
            headers=headers,
            content=content,
            extensions={
                "timeout": self._timeout.as_dict(),
                WRITE_EXTENSION: write,
                _IDEMPOTENT: idempotent,
            },
        )

    def _request_for_call(self, call: Call) -> httpx.Request:
        request = call_to_request(call, self._base_url, self._headers)
        timeout = self._apply_timeout if call.method == "POST" and call.path == SYNC_PATH else None
        request.extensions = {
            "timeout": (timeout or self._timeout).as_dict(),
            _IDEMPOTENT: call.idempotent,
        }
        return request

    def _build_get_state(self) -> httpx.Request:
        return self._request("GET", SYNC_PATH, idempotent=True)

    def _build_list_sync_accounts(self) -> httpx.Request:
        return self._request("GET", _ACCOUNTS, idempotent=True)

    def _build_get_sync_account(self, ident: str) -> httpx.Request:
        return self._request("GET", f"{_ACCOUNTS}/{_ident(ident)}", idempotent=True)

    def _build_create_sync_account(self, name: str, description: str | None) -> httpx.Request:
        attrs_: dict[str, list[str]] = {"name": [name]}
        if description is not None:
            attrs_["description"] = [description]
        return self._request("POST", _ACCOUNTS, body={"attrs": attrs_}, has_body=True, write=True)

    def _build_generate_sync_token(self, ident: str, label: str) -> httpx.Request:
        # A JSON string body: text/plain gets 415 (spec §8.4).
        path = f"{_ACCOUNTS}/{_ident(ident)}/_sync_token"
        return self._request("POST", path, body=label, has_body=True, write=True)

    def _build_destroy_sync_token(self, ident: str) -> httpx.Request:
        return self._request("DELETE", f"{_ACCOUNTS}/{_ident(ident)}/_sync_token", write=True)

    def _build_force_refresh(self, ident: str) -> httpx.Request:
        body: dict[str, dict[str, list[str]]] = {"attrs": {"sync_cookie": []}}
        path = f"{_ACCOUNTS}/{_ident(ident)}"
        return self._request("PATCH", path, body=body, has_body=True, write=True)

    def _build_finalise(self, ident: str) -> httpx.Request:
        # A destructive GET (spec §8.6): flagged as a write, never retried.
        return self._request("GET", f"{_ACCOUNTS}/{_ident(ident)}/_finalise", write=True)

    def _build_terminate(self, ident: str) -> httpx.Request:
        return self._request("GET", f"{_ACCOUNTS}/{_ident(ident)}/_terminate", write=True)

    def _build_get_attr(self, ident: str, attr: str) -> httpx.Request:
        return self._request("GET", f"{_ACCOUNTS}/{_ident(ident)}/_attr/{attr}", idempotent=True)

    def _build_set_attr(self, ident: str, attr: str, values: list[str]) -> httpx.Request:
        # PUT, not the POST the OpenAPI document claims (spec §2.2 A8/A9, §8.4).
        path = f"{_ACCOUNTS}/{_ident(ident)}/_attr/{attr}"
        return self._request("PUT", path, body=values, has_body=True, write=True)

    def _apply_flow(self, changeset: ChangeSet) -> Generator[Call, Outcome, None]:
        return apply_flow(changeset.to_json(), changeset.to_state, changeset.from_state)

    # --- response handling (pure) ----------------------------------------------------

    def _check(self, response: httpx.Response) -> httpx.Response:
        if response.status_code >= 400:
            request = response.request
            call = Call(request.method, request.url.path)
            raise reply_error(reply_from_response(response), call, self.base_url)
        return response

    def _json(self, response: httpx.Response) -> object:
        try:
            return json.loads(self._check(response).content)
        except ValueError:
            raise DecodeError([("$", "the response body is not JSON")]) from None

    def _handle_null(self, response: httpx.Response) -> None:
        self._check(response)

    def _handle_get_state(self, response: httpx.Response) -> SyncState:
        return decode_sync_state(self._json(response))

    def _handle_list_sync_accounts(self, response: httpx.Response) -> list[SyncAccountInfo]:
        return decode_sync_account_list(self._json(response))

    def _handle_get_sync_account(self, response: httpx.Response) -> SyncAccountInfo | None:
        obj = self._json(response)
        return None if obj is None else decode_sync_account(obj)

    def _handle_generate_sync_token(self, response: httpx.Response) -> str:
        obj = self._json(response)
        if not isinstance(obj, str):
            raise DecodeError([("$", "expected the token as a JSON string")])
        return obj

    def _handle_yield_attributes(self, response: httpx.Response) -> frozenset[str]:
        return frozenset(decode_string_list(self._json(response)) or ())

    def _handle_credential_portal(self, response: httpx.Response) -> str | None:
        # null when unset: the Rust client fails on this case (spec §8.15); we do not.
        values = decode_string_list(self._json(response))
        return values[0] if values else None

    # --- retry decisions (pure) ------------------------------------------------------

    def _retry_after_error(
        self, request: httpx.Request, attempt: int, error: APIConnectionError
    ) -> float | None:
        if attempt >= self._max_retries:
            return None
        if request.extensions.get(_IDEMPOTENT) or not was_sent(error):
            return retry_delay(attempt, None, self._random())
        return None

    def _retry_after_response(
        self, request: httpx.Request, attempt: int, response: httpx.Response
    ) -> float | None:
        if attempt >= self._max_retries or not request.extensions.get(_IDEMPOTENT):
            return None
        if not should_retry_status(response.status_code, response.text):
            return None
        wait = parse_retry_after(response.headers.get("Retry-After"), self._clock())
        return retry_delay(attempt, wait, self._random())


def _yields(attributes: Iterable[str]) -> list[str]:
    if isinstance(attributes, str):
        raise TypeError("yield attributes are an iterable of names, not a single string")
    return sorted({a.lower() for a in attributes})


class Client(BaseClient):
    """A blocking client for Kanidm's sync-tool and sync-account admin endpoints.

    Args:
        base_url: the Kanidm origin (``https://idm.example.com``).
        token: a bearer token sent as given: a sync token for :meth:`get_state` /
            :meth:`apply`, an admin session or API token for the admin calls.
        auth: instead of ``token``, a :class:`~kanidm_sync.KanidmAuth` (password login,
            re-authentication, token cache).
        http_client: your own ``httpx.Client`` (proxies, TLS, ``MockTransport``); you
            close it. Without one, the client creates and closes its own.
        timeout: per-request timeout (default: 10 s connect, 60 s otherwise).
        max_retries: retries of idempotent reads.
        verify: verify TLS certificates (default on), or an ``ssl.SSLContext``.
        ca_path: a PEM CA file added to the trust roots (a private Kanidm CA).
        allow_insecure_http: permit ``http://`` (only for a loopback test server).

    Example:
        >>> with Client("https://idm.example.com", token=sync_token) as client:  # doctest: +SKIP
        ...     state = client.get_state()
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        auth: KanidmAuth | None = None,
        http_client: httpx.Client | None = None,
        timeout: httpx.Timeout | float | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        verify: bool | ssl.SSLContext = True,
        ca_path: str | None = None,
        allow_insecure_http: bool = False,
    ) -> None:
        super().__init__(
            base_url,
            token=token,
            auth=auth,
            timeout=timeout,
            max_retries=max_retries,
            verify=verify,
            ca_path=ca_path,
            allow_insecure_http=allow_insecure_http,
            has_http_client=http_client is not None,
        )
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(verify=self._verify, follow_redirects=False)
        self._sleep: Callable[[float], None] = time.sleep

    @classmethod
    def from_config(
        cls,
        config: ClientConfig,
        *,
        token: str | None = None,
        auth: KanidmAuth | None = None,
        allow_insecure_http: bool = False,
    ) -> Self:
        """A client for the server and TLS settings of a Kanidm client config.

        Args:
            config: from :func:`~kanidm_sync.load_client_config`.
            token: a bearer token (see the class).
            auth: or an auth object.
            allow_insecure_http: permit an ``http://`` uri.

        Returns:
            The client.

        Raises:
            ConfigError: the configuration names no ``uri``.
        """
        uri, timeout, verify = cls._config_settings(config)
        client = cls(
            uri,
            token=token,
            auth=auth,
            timeout=timeout,
            verify=verify,
            allow_insecure_http=allow_insecure_http,
        )
        client._apply_timeout = httpx.Timeout(APPLY_TIMEOUT.read, connect=timeout.connect)
        return client

    def close(self) -> None:
        """Close the underlying httpx client if this client created it."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _send(self, request: httpx.Request) -> httpx.Response:
        attempt = 0
        while True:
            try:
                with translate_errors(request):
                    response = self._http.send(request, auth=self._auth)
            except APIConnectionError as exc:
                delay = self._retry_after_error(request, attempt, exc)
                if delay is None:
                    raise
            else:
                log_response(response)
                delay = self._retry_after_response(request, attempt, response)
                if delay is None:
                    return response
            attempt += 1
            self._sleep(delay)

    def _drive(self, flow: Generator[Call, Outcome, None]) -> None:
        call = next(flow)
        while True:
            outcome: Outcome
            try:
                outcome = reply_from_response(self._send(self._request_for_call(call)))
            except APIConnectionError as exc:
                outcome = Lost(error=exc, sent=was_sent(exc))
            try:
                call = flow.send(outcome)
            except StopIteration:
                return

    def get_state(self) -> SyncState:
        """Read the sync account's state (``GET /scim/v1/Sync``, sync token).

        Returns:
            ``RefreshState()`` or ``ActiveState(cookie)``.

        Raises:
            AuthenticationError: the token is not a valid sync token.
            APIConnectionError: no response, after retries.
        """
        return self._handle_get_state(self._send(self._build_get_state()))

    def apply(self, changeset: ChangeSet) -> None:
        """Apply a ChangeSet (``POST /scim/v1/Sync``, sync token); all or nothing.

        Never retried blindly: after a lost reply, a timeout or a 408 the state is re-read
        and the call succeeds if Kanidm now holds the ChangeSet's ``to_state``.

        Args:
            changeset: the change to apply.

        Raises:
            StateConflictError: ``from_state`` is not Kanidm's state.
            DataError: Kanidm refused the content (the subclass says which check).
            NotAppliedError: the reply was lost and the apply did not commit.
            AuthenticationError: the token is not a valid sync token.
            APIConnectionError: the request never reached Kanidm, or the outcome is unknown.
        """
        self._drive(self._apply_flow(changeset))

    def list_sync_accounts(self) -> list[SyncAccountInfo]:
        """List the sync accounts the admin can see (A1; ``[]`` if none visible)."""
        return self._handle_list_sync_accounts(self._send(self._build_list_sync_accounts()))

    def get_sync_account(self, ident: str) -> SyncAccountInfo | None:
        """Read one sync account by name, SPN or UUID (A2); ``None`` when not found."""
        return self._handle_get_sync_account(self._send(self._build_get_sync_account(ident)))

    def create_sync_account(self, name: str, *, description: str | None = None) -> None:
        """Create a sync account (A3); it starts in Refresh with no token.

        Raises:
            UniquenessError: the name is taken.
            SchemaViolationError: the name is not valid.
            PermissionDeniedError: the session is read-only or not a domain admin.
        """
        self._handle_null(self._send(self._build_create_sync_account(name, description)))

    def generate_sync_token(self, ident: str, *, label: str = "kanidm-sync") -> str:
        """Issue the account's sync token (A4); one per account: destroy the old one first.

        Returns:
            The token (a secret: store it, never log it).
        """
        return self._handle_generate_sync_token(
            self._send(self._build_generate_sync_token(ident, label))
        )

    def destroy_sync_token(self, ident: str) -> None:
        """Revoke the account's sync token (A5); succeeds when there is none."""
        self._handle_null(self._send(self._build_destroy_sync_token(ident)))

    def force_refresh(self, ident: str) -> None:
        """Forget the account's cookie (A6): the next sync must be a full refresh."""
        self._handle_null(self._send(self._build_force_refresh(ident)))

    def finalise(self, ident: str) -> None:
        """Hand every synced entry over to Kanidm and delete the sync account (A10).

        Raises:
            PermissionDeniedError: 500 ``notauthorised`` (read-only session, no rights).
        """
        self._handle_null(self._send(self._build_finalise(ident)))

    def terminate(self, ident: str) -> None:
        """Delete the sync account and every entry it synced (A11).

        Raises:
            PermissionDeniedError: 500 ``notauthorised`` (read-only session, no rights).
        """
        self._handle_null(self._send(self._build_terminate(ident)))

    def get_yield_attributes(self, ident: str) -> frozenset[str]:
        """The attributes whose authority was yielded to Kanidm (A7)."""
        request = self._build_get_attr(ident, _YIELD_ATTR)
        return self._handle_yield_attributes(self._send(request))

    def set_yield_attributes(self, ident: str, attributes: Iterable[str]) -> None:
        """Replace the yielded attributes (A8); an empty iterable clears them."""
        request = self._build_set_attr(ident, _YIELD_ATTR, _yields(attributes))
        self._handle_null(self._send(request))

    def get_credential_portal(self, ident: str) -> str | None:
        """The credential portal URL shown to synced users (A7), or ``None``."""
        request = self._build_get_attr(ident, _PORTAL_ATTR)
        return self._handle_credential_portal(self._send(request))

    def set_credential_portal(self, ident: str, url: str | None) -> None:
        """Set the credential portal URL (A9); ``None`` clears it."""
        request = self._build_set_attr(ident, _PORTAL_ATTR, [] if url is None else [url])
        self._handle_null(self._send(request))


class AsyncClient(BaseClient):
    """The async twin of :class:`Client`: same methods, same arguments, awaited.

    Args:
        base_url: the Kanidm origin (``https://idm.example.com``).
        token: a bearer token sent as given (sync token or admin token).
        auth: instead of ``token``, a :class:`~kanidm_sync.KanidmAuth`.
        http_client: your own ``httpx.AsyncClient``; you close it.
        timeout: per-request timeout (default: 10 s connect, 60 s otherwise).
        max_retries: retries of idempotent reads.
        verify: verify TLS certificates (default on), or an ``ssl.SSLContext``.
        ca_path: a PEM CA file added to the trust roots.
        allow_insecure_http: permit ``http://`` (only for a loopback test server).
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        auth: KanidmAuth | None = None,
        http_client: httpx.AsyncClient | None = None,
        timeout: httpx.Timeout | float | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        verify: bool | ssl.SSLContext = True,
        ca_path: str | None = None,
        allow_insecure_http: bool = False,
    ) -> None:
        super().__init__(
            base_url,
            token=token,
            auth=auth,
            timeout=timeout,
            max_retries=max_retries,
            verify=verify,
            ca_path=ca_path,
            allow_insecure_http=allow_insecure_http,
            has_http_client=http_client is not None,
        )
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(verify=self._verify, follow_redirects=False)
        self._sleep: Callable[[float], Awaitable[None]] = anyio.sleep

    @classmethod
    def from_config(
        cls,
        config: ClientConfig,
        *,
        token: str | None = None,
        auth: KanidmAuth | None = None,
        allow_insecure_http: bool = False,
    ) -> Self:
        """A client for the server and TLS settings of a Kanidm client config.

        Args:
            config: from :func:`~kanidm_sync.load_client_config`.
            token: a bearer token.
            auth: or an auth object.
            allow_insecure_http: permit an ``http://`` uri.

        Returns:
            The client.

        Raises:
            ConfigError: the configuration names no ``uri``.
        """
        uri, timeout, verify = cls._config_settings(config)
        client = cls(
            uri,
            token=token,
            auth=auth,
            timeout=timeout,
            verify=verify,
            allow_insecure_http=allow_insecure_http,
        )
        client._apply_timeout = httpx.Timeout(APPLY_TIMEOUT.read, connect=timeout.connect)
        return client

    async def aclose(self) -> None:
        """Close the underlying httpx client if this client created it."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _send(self, request: httpx.Request) -> httpx.Response:
        attempt = 0
        while True:
            try:
                with translate_errors(request):
                    response = await self._http.send(request, auth=self._auth)
            except APIConnectionError as exc:
                delay = self._retry_after_error(request, attempt, exc)
                if delay is None:
                    raise
            else:
                log_response(response)
                delay = self._retry_after_response(request, attempt, response)
                if delay is None:
                    return response
            attempt += 1
            await self._sleep(delay)

    async def _drive(self, flow: Generator[Call, Outcome, None]) -> None:
        call = next(flow)
        while True:
            outcome: Outcome
            try:
                outcome = reply_from_response(await self._send(self._request_for_call(call)))
            except APIConnectionError as exc:
                outcome = Lost(error=exc, sent=was_sent(exc))
            try:
                call = flow.send(outcome)
            except StopIteration:
                return

    async def get_state(self) -> SyncState:
        """Read the sync account's state (see :meth:`Client.get_state`)."""
        return self._handle_get_state(await self._send(self._build_get_state()))

    async def apply(self, changeset: ChangeSet) -> None:
        """Apply a ChangeSet with lost-reply recovery (see :meth:`Client.apply`)."""
        await self._drive(self._apply_flow(changeset))

    async def list_sync_accounts(self) -> list[SyncAccountInfo]:
        """List the sync accounts the admin can see (A1)."""
        return self._handle_list_sync_accounts(await self._send(self._build_list_sync_accounts()))

    async def get_sync_account(self, ident: str) -> SyncAccountInfo | None:
        """Read one sync account (A2); ``None`` when not found."""
        request = self._build_get_sync_account(ident)
        return self._handle_get_sync_account(await self._send(request))

    async def create_sync_account(self, name: str, *, description: str | None = None) -> None:
        """Create a sync account (A3)."""
        request = self._build_create_sync_account(name, description)
        self._handle_null(await self._send(request))

    async def generate_sync_token(self, ident: str, *, label: str = "kanidm-sync") -> str:
        """Issue the account's sync token (A4)."""
        request = self._build_generate_sync_token(ident, label)
        return self._handle_generate_sync_token(await self._send(request))

    async def destroy_sync_token(self, ident: str) -> None:
        """Revoke the account's sync token (A5)."""
        self._handle_null(await self._send(self._build_destroy_sync_token(ident)))

    async def force_refresh(self, ident: str) -> None:
        """Forget the account's cookie (A6)."""
        self._handle_null(await self._send(self._build_force_refresh(ident)))

    async def finalise(self, ident: str) -> None:
        """Hand the synced entries over to Kanidm and delete the account (A10)."""
        self._handle_null(await self._send(self._build_finalise(ident)))

    async def terminate(self, ident: str) -> None:
        """Delete the sync account and every entry it synced (A11)."""
        self._handle_null(await self._send(self._build_terminate(ident)))

    async def get_yield_attributes(self, ident: str) -> frozenset[str]:
        """The attributes whose authority was yielded to Kanidm (A7)."""
        request = self._build_get_attr(ident, _YIELD_ATTR)
        return self._handle_yield_attributes(await self._send(request))

    async def set_yield_attributes(self, ident: str, attributes: Iterable[str]) -> None:
        """Replace the yielded attributes (A8)."""
        request = self._build_set_attr(ident, _YIELD_ATTR, _yields(attributes))
        self._handle_null(await self._send(request))

    async def get_credential_portal(self, ident: str) -> str | None:
        """The credential portal URL (A7), or ``None``."""
        request = self._build_get_attr(ident, _PORTAL_ATTR)
        return self._handle_credential_portal(await self._send(request))

    async def set_credential_portal(self, ident: str, url: str | None) -> None:
        """Set the credential portal URL (A9); ``None`` clears it."""
        request = self._build_set_attr(ident, _PORTAL_ATTR, [] if url is None else [url])
        self._handle_null(await self._send(request))
