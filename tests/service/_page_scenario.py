"""A sync service's history for the status page tests: real runs over the in-memory Kanidm.

:func:`conflict_history` runs a :class:`~kanidm_sync.Runner` twice against a
:class:`~kanidm_sync.testing.FakeKanidm`: a first run that applies, then a run that Kanidm
refuses (a name taken by a native person) with a diagnosis; the second run also renames a
person's displayname to markup (:data:`HOSTILE`), which the page must show as text.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import pathlib
import uuid
from collections.abc import Callable, Sequence

import attrs
import httpx

from kanidm_sync import (
    ActiveState,
    Client,
    Entry,
    Mail,
    Person,
    RefreshState,
    Runner,
    RunnerStatus,
    RunReport,
    SyncState,
    Totp,
    UniquenessError,
)
from kanidm_sync._service_model import ServiceSnapshot, readiness
from kanidm_sync.adapters import FullImage, SourceBatch
from kanidm_sync.testing import FakeKanidm, ProvisionedSyncAccount

HOSTILE = "<img src=x onerror=alert(1)>"
"""A displayname that would run a script if the page did not escape it."""

SOURCE_COOKIE = b"ldap-position-SECRET-COOKIE-77"
"""The source's cookie: never shown on the page (only its length and digest)."""

PASSWORD_HASH = (
    "{SSHA512}AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7"
    "PD0+P1BFUFBFUlNBTFQ="
)
NEW_PASSWORD_HASH = (
    "{SSHA512}AQECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7"
    "PD0+P1BFUFBFUlNBTFQ="
)
TOTP_SECRET = "MTIzNDU2Nzg5MDEyMzQ1Njc4OTA="

NS = uuid.UUID("0c3f8a51-3b7e-4e0a-9c55-7a1d2e4b6f80")


def person(i: int, *, name: str | None = None, displayname: str | None = None) -> Person:
    """Person number ``i`` with a mail address."""
    return Person(
        id=uuid.uuid5(NS, f"person-{i}"),
        external_id=f"uid=user{i},ou=people,dc=example,dc=org",
        name=name or f"user{i}",
        displayname=displayname or f"User {i}",
        mail=[Mail(f"user{i}@example.org")],
    )


def with_secrets(p: Person) -> Person:
    """``p`` with a password hash and a TOTP secret to import."""
    return attrs.evolve(
        p,
        password_import=PASSWORD_HASH,
        totp_import=[Totp(external_id="phone", secret=TOTP_SECRET)],
    )


class ListSource:
    """A source returning its ``entries`` as a full image, always with :data:`SOURCE_COOKIE`."""

    def __init__(self, entries: Sequence[Entry]) -> None:
        self.entries: list[Entry] = list(entries)

    def fetch(self, state: SyncState) -> SourceBatch:
        return FullImage(entries=tuple(self.entries), cookie=SOURCE_COOKIE)


@attrs.define
class History:
    """What the runs left: the fake, the account, the runner and its reports (oldest first)."""

    fake: FakeKanidm
    account: ProvisionedSyncAccount
    runner: Runner
    reports: list[RunReport]
    http: httpx.Client

    @property
    def status(self) -> RunnerStatus:
        """The runner's status after the runs."""
        return self.runner.status

    def state(self) -> SyncState:
        """Kanidm's state now."""
        cookie = self.fake.cookie("hr")
        return RefreshState() if cookie is None else ActiveState(cookie)

    def close(self) -> None:
        """Close the HTTP client."""
        self.http.close()


def conflict_history(
    state_path: pathlib.Path,
    *,
    secrets: bool = False,
    observe: Callable[[RunnerStatus], None] | None = None,
) -> History:
    """Two runs: one applied, then a name conflict Kanidm refuses, with a diagnosis.

    Args:
        state_path: the runner's record file.
        secrets: give person 1 a password hash and a TOTP secret, and a new password
            hash in the second run (an attribute change the page lists).
        observe: called with the runner's status after each run (``StatusServer.observe``).
    """
    fake = FakeKanidm()
    account = fake.provision_sync_account("hr")
    http = httpx.Client(transport=fake.transport)
    client = Client(fake.url, token=account.token, http_client=http)
    first = person(1)
    source = ListSource([with_secrets(first) if secrets else first, person(2)])
    runner = Runner(client, source, state_path=state_path)
    reports = [runner.run_once()]
    if observe is not None:
        observe(runner.status)
    fake.store.add_person("carol")
    first = source.entries[0]
    if secrets:
        assert isinstance(first, Person)
        first = attrs.evolve(first, password_import=NEW_PASSWORD_HASH)
    source.entries = [
        first,
        person(2, displayname=HOSTILE),
        person(3, name="carol"),
    ]
    with contextlib.suppress(UniquenessError):  # the conflict: the report is on the runner
        runner.run_once()
    assert runner.last_report is not None
    assert runner.last_report.diagnosis is not None, runner.last_report.to_text()
    reports.append(runner.last_report)
    if observe is not None:
        observe(runner.status)
    return History(fake=fake, account=account, runner=runner, reports=reports, http=http)


def snapshot_of(
    history: History,
    *,
    now: _dt.datetime | None = None,
    interval: float = 300.0,
    **changes: object,
) -> ServiceSnapshot:
    """The snapshot a status server would take after ``history``'s runs."""
    now = now or _dt.datetime.now(_dt.UTC)
    started = history.reports[0].started_at
    status = attrs.evolve(history.status, next_run_at=now + _dt.timedelta(seconds=interval))
    ready, reason = readiness(
        status, now=now, interval=interval, ready_intervals=3.0, started_at=started
    )
    snap = ServiceSnapshot(
        account="hr",
        kanidm_url="https://idm.example.com",
        now=now,
        started_at=started,
        alive=True,
        ready=ready,
        ready_reason=reason,
        schedule=f"every {interval:g} s",
        interval=interval,
        kanidm_state=history.state(),
        status=status,
        runs=tuple(reversed(history.reports)),
    )
    return attrs.evolve(snap, **changes) if changes else snap
