"""A large ChangeSet's JSON written into the HTTP body piece by piece (issue 15, item 5).

Pure; no I/O. ``ChangeSet.to_json()`` builds the whole text, then its bytes: for a request
near kanidmd's 32 MiB limit that is two or three copies of the body at once, on top of the
entries themselves. :func:`changeset_body` returns, for a ChangeSet of many entries, a
:class:`ChangeSetBody` instead: a re-iterable source of byte pieces (about
:data:`PIECE_BYTES` each) that encodes the entries as httpx sends them, so at most one piece
exists at a time. Its exact length is measured first, by encoding every entry once and
keeping only the count, so the request carries a ``Content-Length`` (never chunked transfer
encoding, which a proxy in front of kanidmd might not pass on) and kanidmd's body limit
applies exactly as to the bytes.

The pieces are the bytes of ``to_json()``, in order (tests/proto/test_encode_body.py
compares them for generated ChangeSets). A ChangeSet the fast text writers cannot encode
(a value with no JSON form) is encoded whole by ``to_json()``, which raises the error it
always raised, before anything is sent.

Must not: know about HTTP beyond "an iterable of bytes with a length" (the clients wrap
it in the request; :class:`AsyncChangeSetBody` is the same for httpx's async client, which
only takes an asynchronous iterable).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Final

from ._changeset import ChangeSet
from ._encode_text import TEXT_ERRORS, encode_changeset_json, entry_text, head_and_tail

__all__ = [
    "PIECE_BYTES",
    "STREAM_MIN_ENTRIES",
    "AsyncChangeSetBody",
    "ChangeSetBody",
    "changeset_body",
]

#: The size a piece of the body grows to before it is handed to httpx.
PIECE_BYTES: Final = 256 * 1024

#: ChangeSets with fewer entries are encoded whole (one encode, simpler to debug): below
#: this their body is at most a few MiB, and the measuring pass would only cost time.
STREAM_MIN_ENTRIES: Final = 2_000


def _size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8"))


class ChangeSetBody:
    """A ChangeSet's JSON bytes, produced in pieces each time it is iterated.

    Attributes:
        length: the exact number of bytes the pieces add up to (``len(cs.to_json())``).
    """

    __slots__ = ("_changeset", "_piece", "length")

    def __init__(self, changeset: ChangeSet, *, piece_bytes: int = PIECE_BYTES) -> None:
        """Measure the body: every entry is encoded once and only its size is kept.

        Args:
            changeset: the ChangeSet; its entries are frozen, so every iteration writes
                the same bytes.
            piece_bytes: how large a piece grows before it is yielded.

        Raises:
            EncodeError, ValueError, TypeError, RecursionError, UnicodeEncodeError: an
                entry has no JSON form on the fast path (:func:`changeset_body` catches
                these and encodes the ChangeSet whole instead).
        """
        prefix, suffix = head_and_tail(changeset)
        entries = changeset.entries
        length = _size(prefix) + _size(suffix) + max(len(entries) - 1, 0)
        for entry in entries:
            length += _size(entry_text(entry))
        self._changeset = changeset
        self._piece = piece_bytes
        self.length = length

    def __repr__(self) -> str:
        return f"<ChangeSetBody {len(self._changeset.entries)} entries, {self.length} bytes>"

    def __iter__(self) -> Iterator[bytes]:
        """The body's bytes in pieces of about ``piece_bytes``; a fresh pass every time."""
        prefix, suffix = head_and_tail(self._changeset)
        buffer: list[str] = [prefix]
        size = len(prefix)
        written = 0
        piece = self._piece
        first = True
        for entry in self._changeset.entries:
            text = entry_text(entry)
            if first:
                first = False
            else:
                buffer.append(",")
                size += 1
            buffer.append(text)
            size += len(text)
            if size >= piece:
                data = "".join(buffer).encode("utf-8")
                written += len(data)
                yield data
                buffer, size = [], 0
        buffer.append(suffix)
        data = "".join(buffer).encode("utf-8")
        written += len(data)
        if written != self.length:
            # The request announced ``length`` bytes: sending more or fewer would leave
            # kanidmd waiting or reading garbage. h11 refuses it too; say why here.
            raise RuntimeError(
                f"the ChangeSet's body came out at {written} bytes, not the {self.length} "
                "measured: an entry changed while it was being sent"
            )
        yield data


class AsyncChangeSetBody:
    """:class:`ChangeSetBody` as the asynchronous iterable httpx's ``AsyncClient`` takes."""

    __slots__ = ("body",)

    def __init__(self, body: ChangeSetBody) -> None:
        """Wrap ``body``.

        Args:
            body: the measured body.
        """
        self.body = body

    def __repr__(self) -> str:
        return "<Async" + repr(self.body)[1:]

    async def __aiter__(self) -> AsyncIterator[bytes]:
        """The pieces of :class:`ChangeSetBody`, a fresh pass every time."""
        for piece in self.body:
            yield piece


def changeset_body(changeset: ChangeSet) -> bytes | ChangeSetBody:
    """The body of an apply: the bytes for a small ChangeSet, a streamed body for a large one.

    Args:
        changeset: the ChangeSet to send.

    Returns:
        ``changeset.to_json()`` when it has fewer than :data:`STREAM_MIN_ENTRIES` entries
        or the fast writers cannot encode it; else a :class:`ChangeSetBody`.

    Raises:
        EncodeError: a value has no JSON form (raised before anything is sent).
    """
    if len(changeset.entries) < STREAM_MIN_ENTRIES:
        return encode_changeset_json(changeset)
    try:
        return ChangeSetBody(changeset)
    except TEXT_ERRORS:
        return encode_changeset_json(changeset)  # raises the dict path's own error
