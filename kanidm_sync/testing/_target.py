"""One interface over the Kanidm a test talks to: the in-memory double or a real kanidmd.

A test written against :class:`KanidmTarget` runs unchanged against :class:`FakeTarget`
(a fresh :class:`~kanidm_sync.testing.FakeKanidm`) and :class:`KanidmdTarget` (a real
kanidmd: a throwaway one started by :class:`~kanidm_sync.testing.Kanidmd`, or an existing
test server). Everything a target does goes over HTTP through the public endpoints, except
where a real server has no endpoint for it (:attr:`KanidmTarget.is_real` tells a test so).

A real server is shared by every test of a session, so a :class:`KanidmdTarget` remembers
which entries existed when it was made and :meth:`KanidmTarget.close` removes what the test
left behind: sync accounts it created are terminated, every person, group and service
account that appeared since is deleted (finalised entries included). Recycled entries
cannot be purged on demand (kanidmd purges its recycle bin after about a week), so a test
that needs fixed UUIDs on a real server should take them from :meth:`KanidmTarget.fresh_uuid`
or remap them (:meth:`KanidmTarget.remap`).
"""

from __future__ import annotations

import abc
import hashlib
import json
import ssl
import uuid
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Literal, Self, TypedDict

import attrs
import httpx

from .._auth import KanidmAuth
from .._client import Client
from ._server import ProvisionedSyncAccount

if TYPE_CHECKING:
    from ._kanidmd import Kanidmd
    from ._server import FakeKanidm
    from ._store import StoredEntry

__all__ = ["FakeTarget", "KanidmTarget", "KanidmdTarget", "TargetEntry"]

Admin = Literal["admin", "idm_admin"]

# Attributes whose v1 JSON values are numbers (the double stores them as int).
_INT_ATTRS = frozenset({"gidnumber", "uidnumber"})
# Attributes holding references: kanidmd renders them as SPNs (or UUIDs for entries
# without one); targets return UUID strings, as the double stores them.
_REF_ATTRS = frozenset(
    {
        "member",
        "memberof",
        "directmemberof",
        "dynmember",
        "sync_parent_uuid",
        "entry_managed_by",
        "oauth2_rs_scope_map",
    }
)
# SPNs looked up per search: kanidmd refuses filters of more elements than its limit.
_FILTER_BATCH = 16
# Volatile attributes a read can change (sessions, replication metadata): left out of
# fingerprints so that logging in does not look like a write.
_VOLATILE = frozenset(
    {
        "last_modified_cid",
        "user_auth_token_session",
        "oauth2_session",
        "account_soft_lock",
        "session_id",
    }
)


class ClientOptions(TypedDict, total=False):
    """Keyword arguments for :class:`~kanidm_sync.Client` that reach a target's server."""

    http_client: httpx.Client
    ca_path: str


@attrs.frozen(repr=False)
class TargetEntry:
    """What a target holds for one entry: UUID, classes, attributes and state.

    Attributes:
        uuid: the entry's UUID.
        classes: its classes.
        attrs: attribute name to values; references as UUID strings, ``gidnumber`` as
            ``int``, everything else as kanidmd's v1 JSON renders it.
        state: ``live`` or ``recycled``.
    """

    uuid: uuid.UUID
    classes: frozenset[str]
    attrs: Mapping[str, tuple[object, ...]]
    state: str

    def __repr__(self) -> str:
        return f"TargetEntry(uuid={self.uuid}, name={self.name!r}, state={self.state!r})"

    def get(self, attr: str) -> tuple[object, ...]:
        """All values of ``attr`` (empty when absent)."""
        return self.attrs.get(attr, ())

    def first(self, attr: str) -> object | None:
        """The first value of ``attr``, or ``None``."""
        values = self.attrs.get(attr, ())
        return values[0] if values else None

    @property
    def name(self) -> str | None:
        """The entry's ``name``, if any."""
        value = self.first("name")
        return value if isinstance(value, str) else None


def _from_stored(stored: StoredEntry) -> TargetEntry:
    return TargetEntry(stored.uuid, stored.classes, dict(stored.attrs), stored.state)


