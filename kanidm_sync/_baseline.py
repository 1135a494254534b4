"""The baseline the guards need, carried in the cookie Kanidm stores.

Owns: :class:`Baseline` (how many entries the sync account holds, and how sure we are),
the "held" cookie envelope that carries it inside Kanidm's own state
(``kanidm-sync-held:v1:<count>:<source cookie>``), and choosing the best baseline from
what a run knows.

Must not: do I/O, log, or talk to Kanidm. Pure.

Why in the cookie. The guards compare a run's deletions with what the account held. A
baseline kept only in local files is lost with them (a wiped ``--state-dir``, a new host,
a container without a volume), and a guard without a baseline lets a truncated export
delete almost everything (issue: 4,940 of 5,200 entries recycled, exit 0). Kanidm stores
the cookie atomically with the entries it describes, so a count carried inside it
survives the loss of every local file and is never out of step with Kanidm: a rejected
apply rolls the cookie back with everything else (spec §4.9).

Sources never see the envelope: the runner unwraps Kanidm's state before asking them and
wraps the source's cookie before sending it (``to_state``).

The count is **exact** after a full image (Kanidm then holds exactly the image) and after
a run whose diff base was exact (the local record, or a delta that says how many entries
the source holds). Otherwise (a delta over an unknown base, from a source that cannot
count) it is a **lower bound**: the previous count minus the deletions (each deletion
Kanidm accepts was of an entry the account held; additions cannot be told from changes).
A lower bound makes the guards stricter, never looser; the next exact run makes it exact
again. The envelope writes ``>=`` before an inexact count.

Interoperability: a cookie without the envelope (an older kanidm-sync, or Kanidm's own
kanidm-ipa-sync / kanidm-ldap-sync) is taken as the source's cookie, with no baseline.
Switching back to one of those tools after kanidm-sync means asking the admin for a
refresh (``kanidm system sync force-refresh``), since they do not know the envelope.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Sequence
from typing import Final, Literal

import attrs

from ._proto._state import ActiveState, SyncState

__all__ = ["HELD_COOKIE_PREFIX", "Baseline", "source_state", "unwrap", "wrap"]

HELD_COOKIE_PREFIX: Final = b"kanidm-sync-held:v1:"
"""Every cookie the runner stores in Kanidm starts with these bytes."""

BaselineSource = Literal["record", "cookie", "old-record", "source"]


@attrs.frozen
class Baseline:
    """How many entries the sync account holds, as far as a run can know.

    Attributes:
        count: the number of entries.
        exact: ``False`` when ``count`` is only a lower bound.
        source: where it comes from: ``"record"`` (the local record of Kanidm's current
            cookie), ``"cookie"`` (carried in Kanidm's cookie), ``"old-record"`` (the
            local record of another cookie: what the last run of this runner applied),
            ``"source"`` (the source's own previous image, e.g. a snapshot store).
    """

    count: int
    exact: bool = True
    source: BaselineSource = "cookie"

    def describe(self) -> str:
        """``"21"`` or ``"at least 21"``, for messages."""
        return str(self.count) if self.exact else f"at least {self.count}"


def wrap(cookie: bytes, count: int, *, exact: bool = True) -> bytes:
    """Carry ``count`` in the cookie Kanidm will store.

    Args:
        cookie: the source's cookie.
        count: how many entries the account holds once the cookie is stored.
        exact: ``False`` for a lower bound.

    Returns:
        ``kanidm-sync-held:v1:<count>:<cookie>`` (``>=<count>`` for a lower bound).
    """
    if count < 0:
        raise ValueError(f"count must not be negative, not {count}")
    mark = b"" if exact else b">="
    return b"%s%s%d:%s" % (HELD_COOKIE_PREFIX, mark, count, cookie)


def unwrap(state: SyncState) -> tuple[SyncState, Baseline | None]:
    """Split Kanidm's state into the source's state and the baseline it carries.

    Args:
        state: Kanidm's state (or the base of a chunk cookie).

    Returns:
        The state to show the source (its own cookie), and the baseline, or ``None``
        when the state is Refresh or the cookie has no envelope (taken as it is).
    """
    if not isinstance(state, ActiveState) or not state.cookie.startswith(HELD_COOKIE_PREFIX):
        return state, None
    rest = state.cookie[len(HELD_COOKIE_PREFIX) :]
    exact = not rest.startswith(b">=")
    if not exact:
        rest = rest[2:]
    number, sep, cookie = rest.partition(b":")
    if not sep or not number.isdigit() or len(number) > 12:
        # Not ours after all (a source whose cookies happen to start like this): as is.
        return state, None
    return ActiveState(cookie), Baseline(count=int(number), exact=exact, source="cookie")


def count_after_delta(
    before: Baseline | None,
    *,
    known_ids: Collection[Hashable] | None,
    entry_ids: Sequence[Hashable],
    deleted_ids: Sequence[Hashable],
    present: int | None,
    total: int | None,
) -> tuple[int, bool] | None:
    """How many entries the account holds after a delta, and whether that is exact.

    Args:
        before: the baseline before the delta.
        known_ids: the ids of an exact diff base (the record of Kanidm's current
            cookie, or any container of its ids answering ``in`` and ``len``), or
            ``None``. Only the delta's own ids are looked up: the cost is the churn's.
        entry_ids: the ids the delta sends.
        deleted_ids: the ids the delta deletes.
        present: the size of the delta's present list (RFC 4533 present phase), if any.
        total: what the source says it holds after the delta (``Delta.total``), if any.

    Returns:
        ``(count, exact)``, or ``None`` when nothing is known.
    """
    if present is not None:
        return present, True
    if total is not None:
        return total, True
    if known_ids is not None:
        # The record, plus what the delta adds, less what it deletes (a deletion applies
        # after the entries: an id both sent and deleted is gone).
        sent = set(entry_ids)
        added = sum(1 for i in sent if i not in known_ids)
        removed = sum(1 for i in set(deleted_ids) if i in known_ids or i in sent)
        return len(known_ids) + added - removed, True
    if before is None:
        return None
    if not entry_ids:
        # Deletions only: each was of an entry the account held (Kanidm refuses to
        # delete what it does not own), so a count of Kanidm's state stays as exact as
        # it was (a record of another cookie, or a source's count, is only a hint).
        exact = before.exact and before.source in ("record", "cookie")
        return max(before.count - len(set(deleted_ids)), 0), exact
    # Each deletion Kanidm accepts was of an entry the account held (it refuses to
    # delete what the account does not own); an added entry cannot be told from a
    # changed one, so additions are not counted: a lower bound.
    return max(before.count - len(set(deleted_ids)), 0), False


def source_state(state: SyncState) -> SyncState:
    """Kanidm's state as the source sees it: without the count kanidm-sync carries.

    The runner stores ``kanidm-sync-held:v1:<count>:<source cookie>`` in Kanidm (see
    docs/runner.md, "The baseline in Kanidm's cookie"); this returns the state with the
    source's own cookie, e.g. to compare it with what a source returned.

    Args:
        state: a state read from Kanidm (``Client.get_state()``).

    Returns:
        The same state with the source's cookie (Refresh and foreign cookies unchanged).

    Example:
        >>> from kanidm_sync import ActiveState, source_state
        >>> source_state(ActiveState(b"kanidm-sync-held:v1:21:csn=42"))
        ActiveState(cookie=b'csn=42')
    """
    return unwrap(state)[0]
