"""``python -m kanidm_sync.testing serve`` seeds native entries and adds latency (issue 12).

The conflicts a sync tool must handle (a name taken by a native person or group, a UUID in
the recycle bin) and slow servers can be set up from the command line, for tools that are not
Python and only reach the double over HTTP.
"""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from kanidm_sync.testing.__main__ import main

URN = "urn:ietf:params:scim:schemas:kanidm:sync:1:"
RECYCLED = uuid.UUID("0c2b5e6a-7f3e-4d5b-9c1a-2b3c4d5e6f70")
LATENCY = 0.4


def _change_set(*entries: dict[str, object]) -> dict[str, object]:
    return {
        "from_state": "Refresh",
        "to_state": {"Active": {"cookie": "aHItMQ"}},
        "entries": list(entries),
        "retain": "Ignore",
    }


def _person(name: str, id_: uuid.UUID | None = None) -> dict[str, object]:
    return {
        "schemas": [URN + "account", URN + "person"],
        "id": str(id_ or uuid.uuid5(uuid.NAMESPACE_DNS, name)),
        "externalId": f"uid={name},ou=people",
        "name": name,
        "displayname": name.title(),
    }


def _group(name: str) -> dict[str, object]:
    return {
        "schemas": [URN + "group"],
        "id": str(uuid.uuid5(uuid.NAMESPACE_DNS, "group " + name)),
        "externalId": f"cn={name},ou=groups",
        "name": name,
    }


@pytest.fixture(scope="module")
def served() -> Iterator[dict[str, str]]:
    """One served double, seeded from the command line; the lines it printed, as a dict."""
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "kanidm_sync.testing", "serve", "--port", "0",
            "--sync-account", "feed",
            "--native-person", "alice=alice@example.org",
            "--native-person", "bob",
            "--native-group", "staff=alice,bob",
            "--recycled", str(RECYCLED),
            "--latency", str(LATENCY),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        for line in proc.stdout or ():
            lines.put(line)
        lines.put(None)  # the command ended

    reader = threading.Thread(target=read)
    reader.start()
    printed: dict[str, str] = {}
    try:
        while "latency" not in printed:
            line = lines.get(timeout=30)
            if line is None:
                pytest.fail(f"serve stopped: {proc.wait(10)}: {proc.stderr and proc.stderr.read()}")
            key, _, value = line.rstrip("\n").partition(": ")
            printed[key] = value
        yield printed
    finally:
        proc.terminate()
        try:
            code = proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            reader.join(10)
            proc.stdout.close()
            stderr = proc.stderr.read() if proc.stderr is not None else ""
            if proc.stderr is not None:
                proc.stderr.close()
    assert 0 == code, stderr


def _sync(served: dict[str, str]) -> httpx.Client:
    token = served["sync account feed token"]
    return httpx.Client(
        base_url=served["url"], headers={"authorization": f"Bearer {token}"}, timeout=30
    )


def test_serve_prints_what_it_seeded(served: dict[str, str]) -> None:
    """Each seeded entry is printed with its UUID; the latency is printed too."""
    for key in ("native person alice", "native person bob", "native group staff"):
        uuid.UUID(served[key])
    assert str(RECYCLED) == served["recycled person"]
    assert f"{LATENCY:g} s per request" == served["latency"]


def test_served_double_refuses_a_name_taken_by_a_native_person(served: dict[str, str]) -> None:
    """A sync of a person named like the seeded native person gets kanidmd's 409."""
    with _sync(served) as http:
        refused = http.post("/scim/v1/Sync", json=_change_set(_person("alice")))
        assert 409 == refused.status_code, refused.text
        assert ["name", "spn"] == refused.json()["conflicting_attributes"]
        assert "Refresh" == http.get("/scim/v1/Sync").json()  # nothing was applied


def test_served_double_refuses_a_taken_mail_group_and_recycled_uuid(
    served: dict[str, str],
) -> None:
    """The seeded mail address, group name and recycled UUID are refused too."""
    with _sync(served) as http:
        taken_mail = _person("alice2")
        taken_mail["mail"] = [{"value": "alice@example.org", "primary": True}]
        refused = http.post("/scim/v1/Sync", json=_change_set(taken_mail))
        assert (409, ["mail"]) == (refused.status_code, refused.json()["conflicting_attributes"])
        refused = http.post("/scim/v1/Sync", json=_change_set(_group("staff")))
        assert 409 == refused.status_code, refused.text
        refused = http.post("/scim/v1/Sync", json=_change_set(_person("zed", RECYCLED)))
        assert (500, "invalidentrystate") == (refused.status_code, refused.json())
        assert "Refresh" == http.get("/scim/v1/Sync").json()


def test_served_double_applies_latency(served: dict[str, str]) -> None:
    """Every request waits --latency seconds before it is answered."""
    with _sync(served) as http:
        started = time.monotonic()
        assert 200 == http.get("/scim/v1/Sync").status_code
        assert LATENCY <= time.monotonic() - started


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--native-person", "Not A Name"], "--native-person 'Not A Name': refused as Kanidm"),
        (["--native-person", "bob", "--native-person", "BOB"], "--native-person 'BOB': "),
        (["--native-person", "=bob@example.org"], "the person's name is empty"),
        (["--native-group", "staff=nobody"], "--native-group 'staff=nobody': no live entry"),
        (["--sync-account", "feed", "--native-person", "feed"], "--native-person 'feed': "),
        (["--latency", "-1"], "--latency: must be a number of seconds >= 0, not '-1'"),
        (["--latency", "nan"], "--latency: must be a number of seconds >= 0"),
        (["--recycled", "not-a-uuid"], "--recycled: not a UUID: 'not-a-uuid'"),
    ],
)
def test_bad_seed_options_exit_2_naming_option_and_value(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Seeding the double refuses is a usage error that names the option and its value."""
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--port", "0", *argv], stop=threading.Event())
    assert 2 == exited.value.code
    captured = capsys.readouterr()
    assert message in captured.err
    assert "" == captured.out  # nothing was served
