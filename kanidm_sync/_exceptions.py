"""The whole error hierarchy of kanidm_sync.

Every exception the library raises on purpose derives from :class:`KanidmSyncError`.
Misuse (a wrong argument type, a closed client) raises Python builtins instead
(``TypeError``, ``ValueError``, ``RuntimeError``), as httpx and attrs do.

Rule: no message built here, or by any raiser, contains a secret (a token, a password
hash, a TOTP secret). Server bodies are kept as Kanidm sent them; Kanidm never echoes
the bearer token.

The tree::

    KanidmSyncError
    ├── ProtocolError                  the wire contract was broken
    │   ├── EncodeError                a value the protocol cannot express
    │   └── DecodeError                JSON that does not match the protocol; .errors
    ├── ValidationError                a ChangeSet failed local validation; .report
    ├── ConfigError                    a configuration file or value is wrong
    │   └── BaseURLError               a server URL the clients refuse (also a ValueError)
    ├── SourceError                    raised by source adapters; backend error as __cause__
    └── APIError                       talking to Kanidm went wrong
        ├── APIConnectionError         no response at all
        │   └── APITimeoutError        no response in time
        ├── NotAppliedError            an apply's outcome was checked: it did not commit
        ├── ApplyOutcomeUnknownError   an apply was sent, and whether it committed is unknown
        ├── LoginError                 /v1/auth denied, or no read-write session can be had
        └── APIStatusError             Kanidm answered with an error status
            ├── RequestRejectedError   the HTTP layer refused the body (400/405/413/415/422)
            ├── AuthenticationError    401, or a token of the wrong kind
            ├── PermissionDeniedError  403, or 500 "notauthorised"
            ├── NotFoundError          404
            ├── RequestTimeoutError    408: the server gave up (the apply may or may not have run)
            ├── StateConflictError     "invalidsyncstate": from_state is stale
            ├── DataError              Kanidm refused the content; nothing was applied
            │   ├── InvalidAttributeError      "invalidattribute" / "invalidattributename"
            │   ├── SchemaViolationError       "schemaviolation"
            │   ├── EmptyRequestError          "emptyrequest"
            │   ├── UniquenessError            409; .conflicting_attributes
            │   ├── InvalidEntryStateError     "invalidentrystate"
            │   ├── OwnershipError             "modifyassertionfailed"
            │   ├── CredentialImportError      plugin "credimport"
            │   ├── ReferentialIntegrityError  plugin "referentialintegrity", "referenceloop"
            │   ├── GidNumberRangeError        "pl0001gidoverlapssystemrange"
            │   └── SshPublicKeyError          "sc0001incomingsshpublickey"
            └── ServerError            any other 5xx
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ._types import JSONValue

if TYPE_CHECKING:
    from ._proto._report import ValidationReport
    from ._proto._state import SyncState
    from ._report import RunReport

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "ApplyOutcomeUnknownError",
    "AuthenticationError",
    "BaseURLError",
    "ConfigError",
    "CredentialImportError",
    "DataError",
    "DecodeError",
    "EmptyRequestError",
    "EncodeError",
    "GidNumberRangeError",
    "InvalidAttributeError",
    "InvalidEntryStateError",
    "KanidmSyncError",
    "LoginError",
    "NotAppliedError",
    "NotFoundError",
    "OwnershipError",
    "PermissionDeniedError",
    "ProtocolError",
    "ReferentialIntegrityError",
    "RequestRejectedError",
    "RequestTimeoutError",
    "SchemaViolationError",
    "ServerError",
    "SourceError",
    "SshPublicKeyError",
    "StateConflictError",
    "UniquenessError",
    "ValidationError",
]


class KanidmSyncError(Exception):
    """Root of every error kanidm_sync raises on purpose. Never raised directly.

    Attributes:
        run_report: when a :class:`~kanidm_sync.Runner` run raised it, that run's
            :class:`~kanidm_sync.RunReport` (outcome ``"failed"`` or ``"refused"``, with
            the diagnosis of a rejection); ``None`` otherwise.
    """

    run_report: RunReport | None = None


class ProtocolError(KanidmSyncError):
    """The wire contract was broken, by us (encode) or by the other side (decode)."""


class EncodeError(ProtocolError):
    """Raised when asked to send a value the protocol cannot express.

    For example a string holding a lone surrogate, which has no UTF-8 encoding.
    """


class DecodeError(ProtocolError):
    """Raised when JSON does not match the protocol.

    Decoders collect every problem before raising, so one error lists them all.

    Attributes:
        errors: ``(json_path, message)`` pairs, for example
            ``("$.entries[3].mail[0].value", "expected a string")``.
    """

    errors: tuple[tuple[str, str], ...]

    def __init__(self, errors: Sequence[tuple[str, str]]) -> None:
        self.errors = tuple(errors)
        super().__init__(self._render())

    def _render(self) -> str:
        count = len(self.errors)
        head = f"{count} problem{'s' if count != 1 else ''} decoding Kanidm sync JSON"
        lines = [f"  {path}: {message}" for path, message in self.errors]
        return "\n".join([head + ":", *lines])


class ValidationError(KanidmSyncError):
    """Raised when a ChangeSet fails local validation and the caller asked to raise.

    Attributes:
        report: the full :class:`~kanidm_sync.ValidationReport`, every problem in it.
    """

    report: ValidationReport

    def __init__(self, report: ValidationReport) -> None:
        self.report = report
        super().__init__(str(report))


class ConfigError(KanidmSyncError):
    """Raised when a configuration file or value is wrong (unknown key, bad type)."""


class BaseURLError(ConfigError, ValueError):
    """Raised when a server URL cannot be used: plain http off loopback, a password in it.

    The message never repeats a user name, password or query the URL carried. It is also a
    ``ValueError``, which is what the clients raised for a refused URL before.
    """


class SourceError(KanidmSyncError):
    """Raised by source adapters; the backend library's exception is the ``__cause__``."""


