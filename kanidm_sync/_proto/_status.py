"""Kanidm error bodies, HTTP statuses and exception classes: one table, used by both sides.

Pure: no httpx, no I/O. The clients use :func:`error_from_response` to turn a status and a
body into an exception; the test double uses :class:`OperationError` to render exactly the
body and status kanidmd would send. Because both read :data:`ERROR_TABLE`, a variant can
never map to one status in the double and another in the client.

It also says what a *success* looks like (:func:`success_problem`): kanidmd answers every
successful call of this protocol with 200 and a JSON body (``axum::Json``: ``Content-Type:
application/json``; ``null`` for the calls that return nothing; spec §2.1; kanidm:
server/core/src/https/v1_scim.rs). A redirect, a 201/204 or a 200 HTML page came from
something else (a proxy, a captive portal, a wrong URL) and is not counted as success.

Kanidm's ``OperationError`` is serialised by serde with ``rename_all = "lowercase"``:
unit variants are bare strings (``"invalidsyncstate"``), data variants one-key objects
(``{"invalidattribute": "Unsupported attribute conversion - member"}``). Status mapping
is kanidm: server/core/src/https/errors.rs; everything it does not list is 500 (spec §2.1.1).
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Mapping
from typing import Final

import attrs

from .._exceptions import (
    APIStatusError,
    AuthenticationError,
    CredentialImportError,
    DataError,
    EmptyRequestError,
    GidNumberRangeError,
    InvalidAttributeError,
    InvalidEntryStateError,
    NotFoundError,
    OwnershipError,
    PermissionDeniedError,
    ReferentialIntegrityError,
    RequestRejectedError,
    RequestTimeoutError,
    SchemaViolationError,
    ServerError,
    SshPublicKeyError,
    StateConflictError,
    UniquenessError,
)
from .._types import JSONValue

__all__ = [
    "ERROR_TABLE",
    "UNIQUENESS_MESSAGE",
    "ErrorSpec",
    "OperationError",
    "error_from_response",
    "is_kanidm_error",
    "parse_error_body",
    "redact_url",
    "success_problem",
]


@attrs.frozen
class ErrorSpec:
    """How one Kanidm error variant travels: its HTTP status and our exception class.

    Attributes:
        variant: the lowercase variant (``"invalidsyncstate"``); for plugin errors
            ``"plugin/<inner>"`` (``"plugin/credimport"``).
        status: the HTTP status kanidmd answers with.
        exception: the exception class the clients raise.
        hint: one line telling the operator what to do, or ``""``.
    """

    variant: str
    status: int
    exception: type[APIStatusError]
    hint: str = ""


def _spec(variant: str, status: int, exc: type[APIStatusError], hint: str = "") -> ErrorSpec:
    return ErrorSpec(variant=variant, status=status, exception=exc, hint=hint)


ERROR_TABLE: Final[Mapping[str, ErrorSpec]] = {
    s.variant: s
    for s in (
        _spec(
            "notauthenticated",
            401,
            AuthenticationError,
            "the token is missing, destroyed or revoked",
        ),
        _spec("sessionexpired", 401, AuthenticationError, "log in again"),
        _spec("accessdenied", 403, PermissionDeniedError),
        _spec("systemprotectedobject", 403, PermissionDeniedError),
        _spec("nomatchingentries", 404, NotFoundError),
        _spec("emptyrequest", 400, EmptyRequestError, "give every entry an external id"),
        _spec("invalidattribute", 400, InvalidAttributeError),
        _spec("invalidattributename", 400, InvalidAttributeError),
        _spec("schemaviolation", 400, SchemaViolationError),
        _spec("passwordquality", 400, DataError),
        _spec("cu0003webauthnusernotverified", 400, DataError),
        _spec("vl0001valuesshpublickeystring", 400, SshPublicKeyError),
        _spec(
            "attributeuniqueness",
            409,
            UniquenessError,
            "exclude or remap the entry whose value collides",
        ),
        _spec(
            "invalidsyncstate",
            500,
            StateConflictError,
            "re-read the sync state; if Kanidm says Refresh, send a full refresh. Another "
            "tool or runner applied meanwhile? Two runners of one sync account overwrite "
            "each other: give each account one runner (a runner's state_path is locked)",
        ),
        _spec(
            "invalidentrystate",
            500,
            InvalidEntryStateError,
            "remap a recycled entry id, or stop sending an attribute the account does not own",
        ),
        _spec(
            "modifyassertionfailed",
            500,
            OwnershipError,
            "an entry id exists in Kanidm but is not this account's: exclude or remap it",
        ),
        _spec("notauthorised", 500, PermissionDeniedError),
        _spec(
            "serdejsonerror",
            500,
            AuthenticationError,
            "on the sync endpoint this means the token is not a sync token",
        ),
        _spec("missingclass", 500, DataError),
        _spec("valuedenyname", 500, DataError, "the name is on Kanidm's deny list: remap it"),
        _spec("sc0001incomingsshpublickey", 500, SshPublicKeyError),
        _spec(
            "pl0001gidoverlapssystemrange",
            500,
            GidNumberRangeError,
            "remap the gidnumber out of Kanidm's reserved ranges",
        ),
        _spec("referenceloop", 500, ReferentialIntegrityError),
        _spec("plugin/credimport", 500, CredentialImportError),
        _spec("plugin/referentialintegrity", 500, ReferentialIntegrityError),
        _spec("databaselockacquisitiontimeout", 500, ServerError, "retry later"),
        # Login and re-authentication (kanidm-auth.md §1.6, §2.3).
        _spec(
            "invalidauthstate",
            500,
            AuthenticationError,
            "the login handshake was lost: start again from init2",
        ),
        _spec(
            "invalidsessionstate",
            500,
            AuthenticationError,
            "the login handshake expired or reached another server: start again",
        ),
        _spec(
            "sessionmaynotreauth",
            500,
            AuthenticationError,
            "a read-write login cannot re-authenticate: log in again",
        ),
        _spec(
            "invalidstate",
            500,
            AuthenticationError,
            "an API token cannot re-authenticate (or the session is not recorded yet)",
        ),
    )
}
"""Every Kanidm error variant the sync protocol can produce (spec §2.1.1, §2.4, §4.9)."""

UNIQUENESS_MESSAGE: Final = "Attribute uniqueness error"

# Framework rejections carry text bodies and no variant (spec §2.1.1 a).
_REJECTION_STATUSES: Final = frozenset({400, 405, 413, 415, 422})


def _table_key(variant: str, detail: JSONValue) -> str:
    if variant == "plugin" and isinstance(detail, Mapping) and len(detail) == 1:
        return "plugin/" + next(iter(detail))
    return variant


@attrs.frozen
class OperationError:
    """A Kanidm ``OperationError`` value, as kanidmd serialises it.

    Attributes:
        variant: lowercase variant name, such as ``"invalidattribute"``.
        detail: the payload of a data variant, ``None`` for a unit variant.
    """

    variant: str
    detail: JSONValue = None

    @property
    def status(self) -> int:
        """The HTTP status kanidmd answers this error with."""
        spec = ERROR_TABLE.get(_table_key(self.variant, self.detail))
        return spec.status if spec is not None else 500

    def to_json(self) -> JSONValue:
        """The JSON body kanidmd sends (the 409 body is special-cased as kanidmd does)."""
        if self.variant == "attributeuniqueness":
            attrs_ = list(self.detail) if isinstance(self.detail, list | tuple) else []
            return {"error": UNIQUENESS_MESSAGE, "conflicting_attributes": attrs_}
        if self.detail is None:
            return self.variant
        return {self.variant: self.detail}

    def body(self) -> bytes:
        """The exact response body bytes (compact JSON)."""
        return json.dumps(self.to_json(), separators=(",", ":"), ensure_ascii=False).encode()


def parse_error_body(body: str) -> tuple[str | None, JSONValue]:
    """Read a Kanidm error body into ``(variant, detail)``.

    Args:
        body: the response body as text.

    Returns:
        ``(variant, detail)``; ``(None, None)`` when the body is not an operation error
        (plain-text framework rejections, empty bodies). The 409 body yields
        ``("attributeuniqueness", [attribute names])``.
    """
    try:
        value: object = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nested too deeply to be Kanidm's
        return None, None
    if isinstance(value, str):
        return value, None
    if isinstance(value, dict):
        if value.get("error") == UNIQUENESS_MESSAGE:
            conflicting = value.get("conflicting_attributes")
            names = (
                [n for n in conflicting if isinstance(n, str)]
                if isinstance(conflicting, list)
                else []
            )
            return "attributeuniqueness", names
        if len(value) == 1:
            ((key, detail),) = value.items()
            return str(key), _as_json(detail)
    return None, None


def _as_json(value: object) -> JSONValue:
    # json.loads output is already JSON; this narrows the type without copying.
    if value is None or isinstance(value, str | int | float | bool | list | dict):
        return value
    return str(value)


def _describe(variant: str | None, detail: JSONValue, status: int, body: str) -> str:
    if variant is None:
        text = body.strip().splitlines()[0][:300] if body.strip() else "(empty body)"
        return f"HTTP {status}: {text}"
    if detail is None:
        return f"HTTP {status}: {variant}"
    return f"HTTP {status}: {variant}: {json.dumps(detail, ensure_ascii=False)}"


def error_from_response(
    status: int,
    body: str,
    *,
    operation_id: str | None = None,
    method: str | None = None,
    url: str | None = None,
) -> APIStatusError:
    """Build the exception for an error response (the one status->exception table).

    Args:
        status: the HTTP status (>= 400).
        body: the response body as text.
        operation_id: the ``X-KANIDM-OPID`` header, if any.
        method: the request method, for the message.
        url: the request URL, for the message.

    Returns:
        An instance of the matching :class:`~kanidm_sync.APIStatusError` subclass.
    """
    variant, detail = parse_error_body(body)
    spec = ERROR_TABLE.get(_table_key(variant, detail)) if variant is not None else None
    exc_class: type[APIStatusError]
    if spec is not None:
        exc_class = spec.exception
    elif status == 401:
        exc_class = AuthenticationError
    elif status == 403:
        exc_class = PermissionDeniedError
    elif status == 404:
        exc_class = NotFoundError
    elif status == 408:
        exc_class = RequestTimeoutError
    elif status == 409:
        exc_class = UniquenessError
    elif variant is None and status in _REJECTION_STATUSES:
        exc_class = RequestRejectedError
    elif status >= 500 and variant is None:
        exc_class = ServerError
    elif variant is not None:
        exc_class = DataError
    else:
        exc_class = APIStatusError
    message = _describe(variant, detail, status, body)
    if spec is not None and spec.hint:
        message += f" (hint: {spec.hint})"
    common = {
        "status_code": status,
        "operation_id": operation_id,
        "body": body,
        "variant": variant,
        "detail": detail,
        "method": method,
        "url": url,
    }
    if exc_class is UniquenessError:
        names = [n for n in detail if isinstance(n, str)] if isinstance(detail, list) else []
        return UniquenessError(message, conflicting_attributes=names, **common)  # type: ignore[arg-type]  # common holds exactly the keyword arguments
    return exc_class(message, **common)  # type: ignore[arg-type]  # common holds exactly the keyword arguments


def is_kanidm_error(status: int, body: str) -> bool:
    """Whether an error reply can be Kanidm's own answer about the request.

    kanidmd's 5xx answers always carry an operation error; a 5xx without one (a proxy's
    502/503/504, an empty 500) says nothing about what happened to the request.

    Args:
        status: the HTTP status (>= 400).
        body: the response body as text.

    Returns:
        ``False`` for a 5xx whose body is not a Kanidm operation error.
    """
    return status < 500 or parse_error_body(body)[0] is not None


def redact_url(text: str) -> str:
    """A URL with its user name, password, query and fragment left out, for messages.

    Args:
        text: an absolute or relative URL (a ``Location`` header, a configured base URL).

    Returns:
        ``scheme://host[:port]/path`` (or the bare path), with ``***@`` where credentials
        were; ``"(unreadable)"`` when it does not parse.
    """
    try:
        parts = urllib.parse.urlsplit(text.strip())
        host = parts.hostname
        port = parts.port
    except ValueError:
        return "(unreadable)"
    netloc = ""
    if parts.netloc:
        shown = f"[{host}]" if host and ":" in host else host or ""
        netloc = ("***@" if "@" in parts.netloc else "") + shown
        if port is not None:
            netloc += f":{port}"
    path = urllib.parse.quote(parts.path, safe="/%:@!$&'()*+,;=-._~")
    return urllib.parse.urlunsplit((parts.scheme, netloc, path, "", ""))[:300]


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def success_problem(
    status: int, content_type: str | None, location: str | None = None
) -> str | None:
    """Why a reply below 400 is not a Kanidm success, or ``None`` when it is one.

    Args:
        status: the HTTP status (< 400).
        content_type: the ``Content-Type`` header.
        location: the ``Location`` header of a redirect.

    Returns:
        A sentence for the :class:`~kanidm_sync.ProtocolError`, never holding credentials
        or a query the redirect target carried.
    """
    if 300 <= status < 400:
        where = redact_url(location) if location else "nowhere (no Location header)"
        return (
            f"HTTP {status}: a redirect to {where}, not followed; Kanidm's API never "
            "redirects: check the URL (https://, the host, a proxy's path prefix)"
        )
    if status != 200:
        return f"HTTP {status}: Kanidm answers 200 on success; this answer is not Kanidm's"
    media = _media_type(content_type)
    if media != "application/json":
        shown = repr(media[:60]) if media else "none"
        return (
            f"HTTP 200 with Content-Type {shown}, not application/json: not Kanidm's answer "
            "(a proxy's or a portal's page?)"
        )
    return None
