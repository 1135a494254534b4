"""Hypothesis strategies for valid kanidm_sync values: entries, sync states, ChangeSets.

Owns only value generation for property-based tests; needs Hypothesis (a test
dependency, never a runtime one) and must not import pytest.

By default every value is one Kanidm would accept as far as can be known without server
state (spec §3.6-§3.9): names match Kanidm's syntax and are unique within a ChangeSet
(persons start with ``p``, service accounts with ``s``, groups with ``g``), mail
addresses are derived from the names, gidnumbers come from disjoint allowed ranges, TOTP
imports only come with a password import, group members are the external ids of persons
of the same ChangeSet, and every entry has an external id. ``extra=True`` adds raw
attributes (admin-defined attributes that a default Kanidm would refuse), ``generic=True``
adds :class:`~kanidm_sync.GenericEntry` values; both exercise the codec's raw-value path.

Example::

    from hypothesis import given
    from kanidm_sync.testing.strategies import changesets

    @given(changesets())
    def test_round_trip(cs):
        assert cs == ChangeSet.from_json(cs.to_json())
"""

from __future__ import annotations

import base64
import datetime as _dt
import uuid
from collections.abc import Sequence

try:
    from hypothesis import strategies as st
except ImportError as exc:  # pragma: no cover - exercised in a subprocess without Hypothesis
    raise ImportError(
        "kanidm_sync.testing.strategies needs Hypothesis: pip install kanidm-sync[testing]"
    ) from exc

from .._proto._changeset import ChangeSet
from .._proto._entries import (
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
)
from .._proto._state import (
    REFRESH,
    ActiveState,
    DeleteOnly,
    RetainIgnore,
    RetainOnly,
    RetentionMode,
    SyncState,
)
from .._types import JSONValue

__all__ = [
    "changesets",
    "entries",
    "generic_entries",
    "groups",
    "mails",
    "oauth2_accounts",
    "persons",
    "posix_accounts",
    "raw_values",
    "retention_modes",
    "service_accounts",
    "ssh_public_keys",
    "sync_states",
    "totps",
]

_SSH_KEYS = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGB1FtnsJVH3aJk9bVx2hbQmU0cYqkqQvFqK9gVvX5dA alice@laptop",
    "sk-ecdsa-sha2-nistp256@openssh.com AAAAInNrLWVjZHNhLXNoYTItbmlzdHAyNTZAb3BlbnNzaC5jb20AAAAIbml"
    "zdHAyNTYAAABBBENubZikrb8hu+HeVRdZ0pp/VAk2qv4JDbuJhvD0yNdWDL2e3cBbERiDeNPkWx58Q4rVnxkbV1fa8E2"
    "waRtT91wAAAAEc3NoOg== testuser@fidokey",
)
# Formats kanidmd imports (spec §3.9.5); the hashes are of no real password.
_PASSWORD_HASHES = (
    "ipaNTHash: iEb36u6PsRetBr3YMLdYbA",
    "sambaNTPassword: 8846f7eaee8fb117ad06bdd830b7586c",
    "{SSHA512}UzmIyN9Gr8o1+wFWoE+l6j4JqhrXnvqj5HlA4kPQCdpx8o7YPFwj5MKr5Rycv15WfEET6ZjNZYYfT+35od+k"
    "AGthbmlkbS1zeW5jLXNhbHQ=",
    "pbkdf2_sha256$36000$xIEozuZVAoYm$uW1b35DUKyhvQAf1mBqMvoBDcqSD06juzyO/nmyV0+w=",
)
_SHELLS = ("/bin/bash", "/bin/sh", "/bin/zsh", "/usr/bin/fish")

_free_text = st.text(
    st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=24
)
_names_tail = st.from_regex(r"[a-z0-9_-]{0,15}", fullmatch=True)

_utc_times = st.datetimes(
    min_value=_dt.datetime(1971, 1, 1),
    max_value=_dt.datetime(2100, 1, 1),
    timezones=st.just(_dt.UTC),
)
_rfc3339 = st.one_of(
    _utc_times.map(lambda d: d.replace(microsecond=0).isoformat()),
    _utc_times.map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ")),
)


def mails(name: str, *, max_size: int = 3) -> st.SearchStrategy[tuple[Mail, ...]]:
    """Mail addresses derived from ``name`` (so they are unique across entries).

    Args:
        name: the entry's name.
        max_size: the most addresses to draw.

    Returns:
        A strategy for a tuple of :class:`~kanidm_sync.Mail`.
    """
    return st.lists(st.none() | st.booleans(), max_size=max_size).map(
        lambda flags: tuple(
            Mail(f"{name}.{k}@example.org", primary=flag) for k, flag in enumerate(flags)
        )
    )