class KanidmTarget(abc.ABC):
    """A Kanidm a test drives over HTTP: the double or a real kanidmd.

    Attributes:
        url: the server's origin.
        is_real: ``True`` for a real kanidmd.
        domain: the server's domain (the part after ``@`` in SPNs).
        ca_path: a PEM CA file to trust for ``url`` (``None``: the system's roots, or no TLS).
        reads_sync_attributes: whether :meth:`entry` shows ``sync_external_id`` and
            ``sync_parent_uuid``. kanidmd lets no account read them through its API, so a
            real server given only by URL cannot show them; the double and a local
            :class:`~kanidm_sync.testing.Kanidmd` (read through ``kanidmd db-scan``) can.
    """

    url: str
    is_real: bool
    domain: str
    ca_path: str | None = None
    reads_sync_attributes: bool = True

    def __init__(self) -> None:
        self._accounts: list[str] = []

    # --- HTTP ----------------------------------------------------------------------------

    @abc.abstractmethod
    def http(self, token: str | None = None, *, admin: Admin | None = None) -> httpx.Client:
        """A plain ``httpx.Client`` on the server (``base_url`` set, TLS trusted).

        Args:
            token: a bearer token to send on every request.
            admin: or log in as this built-in administrator (read-write session).
        """

    @abc.abstractmethod
    def client_options(self) -> ClientOptions:
        """Keyword arguments that point a :class:`~kanidm_sync.Client` at this server.

        ``Client(target.url, token=..., **target.client_options())``.
        """

    @abc.abstractmethod
    def password(self, account: Admin) -> str:
        """The password of ``admin`` or ``idm_admin``."""

    def admin_auth(self, account: Admin = "admin") -> KanidmAuth:
        """A password login of ``account`` (``admin`` manages sync accounts)."""
        return KanidmAuth.password(account, self.password(account))

    def admin_client(self, account: Admin = "admin") -> Client:
        """A public :class:`~kanidm_sync.Client` logged in as ``account`` with its password."""
        return Client(self.url, auth=self.admin_auth(account), **self.client_options())

    def provision_sync_account(
        self, name: str = "test_sync", *, label: str = "test", description: str | None = None
    ) -> ProvisionedSyncAccount:
        """Create a sync account and issue its token through the admin API (A3, A4)."""
        with self.admin_client() as admin:
            admin.create_sync_account(name, description=description)
            self._accounts.append(name)
            token = admin.generate_sync_token(name, label=label)
            info = admin.get_sync_account(name)
        assert info is not None
        return ProvisionedSyncAccount(name=name, uuid=info.uuid, token=token, url=self.url)

    @abc.abstractmethod
    def api_token(self, *, read_write: bool = False) -> str:
        """An API token of a service account (a real server: one made for this test)."""

    def track_sync_account(self, name: str) -> None:
        """Have :meth:`close` terminate a sync account the test created by other means."""
        self._accounts.append(name)

    # --- reading and seeding -------------------------------------------------------------

    @abc.abstractmethod
    def entry(self, key: uuid.UUID | str) -> TargetEntry | None:
        """One entry by UUID (live or recycled), or by name (live only); ``None`` if none."""

    @abc.abstractmethod
    def fingerprint(self) -> str:
        """A digest of every live entry: equal fingerprints mean nothing was written."""

    @abc.abstractmethod
    def add_person(
        self, name: str, *, displayname: str | None = None, mail: Sequence[str] = ()
    ) -> uuid.UUID:
        """Create a native (not synced) person; return its UUID."""

    @abc.abstractmethod
    def add_group(self, name: str, *, members: Sequence[uuid.UUID] = ()) -> uuid.UUID:
        """Create a native (not synced) group; return its UUID."""

    @abc.abstractmethod
    def recycle(self, uid: uuid.UUID) -> None:
        """Delete a live native entry (it goes to the recycle bin)."""

    @abc.abstractmethod
    def set_attribute(self, uid: uuid.UUID, attr: str, values: Sequence[str]) -> None:
        """Set an attribute of a live person or group as an administrator would."""

    def fresh_uuid(self, uid: uuid.UUID | str) -> uuid.UUID:
        """``uid`` on the double; a new UUID standing for it on a real server.

        A real server keeps recycled UUIDs for days and refuses to create them again, so
        fixed UUIDs from golden payloads are replaced there, consistently within a test.
        """
        return uuid.UUID(str(uid))

    def remap(self, body: bytes) -> bytes:
        """``body`` with every UUID given to :meth:`fresh_uuid` replaced (see there)."""
        return body

    # --- cleanup -------------------------------------------------------------------------

    @abc.abstractmethod
    def close(self) -> None:
        """Undo what the test created (a no-op for the double, which is thrown away)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class FakeTarget(KanidmTarget):
    """The in-memory double as a target: a fresh :class:`~kanidm_sync.testing.FakeKanidm`.

    Args:
        fake: the double (a new one when omitted).

    Attributes:
        fake: the double, for what only the double can do (fault injection, clocks).
    """

    is_real = False

    fake: FakeKanidm

    def __init__(self, fake: FakeKanidm | None = None) -> None:
        super().__init__()
        from ._server import FakeKanidm

        self.fake = fake if fake is not None else FakeKanidm()
        self._passwords: dict[str, str] = {}
        self.url = self.fake.url
        self.domain = self.fake.domain

    def __repr__(self) -> str:
        return "FakeTarget()"

    def http(self, token: str | None = None, *, admin: Admin | None = None) -> httpx.Client:
        headers = {"authorization": f"Bearer {token}"} if token is not None else {}
        auth = self.admin_auth(admin) if admin is not None else None
        return httpx.Client(
            transport=self.fake.transport, base_url=self.url, headers=headers, auth=auth
        )

    def client_options(self) -> ClientOptions:
        return {"http_client": httpx.Client(transport=self.fake.transport)}

    def password(self, account: Admin) -> str:
        if account not in self._passwords:
            self._passwords[account] = self.fake.recover_account(account)
        return self._passwords[account]

    def entry(self, key: uuid.UUID | str) -> TargetEntry | None:
        stored = self.fake.store.entry(key)
        return _from_stored(stored) if stored is not None else None

    def fingerprint(self) -> str:
        return self.fake.store.fingerprint()

    def add_person(
        self, name: str, *, displayname: str | None = None, mail: Sequence[str] = ()
    ) -> uuid.UUID:
        return self.fake.store.add_person(name, displayname=displayname or name, mail=mail)

    def add_group(self, name: str, *, members: Sequence[uuid.UUID] = ()) -> uuid.UUID:
        return self.fake.store.add_group(name, members=members)

    def recycle(self, uid: uuid.UUID) -> None:
        self.fake.store.recycle(uid)

    def set_attribute(self, uid: uuid.UUID, attr: str, values: Sequence[str]) -> None:
        self.fake.store.set_attribute(uid, attr, values)

    def api_token(self, *, read_write: bool = False) -> str:
        return self.fake.api_token("admin", read_write=read_write)

    def close(self) -> None:
        """Nothing to undo: the double is thrown away with the test."""


class KanidmdTarget(KanidmTarget):
    """A real kanidmd as a target, reached over HTTPS with its administrators' passwords.

    Args:
        url: the server's origin.
        admin_password: the password of ``admin`` (a ``domain_admins`` member: sync accounts).
        idm_admin_password: the password of ``idm_admin`` (persons and groups).
        ca_path: a PEM CA file to trust (a throwaway server's own CA).
        domain: the server's domain (default: the host of ``url``).
        kanidmd: the local :class:`~kanidm_sync.testing.Kanidmd` serving ``url``, if any.
            With it, :meth:`entry` reads every attribute from the database (``kanidmd
            db-scan``), since kanidmd's access controls let no account read
            ``sync_external_id`` or ``sync_parent_uuid``; without it, only what
            ``idm_admin`` may read through the API.
    """

    is_real = True

    def __init__(
        self,
        url: str,
        *,
        admin_password: str,
        idm_admin_password: str,
        ca_path: str | None = None,
        domain: str | None = None,
        kanidmd: Kanidmd | None = None,
    ) -> None:
        super().__init__()
        self._kanidmd = kanidmd
        self.reads_sync_attributes = kanidmd is not None
        self.url = url.rstrip("/")
        self.domain = domain or (httpx.URL(self.url).host or "localhost")
        self._passwords: dict[str, str] = {
            "admin": admin_password,
            "idm_admin": idm_admin_password,
        }
        self.ca_path = ca_path
        self._verify: ssl.SSLContext | bool = (
            ssl.create_default_context(cafile=ca_path) if ca_path else True
        )
        self._auths: dict[str, KanidmAuth] = {}
        self._clients: list[httpx.Client] = []
        self._uuids: dict[uuid.UUID, uuid.UUID] = {}
        self._idm = self._raw("idm_admin")
        self._admin_http: httpx.Client | None = None
        try:
            self._baseline = set(self._live())
        except BaseException:
            self._close_clients()
            raise

    @classmethod
    def of(cls, server: Kanidmd) -> KanidmdTarget:
        """The target for a running :class:`~kanidm_sync.testing.Kanidmd` (database reads on)."""
        return cls(
            server.url,
            admin_password=server.admin_password,
            idm_admin_password=server.idm_admin_password,
            ca_path=str(server.ca_path),
            kanidmd=server,
        )

    def __repr__(self) -> str:
        return f"KanidmdTarget(url={self.url!r})"

    # --- HTTP ----------------------------------------------------------------------------

    def _auth(self, account: Admin) -> KanidmAuth:
        if account not in self._auths:
            self._auths[account] = self.admin_auth(account)
        return self._auths[account]

    def _raw(self, account: Admin) -> httpx.Client:
        client = httpx.Client(
            base_url=self.url, verify=self._verify, auth=self._auth(account), timeout=60
        )
        self._clients.append(client)
        return client

    def http(self, token: str | None = None, *, admin: Admin | None = None) -> httpx.Client:
        headers = {"authorization": f"Bearer {token}"} if token is not None else {}
        client = httpx.Client(
            base_url=self.url,
            verify=self._verify,
            headers=headers,
            auth=self._auth(admin) if admin is not None else None,
            timeout=120,
        )
        self._clients.append(client)
        return client

    def client_options(self) -> ClientOptions:
        return {"ca_path": self.ca_path} if self.ca_path else {}

    def password(self, account: Admin) -> str:
        return self._passwords[account]

    # --- reading -------------------------------------------------------------------------

    def _search(self, flt: object) -> list[dict[str, list[str]]]:
        response = self._idm.post("/v1/raw/search", json={"filter": flt})
        response.raise_for_status()
        return [e["attrs"] for e in response.json()["entries"]]

    def _live(self) -> dict[uuid.UUID, list[str]]:
        """Every live entry the API shows: UUID to its classes."""
        return {
            uuid.UUID(a["uuid"][0]): a.get("class", []) for a in self._search({"pres": "class"})
        }

    def _resolve_refs(self, rows: Iterable[Mapping[str, list[str]]]) -> dict[str, str]:
        wanted = {
            v for attrs_ in rows for a in _REF_ATTRS for v in attrs_.get(a, ()) if not _is_uuid(v)
        }
        if not wanted:
            return {}
        found: dict[str, str] = {}
        ordered = sorted(wanted)
        # kanidmd refuses (500) a filter of more elements than its limit (32 by default).
        for start in range(0, len(ordered), _FILTER_BATCH):
            batch = ordered[start : start + _FILTER_BATCH]
            for attrs_ in self._search({"or": [{"eq": ["spn", v]} for v in batch]}):
                for spn in attrs_.get("spn", ()):
                    found[spn] = attrs_["uuid"][0]
        return found

    def _entry_of(self, attrs_: Mapping[str, list[str]], state: str) -> TargetEntry:
        refs = self._resolve_refs([attrs_])
        out: dict[str, tuple[object, ...]] = {}
        for attr, values in attrs_.items():
            if attr in _INT_ATTRS:
                out[attr] = tuple(int(v) for v in values)
            elif attr in _REF_ATTRS:
                out[attr] = tuple(sorted(refs.get(v, v) for v in values))
            else:
                out[attr] = tuple(values)
        classes = frozenset(attrs_.get("class", ()))
        return TargetEntry(uuid.UUID(attrs_["uuid"][0]), classes, out, state)

    def entry(self, key: uuid.UUID | str) -> TargetEntry | None:
        if self._kanidmd is not None:
            return self._db_entry(key)
        if isinstance(key, uuid.UUID):
            rows = self._search({"eq": ["uuid", str(key)]})
            if rows:
                return self._entry_of(rows[0], "live")
            if self._admin_http is None:
                self._admin_http = self._raw("admin")
            recycled = self._admin_http.get(f"/v1/recycle_bin/{key}")
            if recycled.status_code == 200 and recycled.json():
                return self._entry_of(recycled.json()["attrs"], "recycled")
            return None
        return self._by_name(key)

    def _by_name(self, name: str) -> TargetEntry | None:
        low = name.lower()
        flt = {"eq": ["spn", low]} if "@" in low else {"eq": ["name", low]}
        rows = self._search(flt)
        return self._entry_of(rows[0], "live") if rows else None

    def _db_entry(self, key: uuid.UUID | str) -> TargetEntry | None:
        assert self._kanidmd is not None
        listing = self._kanidmd.db_listing()
        if isinstance(key, uuid.UUID):
            found = listing.get(str(key))
            if found is None:
                return None
            state, attrs_ = self._kanidmd.db_entry(found[0])
            if state == "tombstone":
                return None
        else:
            # Recycled entries keep their names in the database: take the live one.
            low = key.lower()
            for entry_id, name in listing.values():
                if name != low:
                    continue
                state, attrs_ = self._kanidmd.db_entry(entry_id)
                if state == "live":
                    break
            else:
                return None
        out = dict(attrs_)
        if state == "live":
            # memberof is kept outside id2entry; idm_admin may read it through the API.
            rows = self._search({"eq": ["uuid", str(out["uuid"][0])]})
            if rows:
                api = self._entry_of(rows[0], "live")
                for attr in ("memberof", "directmemberof"):
                    if api.get(attr):
                        out[attr] = api.get(attr)
        classes = frozenset(str(c) for c in out.get("class", ()))
        return TargetEntry(uuid.UUID(str(out["uuid"][0])), classes, out, state)

    def fingerprint(self) -> str:
        rows = self._search({"pres": "class"})
        image = sorted(
            json.dumps(
                {k: sorted(v) for k, v in attrs_.items() if k not in _VOLATILE}, sort_keys=True
            )
            for attrs_ in rows
        )
        return hashlib.sha256("\n".join(image).encode()).hexdigest()

    # --- seeding -------------------------------------------------------------------------

    def _create(self, kind: str, attrs_: dict[str, list[str]]) -> uuid.UUID:
        response = self._idm.post(f"/v1/{kind}", json={"attrs": attrs_})
        if response.status_code != 200:
            raise AssertionError(f"POST /v1/{kind}: {response.status_code} {response.text}")
        rows = self._search({"eq": ["name", attrs_["name"][0].lower()]})
        assert rows, attrs_["name"]
        return uuid.UUID(rows[0]["uuid"][0])

    def add_person(
        self, name: str, *, displayname: str | None = None, mail: Sequence[str] = ()
    ) -> uuid.UUID:
        attrs_ = {"name": [name], "displayname": [displayname or name]}
        if mail:
            attrs_["mail"] = list(mail)
        return self._create("person", attrs_)

    def add_group(self, name: str, *, members: Sequence[uuid.UUID] = ()) -> uuid.UUID:
        attrs_ = {"name": [name]}
        if members:
            attrs_["member"] = [str(m) for m in members]
        return self._create("group", attrs_)

    def _kind(self, uid: uuid.UUID) -> str:
        rows = self._search({"eq": ["uuid", str(uid)]})
        if not rows:
            raise AssertionError(f"no live entry {uid}")
        return _kind_of(rows[0].get("class", []))

    def recycle(self, uid: uuid.UUID) -> None:
        response = self._idm.delete(f"/v1/{self._kind(uid)}/{uid}")
        if response.status_code != 200:
            raise AssertionError(f"DELETE {uid}: {response.status_code} {response.text}")

    def set_attribute(self, uid: uuid.UUID, attr: str, values: Sequence[str]) -> None:
        response = self._idm.put(f"/v1/{self._kind(uid)}/{uid}/_attr/{attr}", json=list(values))
        if response.status_code != 200:
            raise AssertionError(f"PUT {attr} of {uid}: {response.status_code} {response.text}")

    def api_token(self, *, read_write: bool = False) -> str:
        name = f"ks_test_sa_{uuid.uuid4().hex[:8]}"
        created = self._idm.post(
            "/v1/service_account",
            json={
                "attrs": {"name": [name], "displayname": [name], "entry_managed_by": ["idm_admins"]}
            },
        )
        if created.status_code != 200:
            raise AssertionError(f"service account: {created.status_code} {created.text}")
        response = self._idm.post(
            f"/v1/service_account/{name}/_api_token",
            json={"label": "test", "expiry": None, "read_write": read_write},
        )
        if response.status_code != 200:
            raise AssertionError(f"API token: {response.status_code} {response.text}")
        token: str = response.json()
        return token

    def fresh_uuid(self, uid: uuid.UUID | str) -> uuid.UUID:
        uid = uuid.UUID(str(uid))
        if uid not in self._uuids:
            self._uuids[uid] = uuid.uuid4()
        return self._uuids[uid]

    def remap(self, body: bytes) -> bytes:
        text = body.decode("utf-8")
        for old, new in self._uuids.items():
            text = text.replace(str(old), str(new))
        return text.encode("utf-8")

    # --- cleanup -------------------------------------------------------------------------

    def close(self) -> None:
        """Terminate the sync accounts this target created; delete what appeared since."""
        try:
            with self.admin_client() as admin:
                for name in self._accounts:
                    if admin.get_sync_account(name) is not None:
                        admin.terminate(name)
            self._accounts.clear()
            for uid, classes in self._live().items():
                if uid not in self._baseline and {"person", "service_account", "group"} & set(
                    classes
                ):
                    self._idm.delete(f"/v1/{_kind_of(classes)}/{uid}")
        finally:
            self._close_clients()

    def _close_clients(self) -> None:
        for client in self._clients:
            client.close()
        self._clients.clear()


def _kind_of(classes: Iterable[str]) -> str:
    """The v1 API path segment for an entry of these classes."""
    found = set(classes)
    for kind in ("person", "service_account"):
        if kind in found:
            return kind
    return "group"


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
