"""docs/deploy.md: the systemd unit, the Kubernetes manifests and the alert rules are right.

The unit passes ``systemd-analyze verify`` without a word and ``systemd-analyze security``
rates it "OK"; its command line runs against the in-memory Kanidm with the token handed
over as a systemd credential; the manifests parse, their ``kanidm-sync`` arguments are read
by the command's own parser and agree with the ports, probes and volumes; every metric an
alert names is one ``/metrics`` serves.
"""

from __future__ import annotations

import json
import pathlib
import re
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Iterator

import httpx
import pytest

from kanidm_sync import Schedule, StatusServer
from kanidm_sync._cli._config import load_run_config
from kanidm_sync._cli._listen import parse_listen
from kanidm_sync._cli._main import build_parser
from kanidm_sync.testing import FakeKanidm, serve

from ._files import SCRIPT, files, systemd_analyze, yaml_module

LDIF = """\
version: 1

dn: uid=alice,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
entryUUID: 0b6f3a2e-1c4d-4e5f-8a9b-0c1d2e3f4a01
uid: alice
cn: Alice Liddell
"""
UNIT = "kanidm-sync.service"


def _unit_entries(text: str) -> list[tuple[str, str, str]]:
    """(section, key, value) of a unit file, in order (keys may repeat)."""
    entries, section = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, _, value = line.partition("=")
        entries.append((section, key.strip(), value.strip()))
    return entries


def _unit_value(key: str) -> str:
    values = [v for s, k, v in _unit_entries(files()[UNIT]) if s == "Service" and k == key]
    assert 1 == len(values), (key, values)
    return values[0]


def _write_unit(tmp_path: pathlib.Path, text: str) -> pathlib.Path:
    # systemd-analyze verify checks that ExecStart= names an executable: the real script.
    assert SCRIPT.exists(), SCRIPT
    path = tmp_path / UNIT
    path.write_text(text.replace("/opt/kanidm-sync/bin/kanidm-sync", str(SCRIPT)))
    return path


@pytest.fixture
def kanidm() -> Iterator[tuple[FakeKanidm, str]]:
    """The in-memory Kanidm on loopback."""
    fake = FakeKanidm()
    with serve(fake) as url:
        yield fake, url


def test_the_page_has_its_files() -> None:
    """Four files, found by their marks (the extraction itself is checked on a sample)."""
    assert {"hr.toml", UNIT, "kubernetes.yaml", "kanidm-sync-alerts.yaml"} == set(files())
    sample = "x\n<!-- file: a.ini -->\n```ini\n[A]\nb=1\n```\n\n```ini\nnot=this\n```\n"
    assert {"a.ini": "[A]\nb=1\n"} == files(sample)


def test_the_unit_verifies_without_a_word(tmp_path: pathlib.Path) -> None:
    """`systemd-analyze verify` passes and prints nothing (an unknown key would be a warning)."""
    analyze = systemd_analyze()
    path = _write_unit(tmp_path, files()[UNIT])
    done = subprocess.run(
        [analyze, "verify", "--man=no", str(path)], capture_output=True, text=True, check=False
    )
    assert (0, "", "") == (done.returncode, done.stdout, done.stderr)


def test_verify_would_catch_a_mistake(tmp_path: pathlib.Path) -> None:
    """The check above can fail: a misspelled key is reported."""
    analyze = systemd_analyze()
    path = _write_unit(tmp_path, files()[UNIT].replace("ProtectSystem=", "ProtectSistem="))
    done = subprocess.run(
        [analyze, "verify", "--man=no", str(path)], capture_output=True, text=True, check=False
    )
    assert "ProtectSistem" in done.stderr


