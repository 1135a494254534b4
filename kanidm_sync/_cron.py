"""Cron expressions as Kanidm's sync tools read them: parsing, and the next time one fires.

Owns: the grammar of the ``cron`` crate (0.17) that kanidm-ldap-sync and kanidm-ipa-sync
parse their ``schedule`` key with (tools/iam_migrations/*/src/main.rs), and the next-fire
computation in UTC, as those tools compute it (``schedule.after(&Utc::now())``).

Must not: read a clock, sleep or do I/O. The caller passes the time.

The grammar, as the crate parses it:

* ``sec min hour day-of-month month day-of-week [year]``: six or seven fields.
* ``min hour day-of-month month day-of-week``: five fields, which the crate refuses
  (so kanidm-ldap-sync fails on Kanidm's own example ``schedule = "* * * * *"``), are
  padded to ``0 <five fields> *`` as kanidmd pads its ``online_backup.schedule``
  (server/core/src/interval.rs).
* ``@yearly``, ``@monthly``, ``@weekly`` (Sunday), ``@daily``, ``@hourly``.
* A field is a comma-separated list of ``*``, ``N``, ``A-B``, ``*/S``, ``N/S`` (from
  ``N`` to the field's maximum), ``A-B/S``; months and days of the week also by name
  (``jan``, ``january``, ``mon``, ``tues``, ``thurs``, ..., any case), alone or as a
  range (``mon-fri``); ``?`` means ``*`` in the two day fields.
* Ranges: seconds and minutes 0-59, hours 0-23, day of month 1-31, month 1-12, **day of
  week 1-7 with 1 = Sunday** (Unix cron's 0-6 does not apply), year 1970-2100.
* A time matches when every field matches, day of month **and** day of week (Unix cron
  takes either when both are restricted).

Times are whole seconds in UTC, where there is no daylight-saving gap or repeat.
"""

from __future__ import annotations

import bisect
import datetime as _dt
from collections.abc import Mapping
from typing import Final, Literal

import attrs

__all__ = ["CronExpression"]

_UTC: Final = _dt.UTC
_MONTH_NAMES: Final = (
    ("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"),
    ("may", "may"), ("jun", "june"), ("jul", "july"), ("aug", "august"),
    ("sep", "september"), ("oct", "october"), ("nov", "november"), ("dec", "december"),
)  # fmt: skip
_MONTHS: Final[Mapping[str, int]] = {
    name: number for number, names in enumerate(_MONTH_NAMES, 1) for name in names
}
_DAYS: Final[Mapping[str, int]] = {
    "sun": 1, "sunday": 1, "mon": 2, "monday": 2, "tue": 3, "tues": 3, "tuesday": 3,
    "wed": 4, "wednesday": 4, "thu": 5, "thurs": 5, "thursday": 5, "fri": 6, "friday": 6,
    "sat": 7, "saturday": 7,
}  # fmt: skip


@attrs.frozen
class _Field:
    name: str
    low: int
    high: int
    names: Mapping[str, int] | None = None
    any_ok: bool = False  # "?" allowed (the two day fields)


_SECONDS: Final = _Field("seconds", 0, 59)
_MINUTES: Final = _Field("minutes", 0, 59)
_HOURS: Final = _Field("hours", 0, 23)
_DOM: Final = _Field("day of month", 1, 31, any_ok=True)
_MONTH: Final = _Field("month", 1, 12, _MONTHS)
_DOW: Final = _Field("day of week", 1, 7, _DAYS, any_ok=True)
_YEAR: Final = _Field("year", 1970, 2100)
_FIELDS: Final = (_SECONDS, _MINUTES, _HOURS, _DOM, _MONTH, _DOW, _YEAR)

# The shorthands: (seconds, minutes, hours, day of month, month, day of week), year "*".
_SHORTHANDS: Final[Mapping[str, tuple[str, ...]]] = {
    "@yearly": ("0", "0", "0", "1", "1", "*"),
    "@monthly": ("0", "0", "0", "1", "*", "*"),
    "@weekly": ("0", "0", "0", "*", "*", "1"),
    "@daily": ("0", "0", "0", "*", "*", "*"),
    "@hourly": ("0", "0", "*", "*", "*", "*"),
}


# --- the crate's grammar (cron 0.17, src/parsing.rs), position by position -----------------
#
# Faithful to its quirks: blanks may stand around a number or a name inside a field
# ("1 ,2" is one field) and are not needed between fields ("**" is two). A syntax error
# and a value out of range both make the whole expression invalid.

_BLANKS: Final = " \t\r\n"
_DIGITS: Final = "0123456789"
_U32_MAX: Final = 2**32 - 1


@attrs.frozen
class _Spec:
    """One item of a field: ``*``, ``N``, ``A-B``, ``name-name`` or ``name``, maybe ``/step``."""

    kind: Literal["all", "point", "range", "names", "name"]
    first: str = ""
    last: str = ""
    step: int | None = None


