"""The Kanidm CLI's own files, read-only: the ``kanidm login`` token cache and client config.

Owns (kanidm-auth.md §3):

* :func:`load_cached_token`: read-only reuse of the CLI's token cache (§3.1). This module
  never writes that file.
* :class:`ClientConfig` / :func:`load_client_config`: the CLI's TOML config files and their
  environment overrides (§3.2).

Split out of ``_auth.py`` along its seam (files on disk / the ``httpx.Auth``); ``_auth``
re-exports every name. It must never log, repr or put in an exception text a token.
"""

from __future__ import annotations

import json
import os
import ssl
import time
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

import attrs
import httpx  # noqa: TID251  # httpx.URL reads a URL's host as the clients do (split from _auth.py)

from ._exceptions import ConfigError
from ._proto._admin import inspect_token
from ._transport import ssl_verify

__all__ = [
    "DEFAULT_CONFIG_PATHS",
    "DEFAULT_TOKEN_CACHE",
    "ClientConfig",
    "load_cached_token",
    "load_client_config",
]

DEFAULT_TOKEN_CACHE: Final = "~/.cache/kanidm_tokens"
"""The CLI's token cache (kanidm: proto/src/constants.rs ``CLIENT_TOKEN_CACHE``)."""

DEFAULT_CONFIG_PATHS: Final = ("/etc/kanidm/config", "~/.config/kanidm")
"""System file (Linux/Debian profile), then the per-user file; later overrides earlier."""


# --- the CLI token cache ----------------------------------------------------------------


