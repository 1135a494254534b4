"""The httpx boundary: error translation, defaults, TLS, limits, retry math and logging.

This module owns:

* the one place httpx exceptions become kanidm_sync exceptions (:func:`translate_errors`,
  always chained with ``from``), and the "was the request sent?" judgement that lost-reply
  recovery needs (:func:`was_sent`);
* the server URL rules (:func:`parse_base_url`): https, or plain http to loopback only;
  no credentials, query or fragment; a path prefix (a reverse proxy) is kept;
* the limits on a response: an overall deadline per request (:func:`deadline_seconds`; the
  blocking clients enforce it with ``_deadline.py``) and a size cap (:func:`read_limited`,
  :func:`aread_limited`, :data:`DEFAULT_MAX_RESPONSE_BYTES`);
* the defaults: :data:`DEFAULT_TIMEOUT` (explicit, never unlimited), :data:`USER_AGENT`,
  :data:`DEFAULT_MAX_RETRIES`;
* TLS verification (:func:`ssl_verify`: on by default; a custom CA is *added* to the
  trust roots, as the Rust client does, kanidm-auth.md §3.2);
* pure retry math in the shape of the Anthropic SDK (:func:`should_retry_status`,
  :func:`parse_retry_after`, :func:`retry_delay`): no sleeping happens here;
* conversion between the pure flow values (:class:`~kanidm_sync._proto._flows.Call`,
  ``Reply``) and httpx objects, and the INFO log line per request.

It must not hold state, sleep, or log a header (the Authorization header above all).
"""

from __future__ import annotations

import email.utils
import ipaddress
import logging
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

import httpx

from ._exceptions import (
    APIConnectionError,
    APITimeoutError,
    BaseURLError,
    EncodeError,
    ProtocolError,
)
from ._proto._encode_body import AsyncChangeSetBody, ChangeSetBody
from ._proto._flows import OPID_HEADER, Call, Reply
from ._proto._status import parse_error_body, redact_url
from ._version import __version__

__all__ = [
    "APPLY_TIMEOUT",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_TIMEOUT",
    "INITIAL_RETRY_DELAY",
    "MAX_RESPONSE_EXTENSION",
    "MAX_RETRY_DELAY",
    "PREFIX_EXTENSION",
    "USER_AGENT",
    "ResponseTooLargeError",
    "aread_limited",
    "call_to_request",
    "deadline_seconds",
    "log_response",
    "logger",
    "parse_base_url",
    "parse_retry_after",
    "read_limited",
    "reply_from_response",
    "retry_delay",
    "should_retry_status",
    "ssl_verify",
    "translate_errors",
    "unsendable",
    "was_sent",
]

logger: Final = logging.getLogger("kanidm_sync")

APPLY_TIMEOUT: Final = httpx.Timeout(330.0, connect=10.0)
"""The default timeout of ``POST /scim/v1/Sync``: longer than kanidmd's own request timeout.

Measured against kanidmd 1.11.1 (docs/performance.md): one apply of 10,000 persons takes
about 25 s, and the time grows faster than the entry count. kanidmd answers 408 after 300 s
(its ``HTTPS_CLIENT_REQUEST_TIMEOUT``), so waiting 330 s lets kanidmd's own answer arrive
instead of the client giving up while kanidmd is still applying.
"""

DEFAULT_TIMEOUT: Final = httpx.Timeout(60.0, connect=10.0)
"""10 s to connect, 60 s for every other phase (the apply has its own: :data:`APPLY_TIMEOUT`).

kanidmd answers 408 after 300 s (spec §2.1); an apply of a large ChangeSet can take tens of
seconds, so the read timeout is generous. Pass ``timeout=`` to the clients to change it.
"""

DEFAULT_MAX_RETRIES: Final = 2
"""Retries of an idempotent read after the first attempt."""

INITIAL_RETRY_DELAY: Final = 0.5
MAX_RETRY_DELAY: Final = 8.0
_MAX_RETRY_AFTER: Final = 60.0

USER_AGENT: Final = f"kanidm-sync/{__version__} python-httpx/{httpx.__version__}"

DEFAULT_MAX_RESPONSE_BYTES: Final = 16 * 1024 * 1024
"""16 MiB: the largest response body the clients read (``max_response_bytes=`` changes it).

kanidmd's answers are small: a sync state or an error is well under 1 KiB, a sync-account
listing about 1 KiB per account. A larger body is not Kanidm's answer (or an admin listing
of thousands of accounts: raise the cap), and reading it whole could exhaust memory.
"""

