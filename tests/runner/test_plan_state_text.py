"""How a plan's text names the states it goes between."""

from __future__ import annotations

from kanidm_sync import REFRESH, ActiveState
from kanidm_sync._plan import _state_text


def test_state_text_shows_length_and_the_distinct_end_of_long_cookies() -> None:
    """Two long cookies with a shared prefix read differently; short ones are shown whole."""
    first = ActiveState(b"kanidm-sync:snapshot:1:g1:" + b"a" * 32)
    second = ActiveState(b"kanidm-sync:snapshot:1:g2:" + b"b" * 32)
    assert "Refresh" == _state_text(REFRESH)
    assert "Active (cookie AQIDBA, 4 bytes)" == _state_text(ActiveState(b"\x01\x02\x03\x04"))
    assert _state_text(first) != _state_text(second)
    assert _state_text(first).endswith(", 58 bytes)")
