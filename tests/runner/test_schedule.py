"""Schedule arithmetic and the status object (pure)."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from kanidm_sync import ConfigError, RunnerStatus, Schedule
from kanidm_sync._cron import CronExpression
from kanidm_sync._schedule import CronSchedule


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


# --- cron expressions (the reference tools' `schedule`), times computed by hand ----------------


def _at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def _times(expression: str, after: str, count: int = 3) -> list[str]:
    cron = CronExpression.parse(expression)
    out: list[str] = []
    current = _at(after)
    for _ in range(count):
        fire = cron.next_after(current)
        assert fire is not None
        out.append(fire.strftime("%Y-%m-%dT%H:%M:%S"))
        current = fire
    return out


def test_reference_default_fires_every_five_minutes_in_utc() -> None:
    """The tools' default, "0 */5 * * * * *", fires on the five minutes, DST-free in UTC.

    2026-03-29 01:00 UTC is when Europe moves its clocks; UTC has no gap, so the times
    stay five minutes apart.
    """
    assert ["2026-03-29T01:00:00", "2026-03-29T01:05:00", "2026-03-29T01:10:00"] == _times(
        "0 */5 * * * * *", "2026-03-29T00:58:30"
    )


def test_next_time_is_strictly_after_and_counts_whole_seconds() -> None:
    """A time that fires is not its own next time; fractions of a second are dropped."""
    cron = CronExpression.parse("0 */5 * * * * *")
    assert _at("2026-03-29T01:05:00") == cron.next_after(_at("2026-03-29T01:00:00"))
    assert _at("2026-03-29T01:00:00") == cron.next_after(_at("2026-03-29T00:59:59.999"))


def test_aware_times_in_other_zones_are_compared_in_utc() -> None:
    """A time given in UTC+2 gives the UTC time that follows it."""
    cron = CronExpression.parse("0 0 12 * * * *")  # noon UTC
    berlin_summer = dt.timezone(dt.timedelta(hours=2))
    after = dt.datetime(2026, 6, 1, 13, 30, tzinfo=berlin_summer)  # 11:30 UTC
    assert _at("2026-06-01T12:00:00") == cron.next_after(after)
    with pytest.raises(ValueError, match="timezone-aware"):
        cron.next_after(dt.datetime(2026, 6, 1))  # naive: refused


def test_five_fields_are_padded_as_kanidmd_pads_them() -> None:
    """Kanidm's example, "* * * * *", is read as "0 * * * * * *": every minute at :00."""
    assert ["2026-01-01T12:01:00", "2026-01-01T12:02:00"] == _times(
        "* * * * *", "2026-01-01T12:00:30", 2
    )
    # min hour dom month dow: 09:30 on weekdays (Mon-Fri = 2-6 in the crate's numbering).
    assert ["2026-05-01T09:30:00", "2026-05-04T09:30:00"] == _times(
        "30 9 * * Mon-Fri", "2026-04-30T10:00:00", 2
    )


def test_day_of_week_one_is_sunday() -> None:
    """The crate numbers the days 1 (Sunday) to 7 (Saturday), unlike Unix cron."""
    # 2026-03-25 is a Wednesday; the next Sunday is the 29th.
    assert ["2026-03-29T00:00:00"] == _times("0 0 0 * * 1", "2026-03-25T08:00:00", 1)
    assert ["2026-03-28T00:00:00"] == _times("0 0 0 * * Sat", "2026-03-25T08:00:00", 1)
    assert ["2026-03-29T00:00:00"] == _times("@weekly", "2026-03-25T08:00:00", 1)


def test_day_of_month_and_day_of_week_must_both_match() -> None:
    """Friday the 13th: both day fields match (Unix cron would fire on every Friday too)."""
    # 2026-01-02 is the first Friday of 2026; the first Friday the 13th is in February.
    assert ["2026-02-13T00:00:00", "2026-03-13T00:00:00"] == _times(
        "0 0 0 13 * Fri *", "2026-01-01T00:00:00", 2
    )


def test_leap_day_and_impossible_days() -> None:
    """The 29th of February waits for a leap year; the 31st never comes."""
    assert ["2028-02-29T12:00:00"] == _times("0 0 12 29 2 *", "2026-03-01T00:00:00", 1)
    assert CronExpression.parse("0 0 0 31 2 *").next_after(_at("2026-01-01T00:00:00")) is None
    once = CronExpression.parse("0 0 0 1 1 * 2027")
    assert _at("2027-01-01T00:00:00") == once.next_after(_at("2026-06-01T00:00:00"))
    assert once.next_after(_at("2027-01-01T00:00:00")) is None


