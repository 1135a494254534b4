"""The CLI's advice for plain-http URLs: --insecure-http only where it helps (loopback)."""

from __future__ import annotations

import pathlib

from ._helpers import Cli


def _config(tmp_path: pathlib.Path, url: str) -> pathlib.Path:
    (tmp_path / "sync.token").write_text("not-a-real-token\n", encoding="utf-8")
    (tmp_path / "directory.ldif").write_text("version: 1\n", encoding="utf-8")
    config = tmp_path / "sync.toml"
    config.write_text(
        f'[kanidm]\nurl = "{url}"\nsync_token_file = "sync.token"\n\n'
        '[source]\ntype = "ldif"\npath = "directory.ldif"\n',
        encoding="utf-8",
    )
    return config


def test_plain_http_to_another_host_is_not_told_to_pass_insecure_http(
    cli: Cli, tmp_path: pathlib.Path
) -> None:
    result = cli("plan", "-c", str(_config(tmp_path, "http://idm.example.com")))
    assert 2 == result.code, result.stderr
    assert "--insecure-http" not in result.stderr
    assert "https" in result.stderr


def test_plain_http_to_loopback_is_told_to_pass_insecure_http(
    cli: Cli, tmp_path: pathlib.Path
) -> None:
    result = cli("plan", "-c", str(_config(tmp_path, "http://127.0.0.1:9")))
    assert 2 == result.code, result.stderr
    assert "--insecure-http" in result.stderr