MAX_RESPONSE_EXTENSION: Final = "kanidm_sync.max_response_bytes"
"""Request extension carrying the size cap to :class:`~kanidm_sync.KanidmAuth`'s reads."""

PREFIX_EXTENSION: Final = "kanidm_sync.path_prefix"
"""Request extension carrying the base URL's path prefix to the login steps."""


# Transport errors raised before any byte of the request can have reached the server.
_NOT_SENT: Final = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
    httpx.ProxyError,
)


# --- the server URL -------------------------------------------------------------------

_LOOPBACK_NAMES: Final = frozenset({"localhost"})


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_base_url(base_url: str, *, allow_insecure_http: bool = False) -> tuple[httpx.URL, str]:
    """Check a Kanidm base URL and split it into the origin and a path prefix.

    Rules: ``https://``; or ``http://`` to a loopback host (127.0.0.0/8, ``::1``,
    ``localhost``) when ``allow_insecure_http`` is set, and never to any other host (the
    token would cross the network unencrypted). No user name or password (Kanidm takes a
    bearer token), no query, no fragment. A path is a prefix every request keeps
    (``https://proxy.example.com/kanidm`` sends ``/kanidm/scim/v1/Sync``). Surrounding
    whitespace (a URL read from a file) is dropped.

    Args:
        base_url: the URL as configured.
        allow_insecure_http: permit ``http://`` to loopback.

    Returns:
        ``(origin, prefix)``: the origin with the path ``/``, and the prefix without a
        trailing slash (``""`` when there is none), percent-encoded.

    Raises:
        BaseURLError: the URL breaks a rule; the message shows it without credentials,
            query or fragment.
    """
    if not isinstance(base_url, str):
        raise TypeError(f"base_url must be a str, not {type(base_url).__name__}")
    text = base_url.strip()
    shown = redact_url(text)
    try:
        url = httpx.URL(text)
    except httpx.InvalidURL:
        raise BaseURLError(f"base_url is not a URL: {shown!r}") from None
    if url.scheme not in ("https", "http") or not url.host:
        raise BaseURLError(f"base_url must be an https:// URL, not {shown!r}")
    if url.userinfo:
        raise BaseURLError(
            f"base_url must not carry a user name or password ({shown!r}): Kanidm "
            "authenticates with a bearer token; remove them from the URL"
        )
    if url.query or url.fragment or "?" in text or "#" in text:
        raise BaseURLError(
            f"base_url must not have a query or a fragment ({shown!r}): give the "
            "Kanidm origin, with a path prefix if a proxy adds one"
        )
    if url.scheme == "http":
        if not _is_loopback(url.host):
            raise BaseURLError(
                f"refusing plain http to {url.host}: the token would cross the network "
                "unencrypted; use https:// (Kanidm serves only TLS), or put a "
                "TLS-terminating proxy in front of it and use the proxy's https:// URL. "
                "Plain http is possible only to a test server on loopback "
                "(127.0.0.0/8, ::1, localhost)"
            )
        if not allow_insecure_http:
            raise BaseURLError(
                f"refusing plain http to {url.host}: tokens would travel unencrypted "
                "(pass allow_insecure_http=True for a loopback test server)"
            )
    prefix = url.raw_path.decode("ascii").rstrip("/")
    return url.copy_with(path="/", query=None, fragment=None), prefix


def was_sent(exc: BaseException) -> bool:
    """Whether the server may have received (and acted on) the request.

    Args:
        exc: the httpx exception, or our translation of it (its ``__cause__`` is read).

    Returns:
        ``False`` only when the connection was never established.
    """
    cause = exc.__cause__ if isinstance(exc, APIConnectionError) else exc
    return not isinstance(cause, _NOT_SENT)


@contextmanager
def translate_errors(request: httpx.Request) -> Iterator[None]:
    """Turn httpx transport errors raised inside the block into our exceptions.

    A request httpx cannot send at all (h11's "Illegal header value") is *swallowed*: the
    caller raises :func:`unsendable` after the block. h11's message quotes the header
    value, and the Authorization header holds the bearer token; an exception raised here
    would keep that message reachable as ``__context__``, one raised after the block
    does not.

    Args:
        request: the request being sent (method and URL go into the message).

    Raises:
        APITimeoutError: an httpx timeout.
        APIConnectionError: any other transport error (refused, reset, TLS, protocol).
    """
    method, url = request.method, str(request.url.copy_with(query=None))
    try:
        yield
    except httpx.LocalProtocolError:
        return  # the caller raises unsendable(request)
    except httpx.TimeoutException as exc:
        raise APITimeoutError(
            f"{method} {url}: no response in time ({type(exc).__name__})", method=method, url=url
        ) from exc
    except httpx.RequestError as exc:
        raise APIConnectionError(
            f"{method} {url}: no response ({type(exc).__name__}: {exc})", method=method, url=url
        ) from exc


