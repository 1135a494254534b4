"""The one table between Kanidm error bodies, HTTP statuses and exception classes."""

from __future__ import annotations

import json

import pytest

import kanidm_sync as ks
from kanidm_sync._proto._status import ERROR_TABLE, OperationError, error_from_response

# (variant, detail, status, exception class, exact body) from spec §2.1.1, §2.4, §4.9.
CASES = [
    ("notauthenticated", None, 401, ks.AuthenticationError, b'"notauthenticated"'),
    ("accessdenied", None, 403, ks.PermissionDeniedError, b'"accessdenied"'),
    ("nomatchingentries", None, 404, ks.NotFoundError, b'"nomatchingentries"'),
    ("emptyrequest", None, 400, ks.EmptyRequestError, b'"emptyrequest"'),
    (
        "invalidattribute",
        "Unsupported attribute conversion - member",
        400,
        ks.InvalidAttributeError,
        b'{"invalidattribute":"Unsupported attribute conversion - member"}',
    ),
    (
        "invalidattributename",
        "foo",
        400,
        ks.InvalidAttributeError,
        b'{"invalidattributename":"foo"}',
    ),
    (
        "schemaviolation",
        {"missingmustattribute": ["displayname"]},
        400,
        ks.SchemaViolationError,
        b'{"schemaviolation":{"missingmustattribute":["displayname"]}}',
    ),
    ("invalidsyncstate", None, 500, ks.StateConflictError, b'"invalidsyncstate"'),
    ("invalidentrystate", None, 500, ks.InvalidEntryStateError, b'"invalidentrystate"'),
    ("modifyassertionfailed", None, 500, ks.OwnershipError, b'"modifyassertionfailed"'),
    ("notauthorised", None, 500, ks.PermissionDeniedError, b'"notauthorised"'),
    ("serdejsonerror", None, 500, ks.AuthenticationError, b'"serdejsonerror"'),
    ("missingclass", "sync_account", 500, ks.DataError, b'{"missingclass":"sync_account"}'),
    ("valuedenyname", None, 500, ks.DataError, b'"valuedenyname"'),
    (
        "sc0001incomingsshpublickey",
        None,
        500,
        ks.SshPublicKeyError,
        b'"sc0001incomingsshpublickey"',
    ),
    (
        "pl0001gidoverlapssystemrange",
        None,
        500,
        ks.GidNumberRangeError,
        b'"pl0001gidoverlapssystemrange"',
    ),
    (
        "plugin",
        {"credimport": "password_import was unable to convert hash format"},
        500,
        ks.CredentialImportError,
        b'{"plugin":{"credimport":"password_import was unable to convert hash format"}}',
    ),
    (
        "plugin",
        {"referentialintegrity": "Uuid referenced not found in database"},
        500,
        ks.ReferentialIntegrityError,
        b'{"plugin":{"referentialintegrity":"Uuid referenced not found in database"}}',
    ),
    (
        "databaselockacquisitiontimeout",
        None,
        500,
        ks.ServerError,
        b'"databaselockacquisitiontimeout"',
    ),
]


@pytest.mark.parametrize(("variant", "detail", "status", "exc", "body"), CASES)
def test_operation_error_renders_kanidm_body_and_status(variant, detail, status, exc, body) -> None:
    """The double's rendering gives kanidmd's exact body and status for each variant."""
    err = OperationError(variant, detail)
    assert status == err.status
    assert body == err.body()


@pytest.mark.parametrize(("variant", "detail", "status", "exc", "body"), CASES)
def test_client_side_maps_body_to_exception(variant, detail, status, exc, body) -> None:
    """The clients' mapping gives the exception class, variant and detail for each body."""
    error = error_from_response(status, body.decode(), operation_id="op-1")
    assert exc is type(error)
    assert status == error.status_code
    assert variant == error.variant
    assert detail == error.detail
    assert "op-1" == error.operation_id


def test_uniqueness_body_and_attributes() -> None:
    """409 has kanidmd's special body and the exception carries the conflicting attributes."""
    err = OperationError("attributeuniqueness", ["name", "mail"])
    assert 409 == err.status
    expected = {"error": "Attribute uniqueness error", "conflicting_attributes": ["name", "mail"]}
    assert expected == json.loads(err.body())
    exc = error_from_response(409, err.body().decode())
    assert isinstance(exc, ks.UniquenessError)
    assert ("name", "mail") == exc.conflicting_attributes


@pytest.mark.parametrize(
    ("status", "body", "exc"),
    [
        (400, "Failed to parse the request body as JSON: EOF", ks.RequestRejectedError),
        (413, "Failed to buffer the request body: length limit exceeded", ks.RequestRejectedError),
        (415, "Expected request with `Content-Type: application/json`", ks.RequestRejectedError),
        (422, "Failed to deserialize the JSON body into the target type", ks.RequestRejectedError),
        (405, "", ks.RequestRejectedError),
        (404, "Route not found", ks.NotFoundError),
        (408, "", ks.RequestTimeoutError),
        (502, "<html>bad gateway</html>", ks.ServerError),
        (503, "", ks.ServerError),
    ],
)
def test_framework_rejections_map_by_status(status: int, body: str, exc: type) -> None:
    """Plain-text bodies (no operation error) map by HTTP status."""
    error = error_from_response(status, body)
    assert exc is type(error)
    assert error.variant is None


def test_unknown_variant_keeps_variant_and_is_a_status_error() -> None:
    """A variant newer than this table still yields a typed error with the variant."""
    error = error_from_response(500, '"somethingnew"')
    assert "somethingnew" == error.variant
    assert isinstance(error, ks.APIStatusError)


def test_every_table_row_is_reachable_from_a_body() -> None:
    """Each table row round-trips: render its body, parse it back to the same class."""
    for key, spec in ERROR_TABLE.items():
        if key.startswith("plugin/"):
            err = OperationError("plugin", {key.split("/", 1)[1]: "x"})
        elif key == "attributeuniqueness":
            err = OperationError(key, ["name"])
        else:
            err = OperationError(key)
        exc = error_from_response(err.status, err.body().decode())
        assert spec.exception is type(exc), key


def test_message_has_hint_and_no_body_secrets() -> None:
    """Messages carry the operator hint for known variants."""
    exc = error_from_response(500, '"modifyassertionfailed"')
    assert "hint:" in str(exc)
    assert "exclude or remap" in str(exc)
