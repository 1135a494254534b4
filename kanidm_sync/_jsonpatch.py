"""Typed shim over the untyped ``jsonpatch`` module (RFC 6902 JSON Patch).

Owns: every use of ``jsonpatch`` in kanidm_sync. Nothing else may import it (ruff TID251
enforces this), so its untyped API and its exception classes stay behind this module.

Must not: know about entries, rules or plans. It patches and diffs plain JSON values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final, cast

import jsonpatch

from ._types import JSONObject, JSONValue

__all__ = ["OPERATIONS", "PatchError", "apply_patch", "check_operation", "make_patch"]

OPERATIONS: Final = frozenset({"add", "remove", "replace", "move", "copy", "test"})
"""The operation names RFC 6902 defines."""

_NEEDS_VALUE: Final = frozenset({"add", "replace", "test"})
_NEEDS_FROM: Final = frozenset({"move", "copy"})


class PatchError(Exception):
    """A JSON Patch could not be applied (a missing path, a failed ``test``, a bad operation).

    Private: callers translate it into a public error that names the rule and the entry.

    Attributes:
        index: the position of the failing operation, when known.
    """

    def __init__(self, message: str, *, index: int | None = None) -> None:
        super().__init__(message)
        self.index = index


def check_operation(operation: Mapping[str, object]) -> str | None:
    """Check the shape of one RFC 6902 operation without applying it.

    Args:
        operation: one operation object (``{"op": "replace", "path": "/name", "value": "x"}``).

    Returns:
        ``None`` when the shape is valid, else a message saying what is wrong.
    """
    op = operation.get("op")
    if not isinstance(op, str) or op not in OPERATIONS:
        return f"'op' must be one of {', '.join(sorted(OPERATIONS))}"
    path = operation.get("path")
    if not isinstance(path, str) or (path and not path.startswith("/")):
        return "'path' must be a JSON pointer string ('' or starting with '/')"
    if op in _NEEDS_VALUE and "value" not in operation:
        return f"'{op}' needs a 'value'"
    if op in _NEEDS_FROM:
        source = operation.get("from")
        if not isinstance(source, str) or (source and not source.startswith("/")):
            return f"'{op}' needs a 'from' JSON pointer string"
    allowed = {"op", "path"} | ({"value"} if op in _NEEDS_VALUE else set())
    allowed |= {"from"} if op in _NEEDS_FROM else set()
    extra = sorted(set(operation) - allowed)
    if extra:
        return f"unknown key{'s' if len(extra) > 1 else ''} {', '.join(map(repr, extra))}"
    return None


def apply_patch(document: JSONValue, operations: Sequence[Mapping[str, JSONValue]]) -> JSONValue:
    """Apply RFC 6902 operations to a copy of ``document``.

    Operations are applied one at a time so that a failure names the operation.

    Args:
        document: the JSON value to patch; it is not modified.
        operations: the operations, in order.

    Returns:
        The patched copy.

    Raises:
        PatchError: an operation is malformed, its path does not exist, or a ``test``
            operation failed. The message never repeats ``value`` (it may be a secret).
    """
    current: object = document
    for index, operation in enumerate(operations):
        problem = check_operation(operation)
        if problem is not None:
            raise PatchError(problem, index=index)
        try:
            current = jsonpatch.apply_patch(current, [dict(operation)], in_place=False)
        except jsonpatch.JsonPatchTestFailed:
            raise PatchError("the 'test' operation did not match", index=index) from None
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException):
            # Not str(exc): jsonpointer's messages quote the document, which may hold a
            # secret (a password hash).
            where = operation.get("from") if operation.get("op") in _NEEDS_FROM else None
            target = (
                f"from {where!r} to {operation.get('path')!r}"
                if where is not None
                else (f"at {operation.get('path')!r}")
            )
            raise PatchError(
                f"'{operation.get('op')}' {target}: the path does not exist in the entry "
                "or does not fit it",
                index=index,
            ) from None
    return cast("JSONValue", current)


def make_patch(source: JSONValue, target: JSONValue) -> list[JSONObject]:
    """Compute the RFC 6902 operations that turn ``source`` into ``target``.

    Args:
        source: the JSON value before.
        target: the JSON value after.

    Returns:
        The operations (an empty list when both are equal).
    """
    patch = jsonpatch.make_patch(source, target)
    return cast("list[JSONObject]", list(patch.patch))
