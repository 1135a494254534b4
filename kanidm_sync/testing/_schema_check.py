"""Schema validation of an entry, as kanidmd's ``Entry::validate`` does it.

Owns: :func:`validate_entry`. Must not: hold state or modify the entry.
"""

from __future__ import annotations

from ._entry import MutEntry
from ._rejection import schema_error
from ._schema_table import ATTRIBUTES, CLASSES, class_rules
from ._values import iname_ok, utf8_ok

__all__ = ["validate_entry"]


def validate_entry(e: MutEntry) -> None:
    """Schema validation of one entry (spec §4.5 d), in kanidmd's precedence."""
    for cls in sorted(e.classes):
        if cls not in CLASSES:
            raise schema_error("invalidclass", [cls])
    for cls in sorted(e.classes):
        sup = CLASSES[cls].supplements
        if sup and not any(s in e.classes for s in sup):
            raise schema_error("supplementsnotsatisfied", list(sup))
    for cls in sorted(e.classes):
        excluded = [x for x in CLASSES[cls].excludes if x in e.classes]
        if excluded:
            # [inferred] the body lists the excluded classes that are present.
            raise schema_error("excludesnotsatisfied", excluded)
    must, allowed = class_rules(frozenset(e.classes))
    missing = sorted(a for a in must if a not in ("uuid", "class") and a not in e.attrs)
    if missing:
        raise schema_error("missingmustattribute", missing)
    for attr in sorted(e.attrs):
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