class APIError(KanidmSyncError):
    """Something went wrong talking to Kanidm.

    Attributes:
        message: the message (the same text as ``str(exc)``).
        method: the HTTP method of the request, when there was one.
        url: the request URL (never carries credentials).
    """

    message: str
    method: str | None
    url: str | None

    def __init__(self, message: str, *, method: str | None = None, url: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.method = method
        self.url = url


class APIConnectionError(APIError):
    """Raised when no response arrived (connection refused, reset, TLS failure).

    The httpx exception is chained as ``__cause__``.
    """


class APITimeoutError(APIConnectionError):
    """Raised when no response arrived in time."""


class NotAppliedError(APIError):
    """Raised when an apply provably did not commit.

    Kanidm answered 408 (its own 300 s limit: kanidmd drops the request before applying
    anything) and a re-read shows it is not in the ``to_state`` that was sent. Kanidm
    applies a ChangeSet atomically, so nothing of it is in Kanidm, and it is safe to retry
    from the state Kanidm now reports. The 408 is the ``__cause__``.

    A reply lost to a timeout, a reset or a proxy proves nothing: that is
    :class:`ApplyOutcomeUnknownError`.

    Attributes:
        state: the :data:`~kanidm_sync.SyncState` Kanidm reported.
    """

    state: SyncState | None

    def __init__(
        self,
        message: str,
        *,
        state: SyncState | None = None,
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(message, method=method, url=url)
        self.state = state


class ApplyOutcomeUnknownError(APIError):
    """Raised when an apply was sent and whether it committed cannot be known.

    The reply was lost (a timeout, a reset connection), or what came back was not
    Kanidm's answer (a redirect, a proxy's page or 502/504, a body over the size cap), and
    re-reading the state could not settle it: Kanidm is not (or not visibly) in the
    ``to_state`` sent, but it may still be applying the request and commit later. The
    ChangeSet is conditional on its ``from_state``, so sending it again is safe: Kanidm
    applies it at most once. A runner's next run re-reads the state and converges.
    The lost reply (or the unexpected answer) is the ``__cause__``.

    Attributes:
        state: the :data:`~kanidm_sync.SyncState` the re-read showed, or ``None`` when the
            re-read failed too.
    """

    state: SyncState | None

    def __init__(
        self,
        message: str,
        *,
        state: SyncState | None = None,
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(message, method=method, url=url)
        self.state = state


class LoginError(APIError):
    """Raised when an admin session cannot be had through ``/v1/auth``.

    Kanidm denied the credential (``/v1/auth`` answers 200 with ``denied``), the server
    asks for a second factor no callback supplies, or a write needs a read-write session
    that the given token cannot provide and no credentials allow a re-authentication.

    Attributes:
        reason: Kanidm's denied reason (``"incorrect password"``) or our own explanation.
        offered: the mechanisms or credentials the server offered, when that matters.
    """

    reason: str
    offered: tuple[str, ...]

    def __init__(
        self,
        message: str,
        *,
        reason: str = "",
        offered: Sequence[str] = (),
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(message, method=method, url=url)
        self.reason = reason
        self.offered = tuple(offered)


class APIStatusError(APIError):
    """Raised when Kanidm answers with a 4xx or 5xx status.

    Attributes:
        status_code: the HTTP status.
        operation_id: the ``X-KANIDM-OPID`` header, for correlation with server logs.
        body: the response body as text (Kanidm error bodies carry no secrets).
        variant: Kanidm's lowercase ``OperationError`` variant (``"invalidsyncstate"``),
            or ``None`` when the body was not an operation error (framework rejections).
        detail: the variant's payload (``"Unsupported attribute conversion - member"``,
            ``{"missingmustattribute": ["displayname"]}``), or ``None`` for unit variants.
    """

    status_code: int
    operation_id: str | None
    body: str
    variant: str | None
    detail: JSONValue

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        operation_id: str | None = None,
        body: str = "",
        variant: str | None = None,
        detail: JSONValue = None,
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(message, method=method, url=url)
        self.status_code = status_code
        self.operation_id = operation_id
        self.body = body
        self.variant = variant
        self.detail = detail


class RequestRejectedError(APIStatusError):
    """Raised when Kanidm's HTTP layer refused the request before any operation ran.

    400 (not JSON), 405 (wrong method), 413 (over the body limit, 32 MiB for a sync
    apply), 415 (not ``application/json``), 422 (JSON of the wrong shape, such as a
    ``null`` attribute). The body is plain text.
    """


class AuthenticationError(APIStatusError):
    """Raised on 401: no token, a bad, destroyed or revoked token.

    Also raised for 500 ``"serdejsonerror"`` on the sync endpoint, which is how kanidmd
    answers a valid Kanidm token that is not a sync token (spec §2.4).
    """


class PermissionDeniedError(APIStatusError):
    """Raised on 403, and on 500 ``"notauthorised"`` (finalise/terminate without rights).

    A read-only session trying to change a sync account also lands here.
    """


class NotFoundError(APIStatusError):
    """Raised on 404: no such sync account (or route)."""


class RequestTimeoutError(APIStatusError):
    """Raised on 408: the server gave up after its own 300 s limit.

    kanidmd drops a request it times out before applying anything (the apply itself runs
    without yielding), so an apply answered 408 did not commit; the clients still re-read
    the state (a proxy may have sent the 408) and raise :class:`NotAppliedError`.
    """


class StateConflictError(APIStatusError):
    """Raised on ``"invalidsyncstate"``: the ``from_state`` sent is not Kanidm's state.

    Someone else applied (another tool, or a second runner of the same sync account: a
    runner locks its ``state_path``, two runners with different ones do not see each
    other), an admin forced a refresh, or the cookie is stale. Re-read the state and
    build a new ChangeSet from it.
    """


class DataError(APIStatusError):
    """Kanidm refused the content of a request; the whole apply rolled back.

    The subclass says which check failed; ``variant`` and ``detail`` say exactly what
    Kanidm reported.
    """


class InvalidAttributeError(DataError):
    """Raised on ``"invalidattribute"`` / ``"invalidattributename"`` (HTTP 400).

    A value of the wrong shape, type or range; ``detail`` names the attribute.
    """


class SchemaViolationError(DataError):
    """Raised on ``"schemaviolation"`` (HTTP 400).

    An invalid name, control characters, a bad mail address, a missing must-attribute,
    a class combination Kanidm's schema refuses.
    """


class EmptyRequestError(DataError):
    """Raised on ``"emptyrequest"`` (HTTP 400): entries were sent but none had an externalId."""


class UniquenessError(DataError):
    """Raised on 409: a value that must be unique across Kanidm is already taken.

    Attributes:
        conflicting_attributes: the attribute names Kanidm reported (``("name",)``).
    """

    conflicting_attributes: tuple[str, ...]

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        conflicting_attributes: Sequence[str] = (),
        operation_id: str | None = None,
        body: str = "",
        variant: str | None = None,
        detail: JSONValue = None,
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(
            message,
            status_code=status_code,
            operation_id=operation_id,
            body=body,
            variant=variant,
            detail=detail,
            method=method,
            url=url,
        )
        self.conflicting_attributes = tuple(conflicting_attributes)


class InvalidEntryStateError(DataError):
    """Raised on ``"invalidentrystate"`` (HTTP 500).

    An entry id belongs to a recycled or tombstoned entry, a schema URN is not
    sync-allowed, or an entry carries an attribute the sync account does not own
    (including a yielded one).
    """


class OwnershipError(DataError):
    """Raised on ``"modifyassertionfailed"``: an entry id exists in Kanidm but is not ours."""


class CredentialImportError(DataError):
    """Raised on plugin ``"credimport"``: a password, unix password or TOTP import failed."""


class ReferentialIntegrityError(DataError):
    """Raised on plugin ``"referentialintegrity"`` or ``"referenceloop"``.

    A member or provider UUID refers to no entry in Kanidm.
    """


class GidNumberRangeError(DataError):
    """Raised on ``"pl0001gidoverlapssystemrange"``: a gidnumber in a reserved range."""


class SshPublicKeyError(DataError):
    """Raised on ``"sc0001incomingsshpublickey"``: an SSH public key did not parse."""


class ServerError(APIStatusError):
    """Raised on any other 5xx: a fault of the server, not of the request."""
