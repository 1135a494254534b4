"""kanidm_sync: feed identity data from any source into Kanidm through a sync account.

Everything public is importable from here; modules with a leading underscore are private.
"""

from __future__ import annotations

from ._exceptions import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    ConfigError,
    CredentialImportError,
    DataError,
    DecodeError,
    EmptyRequestError,
    EncodeError,
    GidNumberRangeError,
    InvalidAttributeError,
    InvalidEntryStateError,
    KanidmSyncError,
    NotAppliedError,
    NotFoundError,
    OwnershipError,
    PermissionDeniedError,
    ProtocolError,
    ReferentialIntegrityError,
    RequestRejectedError,
    RequestTimeoutError,
    SchemaViolationError,
    ServerError,
    SourceError,
    SshPublicKeyError,
    StateConflictError,
    UniquenessError,
    ValidationError,
)
from ._proto._changeset import ChangeSet
from ._proto._entries import (
    SCHEMA_PREFIX,
    Entry,
    GenericEntry,
    Group,
    Mail,
    OAuth2Account,
    Person,
    PosixAccount,
    PosixGroup,
    SchemaUrn,
    ServiceAccount,
    SshPublicKey,
    Totp,
    TotpAlgorithm,
)
from ._proto._report import Problem, Severity, ValidationReport
from ._proto._state import (
    REFRESH,
    ActiveState,
    DeleteOnly,
    RefreshState,
    RetainIgnore,
    RetainOnly,
    RetentionMode,
    SyncState,
)
from ._types import JSONObject, JSONValue
from ._version import __version__

__all__ = [
    "REFRESH",
    "SCHEMA_PREFIX",
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "ActiveState",
    "AuthenticationError",
    "ChangeSet",
    "ConfigError",
    "CredentialImportError",
    "DataError",
    "DecodeError",
    "DeleteOnly",
    "EmptyRequestError",
    "EncodeError",
    "Entry",
    "GenericEntry",
    "GidNumberRangeError",
    "Group",
    "InvalidAttributeError",
    "InvalidEntryStateError",
    "JSONObject",
    "JSONValue",
    "KanidmSyncError",
    "Mail",
    "NotAppliedError",
    "NotFoundError",
    "OAuth2Account",
    "OwnershipError",
    "PermissionDeniedError",
    "Person",
    "PosixAccount",
    "PosixGroup",
    "Problem",
    "ProtocolError",
    "ReferentialIntegrityError",
    "RefreshState",
    "RequestRejectedError",
    "RequestTimeoutError",
    "RetainIgnore",
    "RetainOnly",
    "RetentionMode",
    "SchemaUrn",
    "SchemaViolationError",
    "ServerError",
    "ServiceAccount",
    "Severity",
    "SourceError",
    "SshPublicKey",
    "SshPublicKeyError",
    "StateConflictError",
    "SyncState",
    "Totp",
    "TotpAlgorithm",
    "UniquenessError",
    "ValidationError",
    "ValidationReport",
    "__version__",
]

# Present public classes as kanidm_sync.X rather than kanidm_sync._proto._x.X (httpx does
# the same), so reprs, docs and tracebacks show the name users import.
for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type) and getattr(_obj, "__module__", "").startswith("kanidm_sync._"):
        _obj.__module__ = "kanidm_sync"
del _name, _obj
