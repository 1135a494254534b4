"""An in-memory Kanidm for testing sync tools: :class:`FakeKanidm`.

``FakeKanidm`` accepts what kanidmd accepts and rejects what it rejects, with the same status
codes and bodies, for the sync-account API (spec §2) and the login endpoints. Use it in process
through ``httpx.MockTransport`` (``fake.transport``), or over real HTTP with :func:`serve` or
``python -m kanidm_sync.testing serve`` (which can also seed native entries and add latency).
Its state is ``fake.store`` (:class:`Store`): ``fake.store["alice"]`` is a
:class:`StoredEntry` or raises :class:`NoSuchEntryError`; ``fake.store.entry("alice")`` returns
``None`` instead. pytest fixtures (``kanidm_fake``, ``kanidm_sync_account``,
``kanidm_http_url``, ``kanidm_target``) come from a plugin that pytest loads through an entry
point; this package itself never imports pytest. Hypothesis strategies live in
:mod:`kanidm_sync.testing.strategies` (``pip install kanidm-sync[testing]``).

Example::

    import httpx
    from kanidm_sync.testing import FakeKanidm

    fake = FakeKanidm()
    fake.store.add_person("alice")  # a native person, e.g. to provoke a name conflict
    account = fake.provision_sync_account("hr_feed")  # a sync account and its token
    headers = {"Authorization": f"Bearer {account.token}"}
    with httpx.Client(transport=fake.transport, base_url=account.url, headers=headers) as http:
        assert "Refresh" == http.get("/scim/v1/Sync").json()  # your code under test here
    assert "alice" == fake.store["alice"].name

Documentation: docs/testing.md, online at
https://github.com/kanidm-sync/kanidm-sync/tree/main/docs/testing.md.
"""

from __future__ import annotations

from ._auth import totp_code
from ._http import serve
from ._kanidmd import Kanidmd, KanidmdError
from ._server import FakeKanidm, ProvisionedSyncAccount, RecordedRequest
from ._store import NoSuchEntryError, Rejection, Store, StoredEntry
from ._target import ClientOptions, FakeTarget, KanidmdTarget, KanidmTarget, TargetEntry

__all__ = [
    "ClientOptions",
    "FakeKanidm",
    "FakeTarget",
    "KanidmTarget",
    "Kanidmd",
    "KanidmdError",
    "KanidmdTarget",
    "NoSuchEntryError",
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
# `from __future__ import annotations` binds `annotations`; it is no public name (dir()).
del _name, _obj, annotations
