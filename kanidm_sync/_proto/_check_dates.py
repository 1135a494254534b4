"""Value recognisers for RFC 3339 timestamps, as kanidmd's ``time`` crate parses them.

Owns :func:`rfc3339_problem`, :func:`parse_rfc3339`, :func:`is_rfc3339` and
:data:`RFC3339_CRASH` (spec §3.9.7).

Pure: no I/O, no clock, no logging, no randomness; standard library only. Where kanidmd's
exact rule was read from its source it is cited; where it was inferred the comment says
**[inferred]**, and the check leans towards accepting. Re-exported by ``_checks.py``.
"""

from __future__ import annotations

import datetime as _dt
import re
from typing import Final

__all__ = [
    "RFC3339_CRASH",
    "is_rfc3339",
    "parse_rfc3339",
    "rfc3339_problem",
]

# --- RFC 3339 ------------------------------------------------------------------------------
# kanidm: server/lib/src/value.rs `Value::new_datetime_s`: `OffsetDateTime::parse(s, &Rfc3339)`
# then `.to_offset(UTC)`; the time crate (0.3.55) src/parsing/parsable.rs `impl Sealed for
# Rfc3339` `parse_offset_date_time`. Date and time are exactly `YYYY-MM-DD`, then *any one
# ASCII character* as the separator (`T`, `t`, a space, even `x`), `hh:mm:ss`, an optional
# fraction of any number of digits (nanoseconds kept), and `Z`/`z` or `+hh:mm`/`-hh:mm`
# (hours up to 23, minutes up to 59). Second 60 is read as :59.999999999 and must then be
# 23:59:59 UTC on the last day of a month. Storing needs the UTC year within 0000-9999:
# beyond (9999-12-31T23:00:00-01:00, 0000-01-01T00:00:00+01:00) `to_offset` or the RFC 3339
# formatting when the entry is written panics, and kanidmd answers nothing at all.

_RFC3339_RE: Final = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[\x00-\x7f]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]+))?(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))"
)
RFC3339_CRASH: Final = "kanidmd crashes on this timestamp (in UTC it is outside years 0000-9999)"
"""The problem text of a timestamp that makes kanidmd panic instead of answering."""


def _days_in_month(year: int, month: int) -> int:
    if month == 2:
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        return 29 if leap else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 in the proleptic Gregorian calendar (any year)."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _civil_from_days(days: int) -> tuple[int, int, int]:
    days += 719468
    era = days // 146097
    doe = days - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (month <= 2), month, day


def _rfc3339_utc(value: str) -> tuple[int, int, int, int, int, int, int] | str:
    """The UTC fields (y, m, d, H, M, S, ns) kanidmd stores, or why it cannot."""
    match = _RFC3339_RE.fullmatch(value)
    if match is None:
        return "not an RFC 3339 timestamp"
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    frac = match.group(7) or ""
    nanos = int((frac + "000000000")[:9])
    offset = 0
    if not match.group(8):
        off_h, off_m = int(match.group(10)), int(match.group(11))
        if off_h > 23 or off_m > 59:
            return "the offset is out of range"
        offset = (off_h * 60 + off_m) * (-1 if match.group(9) == "-" else 1)
    if not 1 <= month <= 12 or not 1 <= day <= _days_in_month(year, month):
        return "no such date"
    leap = second == 60
    if leap:
        second, nanos = 59, 999_999_999
    if hour > 23 or minute > 59 or second > 59:
        return "no such time"
    minutes = (_days_from_civil(year, month, day) * 24 + hour) * 60 + minute - offset
    days, rest = divmod(minutes, 24 * 60)
    u_year, u_month, u_day = _civil_from_days(days)
    u_hour, u_minute = divmod(rest, 60)
    if leap and not (u_hour == 23 and u_minute == 59 and u_day == _days_in_month(u_year, u_month)):
        return "a leap second is only valid at 23:59:60 UTC on the last day of a month"
    if not 0 <= u_year <= 9999:
        return RFC3339_CRASH
    return u_year, u_month, u_day, u_hour, u_minute, second, nanos


def rfc3339_problem(value: str) -> str | None:
    """Why kanidmd would not store ``value`` as a datetime, or ``None`` (spec §3.9.7).

    Args:
        value: the text.

    Returns:
        A short reason (:data:`RFC3339_CRASH` for a timestamp that makes kanidmd crash),
        or ``None`` when kanidmd accepts it.
    """
    got = _rfc3339_utc(value)
    return got if isinstance(got, str) else None


def parse_rfc3339(value: str) -> _dt.datetime | None:
    """Parse an RFC 3339 timestamp the way kanidmd's ``time`` crate does, in UTC.

    ``2025-01-31T00:00:00Z``, ``2025-01-31 00:00:00+10:00`` (any one ASCII character may
    separate date and time) and fractional seconds are accepted; ``2025-01-31``, a missing
    offset or an offset without minutes are not. A leap second (``:60``) is accepted at
    23:59:60 UTC on the last day of a month and read as :59.999999.

    Args:
        value: the text.

    Returns:
        The instant as a UTC datetime (microseconds; kanidmd keeps nanoseconds), or
        ``None`` when kanidmd would not store it or Python cannot represent it (UTC year
        0000).
    """
    got = _rfc3339_utc(value)
    if isinstance(got, str) or got[0] == 0:
        return None
    year, month, day, hour, minute, second, nanos = got
    return _dt.datetime(year, month, day, hour, minute, second, nanos // 1000, tzinfo=_dt.UTC)


def is_rfc3339(value: str) -> bool:
    """Whether kanidmd accepts and stores ``value`` as a datetime (spec §3.9.7).

    Args:
        value: the text.

    Returns:
        ``True`` when :func:`rfc3339_problem` finds nothing.
    """
    return rfc3339_problem(value) is None
