"""The typed jsonpatch shim: apply, diff, and errors that name the operation."""

from __future__ import annotations

import pytest

from kanidm_sync._jsonpatch import PatchError, apply_patch, check_operation, make_patch
from kanidm_sync._types import JSONValue


def test_apply_patch_copies() -> None:
    """Patching returns a new value and leaves the input untouched."""
    document: JSONValue = {"name": "a", "mail": [{"value": "a@x"}]}
    result = apply_patch(document, [{"op": "replace", "path": "/name", "value": "b"}])
    assert {"name": "b", "mail": [{"value": "a@x"}]} == result
    assert {"name": "a", "mail": [{"value": "a@x"}]} == document


def test_make_patch_round_trips() -> None:
    """make_patch gives operations that apply_patch turns source into target with."""
    source: JSONValue = {"name": "a", "mail": [{"value": "a@x"}], "x": 1}
    target: JSONValue = {"name": "b", "mail": [{"value": "a@x"}, {"value": "b@x"}]}
    operations = make_patch(source, target)
    assert target == apply_patch(source, operations)
    assert [] == make_patch(source, source)


@pytest.mark.parametrize(
    ("operations", "index", "message"),
    [
        ([{"op": "test", "path": "/name", "value": "zz"}], 0, "did not match"),
        (
            [{"op": "remove", "path": "/name"}, {"op": "replace", "path": "/gone", "value": 1}],
            1,
            "gone",
        ),
        ([{"op": "add", "path": "/a/b/c", "value": 1}], 0, "a"),
        ([{"op": "nope", "path": "/a"}], 0, "'op' must be one of"),
    ],
)
def test_apply_patch_errors_name_operation(
    operations: list[dict[str, JSONValue]], index: int, message: str
) -> None:
    """A failing operation raises PatchError with its index, never quoting the value."""
    with pytest.raises(PatchError, match=message) as info:
        apply_patch({"name": "secret-value"}, operations)
    assert index == info.value.index
    assert "secret-value" not in str(info.value)


@pytest.mark.parametrize(
    ("operation", "problem"),
    [
        ({"op": "add", "path": "/a", "value": 1}, None),
        ({"op": "move", "from": "/a", "path": "/b"}, None),
        ({"op": "move", "path": "/b"}, "'move' needs a 'from' JSON pointer string"),
        (
            {"op": "remove", "path": "a"},
            "'path' must be a JSON pointer string ('' or starting with '/')",
        ),
        ({"op": "remove", "path": "/a", "value": 1}, "unknown key 'value'"),
    ],
)
def test_check_operation(operation: dict[str, object], problem: str | None) -> None:
    """Operation shapes are checked before anything is applied."""
    assert problem == check_operation(operation)
