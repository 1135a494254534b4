"""Signals of `run --schedule`: SIGTERM and SIGINT stop after the run, SIGHUP reloads between runs.

The source file is a named pipe (tests/cli/_service.py's Fifo): a run blocks reading it
until the test feeds it, so a signal can arrive while a run is certainly in progress.
"""

from __future__ import annotations

import json
import pathlib
import signal

from ._helpers import LDIF, Cli, Server, write_run_config
from ._service import Fifo, Service

RULES = '[exclude]\nnames = ["nobody"]\n'
WITHOUT_BOB = '[exclude]\nnames = ["bob"]\n'


def _config(
    tmp_path: pathlib.Path, server: Server, extra: str = "", *, fifo: bool = False
) -> tuple[pathlib.Path, Fifo | None]:
    account = server.fake.provision_sync_account("hr_feed")
    config = write_run_config(tmp_path, server, account, extra=extra)
    return config, Fifo(tmp_path / "directory.ldif") if fifo else None


def _serve(config: pathlib.Path, *more: str) -> list[str]:
    return [
        "run", "-c", str(config), "--schedule", "--listen", "127.0.0.1:0", "--progress", *more
    ]  # fmt: skip


def test_sigterm_during_a_run_stops_after_it(
    cli: Cli, server: Server, tmp_path: pathlib.Path
) -> None:
    """The run in progress finishes and is applied; the page notes the stop; exit 0."""
    config, fifo = _config(tmp_path, server, "[schedule]\ninterval = 3600\n", fifo=True)
    assert fifo is not None
    with Service(cli, _serve(config)) as service:
        service.wait_for(r"read Kanidm's sync state")  # the run is in progress: in the source
        running = service.until("the run", lambda d: d["status"]["state"] == "running")
        assert running["alive"] is True
        service.signal(signal.SIGTERM)
        noted = service.until("the note", lambda d: bool(d["notes"]))
        assert "SIGTERM" in noted["notes"][0]
        assert "stopping after the current run" in noted["notes"][0]
        assert server.fake.cookie("hr_feed") is None  # not applied yet
        fifo.feed(LDIF)
        assert 0 == service.finish()
    fifo.close()
    assert server.fake.store.entry("bob") is not None  # the run was finished, not cut short
    assert "stopped after 1 runs (0 failed)" in service.stderr
    status = json.loads((tmp_path / "sync.state" / "status.json").read_text())
    assert "ok" == status["status"]["state"]
    assert status["status"]["next_run_at"] is None


def test_sigint_twice_interrupts_the_run(cli: Cli, server: Server, tmp_path: pathlib.Path) -> None:
    """Ctrl-C stops after the run; a second one interrupts it: exit 130, recorded and explained."""
    config, fifo = _config(tmp_path, server, "[schedule]\ninterval = 3600\n", fifo=True)
    assert fifo is not None
    with Service(cli, _serve(config)) as service:
        service.wait_for(r"read Kanidm's sync state")
        service.until("the run", lambda d: d["status"]["state"] == "running")
        service.signal(signal.SIGINT)
        service.wait_for(r"SIGINT at .*: stopping after the current run; Ctrl-C again interrupts")
        service.signal(signal.SIGINT)
        assert 130 == service.finish()
    fifo.close()
    assert "the apply may have committed" in service.stderr
    assert "kanidm-sync: interrupted" in service.stderr
    assert "Traceback" not in service.stderr
    status = json.loads((tmp_path / "sync.state" / "status.json").read_text())
    assert "interrupted" == status["status"]["state"]
    assert 1 == status["status"]["failures"]
    # The next service start says so on its page, and its first run converges.
    (tmp_path / "directory.ldif").unlink()
    (tmp_path / "directory.ldif").write_text(LDIF)
    with Service(cli, _serve(config)) as service:
        notes = service.until("the note", lambda d: bool(d["notes"]))["notes"]
        assert isinstance(notes, list)
        assert 1 == len(notes), notes
        assert f"the run at {status['status']['last_run_at']} was interrupted" in notes[0]
        service.wait_for(r"Z run applied: ")
        service.signal(signal.SIGTERM)
        assert 0 == service.finish()
    assert server.fake.store.entry("bob") is not None


def test_sigterm_while_waiting_stops_at_once(
    cli: Cli, server: Server, tmp_path: pathlib.Path
) -> None:
    """Between runs SIGTERM ends the wait: exit 0, the status says no run is due."""
    config, _ = _config(tmp_path, server)
    with Service(cli, _serve(config, "--schedule", "3600")) as service:
        service.wait_for(r"Z run applied: ")
        service.until("the run", lambda d: d["status"]["next_run_at"] is not None)
        service.signal(signal.SIGTERM)
        assert 0 == service.finish(timeout=10)
    assert "SIGTERM at " in service.stderr
    assert "stopped after 1 runs (0 failed)" in service.stderr


