"""Pure admin values: SyncAccountInfo decoding, token inspection, TLS settings."""

from __future__ import annotations

import base64
import json
import ssl
import uuid

import pytest

from kanidm_sync import AsyncClient, ClientConfig, DecodeError
from kanidm_sync._proto._admin import (
    SyncAccountInfo,
    decode_string_list,
    decode_sync_account,
    decode_sync_account_list,
    inspect_token,
)
from kanidm_sync._transport import ssl_verify

UUID = "d1c5a651-3fd2-4674-a162-f46a1945de00"


def test_decode_full_v1_entry() -> None:
    """Every rendering of spec §2.2 is read; opaque values only count as present."""
    entry = {
        "attrs": {
            "class": ["object", "sync_account"],
            "name": ["ipasync"],
            "uuid": [UUID],
            "description": ["IPA"],
            "sync_token_session": [f"{UUID}: ApiToken {{ label: ... }}"],
            "sync_cookie": ["private_binary"],
            "sync_yield_authority": ["mail", "legalname"],
            "sync_credential_portal": ["https://portal.example.org/"],
        }
    }
    expected = SyncAccountInfo(
        name="ipasync",
        uuid=uuid.UUID(UUID),
        description="IPA",
        has_token=True,
        has_cookie=True,
        yield_attributes=frozenset({"mail", "legalname"}),
        credential_portal="https://portal.example.org/",
    )
    assert expected == decode_sync_account(entry)
    assert [expected] == decode_sync_account_list([entry])


@pytest.mark.parametrize(
    ("obj", "path"),
    [
        (None, "$"),
        ({"attrs": []}, "$"),
        ({"attrs": {"name": "x", "uuid": [UUID]}}, "$.attrs.name"),
        ({"attrs": {"uuid": [UUID]}}, "$.attrs.name"),
        ({"attrs": {"name": ["x"]}}, "$.attrs.uuid"),
        ({"attrs": {"name": ["x"], "uuid": ["nope"]}}, "$.attrs.uuid[0]"),
    ],
)
def test_decode_errors_name_the_path(obj: object, path: str) -> None:
    """Malformed entries raise DecodeError naming the JSON path."""
    with pytest.raises(DecodeError) as info:
        decode_sync_account(obj)
    assert path in [p for p, _ in info.value.errors]


def test_decode_list_and_strings_errors() -> None:
    """A1 must be an array; A7 must be null or an array of strings."""
    with pytest.raises(DecodeError):
        decode_sync_account_list({})
    with pytest.raises(DecodeError):
        decode_string_list([1])
    assert None is decode_string_list(None)
    assert ("a",) == decode_string_list(["a"])


def _jws(payload: object) -> str:
    raw = json.dumps(payload).encode()
    return "h." + base64.urlsafe_b64encode(raw).rstrip(b"=").decode() + ".s"


def test_inspect_token_kinds() -> None:
    """User sessions, API tokens, sync tokens and opaque strings are told apart."""
    now = 1000.0
    rw = _jws(
        {
            "session_id": "s",
            "spn": "a@d",
            "expiry": 5000,
            "purpose": {"readwrite": {"expiry": 2000}},
        }
    )
    info = inspect_token(rw)
    assert ("user", "readwrite", "a@d", 5000, 2000) == (
        info.kind,
        info.purpose,
        info.spn,
        info.expiry,
        info.rw_expiry,
    )
    assert True is info.can_write(now)
    assert False is info.can_write(1980.0)  # inside the 30 s margin
    capable = inspect_token(
        _jws(
            {
                "session_id": "s",
                "spn": "a@d",
                "expiry": 5000,
                "purpose": {"readwrite": {"expiry": None}},
            }
        )
    )
    assert ("privilege_capable", False) == (capable.purpose, capable.can_write(now))
    readonly = inspect_token(_jws({"session_id": "s", "spn": "a@d", "purpose": "readonly"}))
    assert ("readonly", False) == (readonly.purpose, readonly.can_write(now))
    weird = inspect_token(_jws({"session_id": "s", "spn": "a@d", "purpose": 3}))
    assert ("unknown", None) == (weird.purpose, weird.can_write(now))
    api = inspect_token(_jws({"token_id": "t", "purpose": "readwrite", "expiry": None}))
    assert ("api", "readwrite", True) == (api.kind, api.purpose, api.can_write(now))
    expired = inspect_token(_jws({"token_id": "t", "purpose": "readwrite", "expiry": 10}))
    assert (True, False) == (expired.expired(now), expired.can_write(now))
    sync = inspect_token(_jws({"token_id": "t", "issued_at": 1, "purpose": "synchronise"}))
    assert ("sync", "synchronise") == (sync.kind, sync.purpose)
    for opaque in ("not-a-jws", "a.!!!.c", _jws([1, 2]), _jws({"x": 1})):
        assert ("opaque", None) == (
            inspect_token(opaque).kind,
            inspect_token(opaque).can_write(now),
        )
    assert "a@d" not in repr(inspect_token("a.b.c"))


def test_ssl_verify_variants() -> None:
    """Defaults stay httpx's; a CA or no hostname check builds a context; off is False."""
    assert True is ssl_verify()
    assert False is ssl_verify(False, "ignored.pem")
    context = ssl_verify(True, None, verify_hostnames=False)
    assert isinstance(context, ssl.SSLContext)
    assert False is context.check_hostname
    with pytest.raises(FileNotFoundError):
        ssl_verify(True, "does-not-exist.pem")


@pytest.mark.anyio
async def test_async_from_config() -> None:
    """AsyncClient.from_config takes the uri and timeouts of a config."""
    config = ClientConfig(uri="https://idm.example.com", connect_timeout=4)
    async with AsyncClient.from_config(config, token="t") as client:
        assert "https://idm.example.com" == client.base_url
        assert 4 == client._timeout.connect
