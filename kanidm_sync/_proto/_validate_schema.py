"""Schema rules of one ChangeSet validation pass (spec §3.5-§3.9).

Owns :class:`_SchemaChecks`: a generic entry's schema URNs and class combination
(supplements, excludes, must attributes), and every ``extra`` or generic attribute:
name case and duplicates, the JSON value shape, ownership by the entry's classes,
phantom import attributes, and the per-syntax dispatch to the value checks of
``_validate_values.py``. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from .._types import JSONValue
from ._entries import GenericEntry
from ._schema import HEADER_KEYS, AttributeSchema, Syntax, class_from_urn
from ._validate_state import _ERROR, _POSIX_CLASS, _U32_MAX, _WARNING
from ._validate_values import _ValueChecks

__all__ = ["_SchemaChecks"]

# Attribute keys that no schema will ever own; an `extra` or generic attribute with one
# of these names is a known refusal (error), not an unknown name (warning).
_REFUSED_NAMES: Final = frozenset({"external_id", "members", "memberuid"})


class _SchemaChecks(_ValueChecks):
    """Generic entries and extra attributes checked against the schema."""

    def generic(self, e: GenericEntry) -> None:
        classes: set[str] = set()
        for n, urn in enumerate(e.schemas):
            field = f"schemas[{n}]"
            cname = class_from_urn(urn)
            cls = self.schema.classes.get(cname) if cname is not None else None
            if cname is None:
                self.add(
                    _ERROR,
                    "schema.urn",
                    f"{urn!r} is not a Kanidm sync schema URN (urn:ietf:params:scim:schemas:"
                    "kanidm:sync:1:<class>); kanidmd answers 'invalidentrystate'",
                    field,
                )
            elif cls is None:
                self.add(
                    _WARNING,
                    "schema.unknown_class",
                    f"class {cname!r} is not in Kanidm's default schema; it must be a "
                    "sync-allowed class an admin added, else kanidmd answers "
                    "'invalidentrystate'",
                    field,
                )
                classes.add(cname)
            elif not cls.sync_allowed:
                self.add(
                    _ERROR,
                    "schema.not_sync_allowed",
                    f"class {cname!r} cannot be requested by a sync account ('invalidentrystate')",
                    field,
                )
            else:
                classes.add(cname)
        if not e.schemas:
            self.add(
                _WARNING,
                "schema.empty",
                "no schema URN: the entry owns only the import attributes",
                "schemas",
            )
        for code, cname, detail in self.schema.class_problems(classes):
            if code == "schema.supplements":
                msg = f"class {cname!r} needs {detail} as well (supplementsnotsatisfied)"
            else:
                msg = f"class {cname!r} excludes {detail!r} (schema violation)"
            self.add(_ERROR, code, msg, "schemas")
        known = all(c in self.schema.classes for c in classes)
        present = {k.lower() for k in e.attributes}
        if known:
            for missing in self.schema.missing_must(classes, present):
                self.add(
                    _ERROR,
                    "schema.must",
                    f"the classes {sorted(classes)} require {missing!r} (missingmustattribute)",
                    missing,
                )
        self.attributes(e.attributes, classes, frozenset())
        if classes & {"posixaccount", "posixgroup"} and "gidnumber" not in present:
            self.gidnumber(None)

    def attributes(
        self,
        values: Mapping[str, JSONValue],
        classes: set[str],
        typed: frozenset[str],
    ) -> None:
        frozen = frozenset(classes)
        owned = self.owned_cache.get(frozen)
        if owned is None:
            owned = self.owned_cache[frozen] = self.schema.owned(frozen)
        all_known = all(c in self.schema.classes for c in classes)
        password_seen = False
        totp_field: str | None = None
        lowered_seen: dict[str, str] = {}
        for key, value in values.items():
            name = key.lower()
            # The field is the attribute as written: typed fields and extra keys never
            # overlap (extra.shadows_field), so the name alone says where it came from.
            field = key
            if name != key:
                self.add(
                    _WARNING,
                    "attribute.case",
                    f"send attribute names in lower case ({name!r})",
                    field,
                )
            if name in lowered_seen:
                self.add(
                    _ERROR,
                    "attribute.duplicate",
                    f"{key!r} and {lowered_seen[name]!r} are the same Kanidm attribute",
                    field,
                )
            lowered_seen[name] = key
            if not self.shape(value, field):
                continue
            if name in typed:
                self.add(
                    _ERROR,
                    "extra.shadows_field",
                    f"{name!r} is a field of the typed entry; set it there, not in extra",
                    field,
                )
                continue
            if name in HEADER_KEYS:
                self.add(
                    _ERROR,
                    "attribute.header_key",
                    f"{key!r} is an entry header key, not an attribute",
                    field,
                )
                continue
            spec = self.schema.attributes.get(name)
            if spec is None:
                if name in _REFUSED_NAMES:
                    hint = " (the header key is externalId)" if name == "external_id" else ""
                    self.add(
                        _ERROR,
                        "attribute.not_owned",
                        f"no Kanidm schema owns {name!r}{hint}; kanidmd answers "
                        "'invalidentrystate'",
                        field,
                    )
                else:
                    self.add(
                        _WARNING,
                        "attribute.unknown",
                        f"{name!r} is not in Kanidm's default schema; it must be a "
                        "sync-allowed attribute an admin added to one of this entry's "
                        "classes, else kanidmd answers 'invalidentrystate'",
                        field,
                    )
                    self.strings(value, field)
                continue
            if spec.phantom:
                if spec.syntax is Syntax.TOTP_IMPORT:
                    totp_field = field
                elif name == "password_import":
                    password_seen = True
                self.phantom_class_check(name, classes, field)
            elif name not in owned:
                if not spec.sync_allowed:
                    why = "is managed by Kanidm and cannot be set by a sync account"
                    sev = _ERROR
                else:
                    why = f"is not owned by the classes {sorted(classes)}"
                    # With an admin-added class in play the owned set is unknown.
                    sev = _ERROR if all_known else _WARNING
                self.add(
                    sev,
                    "attribute.not_owned",
                    f"{name!r} {why}; kanidmd answers 'invalidentrystate'",
                    field,
                )
                continue
            elif not spec.convertible:
                self.add(
                    _ERROR,
                    "attribute.unsupported",
                    f"{name!r} cannot be written by a sync account (kanidmd: 'Unsupported "
                    f"attribute conversion - {name}'); it can only be yielded",
                    field,
                )
                continue
            self.value(spec, value, field)
        if totp_field is not None and not password_seen:
            self.totp_without_password()

    def phantom_class_check(self, name: str, classes: set[str], field: str) -> None:
        if name == "unix_password_import":
            if _POSIX_CLASS not in classes:
                self.add(
                    _ERROR,
                    "unix_password_import.class",
                    "unix_password_import needs the posixaccount schema "
                    "(attributenotvalidforclass)",
                    field,
                )
        elif not classes & {"person", "service_account"} and all(
            c in self.schema.classes for c in classes
        ):
            self.add(
                _ERROR,
                f"{name}.class",
                f"{name} sets a primary credential, which only persons and service accounts "
                "have (attributenotvalidforclass primary_credential)",
                field,
            )

    def shape(self, value: JSONValue, field: str) -> bool:
        """The generic JSON value model of spec §3.5; ``False`` stops further checks."""
        if value is None:
            self.add(_ERROR, "value.null", "null is never valid; omit the attribute (422)", field)
            return False
        if isinstance(value, str | bool | int | float):
            return True
        if isinstance(value, Mapping):
            return self.flat_object(value, field)
        if not isinstance(value, list | tuple):  # pragma: no cover - JSONValue is closed
            return True
        if not value:
            self.add(
                _ERROR,
                "value.empty_list",
                "an empty list parses as binary and kanidmd answers 'Unsupported attribute "
                "conversion' (400); omit the attribute to clear it",
                field,
            )
            return False
        if all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in value):
            self.add(
                _ERROR,
                "value.shape",
                "a list of small integers parses as binary data, which no sync attribute takes",
                field,
            )
            return False
        if all(isinstance(v, Mapping) for v in value):
            return all([self.flat_object(v, f"{field}[{n}]") for n, v in enumerate(value)])
        if any(v is None for v in value):
            self.add(_ERROR, "value.null", "null is never valid inside a list (422)", field)
            return False
        if all(isinstance(v, str | bool | int | float) for v in value):
            return True
        self.add(
            _ERROR,
            "value.shape",
            "a list must hold only scalars or only flat objects (422)",
            field,
        )
        return False

    def flat_object(self, value: Mapping[str, JSONValue], field: str) -> bool:
        ok = True
        for k, v in value.items():
            if v is None:
                self.add(_ERROR, "value.null", f"{k!r} is null; omit it (422)", f"{field}.{k}")
                ok = False
            elif not isinstance(v, str | bool | int | float):
                self.add(
                    _ERROR,
                    "value.shape",
                    f"{k!r} holds a nested value; objects must be flat (422)",
                    f"{field}.{k}",
                )
                ok = False
        return ok

    def strings(self, value: JSONValue, field: str) -> None:
        if isinstance(value, str):
            self.text(value, field)
        elif isinstance(value, Mapping):
            for k, v in value.items():
                self.strings(v, f"{field}.{k}")
        elif isinstance(value, list | tuple):
            for n, v in enumerate(value):
                self.strings(v, f"{field}[{n}]")

    def wrong_type(self, spec: AttributeSchema, field: str, expected: str) -> None:
        self.add(
            _ERROR,
            "value.type",
            f"{spec.name} takes {expected} (kanidmd answers 'invalidattribute')",
            field,
        )

    def value(self, spec: AttributeSchema, value: JSONValue, field: str) -> None:
        """Syntax checks for one known, owned attribute value (spec §3.9)."""
        syntax = spec.syntax
        if not spec.multi:
            if syntax is Syntax.UINT32:
                if isinstance(value, int) and not isinstance(value, bool):
                    if spec.name == "gidnumber":
                        self.gidnumber(value, field)
                    elif not 0 <= value <= _U32_MAX:
                        self.add(
                            _ERROR,
                            "value.out_of_bounds",
                            f"{value} does not fit an unsigned 32-bit integer",
                            field,
                        )
                else:
                    self.wrong_type(spec, field, "a JSON integer")
                return
            if not isinstance(value, str):
                self.wrong_type(spec, field, "a string")
                return
            if syntax is Syntax.INAME:
                self.text(value, field)
                self.name(value, field)
            elif syntax is Syntax.DATETIME:
                self.date(value, field)
            elif syntax is Syntax.PASSWORD_IMPORT:
                self.password(value, spec.name)
            else:
                self.text(value, field)
                if syntax is Syntax.UTF8:
                    self.empty(value, field)
            return
        if not isinstance(value, list | tuple) or not all(isinstance(v, Mapping) for v in value):
            self.wrong_type(spec, field, "a list of objects")
            return
        labels: set[str] = set()
        for n, item in enumerate(value):
            if not isinstance(item, Mapping):  # pragma: no cover - checked just above
                continue
            f = f"{field}[{n}]"
            if syntax is Syntax.EMAIL:
                v = item.get("value")
                if not isinstance(v, str):
                    self.add(_ERROR, "value.type", "value must be a string", f"{f}.value")
                else:
                    self.mail(v, f)
                p = item.get("primary")
                if p is not None and not isinstance(p, bool):
                    self.add(_ERROR, "value.type", "primary must be a boolean", f"{f}.primary")
            elif syntax is Syntax.SSHKEY:
                label, key = item.get("label"), item.get("value")
                if not isinstance(label, str) or not isinstance(key, str):
                    self.add(_ERROR, "value.type", "label and value must be strings", f)
                else:
                    self.ssh_key(label, key, f, labels)
            elif syntax is Syntax.REFERENCE_UUID:
                ref = item.get("external_id")
                if not isinstance(ref, str):
                    self.add(
                        _ERROR, "value.type", "external_id must be a string", f"{f}.external_id"
                    )
                else:
                    self.text(ref, f)
                    self.members.append((self.index or 0, n, ref))
            elif syntax is Syntax.TOTP_IMPORT:
                missing = [
                    k for k in ("external_id", "secret", "algo", "step", "digits") if k not in item
                ]
                for k in missing:
                    self.add(_ERROR, f"totp.{k}", f"missing required key {k}", f"{f}.{k}")
                self.totp(
                    n,
                    labels,
                    external_id=item.get("external_id", ""),
                    secret=item.get("secret", ""),
                    algo=item.get("algo", "sha1"),
                    step=item.get("step", 30),
                    digits=item.get("digits", 6),
                )
            else:  # pragma: no cover - every multi-valued convertible syntax is handled
                self.strings(item, f)
