"""Errors the in-memory Kanidm answers with, and the HTTP-layer parsing of a sync request.

Owns: :class:`Rejection` (an HTTP error response exactly as kanidmd would send it), the
shorthands for schema and uniqueness rejections, and :func:`parse_sync_request`. Must not:
hold state or speak HTTP (the HTTP half renders a rejection).
"""

from __future__ import annotations

import contextlib
import gc
import json
from collections.abc import Iterable, Iterator
from typing import Final

from .._proto._status import OperationError
from ._attr_order import attr_rank
from ._parse import FrameworkRejection, SyncRequest
from ._parse import parse_sync_request as _parse_sync_request

__all__ = [
    "Rejection",
    "no_cyclic_gc",
    "parse_sync_request",
    "schema_error",
    "uniqueness_error",
]

_JSON: Final = "application/json"
_TEXT: Final = "text/plain; charset=utf-8"


class Rejection(Exception):
    """An HTTP error response kanidmd would send. Raised by the core, rendered by HTTP.

    Attributes:
        status: the HTTP status.
        body: the exact body bytes.
        content_type: ``application/json`` (operation errors) or
            ``text/plain; charset=utf-8`` (framework rejections).
        error: the operation error, or ``None`` for a framework rejection.
    """

    status: int
    body: bytes
    content_type: str
    error: OperationError | None

    def __init__(
        self,
        status: int,
        body: bytes,
        content_type: str,
        error: OperationError | None = None,
    ) -> None:
        super().__init__(f"HTTP {status}: {body.decode('utf-8', 'replace')}")
        self.status = status
        self.body = body
        self.content_type = content_type
        self.error = error

    @classmethod
    def operation(cls, err: OperationError) -> Rejection:
        """The JSON error response for a Kanidm ``OperationError``."""
        return cls(err.status, err.body(), _JSON, err)

    @classmethod
    def text(cls, status: int, message: str) -> Rejection:
        """A plain-text framework rejection (400/413/415/422)."""
        return cls(status, message.encode(), _TEXT)

    @classmethod
    def of(cls, variant: str, detail: object = None) -> Rejection:
        """Shorthand for :meth:`operation` from a variant and its detail."""
        return cls.operation(OperationError(variant, detail))  # type: ignore[arg-type]  # details are JSON built here

    @property
    def variant(self) -> str | None:
        """The lowercase error variant, or ``None`` for a framework rejection."""
        return self.error.variant if self.error is not None else None

    def json(self) -> object:
        """The body parsed as JSON (framework rejections: the text)."""
        if self.content_type == _JSON:
            return json.loads(self.body)
        return self.body.decode()


@contextlib.contextmanager
def no_cyclic_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector (bulk work that builds only acyclic objects)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def schema_error(kind: str, detail: object) -> Rejection:
    return Rejection.of("schemaviolation", {kind: detail})


def uniqueness_error(names: Iterable[str]) -> Rejection:
    # kanidm: server/lib/src/plugins/attrunique.rs enforce_unique collects one attribute per
    # conflicting (attribute, value) key of a BTreeMap, so the list is in Attribute order and
    # keeps duplicates (two names taken: ["name", "name", "spn", "spn"]);
    # server/core/src/https/errors.rs renders AttributeUniqueness(attrs) as the 409 body.
    return Rejection.of("attributeuniqueness", sorted(names, key=attr_rank))


def parse_sync_request(body: bytes) -> SyncRequest:
    """HTTP-layer parsing of a ``POST /scim/v1/Sync`` body (spec §4.0 step 3, §3.5).

    Args:
        body: the raw request body (the HTTP half checks size and content type first).

    Returns:
        The parsed, generic (``ScimEntry``-level) request.

    Raises:
        Rejection: 400 text for non-JSON, 422 text for shape errors (``null`` values,
            bad UUIDs, missing keys, unknown enum variants, bad cookie base64).
    """
    try:
        with no_cyclic_gc():
            return _parse_sync_request(body)
    except FrameworkRejection as exc:
        raise Rejection.text(exc.status, exc.message) from None
