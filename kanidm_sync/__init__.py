"""kanidm_sync: feed identity data from any source into Kanidm through a sync account.

A typed SDK for Kanidm's sync-account protocol: an LDAP or FreeIPA directory, Active
Directory, an HR export or any other source owns a set of persons, groups and service
accounts in Kanidm, and sends Kanidm what changed since the state Kanidm last stored.

Main entry points (everything public is importable from here; modules with a leading
underscore are private):

* :class:`SyncAccount`, :class:`Client`, :class:`AsyncClient`: read Kanidm's
  :class:`SyncState` (``get_state()``) and apply a :class:`ChangeSet` (``apply()``),
  atomically; the admin API of sync accounts (create, tokens, finalise, terminate).
* :class:`ChangeSet` of :class:`Person`, :class:`Group`, :class:`ServiceAccount`, ...:
  frozen, typed values written byte for byte as Kanidm's own tools write them;
  ``ChangeSet.validate()`` reports at once everything Kanidm would reject.
* :class:`Runner` and :class:`AsyncRunner`: one safe run of a source adapter
  (:mod:`kanidm_sync.adapters`: LDAP, FreeIPA, Active Directory, CSV/JSON/LDIF files, or
  your own) with :class:`Rules`, :class:`Guards`, a :class:`Plan`, conflict diagnosis and a
  :class:`RunReport`.
* :class:`StatusServer`: health, readiness, Prometheus metrics and a status page for a
  runner's ``run_forever`` loop.
* :mod:`kanidm_sync.testing`: ``FakeKanidm``, an in-memory Kanidm for your tests, and
  pytest fixtures.
* The ``kanidm-sync`` command line; ``kanidm-sync demo`` shows the whole life of a sync
  account offline.

Every error is a :class:`KanidmSyncError`. The library logs to the ``kanidm_sync`` logger
and attaches only a ``logging.NullHandler``: configure logging (``logging.basicConfig()``)
to see its lines.

Example::

    import kanidm_sync as ks

    account = ks.SyncAccount.from_env()  # KANIDM_URL, KANIDM_SYNC_TOKEN(_FILE)
    with account.client() as kanidm:
        changes = ks.ChangeSet(
            from_state=kanidm.get_state(),
            to_state=ks.ActiveState(b"hr-export-1"),
            entries=[
                ks.Person(id="9a7c1f52-4c7d-4b0e-8a43-1e4f6f1c2d10",
                          external_id="uid=alice,ou=people,dc=example,dc=org",
                          name="alice", displayname="Alice Example"),
            ],
        )
        changes.validate().raise_for_errors()  # every problem Kanidm would reject
        kanidm.apply(changes)  # all of it, or nothing

Documentation: https://github.com/kanidm-sync/kanidm-sync/tree/main/docs (the quickstart,
concepts, API, adapters, runner, operations and testing pages; the source distribution
carries them in ``docs/``), and ``help()`` on any public name.
"""

from __future__ import annotations

import logging as _logging

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
    ApplyOutcomeUnknownError,
    AuthenticationError,
    BaseURLError,
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
from ._record import RecordWriteError
from ._report import Progress, RunOutcome, RunReport
from ._rules import EntryPredicate, Remap, Rules
from ._runner import AsyncRunner, ProgressCallback, Runner, StalePlanError
from ._schedule import RunnerStatus, Schedule
from ._status_server import StatusServer
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
    "ApplyOutcomeUnknownError",
    "AsyncClient",
    "AsyncRunner",
    "AuthenticationError",
    "BaseURLError",
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
    "RecordWriteError",
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
    "StatusServer",
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
# `from __future__ import annotations` binds `annotations`; it is no public name (dir()).
del _name, _obj, annotations

# A library attaches no handler of its own but a NullHandler: without it, Python's
# `logging.lastResort` prints WARNING and ERROR lines to stderr when the application has not
# configured logging, so a diagnosis the caller already handles through the exception would
# show twice (scripts, notebooks). Handlers the application configures still see every line.
_logging.getLogger("kanidm_sync").addHandler(_logging.NullHandler())