def _env(environ: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if environ is None else environ


def load_cached_token(
    name: str | None = None,
    *,
    url: str | None = None,
    instance: str | None = None,
    path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    now: float | None = None,
) -> str:
    """Pick a session token from the ``kanidm login`` cache, as the CLI would.

    The file is ``{"instances": {<instance>: {"keys": {...}, "tokens": {<spn>: <jws>}}}}``
    (kanidm-auth.md §3.1). Selection: a name with ``@`` is an exact SPN; a name without
    ``@`` tries ``name@<host of url>`` then the unique SPN starting with ``name@``; no name
    takes the only token. Expired tokens are skipped. The file is never modified.

    Args:
        name: account name or SPN; default ``KANIDM_NAME``.
        url: the server URL (for the ``name@host`` rule); default ``KANIDM_URL``.
        instance: the CLI instance; default ``KANIDM_INSTANCE`` or ``""``.
        path: the cache file; default ``KANIDM_TOKEN_CACHE_PATH`` or ``~/.cache/kanidm_tokens``.
        environ: the environment to read (default ``os.environ``).
        now: the current Unix time (default: the clock).

    Returns:
        The token.

    Raises:
        ConfigError: the file is missing or malformed, or no single unexpired token matches.
    """
    env = _env(environ)
    file = Path(os.fspath(path or env.get("KANIDM_TOKEN_CACHE_PATH") or DEFAULT_TOKEN_CACHE))
    file = file.expanduser()
    inst = instance if instance is not None else env.get("KANIDM_INSTANCE", "")
    name = name if name is not None else env.get("KANIDM_NAME")
    url = url if url is not None else env.get("KANIDM_URL")
    problem = None
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{file}: no kanidm token cache (run `kanidm login` first)") from None
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read the kanidm token cache ({exc})") from exc
    except (ValueError, RecursionError) as exc:
        problem = _json_problem(exc)
    if problem is not None:
        # Raised outside the handler: a JSONDecodeError's .doc and a UnicodeDecodeError's
        # .object hold the whole cache, every session token in it, and would stay
        # reachable as __context__.
        raise ConfigError(f"{file}: cannot read the kanidm token cache ({problem})")
    instances = data.get("instances") if isinstance(data, dict) else None
    section = instances.get(inst) if isinstance(instances, dict) else None
    tokens = section.get("tokens") if isinstance(section, dict) else None
    if not isinstance(tokens, dict):
        raise ConfigError(f"{file}: no tokens for instance {inst!r}")
    when = time.time() if now is None else now
    live = {
        spn: tok
        for spn, tok in tokens.items()
        if isinstance(spn, str) and isinstance(tok, str) and not inspect_token(tok).expired(when)
    }
    chosen = _choose_spn(live, name, url)
    if chosen is None:
        if name:
            wanted = f"for {name!r}"
        elif len(live) > 1:
            wanted = "(give a name: several unexpired sessions are cached)"
        else:
            wanted = "(every cached session is expired or unreadable: run `kanidm login`)"
        raise ConfigError(
            f"{file}: no single unexpired session {wanted} in instance {inst!r}; "
            f"cached: {sorted(str(spn) for spn in tokens)}"
        )
    return live[chosen]


def _json_problem(exc: ValueError | RecursionError) -> str:
    """What is wrong with a JSON file, in words that quote none of its content."""
    if isinstance(exc, json.JSONDecodeError):
        return f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 at byte {exc.start}"
    if isinstance(exc, RecursionError):
        return "not JSON: nested too deeply"
    return f"not JSON ({type(exc).__name__})"


def _choose_spn(live: Mapping[str, str], name: str | None, url: str | None) -> str | None:
    if name is None:
        return next(iter(live)) if len(live) == 1 else None
    if "@" in name:
        return name if name in live else None
    if url:
        host = httpx.URL(url).host
        if f"{name}@{host}" in live:
            return f"{name}@{host}"
    matches = [spn for spn in live if spn.startswith(f"{name}@")]
    return matches[0] if len(matches) == 1 else None


# --- client configuration files ---------------------------------------------------------

_TRUE: Final = frozenset({"1", "true", "yes", "on"})


@attrs.frozen(kw_only=True)
class ClientConfig:
    """The Kanidm client configuration (kanidm-auth.md §3.2).

    Attributes:
        uri: the server base URL.
        verify_ca: check the certificate chain.
        verify_hostnames: check the certificate's host name.
        ca_path: a PEM file added to the trust roots.
        connect_timeout: TCP/TLS connect timeout in seconds.
    """

    uri: str | None = None
    verify_ca: bool = True
    verify_hostnames: bool = True
    ca_path: str | None = None
    connect_timeout: float | None = None

    def verify(self) -> ssl.SSLContext | bool:
        """The ``verify=`` value for an httpx client (``True``, ``False`` or an SSL context).

        Raises:
            OSError: ``ca_path`` cannot be read.
        """
        return ssl_verify(self.verify_ca, self.ca_path, verify_hostnames=self.verify_hostnames)


_KEYS: Final[dict[str, type | tuple[type, ...]]] = {
    "uri": str,
    "verify_ca": bool,
    "verify_hostnames": bool,
    "ca_path": str,
    "connect_timeout": (int, float),
}


def _apply_table(values: dict[str, object], table: Mapping[str, object], where: str) -> None:
    for key, value in table.items():
        expected = _KEYS.get(key)
        if expected is None:
            continue  # other CLI keys, and named-instance tables at the top level
        if not isinstance(value, expected) or (expected is not bool and isinstance(value, bool)):
            raise ConfigError(f"{where}: {key} has the wrong type ({type(value).__name__})")
        values[key] = value


def load_client_config(
    instance: str | None = None,
    *,
    paths: Sequence[str | os.PathLike[str]] | None = None,
    environ: Mapping[str, str] | None = None,
) -> ClientConfig:
    """Load the Kanidm client config as the CLI does: files, then environment overrides.

    Files (later override earlier): ``/etc/kanidm/config`` then ``~/.config/kanidm``;
    missing files are skipped. With an instance (argument or ``KANIDM_INSTANCE``) only that
    instance's table is read from each file. Then ``KANIDM_URL``, ``KANIDM_CA_PATH``,
    ``KANIDM_SKIP_HOSTNAME_VERIFICATION`` and ``KANIDM_ACCEPT_INVALID_CERTS`` apply (the two
    flags can only turn checks off).

    Args:
        instance: a named instance, or ``None`` for ``KANIDM_INSTANCE`` / the default one.
        paths: the files to read instead of the default two.
        environ: the environment to read (default ``os.environ``).

    Returns:
        The merged configuration.

    Raises:
        ConfigError: a file is not valid TOML or a key has the wrong type.
    """
    env = _env(environ)
    inst = instance if instance is not None else env.get("KANIDM_INSTANCE") or None
    values: dict[str, object] = {}
    for raw in paths if paths is not None else DEFAULT_CONFIG_PATHS:
        file = Path(os.fspath(raw)).expanduser()
        try:
            text = file.read_text(encoding="utf-8")
        except OSError:
            continue  # a missing or unreadable file is skipped silently, as the CLI does
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{file}: not UTF-8 text (at byte {exc.start})") from None
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file}: not valid TOML ({exc})") from exc
        if inst is None:
            _apply_table(values, doc, str(file))
        elif isinstance(doc.get(inst), dict):
            # Named instances do not inherit the top-level defaults.
            _apply_table(values, doc[inst], f"{file} [{inst}]")
    if env.get("KANIDM_URL"):
        values["uri"] = env["KANIDM_URL"]
    if env.get("KANIDM_CA_PATH"):
        values["ca_path"] = env["KANIDM_CA_PATH"]
    if env.get("KANIDM_SKIP_HOSTNAME_VERIFICATION", "").lower() in _TRUE:
        values["verify_hostnames"] = False
    if env.get("KANIDM_ACCEPT_INVALID_CERTS", "").lower() in _TRUE:
        values["verify_ca"] = False
    return ClientConfig(
        uri=values.get("uri"),  # type: ignore[arg-type]  # type checked by _apply_table
        verify_ca=values.get("verify_ca", True),  # type: ignore[arg-type]  # idem
        verify_hostnames=values.get("verify_hostnames", True),  # type: ignore[arg-type]  # idem
        ca_path=values.get("ca_path"),  # type: ignore[arg-type]  # idem
        connect_timeout=values.get("connect_timeout"),  # type: ignore[arg-type]  # idem
    )
