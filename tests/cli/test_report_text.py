"""The terminal form of a run report says "warning:" once (issue 12, item 5)."""

from __future__ import annotations

import httpx

from kanidm_sync import Client, Group, Runner
from kanidm_sync._cli._run import report_text
from kanidm_sync.adapters import FullImage, SourceBatch
from kanidm_sync.testing import FakeKanidm


class _Source:
    def fetch(self, state: object) -> SourceBatch:
        lonely = Group(
            id="7a0c6f8e-3b1d-4e2a-9c5f-1d2e3f4a5b6c",
            external_id="cn=lonely",
            name="lonely",
            member=["uid=nobody"],
        )
        return FullImage(entries=[lonely], cookie=b"c1")


def test_a_validation_warning_reads_warning_once() -> None:
    fake = FakeKanidm()
    account = fake.provision_sync_account("hr")
    with httpx.Client(transport=fake.transport) as http:
        report = Runner(
            Client(fake.url, token=account.token, http_client=http), _Source()
        ).run_once()
    assert any(w.startswith("warning: ") for w in report.warnings)
    text = report_text(report)
    assert "member.unresolved" in text
    assert "warning: warning:" not in text