class _Syntax:
    def __init__(self, text: str) -> None:
        self.text = text

    def blanks(self, i: int) -> int:
        while i < len(self.text) and self.text[i] in _BLANKS:
            i += 1
        return i

    def run(self, i: int, chars: str | None) -> tuple[str, int] | None:
        # A run of ASCII digits (chars given) or letters (None), blanks around it.
        i = self.blanks(i)
        j = i
        while j < len(self.text) and (
            self.text[j] in chars
            if chars is not None
            else (self.text[j].isascii() and self.text[j].isalpha())
        ):
            j += 1
        return None if j == i else (self.text[i:j], self.blanks(j))

    def ordinal(self, i: int) -> tuple[str, int] | None:
        found = self.run(i, _DIGITS)
        return None if found is None or int(found[0]) > _U32_MAX else found

    def literal(self, i: int, char: str) -> int | None:
        return i + 1 if self.text.startswith(char, i) else None

    def specifier(self, i: int, *, any_ok: bool) -> tuple[_Spec, int] | None:
        # alt((any,) all, range, point, named_range): the first that parses wins.
        at = self.literal(i, "*")
        if at is None and any_ok:
            at = self.literal(i, "?")
        if at is not None:
            return _Spec("all"), at
        first = self.ordinal(i)
        if first is not None:
            dash = self.literal(first[1], "-")
            second = self.ordinal(dash) if dash is not None else None
            if second is not None:
                return _Spec("range", first[0], second[0]), second[1]
            return _Spec("point", first[0]), first[1]
        name = self.run(i, None)
        if name is not None:
            dash = self.literal(name[1], "-")
            other = self.run(dash, None) if dash is not None else None
            if other is not None:
                return _Spec("names", name[0], other[0]), other[1]
        return None

    def root(self, i: int, *, any_ok: bool) -> tuple[_Spec, int] | None:
        # alt((period, specifier, named_point)).
        spec = self.specifier(i, any_ok=any_ok)
        if spec is not None:
            slash = self.literal(spec[1], "/")
            step = self.ordinal(slash) if slash is not None else None
            if step is not None:
                return attrs.evolve(spec[0], step=int(step[0])), step[1]
            return spec
        name = self.run(i, None)
        return (_Spec("name", name[0]), name[1]) if name is not None else None

    def field(self, i: int, *, any_ok: bool) -> tuple[list[_Spec], int] | None:
        # blanks, separated(1.., root, ","), blanks; a "," not followed by a root is left.
        first = self.root(self.blanks(i), any_ok=any_ok)
        if first is None:
            return None
        specs, at = [first[0]], first[1]
        while True:
            comma = self.literal(at, ",")
            more = self.root(comma, any_ok=any_ok) if comma is not None else None
            if more is None:
                return specs, self.blanks(at)
            specs.append(more[0])
            at = more[1]


def _name_value(name: str, field: _Field) -> int:
    if field.names is None:
        raise ValueError(f"{field.name}: names are not allowed ({name!r})")
    value = field.names.get(name.lower())
    if value is None:
        raise ValueError(f"{field.name}: {name!r} is not a valid name")
    return value


def _check(value: int, field: _Field) -> int:
    if not field.low <= value <= field.high:
        raise ValueError(f"{field.name}: {value} is outside {field.low}-{field.high}")
    return value


def _values(spec: _Spec, field: _Field) -> list[int]:
    # The crate's ordinals_from_root_specifier, then from_field's range check.
    if spec.kind == "all":
        values = list(range(field.low, field.high + 1))
    elif spec.kind == "name":
        values = [_name_value(spec.first, field)]
    elif spec.kind == "point":
        start = _check(int(spec.first), field)
        # "N/S" runs from N up to the field's maximum.
        values = [start] if spec.step is None else list(range(start, field.high + 1))
    else:
        if spec.kind == "range":
            start, end = _check(int(spec.first), field), _check(int(spec.last), field)
        else:
            start, end = _name_value(spec.first, field), _name_value(spec.last, field)
        if start > end:
            raise ValueError(f"{field.name}: the range {spec.first}-{spec.last} runs backwards")
        values = list(range(start, end + 1))
    if spec.step is None:
        return values
    if not 1 <= spec.step <= field.high:
        raise ValueError(f"{field.name}: the step {spec.step} must be 1-{field.high}")
    return values[:: spec.step]


def _parse_crate(text: str) -> list[frozenset[int]] | None:
    """The seven fields of ``text`` as the crate reads it; ``None`` when it does not parse."""
    syntax = _Syntax(text)
    words = text.strip(_BLANKS)
    if words.startswith("@"):
        for keyword, fields in _SHORTHANDS.items():
            if words == keyword:
                return [
                    frozenset(_values(_Spec("all") if v == "*" else _Spec("point", v), f))
                    for v, f in zip((*fields, "*"), _FIELDS, strict=True)
                ]
        return None
    specs: list[list[_Spec]] = []
    at = 0
    for field in _FIELDS:
        parsed = syntax.field(at, any_ok=field.any_ok)
        if parsed is None:
            break
        specs.append(parsed[0])
        at = parsed[1]
    if at != len(text) or len(specs) < 6:
        return None
    if len(specs) == 6:
        specs.append([_Spec("all")])
    return [
        frozenset(v for spec in field_specs for v in _values(spec, field))
        for field_specs, field in zip(specs, _FIELDS, strict=True)
    ]