def ssh_public_keys(*, max_size: int = 2) -> st.SearchStrategy[tuple[SshPublicKey, ...]]:
    """Valid SSH public keys with distinct labels.

    Args:
        max_size: the most keys to draw.

    Returns:
        A strategy for a tuple of :class:`~kanidm_sync.SshPublicKey`.
    """
    return st.lists(st.sampled_from(_SSH_KEYS), max_size=max_size).map(
        lambda keys: tuple(SshPublicKey(f"key-{k}", value) for k, value in enumerate(keys))
    )


def totps(*, max_size: int = 2) -> st.SearchStrategy[tuple[Totp, ...]]:
    """Valid TOTP imports (base64 raw keys, allowed algorithms, steps and digits).

    Args:
        max_size: the most tokens to draw.

    Returns:
        A strategy for a tuple of :class:`~kanidm_sync.Totp` with distinct labels.
    """
    one = st.builds(
        lambda key, algo, step, digits: (key, algo, step, digits),
        st.binary(min_size=10, max_size=40),
        st.sampled_from(("sha1", "sha256", "sha512")),
        st.integers(30, 300),
        st.sampled_from((6, 8)),
    )
    return st.lists(one, max_size=max_size).map(
        lambda items: tuple(
            Totp(
                external_id=f"token-{k}",
                secret=base64.b64encode(key).decode("ascii"),
                algo=algo,
                step=step,
                digits=digits,
            )
            for k, (key, algo, step, digits) in enumerate(items)
        )
    )


def posix_accounts(
    gidnumbers: st.SearchStrategy[int] | None = None,
) -> st.SearchStrategy[PosixAccount]:
    """POSIX facets of persons and service accounts.

    Args:
        gidnumbers: where gidnumbers come from; default 1000-60000.

    Returns:
        A strategy for :class:`~kanidm_sync.PosixAccount`.
    """
    return st.builds(
        PosixAccount,
        gidnumber=st.none() | (gidnumbers if gidnumbers is not None else st.integers(1000, 60000)),
        loginshell=st.none() | st.sampled_from(_SHELLS),
        unix_password_import=st.none() | st.sampled_from(_PASSWORD_HASHES),
    )


def oauth2_accounts() -> st.SearchStrategy[OAuth2Account]:
    """OAuth2 facets with every attribute Kanidm >= 1.11 requires.

    Returns:
        A strategy for :class:`~kanidm_sync.OAuth2Account`.
    """
    return st.builds(
        OAuth2Account,
        provider=st.uuids().map(str),
        unique_user_id=_free_text,
        unique_user_sub=_free_text,
    )


_EXTRA_KEY = st.from_regex(r"x_[a-z0-9_]{1,12}", fullmatch=True)


def raw_values() -> st.SearchStrategy[JSONValue]:
    """JSON values that fit kanidmd's generic value model (spec §3.5), never null or ``[]``.

    A scalar (string, bool, 64-bit integer, finite float, or a non-empty array of bytes),
    an object of scalars, an array of scalars or an array of objects of scalars.

    Returns:
        A strategy for raw attribute values, as :func:`json.loads` returns them.
    """
    scalars = st.one_of(
        st.text(max_size=12),
        st.booleans(),
        st.integers(-(2**63), 2**63 - 1),
        st.floats(allow_nan=False, allow_infinity=False),
        st.lists(st.integers(0, 255), min_size=1, max_size=4),
    )
    complexes = st.dictionaries(st.text(max_size=8), scalars, max_size=3)
    return st.one_of(
        scalars,
        complexes,
        st.lists(scalars, min_size=1, max_size=3),
        st.lists(complexes, min_size=1, max_size=3),
    )


def _extras(enabled: bool) -> st.SearchStrategy[dict[str, JSONValue]]:
    if not enabled:
        return st.just({})
    return st.dictionaries(_EXTRA_KEY, raw_values(), max_size=3)


def _schema_order(derived: Sequence[str]) -> st.SearchStrategy[tuple[str, ...]]:
    return st.permutations(list(derived)).map(tuple)