def test_the_unit_is_hardened(tmp_path: pathlib.Path) -> None:
    """The settings the page promises, and an exposure `systemd-analyze security` rates OK."""
    entries = {(k, v) for s, k, v in _unit_entries(files()[UNIT]) if s == "Service"}
    for setting in [
        ("DynamicUser", "yes"),
        ("StateDirectory", "kanidm-sync"),
        ("ProtectSystem", "strict"),
        ("NoNewPrivileges", "yes"),
        ("PrivateTmp", "yes"),
        ("ProtectHome", "yes"),
        ("CapabilityBoundingSet", ""),
        ("RestartPreventExitStatus", "2"),
        ("ExecReload", "kill -HUP $MAINPID"),
    ]:
        assert setting in entries, setting
    assert _unit_value("LoadCredential").startswith("kanidm-sync-token:")
    analyze = systemd_analyze()
    path = _write_unit(tmp_path, files()[UNIT])
    done = subprocess.run(
        [analyze, "security", "--offline=true", "--threshold=20", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert 0 == done.returncode, done.stdout + done.stderr  # exposure at most 2.0


def test_the_units_command_line_runs_with_the_credential(
    tmp_path: pathlib.Path, kanidm: tuple[FakeKanidm, str]
) -> None:
    """ExecStart= and hr.toml as shown, the token from $CREDENTIALS_DIRECTORY: a run applies.

    Only what cannot be on a test machine changes: the paths under /etc and /srv, the
    state root (%S), Kanidm's URL, a free port, and one run instead of forever.
    """
    fake, url = kanidm
    account = fake.provision_sync_account("hr_feed")
    credential, _, _ = _unit_value("LoadCredential").partition(":")
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / credential).write_text(account.token + "\n")
    (tmp_path / "directory.ldif").write_text(LDIF)
    config = tmp_path / "hr.toml"
    shown = files()["hr.toml"]
    source = tomllib.loads(shown)["source"]["path"]
    config.write_text(shown.replace(source, str(tmp_path / "directory.ldif")))

    argv = shlex.split(_unit_value("ExecStart"))
    assert "/opt/kanidm-sync/bin/kanidm-sync" == argv[0]
    argv = [a.replace("%S", str(tmp_path / "var-lib")) for a in argv[1:]]
    argv[argv.index("--config") + 1] = str(config)
    argv[argv.index("--listen") + 1] = "127.0.0.1:0"
    done = subprocess.run(
        [str(SCRIPT), *argv, "--url", url, "--insecure-http", "--max-runs", "1"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "CREDENTIALS_DIRECTORY": str(credentials)},
        timeout=60,
        check=False,
    )
    assert 0 == done.returncode, done.stderr
    assert fake.store.entry("alice") is not None
    lines = [json.loads(line) for line in done.stderr.splitlines()]  # --log-format json
    assert any(line.get("outcome") == "applied" for line in lines), done.stderr
    assert account.token not in done.stderr
    assert (tmp_path / "var-lib" / "kanidm-sync" / "status.json").exists()


def _manifests() -> dict[str, dict[str, object]]:
    yaml = yaml_module()
    documents = [d for d in yaml.safe_load_all(files()["kubernetes.yaml"]) if d]
    by_kind = {str(d["kind"]): d for d in documents}
    assert len(by_kind) == len(documents)
    return by_kind


def test_the_kubernetes_manifests_agree_with_the_command(tmp_path: pathlib.Path) -> None:
    """The Deployment's arguments parse; ports, probes, volumes and the config agree."""
    manifests = _manifests()
    assert {"ConfigMap", "PersistentVolumeClaim", "Deployment", "Service", "NetworkPolicy"} == set(
        manifests
    )
    deployment = manifests["Deployment"]["spec"]
    assert 1 == deployment["replicas"]
    assert "Recreate" == deployment["strategy"]["type"]  # never two runs on one state
    pod = deployment["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] >= 300  # a run finishes after SIGTERM
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert ["ALL"] == container["securityContext"]["capabilities"]["drop"]

    args = build_parser().parse_args(container["args"])
    assert ("run", 0.0, True, "json") == (
        args.command, args.schedule, args.listen_public, args.log_format
    )  # fmt: skip
    listen = parse_listen(args.listen, "--listen")
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert {"status": listen.port} == ports
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        assert {"path": path, "port": "status"} == container[probe]["httpGet"]
    service = manifests["Service"]["spec"]
    assert [{"name": "status", "port": listen.port, "targetPort": "status"}] == service["ports"]
    policy = manifests["NetworkPolicy"]["spec"]
    assert [{"port": listen.port}] == policy["ingress"][0]["ports"]

    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    config_path = pathlib.PurePosixPath(args.config)
    assert str(config_path.parent) == mounts["config"]
    assert args.state_dir == mounts["state"]
    data = manifests["ConfigMap"]["data"]
    shown = data[config_path.name]
    toml = tomllib.loads(shown)
    token_file = pathlib.PurePosixPath(toml["kanidm"]["sync_token_file"])
    assert str(token_file.parent) == mounts["token"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "kanidm-sync-token" == volumes["token"]["secret"]["secretName"]
    assert f"--from-file={token_file.name}=" in files()["kubernetes.yaml"]
    assert str(pathlib.PurePosixPath(toml["source"]["path"]).parent) == mounts["hr-export"]
    assert "kanidm-sync" == volumes["config"]["configMap"]["name"]
    assert manifests["ConfigMap"]["metadata"]["name"] == "kanidm-sync"
    assert (
        volumes["state"]["persistentVolumeClaim"]["claimName"]
        == (manifests["PersistentVolumeClaim"]["metadata"]["name"])
    )

    # The configuration itself loads (its paths moved to where this test can have them).
    (tmp_path / "token").write_text("sync-token\n")
    moved = shown.replace(str(token_file), str(tmp_path / "token"))
    (tmp_path / "hr.toml").write_text(moved)
    loaded = load_run_config(tmp_path / "hr.toml")
    assert "hr_feed" == loaded.account.name
    assert 300 == getattr(loaded.schedule, "interval", None)


def _served_metrics() -> dict[str, set[str]]:
    """Every metric name /metrics serves (counters also as NAME_total), with its labels."""
    parser = pytest.importorskip("prometheus_client.parser")
    with StatusServer(port=0, account="hr_feed", kanidm_url="https://idm.example.com") as server:
        server.loop_started(Schedule(interval=60))
        text = httpx.get(server.url + "/metrics", timeout=30).text
    names: dict[str, set[str]] = {}
    for family in parser.text_string_to_metric_families(text):
        labels = {k for sample in family.samples for k in sample.labels}
        names[family.name] = labels
        if family.type == "counter":
            names[f"{family.name}_total"] = labels
        for sample in family.samples:
            names.setdefault(sample.name, set()).update(sample.labels)
    return names


def test_the_alert_rules_name_served_metrics() -> None:
    """Every kanidm_sync_* name an alert uses is served; the promised alerts are there."""
    yaml = yaml_module()
    (group,) = yaml.safe_load(files()["kanidm-sync-alerts.yaml"])["groups"]
    served = _served_metrics()
    assert "kanidm_sync_ready" in served  # not vacuous: the real names were read
    used: set[str] = set()
    for rule in group["rules"]:
        assert re.fullmatch(r"KanidmSync[A-Z]\w+", rule["alert"]), rule
        assert rule["labels"]["severity"] in ("critical", "warning"), rule
        assert rule["annotations"]["summary"], rule
        names = set(re.findall(r"\bkanidm_sync_\w+", rule["expr"]))
        assert names <= set(served), (rule["alert"], names - set(served))
        used |= names
        for label in re.findall(r"\$labels\.(\w+)", json.dumps(rule["annotations"])):
            known = set().union(*(served[n] for n in names)) | {"instance", "job"}
            if any(served[n] for n in names):
                assert label in known, (rule["alert"], label)
    # No success for N intervals (readiness), guard refusals, conflicts.
    assert {
        "kanidm_sync_ready",
        "kanidm_sync_guard_refusals_total",
        "kanidm_sync_conflicts_total",
    } <= used


def test_yaml_and_tools_are_reported_when_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    """A missing tool is a skip naming it, and a failure under CI=true."""
    from . import _files

    monkeypatch.setattr(_files.shutil, "which", lambda name: None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="Debian package: systemd"):
        _files.systemd_analyze()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        _files.systemd_analyze()
    monkeypatch.setitem(sys.modules, "yaml", None)  # import yaml raises ImportError
    with pytest.raises(pytest.fail.Exception, match="PyYAML"):
        _files.yaml_module()
