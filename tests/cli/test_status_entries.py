"""``kanidm-sync status --entries``: the local record's entries (issue 15, item 1)."""

from __future__ import annotations

import json
import pathlib

from ._helpers import LDIF, Cli, Server, write_run_config


def test_status_entries_lists_the_record_sorted_with_a_count(
    cli: Cli, server: Server, tmp_path: pathlib.Path
) -> None:
    config = write_run_config(tmp_path, server, server.fake.provision_sync_account("hr_feed"))
    before = cli("status", "-c", str(config), "--entries")
    assert "local record" in before.stdout
    assert "none" in before.stdout
    assert 0 == cli("run", "-c", str(config)).code
    result = cli("status", "-c", str(config), "--entries")
    assert 0 == result.code, result.stderr
    lines = result.stdout.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("local record"))
    assert "3 entries, for Kanidm's current cookie" in lines[head]
    assert lines[head + 1].split() == ["kind", "name", "id", "external", "id"]
    listed = [line.split()[:2] for line in lines[head + 2 :]]
    assert [["group", "staff"], ["person", "alice"], ["person", "bob"]] == listed
    data = json.loads(cli("status", "-c", str(config), "--entries", "--json").stdout)
    record = data["record"]
    assert (3, True) == (record["count"], record["current"])
    assert ["staff", "alice", "bob"] == [e["name"] for e in record["entries"]]
    assert all(e["id"] and e["external_id"] for e in record["entries"])
    # Without --entries the status stays as it was.
    assert "record" not in json.loads(cli("status", "-c", str(config), "--json").stdout)


def test_status_entries_says_when_the_record_is_behind(
    cli: Cli, server: Server, tmp_path: pathlib.Path
) -> None:
    config = write_run_config(tmp_path, server, server.fake.provision_sync_account("hr_feed"))
    assert 0 == cli("run", "-c", str(config)).code
    ldif = tmp_path / "directory.ldif"
    ldif.write_text(LDIF.replace("cn: Bob Builder", "cn: Robert Builder"))
    record = next(tmp_path.rglob("record.sqlite"))
    saved = record.read_bytes()
    assert 0 == cli("run", "-c", str(config)).code
    record.write_bytes(saved)  # one cookie behind, as after a crash before the write
    for suffix in ("-wal", "-shm"):
        pathlib.Path(f"{record}{suffix}").unlink(missing_ok=True)
    result = cli("status", "-c", str(config), "--entries")
    assert "for another cookie than Kanidm's" in result.stdout


def test_state_files_of_an_older_release_are_taken_over(
    cli: Cli, server: Server, tmp_path: pathlib.Path
) -> None:
    """``record.json`` / ``snapshot.json`` are read where they are, then renamed by a run.

    An older release kept both stores as JSON under those names; the stores convert the
    content themselves, the CLI only gives the files their new names (``*.sqlite``).
    """
    config = write_run_config(tmp_path, server, server.fake.provision_sync_account("hr_feed"))
    assert 0 == cli("run", "-c", str(config)).code
    record = next(tmp_path.rglob("record.sqlite"))
    state = record.parent
    for name in ("record", "snapshot"):
        (state / f"{name}.sqlite").rename(state / f"{name}.json")
    assert {"record.json", "snapshot.json"} <= {p.name for p in state.iterdir()}
    listed = json.loads(cli("status", "-c", str(config), "--entries", "--json").stdout)
    assert (3, True) == (listed["record"]["count"], listed["record"]["current"])
    result = cli("run", "-c", str(config), "--json")
    assert 0 == result.code, result.stderr
    # Nothing to do: the record and the snapshot store were taken over, not lost.
    assert "nothing-to-do" == json.loads(result.stdout)["report"]["outcome"]
    names = {p.name for p in state.iterdir()}
    assert {"record.sqlite", "snapshot.sqlite"} <= names
    assert not {"record.json", "snapshot.json"} & names