@st.composite
def persons(
    draw: st.DrawFn,
    *,
    extra: bool = False,
    gidnumbers: st.SearchStrategy[int] | None = None,
) -> Person:
    """Persons with any mix of facets, mails, keys, dates and imports.

    Args:
        draw: supplied by Hypothesis.
        extra: also draw raw ``extra`` attributes.
        gidnumbers: where POSIX gidnumbers come from; default 1000-60000.

    Returns:
        A :class:`~kanidm_sync.Person` (a strategy when called without ``draw``).
    """
    name = "p" + draw(_names_tail)
    password = draw(st.none() | st.sampled_from(_PASSWORD_HASHES))
    posix = draw(st.none() | posix_accounts(gidnumbers))
    oauth2 = draw(st.none() | oauth2_accounts())
    derived = [SchemaUrn.ACCOUNT.value, SchemaUrn.PERSON.value]
    if posix is not None:
        derived.append(SchemaUrn.POSIXACCOUNT.value)
    if oauth2 is not None:
        derived.append(SchemaUrn.OAUTH2_ACCOUNT.value)
    return Person(
        id=draw(st.uuids()),
        external_id=f"uid={name},ou=people,dc=example,dc=org",
        name=name,
        displayname=draw(_free_text),
        legalname=draw(st.none() | _free_text),
        mail=draw(mails(name)),
        ssh_publickey=draw(ssh_public_keys()),
        account_valid_from=draw(st.none() | _rfc3339),
        account_expire=draw(st.none() | _rfc3339),
        account_softlock_expire=draw(st.none() | _rfc3339),
        password_import=password,
        totp_import=draw(totps()) if password is not None else (),
        posix=posix,
        oauth2=oauth2,
        extra=draw(_extras(extra)),
        schema_order=draw(_schema_order(derived)),
    )


@st.composite
def service_accounts(draw: st.DrawFn, *, extra: bool = False) -> ServiceAccount:
    """Service accounts, with or without the POSIX facet.

    Args:
        draw: supplied by Hypothesis.
        extra: also draw raw ``extra`` attributes.

    Returns:
        A :class:`~kanidm_sync.ServiceAccount` (a strategy when called without ``draw``).
    """
    name = "s" + draw(_names_tail)
    posix = draw(st.none() | posix_accounts(st.integers(524288, 1879048191)))
    derived = [SchemaUrn.ACCOUNT.value, SchemaUrn.SERVICE_ACCOUNT.value]
    if posix is not None:
        derived.append(SchemaUrn.POSIXACCOUNT.value)
    return ServiceAccount(
        id=draw(st.uuids()),
        external_id=f"uid={name},ou=services,dc=example,dc=org",
        name=name,
        displayname=draw(_free_text),
        description=draw(st.none() | _free_text),
        mail=draw(mails(name)),
        ssh_publickey=draw(ssh_public_keys()),
        account_valid_from=draw(st.none() | _rfc3339),
        account_expire=draw(st.none() | _rfc3339),
        account_softlock_expire=draw(st.none() | _rfc3339),
        password_import=draw(st.none() | st.sampled_from(_PASSWORD_HASHES)),
        posix=posix,
        extra=draw(_extras(extra)),
        schema_order=draw(_schema_order(derived)),
    )


@st.composite
def groups(draw: st.DrawFn, *, member_ids: Sequence[str] = (), extra: bool = False) -> Group:
    """Groups, with or without the POSIX facet, members drawn from ``member_ids``.

    Args:
        draw: supplied by Hypothesis.
        member_ids: external ids members may refer to (none when empty).
        extra: also draw raw ``extra`` attributes.

    Returns:
        A :class:`~kanidm_sync.Group` (a strategy when called without ``draw``).
    """
    name = "g" + draw(_names_tail)
    posix = draw(
        st.none() | st.builds(PosixGroup, gidnumber=st.none() | st.integers(65536, 524287))
    )
    members: list[str] = (
        draw(st.lists(st.sampled_from(list(member_ids)), unique=True, max_size=5))
        if member_ids
        else []
    )
    derived = [SchemaUrn.GROUP.value]
    if posix is not None:
        derived.append(SchemaUrn.POSIXGROUP.value)
    return Group(
        id=draw(st.uuids()),
        external_id=f"cn={name},ou=groups,dc=example,dc=org",
        name=name,
        description=draw(st.none() | _free_text),
        mail=draw(mails(name, max_size=1)),
        member=members,
        posix=posix,
        extra=draw(_extras(extra)),
        schema_order=draw(_schema_order(derived)),
    )


