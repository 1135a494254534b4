"""``kanidm-sync plan`` / ``run`` / ``status`` through the real console script over HTTP."""

from __future__ import annotations

import json
import pathlib
import uuid

from ._helpers import LDIF, Cli, Server, assert_one_error_line, write_run_config

ALICE = "0b6f3a2e-1c4d-4e5f-8a9b-0c1d2e3f4a01"


def test_plan_sends_nothing_then_run_applies(
    cli: Cli, server: Server, tmp_path: pathlib.Path
) -> None:
    """`plan` prints the plan and changes nothing; `run` applies it and exits 0."""
    account = server.fake.provision_sync_account("hr_feed")
    config = write_run_config(tmp_path, server, account)
    planned = cli("plan", "-c", str(config))
    assert 0 == planned.code, planned.stderr
    assert planned.stdout.startswith("Plan: full source, 3 create-or-replace")
    assert server.fake.cookie("hr_feed") is None
    ran = cli("run", "-c", str(config), "--progress")
    assert 0 == ran.code, ran.stderr
    assert ran.stdout.startswith("run applied: 3 create-or-replace")
    assert "kanidm-sync: read the source" in ran.stderr
    assert "kanidm-sync: applied request 1 of 1 (3 entries sent)" in ran.stderr
    assert "Alice Liddell" == server.fake.store.entry("alice").first("displayname")  # type: ignore[union-attr]
    again = cli("run", "-c", str(config), "--json")
    assert 0 == again.code
    report = json.loads(again.stdout)
    assert (True, "nothing-to-do") == (report["ok"], report["report"]["outcome"])


def test_plan_json(cli: Cli, server: Server, tmp_path: pathlib.Path) -> None:
    """`plan --json` prints the plan as one JSON document."""
    config = write_run_config(tmp_path, server, server.fake.provision_sync_account("hr_feed"))
    result = cli("plan", "-c", str(config), "--json")
    assert 0 == result.code, result.stderr
    plan = json.loads(result.stdout)
    assert ("Refresh", 3) == (plan["from_state"], plan["counts"]["create-or-replace"])


def test_incremental_run_and_status(cli: Cli, server: Server, tmp_path: pathlib.Path) -> None:
    """A changed source sends only the change; `status` reports the last run (exit 0)."""
    config = write_run_config(tmp_path, server, server.fake.provision_sync_account("hr_feed"))
    assert 0 == cli("run", "-c", str(config)).code
    ldif = tmp_path / "directory.ldif"
    ldif.write_text(LDIF.replace("cn: Bob Builder", "cn: Robert Builder"))
    result = cli("run", "-c", str(config))
    assert 0 == result.code, result.stderr
    assert result.stdout.startswith("run applied: 1 update")
    status = cli("status", "-c", str(config))
    assert 0 == status.code, status.stderr
    assert "Kanidm state: active" in status.stdout
    assert "last run: ok" in status.stdout
    data = json.loads(cli("status", "-c", str(config), "--json").stdout)
    assert ("active", "ok", 2) == (  # both processes' runs
        data["kanidm_state"],
        data["status"]["state"],
        data["status"]["runs"],
    )


def test_status_before_any_run_exits_1(cli: Cli, server: Server, tmp_path: pathlib.Path) -> None:
    """`status` with no recorded run says so and exits 1."""
    config = write_run_config(tmp_path, server, server.fake.provision_sync_account("hr_feed"))
    result = cli("status", "-c", str(config))
    assert 1 == result.code
    assert "no run recorded" in result.stdout


