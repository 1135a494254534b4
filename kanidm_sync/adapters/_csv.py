"""The CSV file source: :class:`CsvSource`.

Owns: reading a CSV file with a header row (standard library ``csv``), one entry per row
through :class:`~kanidm_sync.adapters.files.FieldMapping`. Must not: talk to Kanidm or
keep state.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import pathlib
import threading
from collections.abc import Iterator

from .._exceptions import ConfigError, SourceError
from .._proto._entries import Entry
from ._fieldmap import FieldMapping, RecordReader
from ._file_common import Problems, read_text, shown

__all__ = ["CsvSource"]

_FIELD_LIMIT_LOCK = threading.Lock()


@contextlib.contextmanager
def _field_size_limit(size: int) -> Iterator[None]:
    """Let the csv module read fields of up to ``size`` characters, then restore its limit.

    Python's csv refuses a field longer than ``csv.field_size_limit()`` (131072 characters
    by default): about 3,000 member DNs in one cell. The file is already in memory, so no
    field can be longer than it: raising the limit to the file's length costs nothing the
    read has not already paid. The limit is process-wide; it is raised only (never
    lowered), under a lock, and put back afterwards.
    """
    with _FIELD_LIMIT_LOCK:
        old = csv.field_size_limit()
        if old >= size:
            yield
            return
        csv.field_size_limit(size)
        try:
            yield
        finally:
            csv.field_size_limit(old)


class CsvSource:
    """A CSV file with a header row, one entry per row.

    Every bad row is reported, with its line, in one :class:`~kanidm_sync.SourceError`.
    A cell may be as long as the file (Python's csv limit of 131072 characters is
    lifted while reading), so a group may list any number of members.

    Args:
        path: the file (UTF-8; a byte order mark is skipped).
        mapping: how columns become entry fields.
        delimiter: the column separator.

    Raises:
        ConfigError: the delimiter is not one character, or is a quote or a line break.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        mapping: FieldMapping | None = None,
        *,
        delimiter: str = ",",
    ) -> None:
        self._path = pathlib.Path(path)
        self._mapping = mapping if mapping is not None else FieldMapping()
        # The csv module would raise a bare TypeError at the first read; say it here.
        if len(delimiter) != 1 or delimiter in '"\r\n':
            raise ConfigError(
                f"CsvSource({str(self._path)!r}): delimiter must be one character other than "
                f"a quote or a line break, not {delimiter!r}"
            )
        self._delimiter = delimiter

    def __repr__(self) -> str:
        return f"CsvSource({str(self._path)!r})"

    @property
    def path(self) -> pathlib.Path:
        """The file."""
        return self._path

    def snapshot(self) -> list[Entry]:
        """Read the whole file.

        Returns:
            One entry per data row.

        Raises:
            SourceError: the file cannot be read, the header is wrong, or rows are bad
                (malformed, or a field missing or invalid): one error lists every bad
                row, each with the file, the line, the entry's external id and the field.
        """
        text = read_text(self._path)
        with _field_size_limit(len(text) + 1):
            return self._rows(text)

    def _rows(self, text: str) -> list[Entry]:
        path = self._path
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=self._delimiter, strict=True)
        mapping = self._mapping
        entries: list[Entry] = []
        problems = Problems(path, "rows")
        try:
            header = next(reader, None)
            if header is None:
                return []
            columns = self._columns(header)
            for row in reader:
                line = reader.line_num
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) != len(columns):
                    problems.add(
                        SourceError(f"{path}:{line}: {len(row)} values for {len(columns)} columns")
                    )
                    continue
                record = dict(zip(columns, row, strict=True))
                try:
                    entries.append(RecordReader(mapping, record, f"{path}:{line}").entry())
                except SourceError as exc:
                    problems.add(exc)
        except csv.Error as exc:
            # The reader cannot go on after a quoting error: report it with the rows before.
            problems.add(SourceError(f"{path}:{reader.line_num}: {exc}"))
        problems.raise_if_any()
        return entries

    def _columns(self, header: list[str]) -> list[str]:
        path = self._path
        mapping = self._mapping
        columns = [c.strip() for c in header]
        seen: set[str] = set()
        for column in columns:
            if column in seen:
                raise SourceError(f"{path}:1: column {shown(column)} appears twice")
            seen.add(column)
        for field, column in mapping.fields.items():
            if column not in seen:
                raise SourceError(
                    f"{path}:1: column {column!r} (mapped to field {field!r}) is not in the header"
                )
        if mapping.default_kind is None and mapping.kind_field not in seen:
            raise SourceError(
                f"{path}:1: no column {mapping.kind_field!r} to tell persons "
                "from groups, and no default kind is set"
            )
        return columns
