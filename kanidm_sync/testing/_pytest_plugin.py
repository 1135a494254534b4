"""pytest fixtures for testing sync tools against the in-memory Kanidm.

Registered through the ``pytest11`` entry point ``kanidm_sync``, so installing kanidm-sync
makes these fixtures available everywhere; nothing else imports this module, which keeps
``kanidm_sync.testing`` free of pytest.

Fixtures:
    kanidm_fake: a fresh :class:`~kanidm_sync.testing.FakeKanidm` per test.
    kanidm_sync_account: a sync account named ``test_sync`` on ``kanidm_fake``, with its token
        (a :class:`~kanidm_sync.testing.ProvisionedSyncAccount`).
    kanidm_http_url: ``kanidm_fake`` served over real HTTP on loopback for the test; the
        base URL (``http://127.0.0.1:<port>``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from kanidm_sync.testing import FakeKanidm, ProvisionedSyncAccount

# kanidm_sync.testing is imported inside the fixtures, not here: pytest loads this plugin in
# every session of every project that has kanidm-sync installed, and only the tests that use
# a fixture should pay for (or be broken by) importing the double.

__all__ = ["kanidm_fake", "kanidm_http_url", "kanidm_sync_account"]


@pytest.fixture
def kanidm_fake() -> FakeKanidm:
    """A fresh in-memory Kanidm for one test."""
    from kanidm_sync.testing import FakeKanidm

    return FakeKanidm()


@pytest.fixture
def kanidm_sync_account(kanidm_fake: FakeKanidm) -> ProvisionedSyncAccount:
    """A sync account named ``test_sync`` on ``kanidm_fake``, with its token."""
    return kanidm_fake.provision_sync_account("test_sync")


@pytest.fixture
def kanidm_http_url(kanidm_fake: FakeKanidm) -> Iterator[str]:
    """``kanidm_fake`` served over real HTTP on loopback; yields the base URL."""
    from kanidm_sync.testing import serve

    with serve(kanidm_fake) as url:
        yield url