def test_conflict_rolls_back_and_suggests_rules(
    cli: Cli, server: Server, tmp_path: pathlib.Path
) -> None:
    """A clash with a native entry exits 1: one error line, the diagnosis, nothing applied."""
    server.fake.store.add_person("alice")
    config = write_run_config(tmp_path, server, server.fake.provision_sync_account("hr_feed"))
    result = cli("run", "-c", str(config))
    assert 1 == result.code
    assert_one_error_line(result, "UniquenessError", "409")
    assert "hint: exclude or remap" in result.stderr
    assert f'[remap.id."{ALICE}"]' in result.stderr
    assert "nothing was applied" in result.stderr
    assert server.fake.cookie("hr_feed") is None
    status = cli("status", "-c", str(config))
    assert 1 == status.code
    assert "last error: UniquenessError" in status.stdout
    as_json = cli("run", "-c", str(config), "--json")
    data = json.loads(as_json.stdout)
    assert (False, "UniquenessError", "failed") == (
        data["ok"],
        data["error"]["type"],
        data["report"]["outcome"],
    )
    assert data["report"]["diagnosis"]["suspects"][0]["id"] == ALICE


def test_rules_file_fixes_the_conflict(cli: Cli, server: Server, tmp_path: pathlib.Path) -> None:
    """A `[rules] file` with the suggested exclude lets the run through."""
    server.fake.store.add_person("alice")
    (tmp_path / "rules.toml").write_text(f'[exclude]\nids = ["{ALICE}"]\n')
    config = write_run_config(
        tmp_path,
        server,
        server.fake.provision_sync_account("hr_feed"),
        extra='[rules]\nfile = "rules.toml"\n',
    )
    result = cli("run", "-c", str(config))
    assert 0 == result.code, result.stderr
    assert server.fake.store.entry("bob") is not None


def test_guard_refusal_exits_3_and_allow_deletes(
    cli: Cli, server: Server, tmp_path: pathlib.Path
) -> None:
    """Deleting past the configured guard is refused (exit 3); --allow-deletes accepts it."""
    config = write_run_config(
        tmp_path,
        server,
        server.fake.provision_sync_account("hr_feed"),
        extra="[guards]\nmax_delete_count = 0\nmax_delete_fraction = 0.0\n",
    )
    assert 0 == cli("run", "-c", str(config)).code
    ldif = tmp_path / "directory.ldif"
    blocks = LDIF.split("\n\n")
    ldif.write_text("\n\n".join(b for b in blocks if "uid=bob" not in b.split("\n")[0]).replace(
        "member: uid=bob,ou=people,dc=example,dc=org\n", ""
    ))  # fmt: skip
    refused = cli("run", "-c", str(config))
    assert 3 == refused.code
    assert_one_error_line(refused)
    assert server.fake.store.entry("bob").state == "live"  # type: ignore[union-attr]
    allowed = cli("run", "-c", str(config), "--allow-deletes")
    assert 0 == allowed.code, allowed.stderr
    bob = server.fake.store.entry(uuid.UUID("0b6f3a2e-1c4d-4e5f-8a9b-0c1d2e3f4a02"))
    assert bob is not None
    assert "recycled" == bob.state


def test_dry_run_applies_nothing(cli: Cli, server: Server, tmp_path: pathlib.Path) -> None:
    """`run --dry-run` reports the plan and sends nothing."""
    config = write_run_config(tmp_path, server, server.fake.provision_sync_account("hr_feed"))
    result = cli("run", "-c", str(config), "--dry-run")
    assert 0 == result.code
    assert result.stdout.startswith("run planned")
    assert server.fake.cookie("hr_feed") is None


def test_schedule_runs_until_max_runs(cli: Cli, server: Server, tmp_path: pathlib.Path) -> None:
    """`run --schedule` keeps running on the interval; each run is reported and recorded."""
    config = write_run_config(tmp_path, server, server.fake.provision_sync_account("hr_feed"))
    result = cli("run", "-c", str(config), "--schedule", "0.05", "--max-runs", "3")
    assert 0 == result.code, result.stderr
    lines = [line for line in result.stderr.splitlines() if " run " in line]
    assert ["run applied", "run nothing-to-do", "run nothing-to-do"] == [
        " ".join(line.split()[1:3]).rstrip(":") for line in lines
    ]
    assert "stopped after 3 runs (0 failed)" in result.stderr
    status = json.loads(cli("status", "-c", str(config), "--json").stdout)
    assert 3 == status["status"]["runs"]


