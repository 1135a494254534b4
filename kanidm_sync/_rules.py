"""Exclude and remap rules: what an operator writes when Kanidm refuses an entry.

Owns :class:`Rules` and :class:`Remap`, their TOML form, and applying them to a source
batch. Must not do I/O besides :meth:`Rules.load` reading its file, and must not talk to
Kanidm. It edits entries only through their wire JSON (the codec) and RFC 6902 JSON Patch
(the ``_jsonpatch`` shim).

Kanidm applies a ChangeSet all or nothing: one conflicting entry rolls back the whole
batch (spec §4). The operator then excludes the entry, or remaps it (another uuid, name,
gidnumber, external id, or any attribute through JSON Patch), and the next run succeeds.
Unlike kanidm-ldap-sync (reference-sync-tools.md §5), every remap works for persons *and*
groups, remapped uuids are translated in the delete and retain lists, and group members
that point at a remapped or excluded entry follow the rule.

TOML shape (every table and key is optional; an unknown key is a
:class:`~kanidm_sync.ConfigError` naming the key and its table)::

    [exclude]
    ids = ["0c2b5e6a-7f3e-4d5b-9c1a-2b3c4d5e6f70"]        # source entry UUIDs
    external_ids = ["uid=legacy,ou=people,dc=example,dc=org"]  # case-insensitive
    names = ["svc-*", "admin"]                               # fnmatch globs, case-insensitive

    [remap.id."9a7c1f52-4c7d-4b0e-8a43-1e4f6f1c2d10"]     # matched by source UUID
    id = "5d3e6f70-1a2b-4c3d-8e4f-506172839405"             # the UUID to use in Kanidm
    name = "alice2"
    gidnumber = 20002                                        # adds the POSIX facet if absent
    patch = [{op = "replace", path = "/displayname", value = "Alice (LDAP)"}]

    [remap.external_id."cn=staff,ou=groups,dc=example,dc=org"]  # matched by external id
    external_id = "cn=staff-ldap,ou=groups,dc=example,dc=org"
    name = "staff-ldap"

    [entry_map."0c2b5e6a-7f3e-4d5b-9c1a-2b3c4d5e6f70"]    # kanidm-ldap-sync's keys
    exclude = true          # also: map_uuid, map_name, map_gidnumber

kanidm-ldap-sync's own form, a top-level table named by the UUID (``["<uuid>"]``), is
accepted as ``entry_map``. A top-level key that is not a UUID is refused, rather than
fail as a UUID parse error the way that tool does (kanidm/kanidm#3528).

Two restrictions keep the rules correct across incremental runs, where a deletion
carries only the entry's uuid and a group may name a member that is not in the batch:
a new ``id`` may only be given in a ``remap.id`` table, and a new ``external_id`` only in
a ``remap.external_id`` table. JSON Patch may not touch ``/id`` or ``/externalId``.

Order of application per entry: exclusion (on the source values), then ``id``,
``external_id``, ``name``, ``gidnumber``, then the patch (which sees the remapped values).
Exclusion by predicate (``exclude_if``) exists only in code.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import os
import pathlib
import tomllib
import types
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Final, TypeAlias

import attrs

from ._exceptions import ConfigError, DecodeError, EncodeError
from ._jsonpatch import PatchError, apply_patch, check_operation
from ._proto._codec import decode_entry, dumps, encode_entry
from ._proto._entries import Entry, GenericEntry, Group, Person, SchemaUrn, ServiceAccount
from ._types import JSONObject, JSONValue
from .adapters._protocols import Delta, FullImage, RefreshRequired, SourceBatch

__all__ = ["EntryPredicate", "Remap", "Rules"]

_log = logging.getLogger("kanidm_sync.rules")

EntryPredicate: TypeAlias = Callable[[Entry], bool]
"""A function that says whether to exclude an entry (given as the source produced it)."""

_GID_MAX: Final = 4294967295
_PROTECTED_PATHS: Final = ("/id", "/externalId")


# --- converters and validators ----------------------------------------------------------


def _uuid_set(values: Iterable[uuid.UUID | str]) -> frozenset[uuid.UUID]:
    if isinstance(values, str | bytes):
        raise TypeError("expected an iterable of UUIDs, not a single string")
    return frozenset(v if isinstance(v, uuid.UUID) else uuid.UUID(v) for v in values)


def _lower_set(values: Iterable[str]) -> frozenset[str]:
    if isinstance(values, str | bytes):
        raise TypeError("expected an iterable of strings, not a single string")
    return frozenset(v.lower() for v in values)


def _lower_tuple(values: Iterable[str]) -> tuple[str, ...]:
    if isinstance(values, str | bytes):
        raise TypeError("expected an iterable of strings, not a single string")
    return tuple(v.lower() for v in values)


def _predicates(values: Iterable[EntryPredicate]) -> tuple[EntryPredicate, ...]:
    return tuple(values)


def _operations(values: Iterable[Mapping[str, JSONValue]]) -> tuple[Mapping[str, JSONValue], ...]:
    return tuple(types.MappingProxyType(dict(op)) for op in values)


def _optional_uuid(value: uuid.UUID | str | None) -> uuid.UUID | None:
    if value is None or isinstance(value, uuid.UUID):
        return value
    return uuid.UUID(value)


def _id_remaps(
    values: Mapping[uuid.UUID, Remap] | Mapping[str, Remap],
) -> Mapping[uuid.UUID, Remap]:
    return types.MappingProxyType(
        {(k if isinstance(k, uuid.UUID) else uuid.UUID(k)): v for k, v in values.items()}
    )


def _external_remaps(values: Mapping[str, Remap]) -> Mapping[str, Remap]:
    out: dict[str, Remap] = {}
    for key, remap in values.items():
        if key.lower() in out:
            raise ConfigError(f"remap.external_id: {key!r} is given twice (case-insensitively)")
        out[key.lower()] = remap
    return types.MappingProxyType(out)


def _check_gidnumber(inst: object, attribute: attrs.Attribute[int | None], value: object) -> None:
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= _GID_MAX:
        raise ConfigError(f"gidnumber must be an integer from 0 to {_GID_MAX}, not {value!r}")


def _check_text(inst: object, attribute: attrs.Attribute[str | None], value: object) -> None:
    if value is not None and (not isinstance(value, str) or not value):
        raise ConfigError(f"{attribute.name} must be a non-empty string")


@attrs.frozen(kw_only=True)
class Remap:
    """What to change in one entry before it is sent to Kanidm.

    Attributes:
        id: the UUID the entry gets in Kanidm (only in :attr:`Rules.remap_ids`).
        external_id: the external id the entry gets in Kanidm (only in
            :attr:`Rules.remap_external_ids`); members naming the old one follow.
        name: the name (login name of a person, name of a group).
        gidnumber: the gidnumber; adds the POSIX facet (``posixaccount`` for accounts,
            ``posixgroup`` for groups) when the entry has none.
        patch: RFC 6902 operations applied to the entry's wire JSON after the other
            fields (``{"op": "remove", "path": "/mail"}``). Paths are wire names
            (``/displayname``, ``/mail/0/value``); ``/id`` and ``/externalId`` are
            refused (use ``id`` and ``external_id``).
    """

    id: uuid.UUID | None = attrs.field(default=None, converter=_optional_uuid)
    external_id: str | None = attrs.field(default=None, validator=_check_text)
    name: str | None = attrs.field(default=None, validator=_check_text)
    gidnumber: int | None = attrs.field(default=None, validator=_check_gidnumber)
    patch: tuple[Mapping[str, JSONValue], ...] = attrs.field(
        default=(), converter=_operations, hash=False
    )

    def __attrs_post_init__(self) -> None:
        for index, op in enumerate(self.patch):
            problem = check_operation(op)
            if problem is None:
                for key in ("path", "from"):
                    pointer = op.get(key)
                    if isinstance(pointer, str) and _touches_protected(pointer):
                        problem = (
                            f"'{key}' {pointer!r} edits the entry's identity; "
                            "use the 'id' or 'external_id' key instead"
                        )
            if problem is not None:
                raise ConfigError(f"patch[{index}]: {problem}")

    def _as_json(self) -> JSONObject:
        return {
            "id": None if self.id is None else str(self.id),
            "external_id": self.external_id,
            "name": self.name,
            "gidnumber": self.gidnumber,
            "patch": [dict(op) for op in self.patch],
        }


def _touches_protected(pointer: str) -> bool:
    return any(pointer == p or pointer.startswith(p + "/") for p in _PROTECTED_PATHS)


def _describe(entry: Entry) -> str:
    return f"entry {entry.id}" + (f" ({entry.external_id!r})" if entry.external_id else "")


def _name_of(entry: Entry) -> str | None:
    if isinstance(entry, Person | Group | ServiceAccount):
        return entry.name
    value = entry.attributes.get("name")
    return value if isinstance(value, str) else None


def _as_uuid_or_none(text: str) -> uuid.UUID | None:
    # Kanidm treats a member reference that parses as a UUID as a UUID (spec §3.9.1).
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


@attrs.frozen(kw_only=True)
class Rules:
    """Exclude and remap rules, applied to every batch a source returns.

    Build one in code, or load it from TOML with :meth:`from_toml` / :meth:`load` (the
    shape is in the module documentation and ``docs/rules.md``). An empty ``Rules()``
    changes nothing.

    Attributes:
        exclude_ids: source UUIDs of entries to leave out.
        exclude_external_ids: external ids of entries to leave out (case-insensitive,
            as Kanidm compares them).
        exclude_names: fnmatch globs (``"svc-*"``) matched against the source name,
            case-insensitively.
        exclude_if: predicates given the source entry; ``True`` leaves it out.
            Code only (no TOML form).
        remap_ids: remaps keyed by the entry's source UUID.
        remap_external_ids: remaps keyed by the entry's source external id
            (case-insensitive).
    """

    exclude_ids: frozenset[uuid.UUID] = attrs.field(default=frozenset(), converter=_uuid_set)
    exclude_external_ids: frozenset[str] = attrs.field(default=frozenset(), converter=_lower_set)
    exclude_names: tuple[str, ...] = attrs.field(default=(), converter=_lower_tuple)
    exclude_if: tuple[EntryPredicate, ...] = attrs.field(default=(), converter=_predicates)
    remap_ids: Mapping[uuid.UUID, Remap] = attrs.field(
        factory=dict, converter=_id_remaps, hash=False
    )
    remap_external_ids: Mapping[str, Remap] = attrs.field(
        factory=dict, converter=_external_remaps, hash=False
    )
    _id_map: Mapping[uuid.UUID, uuid.UUID] = attrs.field(
        init=False, repr=False, eq=False, hash=False
    )
    _external_map: Mapping[str, str] = attrs.field(init=False, repr=False, eq=False, hash=False)

    def __attrs_post_init__(self) -> None:
        # An entry cannot be both left out and changed: the diagnosis prints both kinds of
        # rule as alternatives, and pasting both would silently keep only the exclusion.
        for both in sorted(str(i) for i in self.exclude_ids & self.remap_ids.keys()):
            raise ConfigError(
                f'entry {both} is both excluded ([exclude] ids) and remapped ([remap.id."{both}"]):'
                " keep one of the two"
            )
        for both in sorted(self.exclude_external_ids & self.remap_external_ids.keys()):
            raise ConfigError(
                f"external id {both!r} is both excluded ([exclude] external_ids) and remapped"
                f' ([remap.external_id."{both}"]): keep one of the two'
            )
        id_map: dict[uuid.UUID, uuid.UUID] = {}
        targets: dict[uuid.UUID, uuid.UUID] = {}
        for key, remap in self.remap_ids.items():
            where = f'remap.id."{key}"'
            if remap.external_id is not None:
                raise ConfigError(
                    f"{where}: 'external_id' can only be remapped in a remap.external_id "
                    "table, so that members naming the old external id can follow it"
                )
            if remap.id is not None:
                if remap.id in targets:
                    raise ConfigError(
                        f'{where}: id {remap.id} is also the new id of remap.id."'
                        f'{targets[remap.id]}"'
                    )
                targets[remap.id] = key
                id_map[key] = remap.id
        external_map: dict[str, str] = {}
        new_externals: dict[str, str] = {}
        for ext_key, remap in self.remap_external_ids.items():
            where = f'remap.external_id."{ext_key}"'
            if remap.id is not None:
                raise ConfigError(
                    f"{where}: 'id' can only be remapped in a remap.id table, because a "
                    "deletion names the entry by its uuid only"
                )
            if remap.external_id is not None:
                lowered = remap.external_id.lower()
                if lowered in new_externals:
                    raise ConfigError(
                        f"{where}: external_id {remap.external_id!r} is also the new "
                        f'external id of remap.external_id."{new_externals[lowered]}"'
                    )
                new_externals[lowered] = ext_key
                external_map[ext_key] = remap.external_id
        object.__setattr__(self, "_id_map", types.MappingProxyType(id_map))
        object.__setattr__(self, "_external_map", types.MappingProxyType(external_map))

    # --- loading ------------------------------------------------------------------------

    @classmethod
    def from_toml(cls, text: str, *, source: str = "<rules>") -> Rules:
        """Load rules from TOML text.

        Args:
            text: the TOML document (shape in the module documentation).
            source: a name for the text in error messages (a file name).

        Returns:
            The rules.

        Raises:
            ConfigError: the TOML does not parse, or a table or key is unknown or of the
                wrong type; the message names the table and the key.
        """
        problem = None
        try:
            return cls.from_mapping(tomllib.loads(text), source=source)
        except tomllib.TOMLDecodeError as exc:
            problem = str(exc)
        except RecursionError:
            # tomllib recurses once per nested array or inline table.
            problem = "arrays or inline tables nested too deeply"
        raise ConfigError(f"{source}: not valid TOML: {problem}")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Rules:
        """Load rules from a TOML file.

        Args:
            path: the file.

        Returns:
            The rules.

        Raises:
            ConfigError: the file cannot be read, or its content is wrong.
        """
        file = pathlib.Path(path)
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{file}: cannot read the rules file ({exc})") from exc
        return cls.from_toml(text, source=str(file))

    @classmethod
    def from_mapping(cls, data: Mapping[str, object], *, source: str = "<rules>") -> Rules:
        """Load rules from an already parsed TOML (or JSON) document.

        Useful when the rules are one table of a larger configuration file.

        Args:
            data: the document.
            source: a name for it in error messages.

        Returns:
            The rules.

        Raises:
            ConfigError: a table or key is unknown or of the wrong type, or a patch value
                is nested too deeply to handle.
        """
        try:
            return _Loader(source).load(data)
        except RecursionError:
            # TOML table headers nest without limit ([a.b.c...]); JSON Patch values are
            # walked recursively.
            problem = "a value is nested too deeply"
        raise ConfigError(f"{source}: {problem}")

    # --- applying -----------------------------------------------------------------------

    def translate_id(self, entry_id: uuid.UUID) -> uuid.UUID:
        """The UUID Kanidm knows an entry by, given its source UUID.

        Args:
            entry_id: the source UUID.

        Returns:
            The remapped UUID, or ``entry_id`` itself when no remap changes it.
        """
        return self._id_map.get(entry_id, entry_id)

    def is_excluded_id(self, entry_id: uuid.UUID) -> bool:
        """Whether a source UUID is excluded by id (the only exclusion a bare id shows).

        Args:
            entry_id: the source UUID.

        Returns:
            ``True`` when ``entry_id`` is in :attr:`exclude_ids`.
        """
        return entry_id in self.exclude_ids

    @property
    def fingerprint(self) -> str:
        """A digest of these rules, for :class:`~kanidm_sync.adapters.SnapshotAdapter`.

        Predicates contribute their qualified names only: changing a predicate's body
        does not change the fingerprint.
        """
        data: JSONObject = {
            "exclude_ids": sorted(str(u) for u in self.exclude_ids),
            "exclude_external_ids": sorted(self.exclude_external_ids),
            "exclude_names": list(self.exclude_names),
            "exclude_if": [
                f"{getattr(p, '__module__', '?')}.{getattr(p, '__qualname__', repr(p))}"
                for p in self.exclude_if
            ],
            "remap_ids": {str(k): v._as_json() for k, v in sorted(self.remap_ids.items())},
            "remap_external_ids": {
                k: v._as_json() for k, v in sorted(self.remap_external_ids.items())
            },
        }
        text = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]

    def apply(self, batch: SourceBatch) -> SourceBatch:
        """Apply the rules to a batch.

        Excluded entries are dropped from ``entries``; their ids are dropped from a
        delta's ``deleted`` and ``present`` lists too, so Kanidm is never told about
        them. A bare id (in ``deleted`` or ``present``) can only be recognised as
        excluded by :attr:`exclude_ids`, or because the same batch carries the entry;
        Kanidm ignores a deleted id it does not hold (spec §4.6). Remapped UUIDs are
        translated in ``deleted`` and ``present``. Group members (external ids or UUID
        strings) that name a remapped entry are rewritten, and those that name an
        excluded entry are dropped (a UUID member Kanidm does not hold would fail the
        whole apply, spec §3.9.1).

        Note that an entry Kanidm already holds and that is now excluded is removed
        from Kanidm by the next full image or present list (it is no longer listed).

        Args:
            batch: what the source returned.

        Returns:
            The batch with the rules applied (the same object when nothing changed).

        Raises:
            ConfigError: a remap does not fit an entry (a patch path that does not
                exist, a failed ``test``, a result Kanidm cannot represent), a
                predicate raised, or two entries end up with the same id.
        """
        if isinstance(batch, RefreshRequired) or self._is_empty():
            return batch
        entries, excluded_ids = self._apply_entries(batch.entries)
        if isinstance(batch, FullImage):
            return FullImage(entries=entries, cookie=batch.cookie)
        return Delta(
            entries=entries,
            deleted=self._translate_ids(batch.deleted, excluded_ids),
            present=None
            if batch.present is None
            else self._translate_ids(batch.present, excluded_ids),
            cookie=batch.cookie,
        )

    # --- internals ----------------------------------------------------------------------

    def _is_empty(self) -> bool:
        return not (
            self.exclude_ids
            or self.exclude_external_ids
            or self.exclude_names
            or self.exclude_if
            or self.remap_ids
            or self.remap_external_ids
        )

    def _translate_ids(
        self, ids: Sequence[uuid.UUID], excluded: frozenset[uuid.UUID]
    ) -> list[uuid.UUID]:
        out: list[uuid.UUID] = []
        seen: set[uuid.UUID] = set()
        for entry_id in ids:
            if entry_id in self.exclude_ids or entry_id in excluded:
                continue
            target = self._id_map.get(entry_id, entry_id)
            if target not in seen:
                seen.add(target)
                out.append(target)
        return out

    def _excluded(self, entry: Entry) -> str | None:
        """Why the entry is excluded, or None."""
        if entry.id in self.exclude_ids:
            return "its id is excluded"
        if entry.external_id is not None and entry.external_id.lower() in self.exclude_external_ids:
            return "its external id is excluded"
        name = _name_of(entry)
        if name is not None:
            lowered = name.lower()
            for pattern in self.exclude_names:
                if fnmatch.fnmatchcase(lowered, pattern):
                    return f"its name matches {pattern!r}"
        for predicate in self.exclude_if:
            try:
                verdict = predicate(entry)
            except Exception as exc:
                label = getattr(predicate, "__qualname__", repr(predicate))
                raise ConfigError(
                    f"exclude_if predicate {label} raised {type(exc).__name__} on "
                    f"{_describe(entry)}"
                ) from exc
            if verdict:
                label = getattr(predicate, "__qualname__", repr(predicate))
                return f"predicate {label} excludes it"
        return None

    def _apply_entries(self, entries: Sequence[Entry]) -> tuple[list[Entry], frozenset[uuid.UUID]]:
        kept: list[Entry] = []
        excluded_ids: set[uuid.UUID] = set()
        excluded_externals: set[str] = set()
        for entry in entries:
            reason = self._excluded(entry)
            if reason is not None:
                _log.info("excluding %s: %s", _describe(entry), reason)
                excluded_ids.add(entry.id)
                if entry.external_id is not None:
                    excluded_externals.add(entry.external_id.lower())
                continue
            kept.append(self._remap(entry))
        # Members are rewritten once every exclusion of the batch is known: a group may
        # come before the member it names.
        dropped_externals = frozenset(excluded_externals) | self.exclude_external_ids
        dropped_ids = frozenset(excluded_ids) | self.exclude_ids
        out: list[Entry] = []
        owners: dict[uuid.UUID, Entry] = {}
        for entry in kept:
            entry = self._rewrite_members(entry, dropped_ids, dropped_externals)
            other = owners.get(entry.id)
            if other is not None:
                raise ConfigError(
                    f"after remapping, {_describe(other)} and {_describe(entry)} share the "
                    f"id {entry.id}; change a remap.id rule"
                )
            owners[entry.id] = entry
            out.append(entry)
        return out, frozenset(excluded_ids)

    def _remap(self, entry: Entry) -> Entry:
        by_id = self.remap_ids.get(entry.id)
        by_external = (
            None
            if entry.external_id is None
            else self.remap_external_ids.get(entry.external_id.lower())
        )
        if by_id is not None and by_external is not None:
            raise ConfigError(
                f'{_describe(entry)} matches both remap.id."{entry.id}" and '
                f'remap.external_id."{entry.external_id}"; merge them into one table'
            )
        remap = by_id or by_external
        if remap is None:
            return entry
        where = (
            f'remap.id."{entry.id}"'
            if by_id is not None
            else f'remap.external_id."{entry.external_id}"'
        )
        return _apply_remap(entry, remap, where)

    def _rewrite_members(
        self, entry: Entry, dropped_ids: frozenset[uuid.UUID], dropped_externals: frozenset[str]
    ) -> Entry:
        if isinstance(entry, Group):
            members = self._rewrite_references(entry.member, dropped_ids, dropped_externals)
            if members != list(entry.member):
                return attrs.evolve(entry, member=members)
            return entry
        if isinstance(entry, GenericEntry):
            raw = entry.attributes.get("member")
            if not isinstance(raw, list | tuple):
                return entry
            refs = [
                item["external_id"]
                for item in raw
                if isinstance(item, Mapping) and isinstance(item.get("external_id"), str)
            ]
            if len(refs) != len(raw):
                return entry  # not the member shape Kanidm reads; leave it to validation
            members = self._rewrite_references(
                [r for r in refs if isinstance(r, str)], dropped_ids, dropped_externals
            )
            if members == refs:
                return entry
            attributes = dict(entry.attributes)
            if members:
                attributes["member"] = [{"external_id": m} for m in members]
            else:
                del attributes["member"]
            return attrs.evolve(entry, attributes=attributes)
        return entry

    def _rewrite_references(
        self,
        references: Iterable[str],
        dropped_ids: frozenset[uuid.UUID],
        dropped_externals: frozenset[str],
    ) -> list[str]:
        out: list[str] = []
        for reference in references:
            as_uuid = _as_uuid_or_none(reference)
            if as_uuid is not None:
                if as_uuid in dropped_ids:
                    continue
                target = self._id_map.get(as_uuid)
                out.append(reference if target is None else str(target))
                continue
            lowered = reference.lower()
            if lowered in dropped_externals:
                continue
            out.append(self._external_map.get(lowered, reference))
        return out


def _apply_remap(entry: Entry, remap: Remap, where: str) -> Entry:
    try:
        # Through the JSON text, so the value is plain JSON (lists, not the encoder's
        # tuples) as the patch and the decoder expect.
        loaded = json.loads(dumps(encode_entry(entry)))
    except EncodeError as exc:
        raise ConfigError(f"{where}: {_describe(entry)} cannot be encoded: {exc}") from exc
    assert isinstance(loaded, dict)  # an entry encodes as a JSON object
    wire: JSONObject = loaded
    if remap.id is not None:
        wire["id"] = str(remap.id)
    if remap.external_id is not None:
        wire["externalId"] = remap.external_id
    if remap.name is not None:
        wire["name"] = remap.name
    if remap.gidnumber is not None:
        wire["gidnumber"] = remap.gidnumber
        schemas = wire.get("schemas")
        listed = [s for s in schemas if isinstance(s, str)] if isinstance(schemas, list) else []
        if SchemaUrn.GROUP.value in listed:
            facet = SchemaUrn.POSIXGROUP.value
        elif SchemaUrn.ACCOUNT.value in listed:
            facet = SchemaUrn.POSIXACCOUNT.value
        else:
            raise ConfigError(
                f"{where}: gidnumber needs an account or a group, and {_describe(entry)} is neither"
            )
        if facet not in listed:
            wire["schemas"] = [*listed, facet]
    result: JSONValue = wire
    if remap.patch:
        try:
            result = apply_patch(wire, remap.patch)
        except PatchError as exc:
            index = "" if exc.index is None else f"[{exc.index}]"
            raise ConfigError(
                f"{where}: patch{index} failed on {_describe(entry)}: {exc}"
            ) from None
    try:
        return decode_entry(result)
    except DecodeError as exc:
        problems = "; ".join(f"{path}: {message}" for path, message in exc.errors)
        raise ConfigError(
            f"{where}: the remapped {_describe(entry)} is not a valid entry: {problems}"
        ) from None


# --- TOML loading ---------------------------------------------------------------------------

_EXCLUDE_KEYS: Final = ("external_ids", "ids", "names")
_REMAP_ID_KEYS: Final = ("gidnumber", "id", "name", "patch")
_REMAP_EXTERNAL_KEYS: Final = ("external_id", "gidnumber", "name", "patch")
_ENTRY_MAP_KEYS: Final = ("exclude", "map_gidnumber", "map_name", "map_uuid")
_TOP_KEYS: Final = ("entry_map", "exclude", "remap")


class _Loader:
    """Reads the TOML document into :class:`Rules`, naming the table of every problem."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.exclude_ids: list[uuid.UUID] = []
        self.exclude_external_ids: list[str] = []
        self.exclude_names: list[str] = []
        self.remap_ids: dict[uuid.UUID, Remap] = {}
        self.remap_external_ids: dict[str, Remap] = {}

    def fail(self, table: str, message: str) -> ConfigError:
        where = f"[{table}]" if table else "top level"
        return ConfigError(f"{self.source}: {where}: {message}")

    def table(self, value: object, table: str) -> Mapping[str, object]:
        if not isinstance(value, Mapping):
            raise self.fail(table, f"expected a table, not {type(value).__name__}")
        return value

    def known(self, data: Mapping[str, object], table: str, keys: Sequence[str]) -> None:
        for key in data:
            if key not in keys:
                raise self.fail(table, f"unknown key {key!r} (known: {', '.join(keys)})")

    def string(self, value: object, table: str, key: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(table, f"{key!r} must be a non-empty string")
        return value

    def strings(self, value: object, table: str, key: str) -> list[str]:
        if not isinstance(value, list):
            raise self.fail(table, f"{key!r} must be a list of strings")
        return [self.string(v, table, f"{key}[{i}]") for i, v in enumerate(value)]

    def uuid_value(self, value: object, table: str, key: str) -> uuid.UUID:
        text = self.string(value, table, key)
        try:
            return uuid.UUID(text)
        except ValueError:
            raise self.fail(table, f"{key!r} is not a UUID: {text!r}") from None

    def gidnumber(self, value: object, table: str, key: str) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= _GID_MAX:
            raise self.fail(table, f"{key!r} must be an integer from 0 to {_GID_MAX}")
        return value

    def patch(self, value: object, table: str) -> list[dict[str, JSONValue]]:
        if not isinstance(value, list):
            raise self.fail(table, "'patch' must be a list of operation tables")
        ops: list[dict[str, JSONValue]] = []
        for index, op in enumerate(value):
            where = f"patch[{index}]"
            if not isinstance(op, Mapping):
                raise self.fail(table, f"{where} must be a table such as {{op = ..., path = ...}}")
            converted: dict[str, JSONValue] = {}
            for key, item in op.items():
                converted[key] = self.json_value(item, table, f"{where}.{key}")
            ops.append(converted)
        return ops

    def json_value(self, value: object, table: str, key: str) -> JSONValue:
        if value is None or isinstance(value, str | int | float | bool):
            return value
        if isinstance(value, list):
            return [self.json_value(v, table, f"{key}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, Mapping):
            return {str(k): self.json_value(v, table, f"{key}.{k}") for k, v in value.items()}
        # TOML dates and times have no JSON form.
        raise self.fail(table, f"{key!r} holds a {type(value).__name__}, which is not JSON")

    def build_remap(
        self,
        table: str,
        body: Mapping[str, object],
        *,
        id_key: str | None,
        external_key: str | None,
        name_key: str,
        gid_key: str,
        patch_key: str | None,
    ) -> Remap:
        new_id = None
        if id_key is not None and id_key in body:
            new_id = self.uuid_value(body[id_key], table, id_key)
        external = None
        if external_key is not None and external_key in body:
            external = self.string(body[external_key], table, external_key)
        name = None if name_key not in body else self.string(body[name_key], table, name_key)
        gid = None if gid_key not in body else self.gidnumber(body[gid_key], table, gid_key)
        ops = [] if patch_key is None else self.patch(body.get(patch_key, []), table)
        try:
            return Remap(id=new_id, external_id=external, name=name, gidnumber=gid, patch=ops)
        except ConfigError as exc:
            raise self.fail(table, str(exc)) from None

    def load(self, data: Mapping[str, object]) -> Rules:
        for key, value in data.items():
            if key == "exclude":
                self.load_exclude(self.table(value, "exclude"))
            elif key == "remap":
                self.load_remap(self.table(value, "remap"))
            elif key == "entry_map":
                for entry_key, entry in self.table(value, "entry_map").items():
                    self.load_entry_map(entry_key, entry, f'entry_map."{entry_key}"')
            elif _as_uuid_or_none(key) is not None and isinstance(value, Mapping):
                # kanidm-ldap-sync writes these tables at the top level.
                self.load_entry_map(key, value, f'"{key}"')
            else:
                raise self.fail(
                    "",
                    f"unknown key {key!r} (known: {', '.join(_TOP_KEYS)}, or a table named "
                    "by an entry UUID as kanidm-ldap-sync writes it)",
                )
        try:
            return Rules(
                exclude_ids=self.exclude_ids,
                exclude_external_ids=self.exclude_external_ids,
                exclude_names=self.exclude_names,
                remap_ids=self.remap_ids,
                remap_external_ids=self.remap_external_ids,
            )
        except ConfigError as exc:
            raise ConfigError(f"{self.source}: {exc}") from None

    def load_exclude(self, data: Mapping[str, object]) -> None:
        self.known(data, "exclude", _EXCLUDE_KEYS)
        if "ids" in data:
            items = self.strings(data["ids"], "exclude", "ids")
            self.exclude_ids += [
                self.uuid_value(v, "exclude", f"ids[{i}]") for i, v in enumerate(items)
            ]
        if "external_ids" in data:
            self.exclude_external_ids += self.strings(
                data["external_ids"], "exclude", "external_ids"
            )
        if "names" in data:
            self.exclude_names += self.strings(data["names"], "exclude", "names")

    def load_remap(self, data: Mapping[str, object]) -> None:
        self.known(data, "remap", ("external_id", "id"))
        for key, value in self.table(data.get("id", {}), "remap.id").items():
            table = f'remap.id."{key}"'
            entry_id = self.uuid_value(key, table, "the table name")
            body = self.table(value, table)
            self.known(body, table, _REMAP_ID_KEYS)
            if entry_id in self.remap_ids:
                raise self.fail(table, "this entry already has a remap (entry_map or remap.id)")
            self.remap_ids[entry_id] = self.build_remap(
                table,
                body,
                id_key="id",
                external_key=None,
                name_key="name",
                gid_key="gidnumber",
                patch_key="patch",
            )
        for key, value in self.table(data.get("external_id", {}), "remap.external_id").items():
            table = f'remap.external_id."{key}"'
            body = self.table(value, table)
            self.known(body, table, _REMAP_EXTERNAL_KEYS)
            if key.lower() in (k.lower() for k in self.remap_external_ids):
                raise self.fail(table, "this external id already has a remap")
            self.remap_external_ids[key] = self.build_remap(
                table,
                body,
                id_key=None,
                external_key="external_id",
                name_key="name",
                gid_key="gidnumber",
                patch_key="patch",
            )

    def load_entry_map(self, key: str, value: object, table: str) -> None:
        entry_id = self.uuid_value(key, table, "the table name")
        body = self.table(value, table)
        self.known(body, table, _ENTRY_MAP_KEYS)
        exclude = body.get("exclude", False)
        if not isinstance(exclude, bool):
            raise self.fail(table, "'exclude' must be true or false")
        if exclude:
            self.exclude_ids.append(entry_id)
        remap = self.build_remap(
            table,
            body,
            id_key="map_uuid",
            external_key=None,
            name_key="map_name",
            gid_key="map_gidnumber",
            patch_key=None,
        )
        if remap != Remap():
            if entry_id in self.remap_ids:
                raise self.fail(table, "this entry already has a remap (entry_map or remap.id)")
            self.remap_ids[entry_id] = remap
