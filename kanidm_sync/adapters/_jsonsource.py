"""The JSON file source: :class:`JsonSource` (a JSON array, or JSON Lines).

Owns: reading a JSON array of objects or a JSON Lines file, one entry per object through
:class:`~kanidm_sync.adapters.files.FieldMapping`. Must not: talk to Kanidm or keep state.
"""

from __future__ import annotations

import json
import os
import pathlib
from collections.abc import Iterator, Mapping

from .._exceptions import SourceError
from .._proto._entries import Entry
from ._fieldmap import FieldMapping, RecordReader
from ._file_common import Problems, json_kind, read_text

__all__ = ["JsonSource"]


class JsonSource:
    r"""A JSON array of objects, or JSON Lines (one object per line), one entry each.

    Every bad record is reported, with its line (JSON Lines) or index (an array), in one
    :class:`~kanidm_sync.SourceError`. A string holding a lone surrogate (a ``\ud800``
    escape: half a character, which has no UTF-8 form) is refused, naming the field.

    Args:
        path: the file (UTF-8; a byte order mark is skipped).
        mapping: how keys become entry fields.
        lines: ``True`` for JSON Lines, ``False`` for one array; ``None`` decides from
            the suffix (``.jsonl`` / ``.ndjson`` mean lines).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        mapping: FieldMapping | None = None,
        *,
        lines: bool | None = None,
    ) -> None:
        self._path = pathlib.Path(path)
        self._mapping = mapping if mapping is not None else FieldMapping()
        self._lines = (
            lines if lines is not None else self._path.suffix.lower() in (".jsonl", ".ndjson")
        )

    def __repr__(self) -> str:
        return f"JsonSource({str(self._path)!r}, lines={self._lines})"

    @property
    def path(self) -> pathlib.Path:
        """The file."""
        return self._path

    def snapshot(self) -> list[Entry]:
        """Read the whole file.

        Returns:
            One entry per object.

        Raises:
            SourceError: the file cannot be read or is not JSON, or records are bad (not
                an object, a field missing or invalid): one error lists every bad record,
                each with the file, the line or record, the entry's external id and the
                field.
        """
        text = read_text(self._path)
        entries: list[Entry] = []
        problems = Problems(self._path, "records")
        for where, record in self._records(text, problems):
            try:
                entries.append(RecordReader(self._mapping, record, where).entry())
            except SourceError as exc:
                problems.add(exc)
        problems.raise_if_any()
        return entries

    def _records(self, text: str, problems: Problems) -> Iterator[tuple[str, Mapping[str, object]]]:
        if self._lines:
            for number, line in enumerate(text.splitlines(), start=1):
                if not line.strip():
                    continue
                where = f"{self._path}:{number}"
                value, problem, _ = _json_loads(line)
                if problem is not None:
                    problems.add(SourceError(f"{where}: not JSON ({problem})"))
                elif not isinstance(value, dict):
                    problems.add(
                        SourceError(f"{where}: expected an object, not {json_kind(value)}")
                    )
                else:
                    yield where, value
            return
        document, problem, line_number = _json_loads(text)
        if problem is not None:
            at = "" if line_number is None else f":{line_number}"
            raise SourceError(f"{self._path}{at}: not JSON ({problem})")
        if not isinstance(document, list):
            raise SourceError(f"{self._path}: expected a JSON array of objects")
        for index, value in enumerate(document):
            where = f"{self._path}: record [{index}]"
            if not isinstance(value, dict):
                problems.add(SourceError(f"{where}: expected an object, not {json_kind(value)}"))
            else:
                yield where, value


def _json_loads(text: str) -> tuple[object, str | None, int | None]:
    """Parse JSON: ``(value, None, None)``, or ``(None, why, line or None)``.

    The decode error is not kept, not even as ``__context__``: its ``.doc`` is the whole
    text, secrets included; and its message is used only when it quotes nothing.
    """
    try:
        return json.loads(text), None, None
    except json.JSONDecodeError as exc:
        return None, exc.msg, exc.lineno
    except RecursionError:
        # json's C scanner recurses once per nesting level.
        return None, "nested too deeply", None
    except ValueError as exc:
        # The one other ValueError is int() refusing more than
        # sys.get_int_max_str_digits() digits (CVE-2020-10735).
        digits = "digits" in str(exc)
        return None, "a number has too many digits" if digits else "ValueError", None
