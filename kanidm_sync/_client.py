"""The HTTP clients: two thin I/O shells over the pure core of ``_client_core.py``.

:class:`~kanidm_sync._client_core.BaseClient` builds every ``httpx.Request``, interprets
every ``httpx.Response`` (errors through the one table in ``_proto/_status.py``) and decides
retries; it performs no I/O. :class:`Client` (blocking) and :class:`AsyncClient` (async) only
send: each public method is build, send, handle. Multi-step operations (the apply with
lost-reply recovery) are generator flows from ``_proto/_flows.py`` driven by a ten-line loop
in each shell. tests/client/test_parity.py proves the two shells expose the same methods
with the same parameters.

Sending: redirects are never followed (a redirect is a
:class:`~kanidm_sync.ProtocolError`); a response is read in full, up to
``max_response_bytes`` (16 MiB by default), within one overall deadline per request (the
longest of its timeouts): a blocking request runs in a worker thread the caller stops
waiting for at the deadline, an async one in an anyio cancel scope.

Retries: an idempotent read (a GET that changes nothing) is retried on connection errors
and on 408/429/transient 5xx with exponential backoff and jitter, honouring
``Retry-After``. Nothing else is retried blindly; a request that certainly never left
(connection refused) may be resent whatever its method.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Awaitable, Callable, Generator, Iterable
from types import TracebackType
from typing import Self

import anyio
import httpx

from ._auth import ClientConfig, KanidmAuth
from ._client_core import PORTAL_ATTR, YIELD_ATTR, BaseClient, yield_names
from ._deadline import call_with_deadline
from ._exceptions import APIConnectionError, APITimeoutError
from ._proto._admin import SyncAccountInfo
from ._proto._changeset import ChangeSet
from ._proto._flows import Call, Lost, Outcome
from ._proto._state import SyncState
from ._transport import (
    APPLY_TIMEOUT,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_MAX_RETRIES,
    ResponseTooLargeError,
    aread_limited,
    log_response,
    read_limited,
    reply_from_response,
    translate_errors,
    unsendable,
    was_sent,
)

__all__ = ["AsyncClient", "BaseClient", "Client"]


def _lost(error: APIConnectionError | ResponseTooLargeError) -> Lost:
    # A reply too large to read was sent and answered: the outcome is the server's.
    sent = True if isinstance(error, ResponseTooLargeError) else was_sent(error)
    return Lost(error=error, sent=sent)


class Client(BaseClient):
    """A blocking client for Kanidm's sync-tool and sync-account admin endpoints.

    Args:
        base_url: the Kanidm origin (``https://idm.example.com``), with the path prefix
            of a reverse proxy if there is one (``https://proxy.example.com/kanidm``).
        token: a bearer token: a sync token for :meth:`get_state` / :meth:`apply`, an
            admin session or API token for the admin calls. Surrounding whitespace (the
            newline of a token file) is dropped.
        auth: instead of ``token``, a :class:`~kanidm_sync.KanidmAuth` (password login,
            re-authentication, token cache).
        http_client: your own ``httpx.Client`` (proxies, TLS, ``MockTransport``); you
            close it. Without one, the client creates and closes its own.
        timeout: per-request timeout (default: 10 s connect, 60 s otherwise; 330 s for
            an apply); the longest phase is also the overall deadline of a request.
        max_retries: retries of idempotent reads.
        max_response_bytes: the largest response body read (default 16 MiB); a larger
            one is a :class:`~kanidm_sync.ProtocolError`.
        verify: verify TLS certificates (default on), or an ``ssl.SSLContext``.
        ca_path: a PEM CA file added to the trust roots (a private Kanidm CA).
        allow_insecure_http: permit ``http://`` to a loopback test server (127.0.0.0/8,
            ``::1``, ``localhost``); plain http to any other host is always refused.

    Raises:
        BaseURLError: the URL is refused (a :class:`~kanidm_sync.ConfigError`, and a
            ``ValueError``); the message never shows credentials or a query.
        ConfigError: the token is empty or not a bearer token (whitespace, control or
            non-ASCII characters inside); the message does not show it.

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
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
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
            max_response_bytes=max_response_bytes,
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

    def _exchange(self, request: httpx.Request, deadline: float | None) -> httpx.Response:
        # Runs in the deadline's worker thread: send, then read the body under the cap.
        response = self._http.send(request, auth=self._auth, stream=True, follow_redirects=False)
        read_limited(response, self._max_response_bytes, deadline)
        return response

    def _send_once(self, request: httpx.Request) -> httpx.Response:
        seconds = self._deadline(request)
        deadline = None if seconds is None else time.monotonic() + seconds
        what = f"{request.method} {request.url.copy_with(query=None)}"
        with translate_errors(request):
            return call_with_deadline(lambda: self._exchange(request, deadline), seconds, what)
        raise unsendable(request)  # outside the handler: h11's message quotes the header

    def _send(self, request: httpx.Request) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = self._send_once(request)
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
            except (APIConnectionError, ResponseTooLargeError) as exc:
                outcome = _lost(exc)
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
            APIConnectionError: no response, after retries (APITimeoutError: none within
                the request's overall deadline).
            ProtocolError: the answer is not Kanidm's (a redirect, a page that is not JSON,
                a body over ``max_response_bytes``, a state that does not decode).
        """
        return self._handle_get_state(self._send(self._build_get_state()))

    def apply(self, changeset: ChangeSet) -> None:
        """Apply a ChangeSet (``POST /scim/v1/Sync``, sync token); all or nothing.

        Never retried blindly: when no usable answer came (a lost reply, a timeout, a 408,
        a redirect, a proxy's page or 502/504) the state is re-read and the call succeeds
        if Kanidm now holds the ChangeSet's ``to_state``.

        Args:
            changeset: the change to apply.

        Raises:
            StateConflictError: ``from_state`` is not Kanidm's state.
            DataError: Kanidm refused the content (the subclass says which check).
            NotAppliedError: Kanidm answered 408 and the apply provably did not commit.
            ApplyOutcomeUnknownError: no usable answer came, and the state cannot prove
                whether the apply committed (Kanidm may still commit it).
            AuthenticationError: the token is not a valid sync token.
            APIConnectionError: the request never reached Kanidm (nothing was applied).
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
        request = self._build_get_attr(ident, YIELD_ATTR)
        return self._handle_yield_attributes(self._send(request))

    def set_yield_attributes(self, ident: str, attributes: Iterable[str]) -> None:
        """Replace the yielded attributes (A8); an empty iterable clears them."""
        request = self._build_set_attr(ident, YIELD_ATTR, yield_names(attributes))
        self._handle_null(self._send(request))

    def get_credential_portal(self, ident: str) -> str | None:
        """The credential portal URL shown to synced users (A7), or ``None``."""
        request = self._build_get_attr(ident, PORTAL_ATTR)
        return self._handle_credential_portal(self._send(request))

    def set_credential_portal(self, ident: str, url: str | None) -> None:
        """Set the credential portal URL (A9); ``None`` clears it."""
        request = self._build_set_attr(ident, PORTAL_ATTR, [] if url is None else [url])
        self._handle_null(self._send(request))


class AsyncClient(BaseClient):
    """The async twin of :class:`Client`: same methods, same arguments, awaited.

    Args:
        base_url: the Kanidm origin, with a reverse proxy's path prefix if any.
        token: a bearer token (sync token or admin token), surrounding whitespace dropped.
        auth: instead of ``token``, a :class:`~kanidm_sync.KanidmAuth`.
        http_client: your own ``httpx.AsyncClient``; you close it.
        timeout: per-request timeout (default: 10 s connect, 60 s otherwise; 330 s for
            an apply); the longest phase is also the overall deadline of a request.
        max_retries: retries of idempotent reads.
        max_response_bytes: the largest response body read (default 16 MiB); a larger
            one is a :class:`~kanidm_sync.ProtocolError`.
        verify: verify TLS certificates (default on), or an ``ssl.SSLContext``.
        ca_path: a PEM CA file added to the trust roots.
        allow_insecure_http: permit ``http://`` to a loopback test server.

    Raises:
        BaseURLError: the URL is refused (see :class:`Client`).
        ConfigError: the token is empty or not a bearer token.
    """

    _ASYNCHRONOUS = True

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        auth: KanidmAuth | None = None,
        http_client: httpx.AsyncClient | None = None,
        timeout: httpx.Timeout | float | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
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
            max_response_bytes=max_response_bytes,
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

    async def _send_once(self, request: httpx.Request) -> httpx.Response:
        seconds = self._deadline(request)
        with translate_errors(request):
            try:
                with anyio.fail_after(seconds):
                    response = await self._http.send(
                        request, auth=self._auth, stream=True, follow_redirects=False
                    )
                    await aread_limited(response, self._max_response_bytes)
            except TimeoutError:
                url = request.url.copy_with(query=None)
                raise APITimeoutError(
                    f"{request.method} {url}: no complete response within {seconds:g} s (the "
                    "overall deadline of the request's timeout)",
                    method=request.method,
                    url=str(url),
                ) from None
            return response
        raise unsendable(request)  # outside the handler: h11's message quotes the header

    async def _send(self, request: httpx.Request) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = await self._send_once(request)
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
            except (APIConnectionError, ResponseTooLargeError) as exc:
                outcome = _lost(exc)
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
        request = self._build_get_attr(ident, YIELD_ATTR)
        return self._handle_yield_attributes(await self._send(request))

    async def set_yield_attributes(self, ident: str, attributes: Iterable[str]) -> None:
        """Replace the yielded attributes (A8)."""
        request = self._build_set_attr(ident, YIELD_ATTR, yield_names(attributes))
        self._handle_null(await self._send(request))

    async def get_credential_portal(self, ident: str) -> str | None:
        """The credential portal URL (A7), or ``None``."""
        request = self._build_get_attr(ident, PORTAL_ATTR)
        return self._handle_credential_portal(await self._send(request))

    async def set_credential_portal(self, ident: str, url: str | None) -> None:
        """Set the credential portal URL (A9); ``None`` clears it."""
        request = self._build_set_attr(ident, PORTAL_ATTR, [] if url is None else [url])
        self._handle_null(await self._send(request))
