"""An in-memory Kanidm for testing sync tools: :class:`FakeKanidm`.

``FakeKanidm`` accepts what kanidmd accepts and rejects what it rejects, with the same status
codes and bodies, for the sync-account API (spec §2) and the login endpoints. Use it in process
through ``httpx.MockTransport`` (``fake.transport``), or over real HTTP with :func:`serve` or
``python -m kanidm_sync.testing serve``. pytest fixtures (``kanidm_fake``,
``kanidm_sync_account``, ``kanidm_http_url``) come from a plugin that pytest loads through
an entry point; this package itself never imports pytest. See docs/testing.md.
"""

from __future__ import annotations

from ._auth import totp_code
from ._http import serve
from ._kanidmd import Kanidmd, KanidmdError
from ._server import FakeKanidm, ProvisionedSyncAccount, RecordedRequest
from ._store import Rejection, Store, StoredEntry
from ._target import FakeTarget, KanidmdTarget, KanidmTarget, TargetEntry

__all__ = [
    "FakeKanidm",
    "FakeTarget",
    "KanidmTarget",
    "Kanidmd",
    "KanidmdError",
    "KanidmdTarget",
    "ProvisionedSyncAccount",
    "RecordedRequest",
    "Rejection",
    "Store",
    "StoredEntry",
    "TargetEntry",
    "serve",
    "totp_code",
]

# Present public classes as kanidm_sync.testing.X (as the top-level package does).
for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type) and getattr(_obj, "__module__", "").startswith(
        "kanidm_sync.testing._"
    ):
        _obj.__module__ = "kanidm_sync.testing"
del _name, _obj