def _cron_weekday(day: _dt.date) -> int:
    # Python: Monday 0 ... Sunday 6. The cron crate: Sunday 1 ... Saturday 7.
    return (day.weekday() + 1) % 7 + 1


def _after(values: tuple[int, ...], current: int) -> int | None:
    at = bisect.bisect_right(values, current)
    return values[at] if at < len(values) else None


def _sorted(values: frozenset[int]) -> tuple[int, ...]:
    return tuple(sorted(values))


@attrs.frozen(repr=False)
class CronExpression:
    """A parsed cron expression (see the module documentation for the grammar).

    Attributes:
        source: the expression as written.
        seconds: the matching seconds.
        minutes: the matching minutes.
        hours: the matching hours.
        days: the matching days of the month.
        months: the matching months.
        weekdays: the matching days of the week, 1 = Sunday ... 7 = Saturday.
        years: the matching years.
    """

    source: str
    seconds: tuple[int, ...] = attrs.field(converter=_sorted)
    minutes: tuple[int, ...] = attrs.field(converter=_sorted)
    hours: tuple[int, ...] = attrs.field(converter=_sorted)
    days: tuple[int, ...] = attrs.field(converter=_sorted)
    months: tuple[int, ...] = attrs.field(converter=_sorted)
    weekdays: tuple[int, ...] = attrs.field(converter=_sorted)
    years: tuple[int, ...] = attrs.field(converter=_sorted)

    @classmethod
    def parse(cls, text: str) -> CronExpression:
        """Parse an expression as kanidm-ldap-sync and kanidm-ipa-sync do.

        Args:
            text: the expression, for example ``"0 */5 * * * * *"``.

        Returns:
            The expression.

        Raises:
            ValueError: the expression is not valid; the message names the field.
        """
        parsed = _parse_crate(text)
        if parsed is None:
            words = text.split()
            if len(words) == 5:
                # kanidmd's padding of standard cron (seconds 0, any year).
                parsed = _parse_crate(f"0 {' '.join(words)} *")
        if parsed is None:
            raise ValueError(
                f"{text!r} is not a cron expression: expected 6 or 7 fields (sec min hour "
                "day-of-month month day-of-week [year]), 5 (min hour day-of-month month "
                "day-of-week), or @yearly, @monthly, @weekly, @daily, @hourly"
            )
        return cls(text, *parsed)

    def next_after(self, after: _dt.datetime) -> _dt.datetime | None:
        """The first time the expression matches, strictly after ``after``.

        As in the ``cron`` crate, the search starts at the whole second after ``after``
        (fractions of a second are dropped first).

        Args:
            after: a timezone-aware time.

        Returns:
            That time in UTC, or ``None`` when the expression never matches again
            (its years are past, or it names a day no month has).

        Raises:
            ValueError: ``after`` has no timezone.
        """
        if after.tzinfo is None:
            raise ValueError("after must be timezone-aware")
        t = after.astimezone(_UTC).replace(microsecond=0) + _dt.timedelta(seconds=1)
        day = _dt.timedelta(days=1)
        while t.year <= self.years[-1]:
            if t.year not in self.years:
                year = _after(self.years, t.year)
                if year is None:
                    return None
                t = _dt.datetime(year, 1, 1, tzinfo=_UTC)
            elif t.month not in self.months:
                month = _after(self.months, t.month)
                t = (
                    _dt.datetime(t.year, month, 1, tzinfo=_UTC)
                    if month is not None
                    else _dt.datetime(t.year + 1, 1, 1, tzinfo=_UTC)
                )
            elif t.day not in self.days or _cron_weekday(t) not in self.weekdays:
                t = t.replace(hour=0, minute=0, second=0) + day
            elif t.hour not in self.hours:
                hour = _after(self.hours, t.hour)
                t = (
                    t.replace(hour=hour, minute=0, second=0)
                    if hour is not None
                    else t.replace(hour=0, minute=0, second=0) + day
                )
            elif t.minute not in self.minutes:
                minute = _after(self.minutes, t.minute)
                t = (
                    t.replace(minute=minute, second=0)
                    if minute is not None
                    else t.replace(minute=0, second=0) + _dt.timedelta(hours=1)
                )
            elif t.second not in self.seconds:
                second = _after(self.seconds, t.second)
                t = (
                    t.replace(second=second)
                    if second is not None
                    else t.replace(second=0) + _dt.timedelta(minutes=1)
                )
            else:
                return t
        return None

    def __str__(self) -> str:
        return self.source

    def __repr__(self) -> str:
        return f"CronExpression({self.source!r})"
