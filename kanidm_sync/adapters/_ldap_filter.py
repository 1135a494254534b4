"""LDAP search filters as the reference tools' configuration files write them.

Owns: :func:`to_rfc4515_filter` (the ldap3 crate's quoted values into RFC 4515 escapes).
Must not: do I/O. Pure.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["to_rfc4515_filter"]

_QUOTED: Final = re.compile(r'"((?:[^"\\]|\\.)*)"')


def _escape_4515(value: str) -> str:
    out = []
    for char in value:
        if char in "\\*()\x00":
            out.append(f"\\{ord(char):02x}")
        else:
            out.append(char)
    return "".join(out)


def to_rfc4515_filter(text: str) -> str:
    r"""Turn a kanidm-ldap-sync (ldap3 crate) filter into RFC 4515 syntax.

    The ldap3 crate wants values with spaces or operator characters in double quotes
    (``(cn="my value")``); RFC 4515 has no quotes and escapes ``* ( ) \`` as ``\2a``,
    ``\28``, ``\29``, ``\5c``. Quoted values are unquoted and escaped; everything
    else is left as it is (so a filter already in RFC 4515 form passes through).

    Args:
        text: the filter as written in the configuration.

    Returns:
        The RFC 4515 filter.
    """

    def unquote(match: re.Match[str]) -> str:
        inner = re.sub(r"\\(.)", r"\1", match.group(1))
        return _escape_4515(inner)

    return _QUOTED.sub(unquote, text.strip())
