"""Fixtures for the real Samba AD DC tests: one domain per session, snapshots per test.

The session provisions EXAMPLE.TEST once (about 5-12 s), seeds it, and keeps a tar
snapshot of the stopped state; ``fresh_ad`` restores that snapshot before a test that
writes (about 0.5-1 s), so every test sees the same seeded domain and its assertions can
be exact. ``large_ad`` restores a second snapshot, built once on first use, holding a
group of 1,600 users.

Samba's LDAP ports are fixed (389/636), so a machine-wide lock serialises two test sessions
(or a session and bench/bench_ad.py) instead of letting them collide.

When Samba (or root, or python-ldap) is missing the tests are skipped with the reason
shown by ``-ra``; when ``CI=true`` they fail instead, so CI never passes by skipping.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterator

import pytest
import samba_dc as samba

LARGE_GROUP = "biggroup"
LARGE_COUNT = 1600


def _missing(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: the Samba AD tests must run in CI)", pytrace=False)
    pytest.skip(reason)


class Domain:
    """The session's Samba DC and its snapshots."""

    def __init__(self, dc: samba.SambaDC, snapshots: pathlib.Path) -> None:
        self.dc = dc
        self.snapshots = snapshots
        self.seeded = snapshots / "seeded.tar"
        self.large = snapshots / "large.tar"

    def reset(self, snapshot: pathlib.Path) -> samba.SambaDC:
        """Stop, restore ``snapshot``, start."""
        self.dc.stop()
        self.dc.restore(snapshot)
        self.dc.start()
        return self.dc


@pytest.fixture(scope="session")
def ad_domain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Domain]:
    """The session's seeded Samba AD DC (provisioned once)."""
    reason = samba.missing_reason()
    if reason is not None:
        _missing(reason)
    try:
        import ldap  # noqa: F401
    except ImportError:
        _missing("python-ldap is not installed (pip install -e '.[ldap]')")
    with samba.port_lock() as locked:
        if not locked:
            _missing("another test session held the Samba AD DC lock for 10 minutes")
        if samba.ldap_answers():
            _missing("something else already listens on 127.0.0.1:389, which Samba needs")
        dc = samba.SambaDC(tmp_path_factory.mktemp("samba-ad"))
        snapshots = tmp_path_factory.mktemp("samba-ad-snapshots")
        try:
            dc.start()  # provisions first
            samba.seed(dc)
            dc.stop()
            domain = Domain(dc, snapshots)
            dc.snapshot(domain.seeded)
            domain.reset(domain.seeded)
            yield domain
        finally:
            dc.stop()


@pytest.fixture
def fresh_ad(ad_domain: Domain) -> samba.SambaDC:
    """The seeded domain, restored from its snapshot: the test may write to it."""
    return ad_domain.reset(ad_domain.seeded)


@pytest.fixture
def large_ad(ad_domain: Domain) -> samba.SambaDC:
    """The seeded domain plus ``OU=Bulk`` with 1,600 users, all in group ``biggroup``."""
    if not ad_domain.large.exists():
        dc = ad_domain.dc
        dc.stop()
        dc.restore(ad_domain.seeded)
        ldif = ad_domain.snapshots / "large.ldif"
        samba.write_bulk_ldif(ldif, LARGE_COUNT, big_group=LARGE_GROUP)
        dc.ldbadd(ldif)
        dc.snapshot(ad_domain.large)
    return ad_domain.reset(ad_domain.large)
