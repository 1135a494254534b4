"""Every Kanidm error of spec §2.1.1, §2.4 and §4.9 becomes the right typed exception."""

from __future__ import annotations

import httpx
import pytest

from kanidm_sync import (
    REFRESH,
    ActiveState,
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    ChangeSet,
    JSONValue,
    NotFoundError,
    PermissionDeniedError,
    RequestRejectedError,
    RequestTimeoutError,
    ServerError,
    StateConflictError,
    UniquenessError,
)
from kanidm_sync._proto._status import ERROR_TABLE, OperationError

from ._helpers import TOKEN, mock_client

DETAILS: dict[str, JSONValue] = {
    "invalidattribute": "Unsupported attribute conversion - member",
    "invalidattributename": "foo",
    "schemaviolation": {"missingmustattribute": ["displayname"]},
    "attributeuniqueness": ["name", "mail"],
    "missingclass": "sync_account",
    "plugin/credimport": "password_import was unable to convert hash format",
    "plugin/referentialintegrity": "Uuid referenced not found in database",
}


def _operation_error(key: str) -> OperationError:
    if key.startswith("plugin/"):
        inner = key.split("/", 1)[1]
        return OperationError("plugin", {inner: DETAILS[key]})
    return OperationError(key, DETAILS.get(key))


@pytest.mark.parametrize("key", sorted(ERROR_TABLE))
def test_every_table_variant_maps_to_its_exception(key: str) -> None:
    """Each variant of the one table raises its class with status, variant, opid and body."""
    spec = ERROR_TABLE[key]
    error = _operation_error(key)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            error.status, content=error.body(), headers={"X-KANIDM-OPID": "op-123"}
        )

    with mock_client(handler, max_retries=0) as client, pytest.raises(spec.exception) as info:
        client.get_sync_account("ipasync")
    exc = info.value
    assert spec.status == exc.status_code
    assert key.split("/")[0] == exc.variant
    assert "op-123" == exc.operation_id
    assert error.body().decode() == exc.body
    assert "GET" == exc.method
    assert type(exc) is spec.exception


def test_uniqueness_error_carries_the_conflicting_attributes() -> None:
    """The special 409 body yields UniquenessError.conflicting_attributes."""
    body = b'{"error":"Attribute uniqueness error","conflicting_attributes":["name","mail"]}'
    client = mock_client(lambda r: httpx.Response(409, content=body))
    with client, pytest.raises(UniquenessError) as info:
        client.create_sync_account("dup")
    assert ("name", "mail") == info.value.conflicting_attributes


def test_stale_cookie_is_a_state_conflict() -> None:
    """500 invalidsyncstate on apply raises StateConflictError (no recovery re-read)."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.method)
        return httpx.Response(500, json="invalidsyncstate")

    cs = ChangeSet(from_state=ActiveState(b"old"), to_state=ActiveState(b"new"))
    with mock_client(handler) as client, pytest.raises(StateConflictError) as info:
        client.apply(cs)
    assert ["POST"] == seen
    assert 500 == info.value.status_code


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (415, b"Expected request with `Content-Type: application/json`", RequestRejectedError),
        (400, b"Failed to parse the request body as JSON", RequestRejectedError),
        (422, b"Failed to deserialize the JSON body into the target type", RequestRejectedError),
        (413, b"Failed to buffer the request body: length limit exceeded", RequestRejectedError),
        (405, b"", RequestRejectedError),
        (404, b"Route not found", NotFoundError),
        (408, b"", RequestTimeoutError),
        (401, b'"notauthenticated"', AuthenticationError),
        (500, b'"serdejsonerror"', AuthenticationError),
        (500, b'"notauthorised"', PermissionDeniedError),
        (502, b"<html>bad gateway</html>", ServerError),
    ],
)
def test_framework_and_status_errors(
    status: int, body: bytes, expected: type[APIStatusError]
) -> None:
    """Text rejections and bare statuses map through the same table (§2.1.1 a)."""
    client = mock_client(lambda r: httpx.Response(status, content=body), max_retries=0)
    with client, pytest.raises(expected) as info:
        client.set_yield_attributes("ipasync", ["mail"])
    assert status == info.value.status_code
    assert expected is type(info.value)


def test_connection_errors_are_translated_and_chained() -> None:
    """Httpx transport errors become APIConnectionError / APITimeoutError with __cause__."""

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with mock_client(refuse, max_retries=0) as client, pytest.raises(APIConnectionError) as c:
        client.list_sync_accounts()
    assert isinstance(c.value.__cause__, httpx.ConnectError)
    with mock_client(slow, max_retries=0) as client, pytest.raises(APITimeoutError) as t:
        client.list_sync_accounts()
    assert isinstance(t.value.__cause__, httpx.ReadTimeout)
    assert TOKEN not in str(c.value) + str(t.value)


def test_error_message_names_request_and_hint() -> None:
    """The message carries method, variant and the table's hint line."""
    client = mock_client(lambda r: httpx.Response(500, json="invalidsyncstate"))
    with client, pytest.raises(StateConflictError) as info:
        client.apply(ChangeSet(from_state=REFRESH, to_state=REFRESH))
    assert "invalidsyncstate" in str(info.value)
    assert "hint:" in str(info.value)
