"""The pure core both HTTP clients share: configuration, request building, response reading.

:class:`BaseClient` builds every ``httpx.Request`` (``_build_*``), interprets every
``httpx.Response`` (``_handle_*``, errors through the one table in ``_proto/_status.py``) and
decides retries; it performs no I/O. The I/O shells, :class:`~kanidm_sync.Client` and
:class:`~kanidm_sync.AsyncClient`, live in ``_client.py``.

What counts as an answer: only what kanidmd sends. Success is 200 with a JSON body
(``null`` for the calls that return nothing); an error is 400 or above. A redirect (never
followed), another 2xx, or a 200 that is not JSON came from something else (a proxy, a
portal, a wrong URL) and raises :class:`~kanidm_sync.ProtocolError`.

Split out of ``_client.py`` along its seam (pure core / I/O shells); it must not send,
sleep or log.
"""

from __future__ import annotations

import json
import random
import ssl
import time
from collections.abc import Callable, Generator, Iterable
from typing import Final
from urllib.parse import quote

import httpx  # noqa: TID251  # the clients' pure core builds httpx requests (split from _client.py)

from ._auth import WRITE_EXTENSION, ClientConfig, KanidmAuth, is_bearer_token
from ._exceptions import APIConnectionError, ConfigError, DecodeError, ProtocolError
from ._proto._admin import (
    SyncAccountInfo,
    decode_string_list,
    decode_sync_account,
    decode_sync_account_list,
)
from ._proto._changeset import ChangeSet
from ._proto._codec import decode_sync_state
from ._proto._encode_body import changeset_body
from ._proto._flows import SYNC_PATH, Call, Outcome, apply_flow, reply_error, unexpected_reply
from ._proto._state import SyncState
from ._transport import (
    APPLY_TIMEOUT,
    DEFAULT_TIMEOUT,
    MAX_RESPONSE_EXTENSION,
    PREFIX_EXTENSION,
    USER_AGENT,
    call_to_request,
    deadline_seconds,
    parse_base_url,
    parse_retry_after,
    reply_from_response,
    retry_delay,
    should_retry_status,
    ssl_verify,
    was_sent,
)

__all__ = ["ACCOUNTS_PATH", "PORTAL_ATTR", "YIELD_ATTR", "BaseClient", "yield_names"]

ACCOUNTS_PATH: Final = "/v1/sync_account"
YIELD_ATTR: Final = "sync_yield_authority"
PORTAL_ATTR: Final = "sync_credential_portal"
_IDEMPOTENT: Final = "kanidm_sync.idempotent"


def _ident(ident: str) -> str:
    if not ident:
        raise ValueError("a sync account name, SPN or UUID is required")
    return quote(str(ident), safe="")


def yield_names(attributes: Iterable[str]) -> list[str]:
    """The yield-attribute names to send: lower-cased, unique, sorted.

    Raises:
        TypeError: a single string was given instead of an iterable of names.
    """
    if isinstance(attributes, str):
        raise TypeError("yield attributes are an iterable of names, not a single string")
    return sorted({a.lower() for a in attributes})


