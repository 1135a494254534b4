"""A token whose payload is nested too deeply is unreadable, not a RecursionError."""

from __future__ import annotations

import base64

from kanidm_sync._proto._admin import inspect_token


def test_deeply_nested_token_payload_is_not_a_recursion_error() -> None:
    payload = base64.urlsafe_b64encode(b"[" * 100_000 + b"]" * 100_000).decode().rstrip("=")
    token = f"eyJhbGciOiJFUzI1NiJ9.{payload}.c2ln"
    info = inspect_token(token)
    assert "opaque" == info.kind
