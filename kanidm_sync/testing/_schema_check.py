"""Schema validation of an entry, as kanidmd's ``Entry::validate`` does it.

Owns: :func:`validate_entry`. Must not: hold state or modify the entry.
"""

from __future__ import annotations

from ._attr_order import attr_rank
from ._entry import MutEntry
from ._rejection import schema_error
from ._schema_table import ATTRIBUTES, CLASSES, class_rules
from ._values import iname_ok, utf8_ok, valueset_ok

__all__ = ["validate_entry"]


def validate_entry(e: MutEntry) -> None:
    """Schema validation of one entry (spec §4.5 d), as kanidmd's ``Entry::validate`` does it.

    kanidm: server/lib/src/entry.rs ``Entry<EntryValid, _>::validate``. The entry's classes
    are a ``BTreeSet`` (byte order) and every rule is pooled over all of them: unknown
    classes are reported together; the supplements of all classes form one list, satisfied
    when *any* of them is present (so ``posixaccount`` next to ``group`` + ``posixgroup``
    needs no ``account``); the excluded classes that are present are collected over all
    classes; the must attributes are collected class by class, duplicates kept. Each error
    lists what it collected, in that order. Attributes are then checked in kanidmd's
    ``Attribute`` order (the entry's ``BTreeMap``): the first one outside the may/must set
    of all classes, or with an invalid value set, fails.

    Raises:
        Rejection: 400 ``schemaviolation`` with ``invalidclass``,
            ``supplementsnotsatisfied``, ``excludesnotsatisfied``, ``missingmustattribute``,
            ``attributenotvalidforclass`` or ``invalidattributesyntax``.
    """
    classes = sorted(e.classes)
    invalid = [cls for cls in classes if cls not in CLASSES]
    if invalid:
        raise schema_error("invalidclass", invalid)
    supplements = [s for cls in classes for s in CLASSES[cls].supplements]
    if supplements and not any(s in e.classes for s in supplements):
        raise schema_error("supplementsnotsatisfied", supplements)
    excluded = [x for cls in classes for x in CLASSES[cls].excludes if x in e.classes]
    if excluded:
        raise schema_error("excludesnotsatisfied", excluded)
    # Within one class the table keeps no declaration order, so its must attributes are
    # taken in byte order: the same as kanidmd's for every class of the table but
    # oauth2_account, whose oauth2_account_credential_uuid the OAuth2 plugin always sets.
    missing = [
        attr
        for cls in classes
        for attr in sorted(CLASSES[cls].must)
        if attr not in ("uuid", "class") and attr not in e.attrs
    ]
    if missing:
        raise schema_error("missingmustattribute", missing)
    _, allowed = class_rules(frozenset(e.classes))
    for attr in sorted(e.attrs, key=attr_rank):
        if attr not in allowed:
            raise schema_error("attributenotvalidforclass", attr)
        if not ATTRIBUTES[attr].multi and len(e.attrs[attr]) > 1:
            raise schema_error("invalidattributesyntax", attr)
        if attr == "name" and not all(iname_ok(str(v)) for v in e.attrs[attr]):
            raise schema_error("invalidattributesyntax", attr)
        if ATTRIBUTES[attr].syntax in ("utf8", "utf8_ci") and not all(
            utf8_ok(str(v)) for v in e.attrs[attr]
        ):
            raise schema_error("invalidattributesyntax", attr)
        if not valueset_ok(ATTRIBUTES[attr].syntax, e.attrs[attr]):
            raise schema_error("invalidattributesyntax", attr)
