"""kanidm_sync: feed identity data from any source into Kanidm through a sync account.

Everything public is importable from here; modules with a leading underscore are private.
"""

from __future__ import annotations

from ._account import SyncAccount
from ._auth import ClientConfig, KanidmAuth, load_cached_token, load_client_config
from ._baseline import source_state
from ._chunk import ChunkingError
from ._client import AsyncClient, Client
from ._diagnose import Diagnosis, Suspect
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
    LoginError,
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
from ._guards import DeletionGuardError, GuardError, Guards, SourceGuardError
from ._lock import ConcurrentRunError
from ._plan_model import Action, EntryChange, Plan
from ._proto._admin import SyncAccountInfo, TokenInfo
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
from ._report import Progress, RunOutcome, RunReport
from ._rules import EntryPredicate, Remap, Rules
from ._runner import AsyncRunner, ProgressCallback, Runner, StalePlanError
from ._schedule import RunnerStatus, Schedule
from ._types import JSONObject, JSONValue
from ._version import __version__

__all__ = [
    "REFRESH",
    "SCHEMA_PREFIX",
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "Action",
    "ActiveState",
    "AsyncClient",
    "AsyncRunner",
    "AuthenticationError",
    "ChangeSet",
    "ChunkingError",
    "Client",
    "ClientConfig",
    "ConcurrentRunError",
    "ConfigError",
    "CredentialImportError",
    "DataError",
    "DecodeError",
    "DeleteOnly",
    "DeletionGuardError",
    "Diagnosis",
    "EmptyRequestError",
    "EncodeError",
    "Entry",
    "EntryChange",
    "EntryPredicate",
    "GenericEntry",
    "GidNumberRangeError",
    "Group",
    "GuardError",
    "Guards",
    "InvalidAttributeError",
    "InvalidEntryStateError",
    "JSONObject",
    "JSONValue",
    "KanidmAuth",
    "KanidmSyncError",
    "LoginError",
    "Mail",
    "NotAppliedError",
    "NotFoundError",
    "OAuth2Account",
    "OwnershipError",
    "PermissionDeniedError",
    "Person",
    "Plan",
    "PosixAccount",
    "PosixGroup",
    "Problem",
    "Progress",
    "ProgressCallback",
    "ProtocolError",
    "ReferentialIntegrityError",
    "RefreshState",
    "Remap",
    "RequestRejectedError",
    "RequestTimeoutError",
    "RetainIgnore",
    "RetainOnly",
    "RetentionMode",
    "Rules",
    "RunOutcome",
    "RunReport",
    "Runner",
    "RunnerStatus",
    "Schedule",
    "SchemaUrn",
    "SchemaViolationError",
    "ServerError",
    "ServiceAccount",
    "Severity",
    "SourceError",
    "SourceGuardError",
    "SshPublicKey",
    "SshPublicKeyError",
    "StalePlanError",
    "StateConflictError",
    "Suspect",
    "SyncAccount",
    "SyncAccountInfo",
    "SyncState",
    "TokenInfo",
    "Totp",
    "TotpAlgorithm",
    "UniquenessError",
    "ValidationError",
    "ValidationReport",
    "__version__",
    "load_cached_token",
    "load_client_config",
    "source_state",
]

# Present public classes as kanidm_sync.X rather than kanidm_sync._proto._x.X (httpx does
# the same), so reprs, docs and tracebacks show the name users import.
for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type) and getattr(_obj, "__module__", "").startswith("kanidm_sync._"):
        _obj.__module__ = "kanidm_sync"
del _name, _obj
