"""The httpx boundary: error translation, defaults, TLS, retry math and request logging.

This module owns:

* the one place httpx exceptions become kanidm_sync exceptions (:func:`translate_errors`,
  always chained with ``from``), and the "was the request sent?" judgement that lost-reply
  recovery needs (:func:`was_sent`);
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
import logging
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

import httpx

from ._exceptions import APIConnectionError, APITimeoutError
from ._proto._flows import OPID_HEADER, Call, Reply
from ._proto._status import parse_error_body
from ._version import __version__

__all__ = [
    "APPLY_TIMEOUT",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_TIMEOUT",
    "INITIAL_RETRY_DELAY",
    "MAX_RETRY_DELAY",
    "USER_AGENT",
    "call_to_request",
    "log_response",
    "logger",
    "parse_retry_after",
    "reply_from_response",
    "retry_delay",
    "should_retry_status",
    "ssl_verify",
    "translate_errors",
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

# Transport errors raised before any byte of the request can have reached the server.
_NOT_SENT: Final = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
    httpx.ProxyError,
)


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

    Args:
        request: the request being sent (method and URL go into the message).

    Raises:
        APITimeoutError: an httpx timeout.
        APIConnectionError: any other transport error (refused, reset, TLS, protocol).
    """
    method, url = request.method, str(request.url)
    try:
        yield
    except httpx.TimeoutException as exc:
        raise APITimeoutError(
            f"{method} {url}: no response in time ({type(exc).__name__})", method=method, url=url
        ) from exc
    except httpx.RequestError as exc:
        raise APIConnectionError(
            f"{method} {url}: no response ({type(exc).__name__}: {exc})", method=method, url=url
        ) from exc


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
    call: Call, base_url: httpx.URL, headers: httpx.Headers | None = None
) -> httpx.Request:
    """Build the httpx request for a flow's :class:`Call`.

    Args:
        call: what the flow wants.
        base_url: scheme, host and port (any path is dropped: Kanidm's paths are absolute).
        headers: headers every request carries (User-Agent, Accept).

    Returns:
        The request, without an Authorization header.
    """
    merged = httpx.Headers(headers)
    merged.update(dict(call.headers))
    return httpx.Request(
        call.method,
        base_url.copy_with(path=call.path, query=None),
        headers=merged,
        content=call.body,
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
