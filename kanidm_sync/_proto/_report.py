"""Validation reports: every problem found in a ChangeSet, in one value.

Pure values; the checks themselves live in ``_validate.py``.
"""

from __future__ import annotations

import html
import uuid
from collections import Counter
from collections.abc import Iterable
from enum import StrEnum

import attrs

__all__ = ["Problem", "Severity", "ValidationReport"]


class Severity(StrEnum):
    """How bad a problem is."""

    ERROR = "error"
    """Kanidm would reject the ChangeSet (the whole apply would roll back)."""
    WARNING = "warning"
    """Kanidm would accept it, but probably not do what was meant."""


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


@attrs.frozen(kw_only=True)
class Problem:
    """One problem in one entry (or in the ChangeSet as a whole).

    Attributes:
        severity: error or warning.
        code: a stable machine-readable code, such as ``"name.syntax"``.
        message: what is wrong, for a person; never contains a secret.
        index: position of the entry in ``ChangeSet.entries``; ``None`` for the header.
        entry_id: the entry's UUID, if known.
        external_id: the entry's external id, if any.
        field: the Kanidm attribute (with a position, ``"mail[1]"``), or ``None``.
    """

    severity: Severity
    code: str
    message: str
    index: int | None = None
    entry_id: uuid.UUID | None = None
    external_id: str | None = None
    field: str | None = None

    def __str__(self) -> str:
        where = []
        if self.index is not None:
            where.append(f"entries[{self.index}]")
        if self.entry_id is not None:
            where.append(str(self.entry_id))
        if self.external_id is not None:
            where.append(repr(self.external_id))
        if self.field is not None:
            where.append(f"field {self.field}")
        place = " ".join(where) if where else "changeset"
        return f"{self.severity.value}: {place}: {self.message} [{self.code}]"


def _problems(values: Iterable[Problem]) -> tuple[Problem, ...]:
    return tuple(values)


@attrs.frozen
class ValidationReport:
    """Every problem found by one validation pass.

    Attributes:
        problems: all problems, errors and warnings, in entry order.
    """

    problems: tuple[Problem, ...] = attrs.field(default=(), converter=_problems)

    @property
    def errors(self) -> tuple[Problem, ...]:
        """The problems Kanidm would reject."""
        return tuple(p for p in self.problems if p.severity is Severity.ERROR)

    @property
    def warnings(self) -> tuple[Problem, ...]:
        """The problems Kanidm would accept."""
        return tuple(p for p in self.problems if p.severity is Severity.WARNING)

    @property
    def ok(self) -> bool:
        """``True`` when there is no error (warnings allowed)."""
        return not any(p.severity is Severity.ERROR for p in self.problems)

    def by_code(self, *codes: str) -> tuple[Problem, ...]:
        """The problems with one of ``codes`` (``report.by_code("name.syntax")``).

        A code ending in ``.`` selects a family: ``by_code("duplicate.")``.

        Args:
            *codes: exact codes, or prefixes ending in ``.``.

        Returns:
            The matching problems, in report order.
        """
        exact = {c for c in codes if not c.endswith(".")}
        prefixes = tuple(c for c in codes if c.endswith("."))
        return tuple(
            p
            for p in self.problems
            if p.code in exact or (prefixes and p.code.startswith(prefixes))
        )

    def by_entry(self) -> dict[int | None, tuple[Problem, ...]]:
        """The problems grouped by entry index (``None`` for ChangeSet-wide ones).

        Returns:
            Entry index -> its problems, in report order.
        """
        grouped: dict[int | None, list[Problem]] = {}
        for p in self.problems:
            grouped.setdefault(p.index, []).append(p)
        return {k: tuple(v) for k, v in grouped.items()}

    @property
    def codes(self) -> frozenset[str]:
        """The distinct problem codes in the report."""
        return frozenset(p.code for p in self.problems)

    def raise_for_errors(self) -> None:
        """Raise if there is any error.

        Raises:
            ValidationError: with this report, when it holds at least one error.
        """
        if not self.ok:
            from .._exceptions import ValidationError

            raise ValidationError(self)

    def __str__(self) -> str:
        if not self.problems:
            return "no problems"
        counts = Counter(p.severity.value for p in self.problems)
        head = ", ".join(_count(n, sev) for sev, n in sorted(counts.items()))
        return "\n".join([head + ":", *(f"  {p}" for p in self.problems)])

    def _repr_html_(self) -> str:
        rows = "".join(
            "<tr>"
            + "".join(
                f"<td>{html.escape('' if v is None else str(v))}</td>"
                for v in (
                    p.severity.value,
                    p.index,
                    p.external_id or p.entry_id,
                    p.field,
                    p.message,
                    p.code,
                )
            )
            + "</tr>"
            for p in self.problems
        )
        head = "".join(
            f"<th>{h}</th>"
            for h in ("severity", "entry", "external id", "field", "message", "code")
        )
        return (
            f"<p><b>ValidationReport</b>: {_count(len(self.errors), 'error')}, "
            f"{_count(len(self.warnings), 'warning')}</p>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
        )