class BaseClient:
    """What both clients share: configuration, request building, response reading.

    Not used directly; see :class:`~kanidm_sync.Client` and
    :class:`~kanidm_sync.AsyncClient`.
    """

    #: Whether requests go through httpx's async client (a streamed body must then be
    #: an asynchronous iterable).
    _ASYNCHRONOUS = False

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None,
        auth: KanidmAuth | None,
        timeout: httpx.Timeout | float | None,
        max_retries: int,
        max_response_bytes: int,
        verify: bool | ssl.SSLContext,
        ca_path: str | None,
        allow_insecure_http: bool,
        has_http_client: bool,
    ) -> None:
        # The origin, and the path prefix of a reverse proxy (kept on every request).
        self._base_url, self._prefix = parse_base_url(
            base_url, allow_insecure_http=allow_insecure_http
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
        if isinstance(max_response_bytes, bool) or not isinstance(max_response_bytes, int):
            raise TypeError("max_response_bytes must be an int")
        if max_response_bytes < 1:
            raise ValueError("max_response_bytes must be >= 1")
        self._auth = (
            auth if auth is not None else KanidmAuth(token=token) if token is not None else None
        )
        self._timeout = (
            timeout
            if isinstance(timeout, httpx.Timeout)
            else (DEFAULT_TIMEOUT if timeout is None else httpx.Timeout(timeout))
        )
        # An apply waits for kanidmd's own 408 unless the caller chose a timeout.
        self._apply_timeout = APPLY_TIMEOUT if timeout is None else self._timeout
        self._verify = ssl_verify(verify, ca_path) if isinstance(verify, bool) else verify
        self._max_retries = max_retries
        self._max_response_bytes = max_response_bytes
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
        """Where requests go: the origin and any path prefix (``https://idm.example.com``).

        A path prefix in the URL given (a reverse proxy's) is kept; it used to be dropped.
        """
        return str(self._base_url).rstrip("/") + self._prefix

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, auth={self._auth!r})"

    # --- request building (pure) -----------------------------------------------------

    def _extensions(self, timeout: httpx.Timeout, *, idempotent: bool) -> dict[str, object]:
        return {
            "timeout": timeout.as_dict(),
            _IDEMPOTENT: idempotent,
            MAX_RESPONSE_EXTENSION: self._max_response_bytes,
            PREFIX_EXTENSION: self._prefix,
        }

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
        extensions = self._extensions(self._timeout, idempotent=idempotent)
        extensions[WRITE_EXTENSION] = write
        return httpx.Request(
            method,
            self._base_url.copy_with(path=self._prefix + path),
            headers=headers,
            content=content,
            extensions=extensions,
        )

    def _request_for_call(self, call: Call) -> httpx.Request:
        request = call_to_request(
            call,
            self._base_url,
            self._headers,
            prefix=self._prefix,
            asynchronous=self._ASYNCHRONOUS,
        )
        apply = call.method == "POST" and call.path == SYNC_PATH
        timeout = self._apply_timeout if apply else self._timeout
        request.extensions = self._extensions(timeout, idempotent=call.idempotent)
        return request

    def _deadline(self, request: httpx.Request) -> float | None:
        timeout = request.extensions.get("timeout")
        return deadline_seconds(
            httpx.Timeout(**timeout) if isinstance(timeout, dict) else self._timeout
        )

    def _build_get_state(self) -> httpx.Request:
        return self._request("GET", SYNC_PATH, idempotent=True)

    def _build_list_sync_accounts(self) -> httpx.Request:
        return self._request("GET", ACCOUNTS_PATH, idempotent=True)

    def _build_get_sync_account(self, ident: str) -> httpx.Request:
        return self._request("GET", f"{ACCOUNTS_PATH}/{_ident(ident)}", idempotent=True)

    def _build_create_sync_account(self, name: str, description: str | None) -> httpx.Request:
        attrs_: dict[str, list[str]] = {"name": [name]}
        if description is not None:
            attrs_["description"] = [description]
        body = {"attrs": attrs_}
        return self._request("POST", ACCOUNTS_PATH, body=body, has_body=True, write=True)

    def _build_generate_sync_token(self, ident: str, label: str) -> httpx.Request:
        # A JSON string body: text/plain gets 415 (spec §8.4).
        path = f"{ACCOUNTS_PATH}/{_ident(ident)}/_sync_token"
        return self._request("POST", path, body=label, has_body=True, write=True)

    def _build_destroy_sync_token(self, ident: str) -> httpx.Request:
        path = f"{ACCOUNTS_PATH}/{_ident(ident)}/_sync_token"
        return self._request("DELETE", path, write=True)

    def _build_force_refresh(self, ident: str) -> httpx.Request:
        body: dict[str, dict[str, list[str]]] = {"attrs": {"sync_cookie": []}}
        path = f"{ACCOUNTS_PATH}/{_ident(ident)}"
        return self._request("PATCH", path, body=body, has_body=True, write=True)

    def _build_finalise(self, ident: str) -> httpx.Request:
        # A destructive GET (spec §8.6): flagged as a write, never retried.
        return self._request("GET", f"{ACCOUNTS_PATH}/{_ident(ident)}/_finalise", write=True)

    def _build_terminate(self, ident: str) -> httpx.Request:
        return self._request("GET", f"{ACCOUNTS_PATH}/{_ident(ident)}/_terminate", write=True)

    def _build_get_attr(self, ident: str, attr: str) -> httpx.Request:
        path = f"{ACCOUNTS_PATH}/{_ident(ident)}/_attr/{attr}"
        return self._request("GET", path, idempotent=True)

    def _build_set_attr(self, ident: str, attr: str, values: list[str]) -> httpx.Request:
        # PUT, not the POST the OpenAPI document claims (spec §2.2 A8/A9, §8.4).
        path = f"{ACCOUNTS_PATH}/{_ident(ident)}/_attr/{attr}"
        return self._request("PUT", path, body=values, has_body=True, write=True)

    def _apply_flow(self, changeset: ChangeSet) -> Generator[Call, Outcome, None]:
        # A large ChangeSet is encoded as it is sent (``_encode_body``), not held whole.
        body = changeset_body(changeset)
        return apply_flow(body, changeset.to_state, changeset.from_state)

    # --- response handling (pure) ----------------------------------------------------

    def _check(self, response: httpx.Response) -> httpx.Response:
        request = response.request
        call = Call(request.method, request.url.path)
        origin = str(self._base_url).rstrip("/")
        reply = reply_from_response(response)
        if response.status_code >= 400:
            raise reply_error(reply, call, origin)
        unusable = unexpected_reply(reply, call, origin)
        if unusable is not None:
            raise unusable
        return response

    def _json(self, response: httpx.Response) -> object:
        content = self._check(response).content
        try:
            return json.loads(content)
        except ValueError:
            problem = "the response body is not JSON"
        except RecursionError:
            problem = "the response body is nested too deeply to be Kanidm's"
        raise DecodeError([("$", problem)])

    def _handle_null(self, response: httpx.Response) -> None:
        # kanidmd answers these calls with the JSON body null (axum Json of ()).
        if self._json(response) is not None:
            request = response.request
            raise ProtocolError(
                f"{request.method} {request.url.copy_with(query=None)}: HTTP 200 with a body "
                "that is not null: not Kanidm's answer"
            )

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
        if not is_bearer_token(obj):
            raise DecodeError([("$", "the token Kanidm issued is not a bearer token")])
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
