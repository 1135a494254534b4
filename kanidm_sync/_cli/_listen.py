"""Where ``run --schedule`` serves its status endpoints, and who may read them.

Owns: reading ``--listen HOST:PORT`` (or a reference file's ``status_bind``), the loopback
rule (a non-loopback address only with ``--listen-public``, in the command line's words),
and reading the bearer token of ``--status-token-file``.

Must not: open a socket (``kanidm_sync.StatusServer`` does), or put the token in a message.
"""

from __future__ import annotations

import ipaddress
import pathlib
from typing import Final

import attrs

from .._exceptions import ConfigError

__all__ = ["Listen", "parse_listen", "read_status_token"]

_MAX_TOKEN_BYTES: Final = 4096
_MIN_TOKEN: Final = 16  # StatusServer's own minimum
_MAKE_ONE: Final = "python3 -c 'import secrets; print(secrets.token_urlsafe(32))' > FILE"


@attrs.frozen
class Listen:
    """An address to serve on.

    Attributes:
        host: an IP address (IPv6 without brackets) or ``localhost``.
        port: the TCP port; 0 picks a free one.
        origin: where it was given, for messages (``--listen`` or ``FILE: status_bind``).
    """

    host: str
    port: int
    origin: str

    @property
    def loopback(self) -> bool:
        """Only this machine can connect (``localhost``, ``127.0.0.0/8``, ``::1``)."""
        if self.host == "localhost":
            return True
        return ipaddress.ip_address(self.host).is_loopback

    def shown(self) -> str:
        """The address as given on the command line (IPv6 in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_listen(text: str, origin: str) -> Listen:
    """Read ``HOST:PORT``: an IPv4 address, ``[IPv6]`` or ``localhost``, and a port.

    Args:
        text: the address (``127.0.0.1:9090``, ``[::1]:9090``, ``0.0.0.0:9090``).
        origin: where it was given, named in the errors.

    Returns:
        The address.

    Raises:
        ConfigError: it is not ``HOST:PORT`` with an IP address (or ``localhost``) and a
            port from 0 to 65535.
    """
    what = f"{origin}: {text!r} is not HOST:PORT"
    host, sep, port_text = text.strip().rpartition(":")
    if not sep or not host:
        raise ConfigError(f"{what} (for example 127.0.0.1:9090, or [::1]:9090)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ConfigError(f"{what}: put an IPv6 address in brackets, as [::1]:9090")
    if not port_text.isdigit() or int(port_text) > 65535:
        raise ConfigError(f"{what}: the port must be a number from 0 to 65535")
    if host != "localhost":
        try:
            host = str(ipaddress.ip_address(host))
        except ValueError:
            raise ConfigError(
                f"{what}: HOST must be an IP address or localhost (a name could resolve to "
                "an address reachable from the network)"
            ) from None
    return Listen(host=host, port=int(port_text), origin=origin)


def read_status_token(path: str) -> str:
    """The bearer token of ``--status-token-file``: the file's text, stripped.

    Args:
        path: the file.

    Returns:
        The token.

    Raises:
        ConfigError: the file cannot be read, is not UTF-8 text, is empty, holds more than
            one word, is shorter than 16 characters or larger than 4 KiB (the message never
            holds the file's text).
    """
    where = f"--status-token-file {path}"
    try:
        raw = pathlib.Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read it ({exc.strerror})") from None
    if len(raw) > _MAX_TOKEN_BYTES:
        raise ConfigError(f"{where}: larger than {_MAX_TOKEN_BYTES} bytes; not a token")
    try:
        token = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        token = None  # not raised here: the error would keep the file's bytes
    if token is None:
        raise ConfigError(f"{where}: not UTF-8 text")
    if not token:
        raise ConfigError(f"{where}: the file is empty")
    if any(c.isspace() for c in token) or not token.isprintable():
        raise ConfigError(
            f"{where}: a token is one word of printable characters (the file holds spaces, "
            "line breaks or control characters)"
        )
    if len(token) < _MIN_TOKEN or not token.isascii():
        raise ConfigError(
            f"{where}: a status token is at least {_MIN_TOKEN} printable ASCII characters "
            f"(make one with: {_MAKE_ONE})"
        )
    return token
