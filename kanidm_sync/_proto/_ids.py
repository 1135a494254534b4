"""Entry UUIDs derived from external ids: :func:`uuid_for` and its namespace.

Pure; no I/O. Every source that has no UUID of its own for an entry (a CSV row, an HR
record, an LDAP entry without ``entryUUID``) derives one here, so that the same external
id always gives the same entry UUID, whichever adapter read it.
"""

from __future__ import annotations

import uuid
from typing import Final

__all__ = ["EXTERNAL_ID_NAMESPACE", "uuid_for"]

EXTERNAL_ID_NAMESPACE: Final = uuid.UUID("33948611-92ec-58e0-8b9f-1a0a6d12c652")
"""The uuid5 namespace for entry UUIDs derived from external ids.

It is ``uuid5(NAMESPACE_URL, "https://github.com/kanidm-sync/kanidm-sync#external-id")``
and never changes: changing it would give every derived entry a new UUID.
"""


def uuid_for(external_id: str, *, namespace: uuid.UUID = EXTERNAL_ID_NAMESPACE) -> uuid.UUID:
    r"""The entry UUID derived from an external id: stable across runs and adapters.

    Kanidm compares external ids case-insensitively, so an external id that only
    changes case keeps its UUID.

    Args:
        external_id: the external id.
        namespace: the uuid5 namespace.

    Returns:
        ``uuid5(namespace, external_id.lower())``.

    Raises:
        TypeError: ``external_id`` is not a str, or ``namespace`` not a UUID.
        ValueError: ``external_id`` holds a lone surrogate (``"\ud800"``, which a JSON
            ``\u`` escape can produce): it is not Unicode text and has no UTF-8 form.
    """
    if not isinstance(external_id, str):
        raise TypeError(
            f"uuid_for: the external id must be a str, not {type(external_id).__name__}"
        )
    if not isinstance(namespace, uuid.UUID):
        raise TypeError(f"uuid_for: the namespace must be a UUID, not {type(namespace).__name__}")
    lowered = external_id.lower()
    if not lowered.isascii():
        index = _lone_surrogate(lowered)
        if index is not None:
            raise ValueError(
                f"uuid_for: the external id holds a lone surrogate at index {index}, "
                "which is not Unicode text"
            )
    return uuid.uuid5(namespace, lowered)


def _lone_surrogate(text: str) -> int | None:
    """The index of the first lone surrogate in ``text``, or ``None`` when it is valid text."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return exc.start
    return None