def unsendable(request: httpx.Request) -> EncodeError:
    """The error for a request :func:`translate_errors` found httpx cannot send.

    Tokens are checked when a client is built, so this is a last line of defence; nothing
    of the request reached the server.
    """
    return EncodeError(
        f"{request.method} {request.url.copy_with(query=None)}: the request cannot be sent: "
        "a header or the body is not valid HTTP/1.1 (nothing was sent)"
    )


def ssl_verify(
    verify: bool = True, ca_path: str | None = None, *, verify_hostnames: bool = True
) -> ssl.SSLContext | bool:
    """The ``verify=`` value for an httpx client.

    Args:
        verify: check the certificate chain (turn off only for throwaway test servers).
        ca_path: a PEM file *added* to the default trust roots (a private Kanidm CA).
        verify_hostnames: check that the certificate names the host.

    Returns:
        ``True`` (httpx defaults), ``False``, or an :class:`ssl.SSLContext`.

    Raises:
        OSError: ``ca_path`` cannot be read.
        ssl.SSLError: ``ca_path`` is not a PEM certificate.
    """
    if not verify:
        return False
    if ca_path is None and verify_hostnames:
        return True
    context = ssl.create_default_context()
    if ca_path is not None:
        context.load_verify_locations(cafile=ca_path)
    if not verify_hostnames:
        context.check_hostname = False
    return context


