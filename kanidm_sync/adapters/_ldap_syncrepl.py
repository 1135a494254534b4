"""RFC 4533 content synchronisation, consumer side: the refreshOnly state machine.

This module owns what the messages of one refreshOnly search *mean*: which entries
changed, which were deleted (a ``syncIdSet`` with ``refreshDeletes``, or a ``delete``
state), which are still present (a present phase), which cookie to keep, and when the
consumer must start again with a full refresh. It is pure: it receives decoded messages
(by the python-ldap driver in ``_ldap_client.py``, or by tests) and returns a value. It
must not import python-ldap nor do any I/O.

Everything is buffered until the search is done, because a refresh may send the new
version of an entry before telling us that the old one (same name, other UUID) is gone;
applying eagerly would collide on names in Kanidm.

Two servers, two readings of ``syncDone.refreshDeletes``:

* OpenLDAP (cookies ``rid=...``) follows RFC 4533: ``refreshDeletes=FALSE`` at the end
  means a present phase; every entry neither presented nor sent is gone. A cookie whose
  CSN is older than the session log, or from another database incarnation, gets every
  entry re-sent and *no* ``syncIdSet`` at all, so the present set is the sent entries.
* 389-ds in its default mode (cookies ``host:port#dn:base:filter#n``, FreeIPA) always
  ends with ``refreshDeletes=FALSE`` even when it sent explicit deletes; taking it
  literally deletes every unchanged entry (the python-ldap consumer does, akkornel/
  syncrepl#24). There, only an explicit present list starts a present phase.

An empty present set is never taken as "delete everything": the outcome asks for a full
refresh instead, which is authoritative.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Literal, TypeAlias

import attrs

from ._ldap_map import LdapEntry

__all__ = ["Flavour", "RefreshOutcome", "SyncreplAccumulator", "flavour_of_cookie"]

Flavour: TypeAlias = Literal["rfc4533", "389"]
"""How to read ``syncDone.refreshDeletes``: RFC 4533 (OpenLDAP) or 389-ds default mode."""

EntryState: TypeAlias = Literal["present", "add", "modify", "delete"]


def flavour_of_cookie(cookie: bytes | None) -> Flavour:
    """Tell the server's behaviour from its cookie.

    OpenLDAP cookies, and 389-ds cookies in its OpenLDAP-compatible mode, start with
    ``rid=``; 389-ds default-mode cookies are ``host:port#binddn:base:filter#number``.
    With no cookie yet, RFC 4533 is assumed.

    Args:
        cookie: the cookie sent or received, if any.

    Returns:
        ``"rfc4533"`` or ``"389"``.
    """
    if cookie is None or not cookie or cookie.startswith(b"rid="):
        return "rfc4533"
    return "389" if b"#" in cookie else "rfc4533"


@attrs.frozen(kw_only=True)
class RefreshOutcome:
    """What one refreshOnly search amounted to.

    Attributes:
        entries: every entry sent with its content (``add``/``modify``), last version
            of each, in the order first seen.
        deleted: UUIDs the server said are deleted (and not re-added later).
        present: when a present phase happened, the UUIDs of every entry still in
            scope (presented or sent); ``None`` otherwise.
        cookie: the newest non-empty cookie the server sent, or ``None``.
        refresh_required: when set, the consumer cannot continue from the cookie it
            sent and must do a full refresh; the text says why.
    """

    entries: tuple[LdapEntry, ...]
    deleted: tuple[uuid.UUID, ...]
    present: tuple[uuid.UUID, ...] | None
    cookie: bytes | None
    refresh_required: str | None = None

    @property
    def changed(self) -> bool:
        """Whether the outcome carries any change (entries, deletes or a present set)."""
        return bool(self.entries or self.deleted or self.present is not None)


@attrs.define
class SyncreplAccumulator:
    """Collects the messages of one refreshOnly search; :meth:`outcome` interprets them.

    Args:
        incremental: whether the search sent a cookie (an incremental refresh).
        sent_cookie: the cookie the search sent, used to tell the server's flavour.
    """

    incremental: bool
    sent_cookie: bytes | None = None
    _entries: dict[uuid.UUID, LdapEntry] = attrs.field(factory=dict, init=False)
    _deleted: dict[uuid.UUID, None] = attrs.field(factory=dict, init=False)
    _presented: set[uuid.UUID] = attrs.field(factory=set, init=False)
    _present_signal: bool = attrs.field(default=False, init=False)
    _delete_signal: bool = attrs.field(default=False, init=False)
    _cookie: bytes | None = attrs.field(default=None, init=False)
    _done: bool = attrs.field(default=False, init=False)
    _done_refresh_deletes: bool = attrs.field(default=True, init=False)

    def _set_cookie(self, cookie: bytes | None) -> None:
        # An empty cookie carries no position (slapd answers a garbage cookie with one);
        # never let it replace a real one.
        if cookie:
            self._cookie = cookie

    def entry(
        self,
        *,
        sync_uuid: uuid.UUID,
        dn: str,
        attributes: Mapping[str, Sequence[bytes]],
        state: EntryState,
        cookie: bytes | None = None,
    ) -> None:
        """A SearchResultEntry with a Sync State control.

        Args:
            sync_uuid: the entry's sync UUID.
            dn: its DN.
            attributes: its attributes (empty for ``present`` and ``delete``).
            state: the Sync State.
            cookie: the control's cookie, if any.
        """
        if state == "present":
            self._present_signal = True
            self._presented.add(sync_uuid)
        elif state == "delete":
            self._delete_signal = True
            self._entries.pop(sync_uuid, None)
            self._deleted[sync_uuid] = None
        else:
            # A later message about the same entry wins: an add after a delete revives it.
            self._deleted.pop(sync_uuid, None)
            self._entries.pop(sync_uuid, None)
            self._entries[sync_uuid] = LdapEntry(dn, sync_uuid, attributes)
        self._set_cookie(cookie)

    def id_set(
        self, uuids: Sequence[uuid.UUID], *, refresh_deletes: bool, cookie: bytes | None = None
    ) -> None:
        """A syncInfo ``syncIdSet``: deleted ids, or (refreshDeletes=FALSE) present ids."""
        if refresh_deletes:
            self._delete_signal = True
            for sync_uuid in uuids:
                self._entries.pop(sync_uuid, None)
                self._deleted[sync_uuid] = None
        else:
            self._present_signal = True
            self._presented.update(uuids)
        self._set_cookie(cookie)

    def refresh_phase(
        self, kind: Literal["delete", "present"], *, done: bool, cookie: bytes | None = None
    ) -> None:
        """A syncInfo ``refreshDelete`` / ``refreshPresent`` phase marker."""
        if kind == "present":
            self._present_signal = True
        else:
            self._delete_signal = True
        self._set_cookie(cookie)

    def new_cookie(self, cookie: bytes | None) -> None:
        """A syncInfo ``newcookie``."""
        self._set_cookie(cookie)

    def done(self, *, cookie: bytes | None, refresh_deletes: bool | None) -> None:
        """The SearchResultDone with its Sync Done control (``refreshDeletes`` defaults FALSE)."""
        self._done = True
        self._done_refresh_deletes = bool(refresh_deletes)
        self._set_cookie(cookie)

    def outcome(self, *, flavour: Flavour | None = None) -> RefreshOutcome:
        """Interpret everything received.

        Args:
            flavour: the server's reading of ``refreshDeletes``; by default told from
                the cookies (:func:`flavour_of_cookie`).

        Returns:
            The outcome.

        Raises:
            RuntimeError: called before :meth:`done`.
        """
        if not self._done:
            raise RuntimeError("the sync search has not finished")
        if flavour is None:
            flavour = flavour_of_cookie(self.sent_cookie or self._cookie)
        entries = tuple(self._entries.values())
        deleted = tuple(self._deleted)
        present: tuple[uuid.UUID, ...] | None = None
        if self.incremental:
            if flavour == "rfc4533":
                present_phase = self._present_signal or not self._done_refresh_deletes
            else:
                present_phase = self._present_signal
            if present_phase:
                alive = (self._presented | set(self._entries)) - set(self._deleted)
                present = tuple(sorted(alive))
        outcome = RefreshOutcome(
            entries=entries, deleted=deleted, present=present, cookie=self._cookie
        )
        if not self.incremental:
            return outcome
        if present is not None and not present:
            return attrs.evolve(
                outcome,
                refresh_required=(
                    "the server's present phase listed no entry at all; a full refresh "
                    "decides instead of deleting everything by inference"
                ),
            )
        if self._cookie is None and outcome.changed:
            return attrs.evolve(
                outcome,
                refresh_required=(
                    "the server sent changes but no new cookie: it did not recognise the "
                    "cookie Kanidm holds (from another server or database?)"
                ),
            )
        return outcome
