"""Public API usage pinned with assert_type (checked by mypy; never run).

If a change makes one of these lines fail type checking, it breaks users' code.
"""

from __future__ import annotations

import uuid
from typing import assert_never, assert_type

import kanidm_sync as ks
from kanidm_sync.adapters import Delta, FullImage, RefreshRequired, SourceAdapter, SourceBatch


def describe(state: ks.SyncState) -> str:
    match state:
        case ks.RefreshState():
            return "refresh"
        case ks.ActiveState(cookie=cookie):
            assert_type(cookie, bytes)
            return cookie.hex()
        case _:
            assert_never(state)


def retention(mode: ks.RetentionMode) -> int:
    match mode:
        case ks.RetainIgnore():
            return 0
        case ks.RetainOnly(ids=ids) | ks.DeleteOnly(ids=ids):
            assert_type(ids, tuple[uuid.UUID, ...])
            return len(ids)
        case _:
            assert_never(mode)


def entries() -> ks.ChangeSet:
    person = ks.Person(
        id="9a7c1f52-4c7d-4b0e-8a43-1e4f6f1c2d10",
        external_id="uid=alice,ou=people,dc=example,dc=org",
        name="alice",
        displayname="Alice",
        mail=[ks.Mail("alice@example.org", primary=True)],
        posix=ks.PosixAccount(gidnumber=20001),
    )
    assert_type(person.id, uuid.UUID)
    assert_type(person.schemas, tuple[str, ...])
    group = ks.Group(id=uuid.uuid4(), external_id="cn=staff", name="staff", member=[person.id])
    assert_type(group.member, tuple[str, ...])
    changeset = ks.ChangeSet(
        from_state=ks.REFRESH, to_state=ks.ActiveState(b"1"), entries=[person, group]
    )
    assert_type(changeset.to_json(), bytes)
    assert_type(ks.ChangeSet.from_json(changeset.to_json()), ks.ChangeSet)
    report = changeset.validate()
    assert_type(report, ks.ValidationReport)
    assert_type(report.ok, bool)
    assert_type(report.errors, tuple[ks.Problem, ...])
    return changeset


def client_calls(client: ks.Client) -> None:
    assert_type(client.get_state(), ks.SyncState)
    assert_type(client.apply(entries()), None)
    assert_type(client.get_sync_account("ipasync"), ks.SyncAccountInfo | None)
    assert_type(client.list_sync_accounts(), list[ks.SyncAccountInfo])
    assert_type(client.generate_sync_token("ipasync"), str)


async def async_client_calls(client: ks.AsyncClient) -> None:
    assert_type(await client.get_state(), ks.SyncState)
    assert_type(await client.apply(entries()), None)
    assert_type(await client.list_sync_accounts(), list[ks.SyncAccountInfo])


class ListSource:
    """A custom adapter: structural typing, no base class."""

    def fetch(self, state: ks.SyncState) -> SourceBatch:
        if isinstance(state, ks.RefreshState):
            return FullImage(entries=[], cookie=b"1")
        return Delta(entries=[], cookie=state.cookie)


def runner_calls(client: ks.Client) -> None:
    source: SourceAdapter = ListSource()
    runner = ks.Runner(client, source, state_path="state.json")
    assert_type(runner.plan(), ks.Plan)
    assert_type(runner.run_once(allow_deletes=True), ks.RunReport)


def errors(exc: ks.KanidmSyncError) -> str:
    if isinstance(exc, ks.UniquenessError):
        assert_type(exc.conflicting_attributes, tuple[str, ...])
        return ",".join(exc.conflicting_attributes)
    if isinstance(exc, ks.APIStatusError):
        assert_type(exc.status_code, int)
        assert_type(exc.operation_id, str | None)
        return exc.variant or ""
    if isinstance(exc, ks.DecodeError):
        assert_type(exc.errors, tuple[tuple[str, str], ...])
    return str(exc)


_ = RefreshRequired
