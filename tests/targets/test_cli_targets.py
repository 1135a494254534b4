"""The ``kanidm-sync`` command against the double and a real kanidmd.

Every ``account`` verb (logged in as ``admin`` with ``-D admin`` and ``KANIDM_PASSWORD``), then
``plan``, ``run`` and ``status`` from a configuration with an LDIF source, then ``finalise`` and
``terminate``: the real console script in a subprocess, as a user runs it. The double is served
over loopback HTTP; a real kanidmd over HTTPS with its own CA (``-C``).
"""

from __future__ import annotations

import json
import pathlib
import textwrap
import uuid
from collections.abc import Iterator

import attrs
import pytest
from cli._helpers import Cli

from kanidm_sync.testing import FakeTarget, KanidmTarget, serve


@attrs.frozen
class Endpoint:
    """How the command reaches the target."""

    url: str
    tls: tuple[str, ...]  # ("--insecure-http",) or ("-C", ca)
    config: str  # the [kanidm] lines besides url and token


@pytest.fixture
def endpoint(kanidm_target: KanidmTarget) -> Iterator[Endpoint]:
    if isinstance(kanidm_target, FakeTarget):
        with serve(kanidm_target.fake) as url:
            yield Endpoint(url, ("--insecure-http",), "insecure_http = true\n")
        return
    ca = kanidm_target.ca_path
    tls = ("-C", ca) if ca else ()
    yield Endpoint(kanidm_target.url, tls, f"ca_path = {json.dumps(ca)}\n" if ca else "")


@pytest.fixture
def cli(tmp_path: pathlib.Path) -> Cli:
    home = tmp_path / "home"
    home.mkdir()
    return Cli(home)


def ldif(ns: uuid.UUID, *, bob: str = "Bob Builder") -> str:
    """A small directory whose entryUUIDs are fresh per test (a real server keeps old ones)."""
    ids = [uuid.uuid5(ns, n) for n in ("alice", "bob", "staff")]
    return textwrap.dedent(
        f"""\
        version: 1

        dn: uid=clialice,ou=people,dc=example,dc=org
        objectClass: inetOrgPerson
        entryUUID: {ids[0]}
        uid: clialice
        cn: Alice Liddell
        mail: clialice@example.org

        dn: uid=clibob,ou=people,dc=example,dc=org
        objectClass: inetOrgPerson
        entryUUID: {ids[1]}
        uid: clibob
        cn: {bob}

        dn: cn=clistaff,ou=groups,dc=example,dc=org
        objectClass: groupOfNames
        entryUUID: {ids[2]}
        cn: clistaff
        member: uid=clialice,ou=people,dc=example,dc=org
        member: uid=clibob,ou=people,dc=example,dc=org
        """
    )


@pytest.mark.parametrize("ending", ["finalise", "terminate"])
def test_account_verbs_run_and_ending(
    kanidm_target: KanidmTarget,
    endpoint: Endpoint,
    cli: Cli,
    tmp_path: pathlib.Path,
    ending: str,
) -> None:
    """The whole life of a sync account from the command line."""
    name = f"cli_{ending}"
    kanidm_target.track_sync_account(name)
    env = {"KANIDM_PASSWORD": kanidm_target.password("admin")}
    admin = ("-D", "admin", "--url", endpoint.url, *endpoint.tls)

    def account(*args: str) -> str:
        result = cli("account", *args, *admin, env=env)
        assert 0 == result.code, (args, result.stderr)
        assert env["KANIDM_PASSWORD"] not in result.stdout + result.stderr
        return result.stdout

    account("create", name, "CLI test feed")
    listed = json.loads(account("list", "--json"))
    assert name in [a["name"] for a in listed]
    token_file = tmp_path / "sync.token"
    account("generate-token", name, "cli", "-o", str(token_file))
    account("set-yield-attributes", name, "legalname")
    account("set-credential-portal", name, "https://portal.example.com/")
    got = json.loads(account("get", name, "--json"))
    assert (True, ["legalname"], "https://portal.example.com/") == (
        got["has_token"],
        got["yield_attributes"],
        got["credential_portal"],
    )
    account("set-yield-attributes", name)
    account("set-credential-portal", name)
    account("destroy-token", name)
    token_file.unlink()
    account("generate-token", name, "cli2", "-o", str(token_file))

    ns = uuid.uuid4()
    (tmp_path / "directory.ldif").write_text(ldif(ns), encoding="utf-8")
    config = tmp_path / "sync.toml"
    config.write_text(
        f'[kanidm]\nurl = "{endpoint.url}"\nsync_token_file = "sync.token"\n{endpoint.config}'
        '\n[source]\ntype = "ldif"\npath = "directory.ldif"\n',
        encoding="utf-8",
    )
    plan = cli("plan", "-c", str(config), "--json")
    assert 0 == plan.code, plan.stderr
    assert 3 == json.loads(plan.stdout)["counts"]["create-or-replace"]
    first = cli("run", "-c", str(config))
    assert 0 == first.code, first.stderr
    (tmp_path / "directory.ldif").write_text(ldif(ns, bob="Robert Builder"), encoding="utf-8")
    second = cli("run", "-c", str(config))
    assert 0 == second.code, second.stderr
    assert second.stdout.startswith("run applied: 1 update"), second.stdout
    bob = kanidm_target.entry("clibob")
    assert bob is not None
    assert ("Robert Builder",) == bob.get("displayname")
    status = cli("status", "-c", str(config), "--json")
    assert 0 == status.code, status.stderr
    assert "active" == json.loads(status.stdout)["kanidm_state"]
    account("force-refresh", name)
    assert (
        "refresh" == json.loads(cli("status", "-c", str(config), "--json").stdout)["kanidm_state"]
    )

    account(ending, name, "--yes")
    staff = kanidm_target.entry(uuid.uuid5(ns, "staff"))
    assert staff is not None
    if ending == "finalise":
        assert ("live", False) == (staff.state, "sync_object" in staff.classes)
    else:
        assert "recycled" == staff.state
    gone = cli("account", "get", name, *admin, env=env)
    assert 0 != gone.code