@st.composite
def generic_entries(draw: st.DrawFn) -> GenericEntry:
    """Generic entries of a custom sync class with raw attributes.

    Their schemas always include a custom URN, so they never read back as a typed entry.

    Args:
        draw: supplied by Hypothesis.

    Returns:
        A :class:`~kanidm_sync.GenericEntry` (a strategy when called without ``draw``).
    """
    custom = SCHEMA_PREFIX + draw(st.from_regex(r"x_[a-z]{1,10}", fullmatch=True))
    others = draw(st.lists(st.sampled_from([u.value for u in SchemaUrn]), unique=True, max_size=2))
    schemas = draw(st.permutations([custom, *others]))
    return GenericEntry(
        id=draw(st.uuids()),
        external_id=draw(st.none() | _free_text),
        schemas=schemas,
        attributes=draw(st.dictionaries(_EXTRA_KEY, raw_values(), max_size=4)),
    )


def entries(*, extra: bool = False, generic: bool = False) -> st.SearchStrategy[Entry]:
    """Any single entry (members of groups are left empty here).

    Args:
        extra: also draw raw ``extra`` attributes on typed entries.
        generic: also draw :class:`~kanidm_sync.GenericEntry` values.

    Returns:
        A strategy for entries.
    """
    choices: list[st.SearchStrategy[Entry]] = [
        persons(extra=extra),
        groups(extra=extra),
        service_accounts(extra=extra),
    ]
    if generic:
        choices.append(generic_entries())
    return st.one_of(choices)


def sync_states() -> st.SearchStrategy[SyncState]:
    """Refresh, or Active with any cookie bytes (empty included, as Kanidm allows).

    Returns:
        A strategy for sync states.
    """
    return st.one_of(st.just(REFRESH), st.binary(max_size=64).map(ActiveState))


def retention_modes(
    ids: Sequence[uuid.UUID] = (),
) -> st.SearchStrategy[RetentionMode]:
    """Retention modes that keep every entry of ``ids``.

    ``RetainOnly`` lists all of ``ids`` (in any order) plus possibly other ids, so Kanidm
    does not delete an entry right after writing it; ``DeleteOnly`` lists fresh ids only.

    Args:
        ids: the ids of the entries the ChangeSet sends.

    Returns:
        A strategy for retention modes.
    """
    others = st.lists(st.uuids(), unique=True, max_size=3)
    retained = st.tuples(st.permutations(list(ids)), others).map(
        lambda parts: RetainOnly([*parts[0], *(u for u in parts[1] if u not in parts[0])])
    )
    deleted = others.map(lambda fresh: DeleteOnly([u for u in fresh if u not in ids]))
    return st.one_of(st.just(RetainIgnore()), retained, deleted)


def _unique(values: list[Entry]) -> list[Entry]:
    seen: set[uuid.UUID] = set()
    out = []
    for entry in values:
        if entry.id not in seen:
            seen.add(entry.id)
            out.append(entry)
    return out


def _name_key(entry: Person | ServiceAccount | Group) -> object:
    return entry.name


def _gid_key(entry: Person | ServiceAccount | Group) -> object:
    if entry.posix is not None and entry.posix.gidnumber is not None:
        return entry.posix.gidnumber
    return entry.id


@st.composite
def changesets(
    draw: st.DrawFn, *, max_entries: int = 6, extra: bool = False, generic: bool = False
) -> ChangeSet:
    """ChangeSets whose entries are consistent with each other.

    Ids, names, external ids, mail addresses and gidnumbers are unique; group members
    are external ids of persons and service accounts in the same ChangeSet.

    Args:
        draw: supplied by Hypothesis.
        max_entries: the most entries of each kind.
        extra: also draw raw ``extra`` attributes on typed entries.
        generic: also draw :class:`~kanidm_sync.GenericEntry` values.

    Returns:
        A :class:`~kanidm_sync.ChangeSet` (a strategy when called without ``draw``).
    """
    unique = (_name_key, _gid_key)
    people: list[Person] = draw(
        st.lists(persons(extra=extra), max_size=max_entries, unique_by=unique)
    )
    services: list[ServiceAccount] = draw(
        st.lists(service_accounts(extra=extra), max_size=max_entries // 2, unique_by=unique)
    )
    member_ids = [p.external_id for p in people if p.external_id is not None] + [
        s.external_id for s in services if s.external_id is not None
    ]
    teams: list[Group] = draw(
        st.lists(groups(member_ids=member_ids, extra=extra), max_size=max_entries, unique_by=unique)
    )
    others: list[GenericEntry] = (
        draw(st.lists(generic_entries(), max_size=max_entries // 2)) if generic else []
    )
    all_entries = _unique([*people, *services, *teams, *others])
    ordered = draw(st.permutations(all_entries))
    return ChangeSet(
        from_state=draw(sync_states()),
        to_state=draw(sync_states()),
        entries=ordered,
        retain=draw(retention_modes([e.id for e in ordered])),
    )


# Not a public name: the "from __future__" import leaves it in dir().
del annotations
