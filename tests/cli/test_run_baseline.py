"""`kanidm-sync run` after the state directory is lost: the guards keep their baseline.

The count of entries the account holds travels in Kanidm's cookie (docs/runner.md, "The
baseline in Kanidm's cookie"), so a new host, a wiped or mistyped ``--state-dir`` or a
container without a volume does not switch the guards off (issue 12, items 1 and 10).
"""

from __future__ import annotations

import pathlib
import uuid

import httpx

from kanidm_sync import ActiveState, ChangeSet, Client, Person, RefreshState

from ._helpers import LDIF, Cli, Server, write_run_config


def owned(server: Server, account_uuid: uuid.UUID) -> int:
    return len(server.fake.store.entries(owned_by=account_uuid))


def test_a_new_state_dir_and_a_truncated_source_are_refused(
    cli: Cli, server: Server, tmp_path: pathlib.Path
) -> None:
    account = server.fake.provision_sync_account("hr_feed")
    config = write_run_config(tmp_path, server, account)
    assert 0 == cli("run", "-c", str(config), "--state-dir", str(tmp_path / "one")).code
    blocks = LDIF.split("\n\n")  # the version line, then alice
    (tmp_path / "directory.ldif").write_text("\n\n".join(blocks[:2]) + "\n", encoding="utf-8")
    refused = cli("run", "-c", str(config), "--state-dir", str(tmp_path / "new-host"))
    assert 3 == refused.code, refused.stdout + refused.stderr
    assert "shrank from 3 to 1" in refused.stderr
    assert 3 == owned(server, account.uuid)


def test_a_foreign_cookie_without_a_record_needs_allow_deletes(
    cli: Cli, server: Server, tmp_path: pathlib.Path
) -> None:
    """Kanidm Active under another tool's cookie: the first full image waits for a decision."""
    account = server.fake.provision_sync_account("hr_feed")
    with (
        httpx.Client() as http,  # the caller's client: the caller closes it
        Client(
            server.url, token=account.token, http_client=http, allow_insecure_http=True
        ) as client,
    ):
        client.apply(
            ChangeSet(
                from_state=RefreshState(),
                to_state=ActiveState(b"389ds-cookie"),
                entries=[
                    Person(id=uuid.uuid4(), external_id=f"uid=x{i}", name=f"x{i}", displayname="X")
                    for i in range(5)
                ],
            )
        )
    config = write_run_config(tmp_path, server, account)
    refused = cli("run", "-c", str(config))
    assert 3 == refused.code, refused.stdout + refused.stderr
    assert "an unknown number" in refused.stderr
    assert "--allow-deletes" in refused.stderr
    assert "None" not in refused.stderr
    assert 5 == owned(server, account.uuid)
    allowed = cli("run", "-c", str(config), "--allow-deletes")
    assert 0 == allowed.code, allowed.stderr
    assert 3 == owned(server, account.uuid)