def should_retry_status(status: int, body: str) -> bool:
    """Whether an idempotent read that got ``status`` may be retried.

    408, 429 and 5xx answers that are not Kanidm operation errors (a proxy's 502/503/504,
    an empty 500) are transient. A 500 carrying an operation-error variant is a data or
    permission answer and is final, except ``databaselockacquisitiontimeout``.

    Args:
        status: the HTTP status.
        body: the response body as text.

    Returns:
        ``True`` when a retry can help.
    """
    if status in (408, 429):
        return True
    if status < 500:
        return False
    variant, _ = parse_error_body(body)
    return variant is None or variant == "databaselockacquisitiontimeout"


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Read a ``Retry-After`` header (seconds or an HTTP date).

    Args:
        value: the header value.
        now: the current Unix time (for the date form).

    Returns:
        Seconds to wait, or ``None`` when absent, unreadable or unreasonable (over 60 s).
    """
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        seconds = parsed.timestamp() - now
    if seconds != seconds or seconds < 0 or seconds > _MAX_RETRY_AFTER:  # NaN, past, too far
        return None
    return seconds


def retry_delay(attempt: int, retry_after: float | None, jitter: float) -> float:
    """Seconds to wait before retry number ``attempt + 1``.

    Exponential (0.5 s, 1 s, 2 s, ... capped at 8 s) minus up to 25 % jitter, unless the
    server said how long to wait.

    Args:
        attempt: retries already made (0 before the first retry).
        retry_after: the parsed ``Retry-After``, if any.
        jitter: a number in ``[0, 1)`` (``random.random()``).

    Returns:
        The delay in seconds.
    """
    if retry_after is not None:
        return retry_after
    base = min(INITIAL_RETRY_DELAY * 2.0**attempt, MAX_RETRY_DELAY)
    return base * (1.0 - 0.25 * jitter)


def call_to_request(
    call: Call,
    base_url: httpx.URL,
    headers: httpx.Headers | None = None,
    *,
    prefix: str = "",
    asynchronous: bool = False,
) -> httpx.Request:
    """Build the httpx request for a flow's :class:`Call`.

    Args:
        call: what the flow wants.
        base_url: scheme, host and port (its path is replaced).
        headers: headers every request carries (User-Agent, Accept).
        prefix: the base URL's path prefix (a reverse proxy's), put before ``call.path``.
        asynchronous: the request is for httpx's async client (a streamed body is then
            an asynchronous iterable).

    Returns:
        The request, without an Authorization header. A streamed body
        (:class:`~._proto._encode_body.ChangeSetBody`) goes out in pieces with its exact
        ``Content-Length`` (httpx drops its chunked framing when one is given).
    """
    merged = httpx.Headers(headers)
    merged.update(dict(call.headers))
    body = call.body
    content: bytes | ChangeSetBody | AsyncChangeSetBody | None = body
    if isinstance(body, ChangeSetBody):
        merged["Content-Length"] = str(body.length)
        if asynchronous:
            content = AsyncChangeSetBody(body)
    return httpx.Request(
        call.method,
        base_url.copy_with(path=prefix + call.path, query=None, fragment=None),
        headers=merged,
        content=content,
    )


# --- limits on a response ---------------------------------------------------------------


def deadline_seconds(timeout: httpx.Timeout) -> float | None:
    """The overall time one request may take: the longest of its phase timeouts.

    httpx's timeouts are per phase and per socket operation: a server dripping one byte
    within every read timeout would hold a request for ever. The clients also bound the
    whole exchange (connect, send, wait, read the body) by this deadline.

    Args:
        timeout: the request's timeout.

    Returns:
        Seconds, or ``None`` when the read timeout is ``None`` (unlimited, by choice).
    """
    if timeout.read is None:
        return None
    phases = (timeout.connect, timeout.read, timeout.write, timeout.pool)
    return max(t for t in phases if t is not None)


class ResponseTooLargeError(ProtocolError):
    """A response body over ``max_response_bytes`` (a :class:`~kanidm_sync.ProtocolError`).

    Its own class only so that the apply flow can tell "the reply could not be read" (the
    request was sent: settle the outcome) from other protocol errors; not exported.
    """


def _too_large(response: httpx.Response, limit: int) -> ResponseTooLargeError:
    request = response.request
    return ResponseTooLargeError(
        f"{request.method} {request.url.copy_with(query=None)}: the response body is larger "
        f"than max_response_bytes={limit} (HTTP {response.status_code}); Kanidm's answers "
        "are far smaller: is this Kanidm? (raise the cap only for a very large admin listing)"
    )


def _declared_length(response: httpx.Response) -> int | None:
    try:
        return int(response.headers.get("content-length", ""))
    except ValueError:
        return None


def read_limited(response: httpx.Response, limit: int, deadline: float | None = None) -> bytes:
    """Read a streamed response body, refusing more than ``limit`` bytes (decoded).

    Args:
        response: a response from ``send(..., stream=True)`` (or one already read).
        limit: the size cap in bytes.
        deadline: a ``time.monotonic()`` instant after which reading stops.

    Returns:
        The body; ``response.content`` holds it too. The response is closed.

    Raises:
        ProtocolError: the body is larger than ``limit``.
        APITimeoutError: the deadline passed between two chunks.
    """
    try:
        content = response.content
    except httpx.ResponseNotRead:
        pass
    else:
        if len(content) > limit:
            raise _too_large(response, limit)
        return content
    try:
        declared = _declared_length(response)
        if declared is not None and declared > limit:
            raise _too_large(response, limit)
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > limit:
                raise _too_large(response, limit)
            chunks.append(chunk)
            _check_deadline(response, deadline)
        body = b"".join(chunks)
        # What httpx's own Response.read() stores: later .content / .text / .json() use it.
        response._content = body
        return body
    finally:
        response.close()


async def aread_limited(response: httpx.Response, limit: int) -> bytes:
    """The async :func:`read_limited` (the async clients bound time with a cancel scope).

    Args:
        response: a response from ``send(..., stream=True)`` (or one already read).
        limit: the size cap in bytes.

    Returns:
        The body; ``response.content`` holds it too. The response is closed.

    Raises:
        ProtocolError: the body is larger than ``limit``.
    """
    try:
        content = response.content
    except httpx.ResponseNotRead:
        pass
    else:
        if len(content) > limit:
            raise _too_large(response, limit)
        return content
    try:
        declared = _declared_length(response)
        if declared is not None and declared > limit:
            raise _too_large(response, limit)
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > limit:
                raise _too_large(response, limit)
            chunks.append(chunk)
        body = b"".join(chunks)
        response._content = body  # as in read_limited
        return body
    finally:
        await response.aclose()


def _check_deadline(response: httpx.Response, deadline: float | None) -> None:
    if deadline is not None and time.monotonic() > deadline:
        request = response.request
        raise APITimeoutError(
            f"{request.method} {request.url.copy_with(query=None)}: the response body was "
            "still arriving at the request's overall deadline",
            method=request.method,
            url=str(request.url.copy_with(query=None)),
        )


def reply_from_response(response: httpx.Response) -> Reply:
    """The pure :class:`Reply` for a response whose body has been read."""
    return Reply(
        status=response.status_code,
        body=response.content,
        headers={k.lower(): v for k, v in response.headers.items()},
    )


def log_response(response: httpx.Response) -> None:
    """Log the request line, status and Kanidm operation id at INFO; never a header."""
    request = response.request
    logger.info(
        'HTTP Request: %s %s "%d %s" opid=%s',
        request.method,
        request.url,
        response.status_code,
        response.reason_phrase,
        response.headers.get(OPID_HEADER, "-"),
    )
