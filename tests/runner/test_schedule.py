"""Schedule arithmetic and the status object (pure)."""

from __future__ import annotations

import pytest

from kanidm_sync import RunnerStatus, Schedule


def test_success_waits_one_interval() -> None:
    """After a success the base delay is the interval."""
    assert 300.0 == Schedule(interval=300).base_delay(0)


def test_failures_back_off_exponentially_up_to_the_cap() -> None:
    """Each further failure doubles the delay until backoff_max."""
    s = Schedule(interval=60, backoff_max=600)
    assert [120.0, 240.0, 480.0, 600.0, 600.0] == [s.base_delay(n) for n in range(1, 6)]


def test_very_long_failure_streak_does_not_overflow() -> None:
    """Years of failures still give the capped delay."""
    assert 3600.0 == Schedule(interval=60).base_delay(10**9)


@pytest.mark.parametrize(("draw", "expected"), [(0.0, 90.0), (0.5, 100.0), (0.999999, 110.0)])
def test_jitter_spreads_the_delay_symmetrically(draw: float, expected: float) -> None:
    """The random draw maps to [1 - jitter, 1 + jitter] times the delay."""
    delay = Schedule(interval=100, jitter=0.1).next_delay(0, lambda: draw)
    assert expected == pytest.approx(delay, abs=1e-3)


def test_schedule_refuses_nonsense() -> None:
    """A zero interval or a jitter of 1 or more is refused."""
    with pytest.raises(ValueError, match="positive"):
        Schedule(interval=0)
    with pytest.raises(ValueError, match="jitter"):
        Schedule(interval=1, jitter=1.0)


def test_status_starts_as_never_run_and_unhealthy() -> None:
    """Unlike the reference tools, the status does not claim Ok before any run."""
    status = RunnerStatus()
    assert "never-run" == status.state
    assert not status.healthy
    assert "never-run" == status.to_dict()["state"]
