"""SyncAccount: one named sync account on a Kanidm server, with its sync token.

Owns the user-facing handle a sync tool holds: where Kanidm is, which account, which token
(masked in every repr), and how to reach it (TLS settings). It composes the clients of
``_client.py``; it builds no request itself and must not log or expose the token.

Environment variables read by :meth:`SyncAccount.from_env`:

* ``KANIDM_URL``: the server origin (required);
* ``KANIDM_SYNC_TOKEN``: the sync token;
* ``KANIDM_SYNC_TOKEN_FILE``: a file holding the sync token (read when the variable above is
  unset);
* ``KANIDM_SYNC_ACCOUNT``: the sync account's name (optional; the admin helpers need it);
* ``KANIDM_CA_PATH``: a PEM CA file added to the trust roots (optional);
* ``KANIDM_ALLOW_INSECURE_HTTP``: ``true`` (or ``1``, ``yes``) to permit an ``http://`` URL,
  for a test server on loopback (optional; anything else, or unset, refuses plain http).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Self

import attrs
import httpx

from ._auth import clean_token
from ._client import AsyncClient, Client
from ._exceptions import ConfigError
from ._proto._admin import SyncAccountInfo
from ._proto._changeset import ChangeSet
from ._proto._state import SyncState
from ._transport import parse_base_url

__all__ = ["SyncAccount"]

_BOOLEANS = {
    "": False,
    "0": False,
    "false": False,
    "no": False,
    "1": True,
    "true": True,
    "yes": True,
}


def _read_token_file(path: str | os.PathLike[str]) -> str:
    file = Path(path).expanduser()
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read the sync token ({exc.strerror})") from exc
    try:
        token: str | None = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        token = None
    if token is None:
        # Raised outside the handler: the decode error's .object is the token's bytes, and
        # would stay reachable as __context__.
        raise ConfigError(f"{file}: the sync token file is not UTF-8 text")
    if not token:
        raise ConfigError(f"{file}: the sync token file is empty")
    return clean_token(token, what=f"{file}: the sync token")


def _url(value: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"url must be a str, not {type(value).__name__}")
    return value.strip()


def _token(value: str) -> str:
    return clean_token(value, what="the sync token")


@attrs.frozen(kw_only=True)
class SyncAccount:
    """A sync account on a Kanidm server and the sync token that acts for it.

    The token is never shown: ``repr`` prints ``token=***``. Both are checked when the
    account is built: surrounding whitespace is dropped from the URL and the token, the URL
    must be one the clients accept (https, or http to loopback with ``allow_insecure_http``;
    no credentials in it; a path prefix is kept) and the token a bearer token.

    Attributes:
        url: the Kanidm origin (``https://idm.example.com``).
        token: the sync token (a secret).
        name: the account's name, when known (the admin helpers need it).
        ca_path: a PEM CA file added to the trust roots.
        verify: verify TLS certificates (leave on outside throwaway tests).
        allow_insecure_http: permit ``http://`` (loopback test servers only).

    Example:
        >>> account = SyncAccount.from_env()  # doctest: +SKIP
        >>> state = account.state()  # doctest: +SKIP
    """

    url: str = attrs.field(converter=_url)
    token: str = attrs.field(repr=False, converter=_token)
    name: str | None = None
    ca_path: str | None = None
    verify: bool = True
    allow_insecure_http: bool = False

    def __attrs_post_init__(self) -> None:
        # Raises BaseURLError (a ConfigError) naming the rule, never the URL's credentials.
        parse_base_url(self.url, allow_insecure_http=self.allow_insecure_http)

    def __repr__(self) -> str:
        return f"SyncAccount(url={self.url!r}, name={self.name!r}, token=***)"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        """Build from the environment (the variables are listed in the module docstring).

        ``KANIDM_URL`` is required; the token comes from ``KANIDM_SYNC_TOKEN``, or from the
        file ``KANIDM_SYNC_TOKEN_FILE`` names; ``KANIDM_SYNC_ACCOUNT``, ``KANIDM_CA_PATH`` and
        ``KANIDM_ALLOW_INSECURE_HTTP`` are optional.

        Args:
            environ: the environment to read (default ``os.environ``).

        Returns:
            The account.

        Raises:
            ConfigError: the URL or the token is missing or unusable, the token file is
                unreadable, or ``KANIDM_ALLOW_INSECURE_HTTP`` is not a boolean.
        """
        env = os.environ if environ is None else environ
        insecure = env.get("KANIDM_ALLOW_INSECURE_HTTP", "").strip().lower()
        if insecure not in _BOOLEANS:
            raise ConfigError(f"KANIDM_ALLOW_INSECURE_HTTP must be true or false, not {insecure!r}")
        url = env.get("KANIDM_URL")
        if not url:
            raise ConfigError("KANIDM_URL is not set")
        token = env.get("KANIDM_SYNC_TOKEN")
        if not token:
            token_file = env.get("KANIDM_SYNC_TOKEN_FILE")
            if not token_file:
                raise ConfigError("set KANIDM_SYNC_TOKEN or KANIDM_SYNC_TOKEN_FILE")
            token = _read_token_file(token_file)
        return cls(
            url=url,
            token=clean_token(token, what="KANIDM_SYNC_TOKEN"),
            name=env.get("KANIDM_SYNC_ACCOUNT") or None,
            ca_path=env.get("KANIDM_CA_PATH") or None,
            allow_insecure_http=_BOOLEANS[insecure],
        )

    @classmethod
    def from_token_file(
        cls,
        path: str | os.PathLike[str],
        *,
        url: str,
        name: str | None = None,
        ca_path: str | None = None,
        allow_insecure_http: bool = False,
    ) -> Self:
        """Build from a file holding the sync token (surrounding whitespace is dropped).

        Args:
            path: the token file.
            url: the Kanidm origin.
            name: the account's name.
            ca_path: a PEM CA file added to the trust roots.
            allow_insecure_http: permit ``http://``.

        Returns:
            The account.

        Raises:
            ConfigError: the file cannot be read, is empty or holds no bearer token, or
                the URL is unusable.
        """
        return cls(
            url=url,
            token=_read_token_file(path),
            name=name,
            ca_path=ca_path,
            allow_insecure_http=allow_insecure_http,
        )

    @classmethod
    def create(
        cls,
        admin: Client,
        name: str,
        *,
        description: str | None = None,
        label: str = "kanidm-sync",
    ) -> Self:
        """Create a sync account with an admin client and issue its token.

        Args:
            admin: a client holding an admin session (read-write).
            name: the new account's name.
            description: its description.
            label: the token's label.

        Returns:
            The account, bound to the admin client's server.

        Raises:
            UniquenessError: the name is taken.
            PermissionDeniedError: the admin session is read-only or lacks rights.
        """
        admin.create_sync_account(name, description=description)
        token = admin.generate_sync_token(name, label=label)
        return cls(
            url=admin.base_url,
            token=token,
            name=name,
            allow_insecure_http=admin.base_url.startswith("http://"),
        )

    # --- clients ---------------------------------------------------------------------

    def _tls(self, *, own: bool) -> tuple[bool, str | None]:
        # verify= and ca_path= for a client: an injected httpx client carries its own TLS
        # settings (and the clients refuse both at once).
        return (self.verify, self.ca_path) if own else (True, None)

    def client(self, *, http_client: httpx.Client | None = None) -> Client:
        """A blocking client authenticated with this account's sync token.

        Args:
            http_client: your own ``httpx.Client`` (then ``ca_path``/``verify`` are yours).

        Returns:
            The client; close it (or use ``with``).
        """
        verify, ca_path = self._tls(own=http_client is None)
        return Client(
            self.url,
            token=self.token,
            http_client=http_client,
            verify=verify,
            ca_path=ca_path,
            allow_insecure_http=self.allow_insecure_http,
        )

    def async_client(self, *, http_client: httpx.AsyncClient | None = None) -> AsyncClient:
        """An async client authenticated with this account's sync token.

        Args:
            http_client: your own ``httpx.AsyncClient``.

        Returns:
            The client; close it (or use ``async with``).
        """
        verify, ca_path = self._tls(own=http_client is None)
        return AsyncClient(
            self.url,
            token=self.token,
            http_client=http_client,
            verify=verify,
            ca_path=ca_path,
            allow_insecure_http=self.allow_insecure_http,
        )

    # --- sync-tool calls (one short-lived client each; hold client() for many calls) ----

    def state(self) -> SyncState:
        """Kanidm's state for this account (see :meth:`Client.get_state`)."""
        with self.client() as client:
            return client.get_state()

    def apply(self, changeset: ChangeSet) -> None:
        """Apply a ChangeSet (see :meth:`Client.apply`)."""
        with self.client() as client:
            client.apply(changeset)

    async def astate(self) -> SyncState:
        """Async :meth:`state`."""
        async with self.async_client() as client:
            return await client.get_state()

    async def aapply(self, changeset: ChangeSet) -> None:
        """Async :meth:`apply`."""
        async with self.async_client() as client:
            await client.apply(changeset)

    # --- admin helpers: they need an admin client, never the sync token ----------------

    def _name(self) -> str:
        if not self.name:
            raise ValueError("this SyncAccount has no name; admin helpers need one")
        return self.name

    def info(self, admin: Client) -> SyncAccountInfo | None:
        """Kanidm's record of this account (A2), read with an admin client."""
        return admin.get_sync_account(self._name())

    def force_refresh(self, admin: Client) -> None:
        """Make the next sync a full refresh (A6), with an admin client."""
        admin.force_refresh(self._name())

    def finalise(self, admin: Client) -> None:
        """Hand the synced entries to Kanidm and delete the account (A10); the token dies."""
        admin.finalise(self._name())

    def terminate(self, admin: Client) -> None:
        """Delete the account and every entry it synced (A11); the token dies."""
        admin.terminate(self._name())

    def rotate_token(self, admin: Client, *, label: str = "kanidm-sync") -> Self:
        """Destroy the token and issue a new one (A5 then A4).

        Returns:
            A copy of this account carrying the new token.
        """
        admin.destroy_sync_token(self._name())
        return attrs.evolve(self, token=admin.generate_sync_token(self._name(), label=label))
