"""How a plan's text names the states it goes between."""

from __future__ import annotations

from kanidm_sync import REFRESH, ActiveState
from kanidm_sync._plan_model import _state_text


def test_state_text_shows_length_and_the_distinct_end_of_long_cookies() -> None:
    """Two long cookies with a shared prefix read differently; short ones are shown whole."""
    first = ActiveState(b"kanidm-sync:snapshot:1:g1:" + b"a" * 32)
    second = ActiveState(b"kanidm-sync:snapshot:1:g2:" + b"b" * 32)
    assert "Refresh" == _state_text(REFRESH)
    assert "Active (cookie AQIDBA, 4 bytes)" == _state_text(ActiveState(b"\x01\x02\x03\x04"))
    assert _state_text(first) != _state_text(second)
    assert _state_text(first).endswith(", 58 bytes)")


def test_secret_digests_are_salted_per_entry() -> None:
    """Equal password hashes on two entries record different digests; one entry is stable."""
    import uuid

    from kanidm_sync import Person
    from kanidm_sync._plan import project_entry

    secret = "{SSHA}c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"
    a = Person(id=uuid.uuid4(), external_id="a", name="a", displayname="A", password_import=secret)
    b = Person(id=uuid.uuid4(), external_id="b", name="b", displayname="B", password_import=secret)
    digest_a = project_entry(a)["password_import"]
    assert digest_a == project_entry(a)["password_import"]
    assert digest_a != project_entry(b)["password_import"]
    assert isinstance(digest_a, str)
    assert digest_a.startswith("salted-sha256:")
    assert secret not in digest_a
