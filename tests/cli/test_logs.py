"""`--log-format json`: every line on stderr is one JSON object, with the run's fields."""

from __future__ import annotations

import io
import json
import logging
import pathlib
import re
import signal

from kanidm_sync._cli._output import Output
from kanidm_sync._logjson import JsonFormatter, LogContext, json_line

from ._helpers import Cli, Server, write_run_config
from ._service import Service


def _objects(stderr: str) -> list[dict[str, object]]:
    """Every stderr line as JSON (fails on a line that is not)."""
    objects = []
    for line in stderr.splitlines():
        data = json.loads(line)
        assert isinstance(data, dict), line
        assert ["time", "level", "logger", "message"] == list(data)[:4], line
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", str(data["time"]))
        objects.append(data)
    return objects


def _config(tmp_path: pathlib.Path, server: Server) -> pathlib.Path:
    config = write_run_config(tmp_path, server, server.fake.provision_sync_account("hr_feed"))
    config.write_text(config.read_text().replace("[kanidm]\n", '[kanidm]\naccount = "hr_feed"\n'))
    return config


def test_the_service_logs_json_lines(cli: Cli, server: Server, tmp_path: pathlib.Path) -> None:
    """Runs, progress, the listener, a signal: each a JSON object; runs carry their fields."""
    config = _config(tmp_path, server)
    args = [
        "run", "-c", str(config), "--schedule", "0.2", "--listen", "127.0.0.1:0",
        "--progress", "--log-format", "json",
    ]  # fmt: skip
    with Service(cli, args) as service:
        service.wait_for(r'"outcome":"nothing-to-do"')
        service.signal(signal.SIGTERM)
        assert 0 == service.finish()
    objects = _objects(service.stderr)
    serving = [o for o in objects if "url" in o]
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", str(serving[0]["url"]))
    runs = [o for o in objects if "outcome" in o]
    assert ["applied", "nothing-to-do"] == [o["outcome"] for o in runs[:2]]
    first = runs[0]
    assert "info" == first["level"]
    assert "kanidm_sync.cli" == first["logger"]
    assert "hr_feed" == first["account"]
    assert "done" == first["phase"]
    assert {"create-or-replace": 3, "sent": 3} == first["counts"]
    assert str(first["message"]).startswith("run applied: 3 create-or-replace")
    # The progress lines of a run share its id; the next run has another.
    progress = [o for o in objects if o.get("run_id") == first["run_id"] and "outcome" not in o]
    assert ["state", "fetch", "plan", "apply", "done"] == [o["phase"] for o in progress]
    assert first["run_id"] != runs[1]["run_id"]
    stop = [o for o in objects if o.get("signal") == "SIGTERM"]
    assert 1 == len(stop)
    assert "stopping" in str(stop[0]["message"])
    token = (tmp_path / "sync.token").read_text().strip()
    assert token not in service.stderr


def test_a_failed_run_and_an_error_are_json_too(
    cli: Cli, server: Server, tmp_path: pathlib.Path
) -> None:
    """A failed run is an error object with the error; a bad configuration an error line."""
    config = _config(tmp_path, server)
    (tmp_path / "directory.ldif").unlink()
    result = cli(
        "run", "-c", str(config), "--schedule", "0.05", "--max-runs", "1", "--log-format", "json"
    )  # fmt: skip
    assert 1 == result.code
    failed = [o for o in _objects(result.stderr) if o.get("outcome") == "failed"]
    assert 1 == len(failed)
    assert "error" == failed[0]["level"]
    error = failed[0]["error"]
    assert isinstance(error, dict)
    assert "SourceError" == error["type"]

    result = cli("run", "-c", str(tmp_path / "missing.toml"), "--log-format", "json")
    assert 2 == result.code
    (line,) = _objects(result.stderr)
    assert "error" == line["level"]
    assert "ConfigError" == line["error_type"]
    assert "missing.toml" in str(line["message"])


def test_debug_library_lines_are_json_with_the_run_id(
    cli: Cli, server: Server, tmp_path: pathlib.Path
) -> None:
    """With --debug the library's own records are JSON, stamped with the run's id."""
    config = _config(tmp_path, server)
    result = cli("run", "-c", str(config), "--log-format", "json", "--debug")
    assert 0 == result.code, result.stderr
    library = [o for o in _objects(result.stderr) if o["logger"] == "kanidm_sync.runner"]
    assert library, result.stderr
    assert all(o.get("run_id") and o.get("account") == "hr_feed" for o in library), library
    assert {o["run_id"] for o in library} == {library[0]["run_id"]}


def test_warnings_are_json_and_quiet_hides_notes(tmp_path: pathlib.Path) -> None:
    """Output in JSON mode: notes are info (hidden by --quiet), warnings always shown."""
    err = io.StringIO()
    out = Output(quiet=True, stderr=err, log_json=True)
    out.note("a note")
    out.warn("a warning")
    (line,) = err.getvalue().splitlines()
    data = json.loads(line)
    assert ("warning", "a warning") == (data["level"], data["message"])


def test_json_line_is_one_ascii_line_whatever_the_text() -> None:
    """Line breaks, U+2028 and non-ASCII names stay inside one line of ASCII JSON."""
    line = json_line("info", "x", "a\nb\u2028c Zoë", {"counts": {"create": 1}, "skip": None})
    assert "\n" not in line
    assert line.isascii()
    data = json.loads(line)
    assert "a\nb\u2028c Zoë" == data["message"]
    assert {"create": 1} == data["counts"]
    assert "skip" not in data


def test_formatter_writes_extras_exceptions_and_context() -> None:
    """Extra fields, a traceback as one string, context fields, odd values as text."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    context = LogContext()
    context.fields["run_id"] = "abc"
    handler.addFilter(context)
    logger = logging.getLogger("tests.logjson")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning(
            "plan: %s", {"create": 2}, extra={"phase": "plan", "path": pathlib.Path("p")}
        )
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("failed", extra={"run_id": "own"})
    finally:
        logger.removeHandler(handler)
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert {
        "level": "warning",
        "logger": "tests.logjson",
        "message": "plan: {'create': 2}",
        "run_id": "abc",
        "phase": "plan",
        "path": "p",
    } == {k: v for k, v in first.items() if k != "time"}
    assert "own" == second["run_id"]  # a record's own value wins over the context
    assert "ValueError: boom" in second["exception"]