def test_sighup_refuses_a_broken_rules_file_then_takes_the_fixed_one(
    cli: Cli, server: Server, tmp_path: pathlib.Path
) -> None:
    """A broken file is refused and shown; the old rules go on; a fixed file is taken."""
    (tmp_path / "rules.toml").write_text(RULES)
    config, _ = _config(tmp_path, server, '[rules]\nfile = "rules.toml"\n')
    with Service(cli, _serve(config, "--schedule", "0.3")) as service:
        service.wait_for(r"Z run applied: ")
        (tmp_path / "rules.toml").write_text("[exclude\nnames = [")
        service.signal(signal.SIGHUP)
        refused = service.until("the refused reload", lambda d: d["config_error"] is not None)
        error = str(refused["config_error"])
        assert "rules.toml" in error
        assert "the configuration was not reloaded" in error
        assert "still running with the one loaded at" in error
        lines = service.wait_for(r"^kanidm-sync: error: SIGHUP at .*rules\.toml")
        assert "not valid TOML" in lines[0]
        # The service goes on, with the old rules: bob stays.
        service.wait_for(r"Z run nothing-to-do: ", count=2)
        assert server.fake.store.entry("bob") is not None
        assert 200 == service.get("/healthz").status

        (tmp_path / "rules.toml").write_text(WITHOUT_BOB)
        service.signal(signal.SIGHUP)
        fixed = service.until("the reload", lambda d: d["config_error"] is None)
        assert any("configuration reloaded from" in n for n in fixed["notes"])
        service.wait_for(r"SIGHUP: configuration reloaded from .*sync\.toml")
        service.wait_for(r"Z run applied: .*1 delete")
        assert server.fake.store.entry("bob") is None  # the new rules exclude bob
        service.signal(signal.SIGTERM)
        assert 0 == service.finish()
    assert "Traceback" not in service.stderr


def test_sighup_during_a_run_waits_for_its_end(
    cli: Cli, server: Server, tmp_path: pathlib.Path
) -> None:
    """Never in the middle of a run: the run in progress keeps the rules it started with."""
    (tmp_path / "rules.toml").write_text(RULES)
    config, fifo = _config(
        tmp_path, server, '[rules]\nfile = "rules.toml"\n[schedule]\ninterval = 0.3\n', fifo=True
    )
    assert fifo is not None
    with Service(cli, _serve(config)) as service:
        service.wait_for(r"read Kanidm's sync state")
        (tmp_path / "rules.toml").write_text(WITHOUT_BOB)
        service.signal(signal.SIGHUP)
        service.wait_for(r"SIGHUP: reloading the configuration after the current run")
        assert not any("reloaded" in n for n in service.status()["notes"])
        fifo.feed(LDIF)
        service.wait_for(r"Z run applied: ")
        assert server.fake.store.entry("bob") is not None  # the old rules: bob applied
        service.wait_for(r"SIGHUP: configuration reloaded from")
        fifo.feed(LDIF)  # one read per run: the next run takes the new rules
        service.wait_for(r"Z run applied: .*1 delete")
        assert server.fake.store.entry("bob") is None
        service.signal(signal.SIGTERM)
        fifo.feed(LDIF)
        assert 0 == service.finish()
    fifo.close()


def test_sighup_takes_a_new_schedule(cli: Cli, server: Server, tmp_path: pathlib.Path) -> None:
    """A reload that changes [schedule] interval follows the new one from the reload on."""
    config, _ = _config(tmp_path, server, "[schedule]\ninterval = 3600\n")
    with Service(cli, _serve(config)) as service:
        service.wait_for(r"Z run applied: ")
        assert 3600 == service.status()["interval_seconds"]
        config.write_text(config.read_text().replace("interval = 3600", "interval = 0.2"))
        service.signal(signal.SIGHUP)
        service.wait_for(r"SIGHUP: configuration reloaded .*; the schedule is now every 0\.2 s")
        service.wait_for(r"Z run nothing-to-do: ", count=2)
        assert 0.2 == service.status()["interval_seconds"]
        service.signal(signal.SIGTERM)
        assert 0 == service.finish()


def test_sighup_cannot_move_the_state_directory(
    cli: Cli, server: Server, tmp_path: pathlib.Path
) -> None:
    """A new [state] dir is refused: the lock and the record belong to the old one."""
    config, _ = _config(tmp_path, server, "[schedule]\ninterval = 3600\n")
    with Service(cli, _serve(config)) as service:
        service.wait_for(r"Z run applied: ")
        config.write_text(config.read_text() + '[state]\ndir = "elsewhere"\n')
        service.signal(signal.SIGHUP)
        refused = service.until("the refused reload", lambda d: d["config_error"] is not None)
        assert "a reload cannot move it: restart kanidm-sync" in str(refused["config_error"])
        config.write_text(config.read_text().replace('[state]\ndir = "elsewhere"\n', ""))
        service.signal(signal.SIGHUP)
        service.until("the reload", lambda d: d["config_error"] is None)
        service.signal(signal.SIGTERM)
        assert 0 == service.finish()
    assert not (tmp_path / "elsewhere").exists()