def test_schedule_needs_an_interval(cli: Cli, server: Server, tmp_path: pathlib.Path) -> None:
    """`--schedule` without seconds and without [schedule] interval is a usage error."""
    config = write_run_config(tmp_path, server, server.fake.provision_sync_account("hr_feed"))
    result = cli("run", "-c", str(config), "--schedule")
    assert 2 == result.code
    assert_one_error_line(result, "interval")


def test_csv_and_json_sources(cli: Cli, server: Server, tmp_path: pathlib.Path) -> None:
    """CSV and JSON sources are configured in [source] like LDIF."""
    account = server.fake.provision_sync_account("hr_feed")
    (tmp_path / "people.csv").write_text(
        "kind,external_id,name,displayname,member\n"
        "person,uid=carol,carol,Carol C,\n"
        "group,cn=team,team,,uid=carol\n"
    )
    config = write_run_config(tmp_path, server, account, source='type = "csv"\npath = "people.csv"')
    result = cli("run", "-c", str(config))
    assert 0 == result.code, result.stderr
    assert "Carol C" == server.fake.store.entry("carol").first("displayname")  # type: ignore[union-attr]
    (tmp_path / "people.json").write_text(
        json.dumps([{"external_id": "uid=dan", "name": "dan", "displayname": "Dan D"}])
    )
    config = write_run_config(
        tmp_path,
        server,
        server.fake.provision_sync_account("json_feed"),
        source='type = "json"\npath = "people.json"\ndefault_kind = "person"',
        extra='[state]\ndir = "json-state"\n',
    )
    result = cli("plan", "-c", str(config))
    assert 0 == result.code, result.stderr
    assert "+ person dan" in result.stdout or "* person dan" in result.stdout


def test_reference_tool_config_is_accepted(
    cli: Cli, server: Server, tmp_path: pathlib.Path
) -> None:
    """A kanidm-ldap-sync file is read as a source; the LDAP failure is one error line."""
    account = server.fake.provision_sync_account("ldap_feed")
    config = tmp_path / "ldap-sync"
    config.write_text(
        f'sync_token = "{account.token}"\n'
        'ldap_uri = "ldap://127.0.0.1:9"\n'
        'ldap_sync_dn = "cn=admin,dc=example,dc=org"\n'
        'ldap_sync_pw = "secret-password"\n'
        'ldap_sync_base_dn = "dc=example,dc=org"\n'
        'ldap_filter = "(objectClass=person)"\n'
    )
    result = cli("plan", "-c", str(config), "--insecure-http", env={"KANIDM_URL": server.url})
    assert 1 == result.code
    assert_one_error_line(result, "SourceError")
    assert "secret-password" not in result.stderr
    assert account.token not in result.stderr
    no_url = cli("plan", "-c", str(config))
    assert 2 == no_url.code
    assert_one_error_line(no_url, "does not name Kanidm")


def test_bad_config_names_the_key(cli: Cli, server: Server, tmp_path: pathlib.Path) -> None:
    """An unknown key exits 2 with one line naming the file and the key."""
    config = write_run_config(
        tmp_path, server, server.fake.provision_sync_account("hr_feed"), extra="[guards]\nmax = 1\n"
    )
    result = cli("plan", "-c", str(config))
    assert 2 == result.code
    assert_one_error_line(result, "sync.toml", "'max'")


def test_wrong_sync_token(cli: Cli, server: Server, tmp_path: pathlib.Path) -> None:
    """A destroyed sync token exits 1 with the authentication hint."""
    account = server.fake.provision_sync_account("hr_feed")
    config = write_run_config(tmp_path, server, account)
    server.fake.store.destroy_token_sessions(account.uuid)
    result = cli("run", "-c", str(config))
    assert 1 == result.code
    assert_one_error_line(result, "AuthenticationError")
    assert "hint: the token was refused" in result.stderr
    assert account.token not in result.stderr
