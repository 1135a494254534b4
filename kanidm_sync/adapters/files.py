r"""File sources: CSV, JSON / JSONL and LDIF exports as snapshot sources.

Owns reading the three file formats (standard library only) and mapping their records to
:class:`~kanidm_sync.Person` and :class:`~kanidm_sync.Group` entries. Must not talk to
Kanidm or keep state: each source is a :class:`~kanidm_sync.adapters.SnapshotSource`,
so wrap it in :class:`~kanidm_sync.adapters.SnapshotAdapter` to send only what changed::

    adapter = SnapshotAdapter(CsvSource("people.csv"), "people.snapshot.sqlite")

Every error is a :class:`~kanidm_sync.SourceError` naming the file, the line (or JSON
record), the entry's external id (once read) and the field; a wrong mapping is a
:class:`~kanidm_sync.ConfigError`. A file with several bad records raises one error that
lists them all (up to 100, with the count), so one run shows everything to fix. Errors
never quote the value of a secret field (``password_import``, ``unix_password_import``).
All three formats are read as UTF-8, a leading byte order mark skipped.

**CSV and JSON.** A :class:`FieldMapping` says which column (or JSON key) fills which
entry field; a field not listed reads the column of its own name. Fields:

* both kinds: ``id``, ``external_id``, ``name``, ``mail``, ``gidnumber``;
* persons: ``displayname`` (required), ``legalname``, ``ssh_publickey``, ``loginshell``,
  ``account_valid_from``, ``account_expire``, ``account_softlock_expire``,
  ``password_import``, ``unix_password_import``;
* groups: ``description``, ``member``.

The ``kind`` column says ``person`` or ``group`` (or set ``default_kind`` for a file of
one kind). ``mail``, ``ssh_publickey`` and ``member`` are multi-valued: a JSON list, or a
string split on ``separator`` (default ``|``, which appears in no DN, address or key).
A person with a ``gidnumber`` or ``loginshell`` gets the POSIX facet; so does a group
with a ``gidnumber``. Members are external ids (or UUIDs) of other entries; a CSV cell
may be as long as the file (Python's csv limit of 131072 characters is lifted while
reading), so a group may have any number of members. A JSON string holding a lone
surrogate (a ``\ud800`` escape: half a character, with no UTF-8 form) is refused.
Text values are stripped of surrounding spaces. An SSH key
is labelled ``sshpublickey-`` plus 8 hex digits of its SHA-256, so labels do not shift
when another key is added or removed. Empty cells are absent values.

**Entry UUIDs.** From the ``id`` field when the record has one; otherwise derived with
``uuid5(EXTERNAL_ID_NAMESPACE, external_id.lower())`` (see
:func:`kanidm_sync.adapters.uuid_for`, also importable from here): stable
across runs, and the same for an external id that only changes case, since Kanidm
compares external ids case-insensitively. Changing an entry's external id therefore
changes its UUID (Kanidm sees a delete and a create) unless the record carries an
``id``.

**LDIF** (RFC 2849, :func:`parse_ldif`): ``version: 1``, comments, folded lines, base64
(``::``) values, attribute options (kept in the name: ``cn;lang-fr``), CRLF or LF. URL
values (``:<``) are refused, since reading arbitrary files or URLs named by data is not
a source's job. ``changetype: add`` records are read as content; other change records
(``modify``, ``delete``, ``modrdn``, ``moddn``) are refused: a snapshot needs the full
content of every entry (export with ``ldapsearch -LLL`` or ``slapcat``).

:class:`LdifSource` maps records by objectClass, a small mapping in the spirit of
kanidm-ldap-sync (reference-sync-tools.md §4.3), kept here because the LDAP adapter's
mapping is configured for a live directory: persons (``person``, ``inetOrgPerson``,
``posixAccount``; checked first) take ``uid`` as name, ``displayName`` or the first
``cn`` as display name, ``mail``, ``sshPublicKey``, ``uidNumber`` as gidnumber (as the
reference tools do), ``loginShell`` and ``userPassword`` (as ``password_import``).
Groups (``groupOfNames``, ``groupOfUniqueNames``, ``posixGroup``) take ``cn``,
``description``, ``gidNumber``, and members from ``member`` and ``uniqueMember`` (DNs)
and ``memberUid`` (resolved to the DN of the person with that ``uid`` in the same file;
unresolved ones are dropped with a warning). Other records are skipped. The DN is the
external id, with the spaces around ``,`` and ``=`` removed so that a member DN written
with spaces still names the same entry; the UUID is ``entryUUID``, else 389-ds's
``nsUniqueId`` regrouped, else derived from the DN as above.
"""

from __future__ import annotations

from .._proto._ids import EXTERNAL_ID_NAMESPACE, uuid_for
from ._csv import CsvSource
from ._fieldmap import FieldMapping, Kind
from ._jsonsource import JsonSource
from ._ldif import LdifRecord, parse_ldif
from ._ldif_source import LdifMapping, LdifSource

__all__ = [
    "EXTERNAL_ID_NAMESPACE",
    "CsvSource",
    "FieldMapping",
    "JsonSource",
    "Kind",
    "LdifMapping",
    "LdifRecord",
    "LdifSource",
    "parse_ldif",
    "uuid_for",
]

# The classes live in private modules (one per format); present them as this module's,
# where users import them from, so reprs, docs and tracebacks show that name.
for _obj in (CsvSource, FieldMapping, JsonSource, LdifMapping, LdifRecord, LdifSource, parse_ldif):
    _obj.__module__ = __name__
del _obj

# Not a public name: the "from __future__" import leaves it in dir().
del annotations
