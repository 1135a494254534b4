"""Values changing hands, against the double and a real kanidmd (the ``kanidm_target`` fixture).

kanidmd 1.11.1 checks uniqueness against what it holds before each request; these runs
converge because the runner releases the values first (docs/runner.md, "Swaps"). The
``[kanidmd]`` variants run when a real kanidmd is given (``pytest --kanidmd PATH``).
"""

from __future__ import annotations

import pathlib
import uuid
from collections.abc import Iterator

import attrs
import pytest

from kanidm_sync import Client, Entry, Group, Mail, Person, PosixAccount, PosixGroup, Runner
from kanidm_sync.adapters import FullImage, SourceBatch
from kanidm_sync.testing import KanidmTarget, ProvisionedSyncAccount


class Source:
    """A full image with a new cookie whenever it changes; fresh UUIDs per test."""

    def __init__(self) -> None:
        self.ns = uuid.uuid4()  # a real server keeps recycled ids: never reuse one
        self.entries: list[Entry] = []
        self.generation = 0
        self._last: tuple[Entry, ...] | None = None

    def id_of(self, key: str) -> uuid.UUID:
        return uuid.uuid5(self.ns, key)

    def person(self, key: str, name: str, *, gid: int | None = None) -> Person:
        return Person(
            id=self.id_of(key),
            external_id=f"uid={key},ou=people,dc=example,dc=org",
            name=name,
            displayname=key.title(),
            mail=[Mail(f"{key}@example.org")],
            posix=PosixAccount(gidnumber=gid) if gid is not None else None,
        )

    def fetch(self, state: object) -> SourceBatch:
        now = tuple(self.entries)
        if now != self._last:
            self.generation += 1
            self._last = now
        return FullImage(entries=now, cookie=b"swap-%d" % self.generation)


@pytest.fixture
def account(kanidm_target: KanidmTarget) -> ProvisionedSyncAccount:
    return kanidm_target.provision_sync_account("swap_sync")


@pytest.fixture
def sync(kanidm_target: KanidmTarget, account: ProvisionedSyncAccount) -> Iterator[Client]:
    with Client(account.url, token=account.token, **kanidm_target.client_options()) as client:
        yield client


def names(target: KanidmTarget, source: Source, keys: list[str]) -> dict[str, str | None]:
    out = {}
    for key in keys:
        found = target.entry(source.id_of(key))
        out[key] = None if found is None else found.name
    return out


def test_rotation_of_three_names_and_a_chain(
    kanidm_target: KanidmTarget, sync: Client, tmp_path: pathlib.Path
) -> None:
    """Three entries rotate their names while a fourth hands its own to a new person."""
    s = Source()
    ann, ben = s.person("ann", "swpann"), s.person("ben", "swpben")
    staff = Group(id=s.id_of("staff"), external_id="cn=swpstaff", name="swpstaff")
    ops = Group(id=s.id_of("ops"), external_id="cn=swpops", name="swpops")
    s.entries = [ann, ben, staff, ops]
    runner = Runner(sync, s, state_path=tmp_path / "record.json")
    assert runner.run_once().ok
    s.entries = [
        attrs.evolve(ann, name="swpben"),
        attrs.evolve(ben, name="swpstaff"),
        attrs.evolve(staff, name="swpann", member=[str(ann.external_id)]),
        attrs.evolve(ops, name="swpops2"),
        s.person("cid", "swpops"),
    ]
    report = runner.run_once()
    assert report.ok, report.error
    assert {
        "ann": "swpben",
        "ben": "swpstaff",
        "staff": "swpann",
        "ops": "swpops2",
        "cid": "swpops",
    } == names(kanidm_target, s, ["ann", "ben", "staff", "ops", "cid"])
    group = kanidm_target.entry(s.id_of("staff"))
    assert group is not None
    assert (str(s.id_of("ann")),) == group.get("member")
    assert "nothing-to-do" == runner.run_once().outcome


def test_mails_gidnumbers_and_external_ids_traded(
    kanidm_target: KanidmTarget, sync: Client, tmp_path: pathlib.Path
) -> None:
    """Two persons and two POSIX groups trade every other unique value kanidmd checks."""
    s = Source()
    a, b = s.person("dan", "swpdan", gid=31001), s.person("eve", "swpeve", gid=31002)
    g1 = Group(
        id=s.id_of("g1"), external_id="cn=swpg1", name="swpg1", posix=PosixGroup(gidnumber=31011)
    )
    g2 = Group(
        id=s.id_of("g2"), external_id="cn=swpg2", name="swpg2", posix=PosixGroup(gidnumber=31012)
    )
    s.entries = [a, b, g1, g2]
    runner = Runner(sync, s, state_path=tmp_path / "record.json")
    assert runner.run_once().ok
    s.entries = [
        attrs.evolve(a, external_id=b.external_id, mail=b.mail, posix=b.posix),
        attrs.evolve(b, external_id=a.external_id, mail=a.mail, posix=a.posix),
        attrs.evolve(g1, posix=PosixGroup(gidnumber=31012)),
        attrs.evolve(g2, posix=PosixGroup(gidnumber=31011)),
    ]
    report = runner.run_once()
    assert report.ok, report.error
    dan, eve = kanidm_target.entry(s.id_of("dan")), kanidm_target.entry(s.id_of("eve"))
    assert dan is not None
    assert eve is not None
    assert (("eve@example.org",), 31002) == (dan.get("mail"), dan.first("gidnumber"))
    assert (("dan@example.org",), 31001) == (eve.get("mail"), eve.first("gidnumber"))
    assert str(b.external_id) == dan.first("sync_external_id")
    group = kanidm_target.entry(s.id_of("g1"))
    assert group is not None
    assert 31012 == group.first("gidnumber")
    assert "nothing-to-do" == runner.run_once().outcome


def test_swap_after_a_force_refresh(
    kanidm_target: KanidmTarget,
    account: ProvisionedSyncAccount,
    sync: Client,
    tmp_path: pathlib.Path,
) -> None:
    """From Refresh, with the record as a hint: the keep-alive request releases the names."""
    s = Source()
    fay, gus = s.person("fay", "swpfay"), s.person("gus", "swpgus")
    s.entries = [fay, gus]
    runner = Runner(sync, s, state_path=tmp_path / "record.json")
    assert runner.run_once().ok
    with kanidm_target.admin_client() as admin:
        admin.force_refresh(account.name)
    s.entries = [attrs.evolve(fay, name="swpgus"), attrs.evolve(gus, name="swpfay")]
    report = runner.run_once()
    assert report.ok, report.error
    assert {"fay": "swpgus", "gus": "swpfay"} == names(kanidm_target, s, ["fay", "gus"])
    fay_now = kanidm_target.entry(s.id_of("fay"))
    assert fay_now is not None
    assert ("fay@example.org",) == fay_now.get("mail")  # the release's temporary state is gone