def test_lists_ranges_steps_and_names() -> None:
    """Each field form the crate accepts, with its meaning."""
    assert ["2026-01-01T10:05:00", "2026-01-01T10:25:00", "2026-01-01T10:45:00"] == _times(
        "0 5/20 * * * *", "2026-01-01T10:00:00"
    )
    assert ["2026-01-01T10:10:00", "2026-01-01T10:20:00", "2026-01-01T10:30:00"] == _times(
        "0 10-30/10 * * * *", "2026-01-01T10:00:00"
    )
    assert ["2026-01-01T10:00:15", "2026-01-01T10:00:30"] == _times(
        "*/15 * * * * *", "2026-01-01T10:00:00", 2
    )
    assert ["2026-07-01T00:00:00", "2027-01-01T00:00:00"] == _times(
        "0 0 0 1 Jan,JULY ?", "2026-03-01T00:00:00", 2
    )
    assert ["2026-01-01T11:00:00", "2026-01-02T00:00:00"] == _times(
        "@hourly", "2026-01-01T10:00:00", 1
    ) + _times("@daily", "2026-01-01T10:00:00", 1)
    # The crate's own leniency: blanks may stand around a number inside a list.
    assert ["2026-01-15T12:00:00"] == _times("0 0 12 1, 15 * * *", "2026-01-01T13:00:00", 1)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("60 * * * * *", "seconds: 60 is outside 0-59"),
        ("0 0 0 * * 0", "day of week: 0 is outside 1-7"),
        ("0 0 Mon * * *", "hours: names are not allowed"),
        ("0 30-10 * * * *", "minutes: the range 30-10 runs backwards"),
        ("*/0 * * * * *", "seconds: the step 0 must be 1-59"),
        ("0 0 0 * Foo *", "month: 'Foo' is not a valid name"),
        ("0 0 0 * * * 1969", "year: 1969 is outside 1970-2100"),
        ("? * * * * *", "not a cron expression"),
        ("* * * *", "not a cron expression"),
        ("", "not a cron expression"),
        ("0 1- * * * *", "not a cron expression"),
        ("@reboot", "not a cron expression"),
    ],
)
def test_invalid_expressions_name_the_field(expression: str, message: str) -> None:
    """What the crate refuses is refused, with the field and the reason."""
    with pytest.raises(ValueError, match=re.escape(message)):
        CronExpression.parse(expression)


def test_cron_schedule_waits_for_the_next_time_as_the_tools_round_it() -> None:
    """The delay runs to the next time plus the tools' one second; no run at start."""
    now = _at("2026-03-29T00:58:30")
    schedule = CronSchedule.from_cron(CronExpression.parse("0 */5 * * * * *"), clock=lambda: now)
    assert (300.0, False, 0.0) == (schedule.interval, schedule.run_immediately, schedule.jitter)
    assert 91.0 == schedule.next_delay(0, lambda: 0.99)  # 90 s to 01:00:00, + 1
    assert _at("2026-03-29T01:00:00") == schedule.next_fire(0)


def test_cron_schedule_backs_off_to_a_later_time_after_failures() -> None:
    """After n failures it skips to the first time at least interval * 2**n away (capped)."""
    now = _at("2026-03-29T00:58:30")
    schedule = CronSchedule.from_cron(CronExpression.parse("0 */5 * * * * *"), clock=lambda: now)
    # 1 failure: >= 600 s -> 01:08:30 -> 01:10:00; 3: >= 2400 s -> 01:40:00; cap 3600 s.
    assert ["01:10:00", "01:40:00", "02:00:00"] == [
        schedule.next_fire(n).strftime("%H:%M:%S") for n in (1, 3, 10)
    ]
    assert 691.0 == schedule.next_delay(1, lambda: 0.0)


def test_cron_schedule_refuses_an_expression_that_never_fires_again() -> None:
    """A schedule whose last time is past is a ConfigError, not a silent stop."""
    with pytest.raises(ConfigError, match="has no time after 2030-01-01"):
        CronSchedule.from_cron(
            CronExpression.parse("0 0 0 1 1 * 2027"), clock=lambda: _at("2030-01-01T00:00:00")
        )
    with pytest.raises(ValueError, match="jitter must be 0"):
        CronSchedule(
            cron=CronExpression.parse("@daily"), clock=lambda: _at("2026-01-01T00:00:00"),
            interval=60, jitter=0.1,
        )  # fmt: skip
