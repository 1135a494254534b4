"""Which tokens the sync endpoint takes, on the double and a real kanidmd (spec §2.4, §4.1)."""

from __future__ import annotations

import pytest

from kanidm_sync.testing import KanidmTarget


@pytest.mark.parametrize("path", ["GET", "POST"])
def test_api_token_on_sync_endpoint_is_401(kanidm_target: KanidmTarget, path: str) -> None:
    """A service account's API token is 401 notauthenticated on S1 and S2.

    The specification inferred 500 serdejsonerror (as for a user session); kanidmd 1.11.1
    answers 401: the API token's HS256 signature is refused before its payload is read.
    """
    token = kanidm_target.api_token()
    with kanidm_target.http(token) as http:
        if path == "GET":
            response = http.get("/scim/v1/Sync")
        else:
            body = {
                "from_state": "Refresh",
                "to_state": "Refresh",
                "entries": [],
                "retain": "Ignore",
            }
            response = http.post("/scim/v1/Sync", json=body)
    assert (401, '"notauthenticated"') == (response.status_code, response.text)


def test_two_spaces_after_bearer_is_401(kanidm_target: KanidmTarget) -> None:
    """``Authorization: Bearer  <token>`` (two spaces) is 401, even with a valid sync token."""
    account = kanidm_target.provision_sync_account("token_spaces")
    with kanidm_target.http() as http:
        good = http.get("/scim/v1/Sync", headers={"authorization": f"Bearer {account.token}"})
        bad = http.get("/scim/v1/Sync", headers={"authorization": f"Bearer  {account.token}"})
    assert 200 == good.status_code
    assert (401, '"notauthenticated"') == (bad.status_code, bad.text)
