"""Converters and validators for the fields of the entry classes in ``_entries.py``.

Pure; no I/O. A wrong type is refused when the value is built, with a :class:`TypeError`
naming the class, the field and the wrong type (``Person.mail[0] must be a Mail or a str,
not int``), never the value: a misplaced secret must not end up in a traceback.

Converters only normalise what is obviously meant (a list becomes a tuple, a ``str`` in
``mail`` becomes ``Mail(str)``, a UUID member becomes its text) and leave anything else
unchanged, so that the field's validator, which knows the class, names the problem
(attrs converters are not told which class they build).

Construction is on the codec's hot path (decoding 100k entries builds 100k persons), so
every check starts with an exact ``type(value) is X`` test and falls back to
``isinstance`` (subclasses, such as :class:`~kanidm_sync.SchemaUrn` members) only then.
"""

from __future__ import annotations

import datetime as _dt
import types
import uuid
from collections.abc import Iterable, Mapping
from typing import Any, Final, TypeVar, cast

import attrs

from .._types import JSONValue

_T = TypeVar("_T")

_SHOWN_MAX: Final = 60
"""Longest id text quoted in an error (ids are never secret, but may be huge)."""


def _where(inst: object, attribute: attrs.Attribute[Any]) -> str:
    return f"{type(inst).__name__}.{attribute.name}"


def _kind(value: object) -> str:
    return type(value).__name__


def _shown(text: str) -> str:
    shown = repr(text)
    return (
        shown if len(shown) <= _SHOWN_MAX else f"{shown[:_SHOWN_MAX]}... ({len(text)} characters)"
    )


# --- scalars -----------------------------------------------------------------------------------


def check_str(inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """Validator: a ``str``."""
    if type(value) is not str and not isinstance(value, str):
        raise TypeError(f"{_where(inst, attribute)} must be a str, not {_kind(value)}")


def check_opt_str(inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """Validator: a ``str`` or ``None``."""
    if value is not None and type(value) is not str and not isinstance(value, str):
        raise TypeError(f"{_where(inst, attribute)} must be a str or None, not {_kind(value)}")


def check_int(inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """Validator: an ``int`` (a ``bool`` is not one here)."""
    if type(value) is not int and (not isinstance(value, int) or isinstance(value, bool)):
        raise TypeError(f"{_where(inst, attribute)} must be an int, not {_kind(value)}")


def check_opt_int(inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """Validator: an ``int`` or ``None`` (a ``bool`` is not an int here)."""
    if (
        value is not None
        and type(value) is not int
        and (not isinstance(value, int) or isinstance(value, bool))
    ):
        raise TypeError(f"{_where(inst, attribute)} must be an int or None, not {_kind(value)}")


def check_opt_bool(inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """Validator: ``True``, ``False`` or ``None``."""
    if value is not None and type(value) is not bool:
        raise TypeError(f"{_where(inst, attribute)} must be a bool or None, not {_kind(value)}")


# --- entry ids ---------------------------------------------------------------------------------


def as_entry_id(value: uuid.UUID | str) -> uuid.UUID:
    """Converter: a UUID, or its text in any form :class:`uuid.UUID` parses.

    Text that is no UUID, and any other type, is left for :func:`check_entry_id`.
    """
    if type(value) is uuid.UUID:
        return value
    if isinstance(value, str):
        try:
            return uuid.UUID(value)
        except ValueError:
            pass
    return cast(uuid.UUID, value)


def check_entry_id(inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """Validator: what :func:`as_entry_id` converted is a UUID."""
    if type(value) is uuid.UUID or isinstance(value, uuid.UUID):
        return
    where = _where(inst, attribute)
    if isinstance(value, str):
        raise ValueError(f"{where}: an entry id must be a UUID, not {_shown(value)}")
    raise TypeError(f"{where} must be a UUID or its text, not {_kind(value)}")


def as_reference(value: uuid.UUID | str) -> str:
    """Converter: a reference is an external id, or a UUID written as text (spec §3.9.1)."""
    if type(value) is str:
        return value
    if isinstance(value, uuid.UUID):
        return str(value)
    return value  # a str subclass, or a wrong type left for check_reference


def check_reference(inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """Validator: what :func:`as_reference` converted is a str."""
    if type(value) is not str and not isinstance(value, str):
        raise TypeError(
            f"{_where(inst, attribute)} must be a str (an external id) or a UUID, "
            f"not {_kind(value)}"
        )


# --- times -------------------------------------------------------------------------------------


def as_rfc3339(value: _dt.datetime | str | None) -> str | None:
    """Converter: a timezone-aware datetime becomes RFC 3339 text; anything else is kept."""
    if isinstance(value, _dt.datetime) and value.utcoffset() is not None:
        return value.isoformat()
    return cast("str | None", value)


def check_rfc3339(inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """Validator: RFC 3339 text or ``None`` (a naive datetime is refused, said so)."""
    if value is None or type(value) is str or isinstance(value, str):
        return
    where = _where(inst, attribute)
    if isinstance(value, _dt.datetime):
        raise ValueError(
            f"{where}: a datetime for Kanidm must be timezone-aware (RFC 3339 needs an offset)"
        )
    raise TypeError(
        f"{where} must be RFC 3339 text, a timezone-aware datetime or None, not {_kind(value)}"
    )


# --- sequences ---------------------------------------------------------------------------------


def _as_tuple(values: object) -> tuple[Any, ...] | None:
    """``tuple(values)``, or ``None`` when ``values`` is a single string or not iterable."""
    if type(values) is tuple:
        return values
    if isinstance(values, str | bytes):
        return None
    try:
        return tuple(values)  # type: ignore[arg-type]  # any iterable; TypeError otherwise
    except TypeError:
        return None


def as_tuple(values: Iterable[_T]) -> tuple[_T, ...]:
    """Converter: any iterable (a list, a generator) becomes a tuple.

    A single string, or a value that is not iterable, is left for the validator.
    """
    if type(values) is tuple:
        return values
    converted = _as_tuple(values)
    return cast("tuple[_T, ...]", values if converted is None else converted)


def as_items(values: Iterable[_T], item: type[_T]) -> tuple[_T, ...]:
    """Convert ``values`` to a tuple, a ``str`` item becoming ``item(str)``.

    Not a converter itself (attrs needs a named one-argument function); the entry
    classes wrap it. A single string, or a value that is not iterable, is kept for the
    validator.
    """
    items = _as_tuple(values)
    if items is None:
        return cast("tuple[_T, ...]", values)
    for each in items:
        if type(each) is not item:
            return tuple(item(i) if isinstance(i, str) else i for i in items)  # type: ignore[call-arg]
    return items


def as_references(values: Iterable[uuid.UUID | str]) -> tuple[str, ...]:
    """Converter: members, each an external id or a UUID (which becomes its text)."""
    if type(values) is tuple:
        items: tuple[Any, ...] | None = values
    elif type(values) is list:
        items = tuple(values)
    else:
        items = _as_tuple(values)
    if items is None:
        return cast("tuple[str, ...]", values)
    for item in items:
        if type(item) is not str:
            return tuple(str(i) if isinstance(i, uuid.UUID) else i for i in items)
    return items


def _bad_items(inst: object, attribute: attrs.Attribute[Any], value: object, what: str) -> str:
    # The message for a field that is no tuple at all (a single string, a number).
    where = _where(inst, attribute)
    if isinstance(value, str | bytes):
        return f"{where} must be an iterable of {what}, not a single {_kind(value)}"
    return f"{where} must be an iterable of {what}, not {_kind(value)}"


def items_of(cls: type, what: str) -> Any:
    """Validator factory: a tuple whose items are all ``cls`` instances.

    Args:
        cls: the item class.
        what: the accepted item, with its article, as errors say it (``"a Mail"``).

    Returns:
        The validator.
    """

    def check(inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if type(value) is not tuple:
            where = _where(inst, attribute)
            single = "a single " if isinstance(value, str | bytes) else ""
            raise TypeError(
                f"{where} must be an iterable of {cls.__name__}, not {single}{_kind(value)}"
            )
        for item in value:
            if type(item) is not cls and not isinstance(item, cls):
                index = next(i for i, v in enumerate(value) if v is item)
                raise TypeError(
                    f"{_where(inst, attribute)}[{index}] must be {what}, not {_kind(item)}"
                )

    check.__name__ = f"check_{cls.__name__.lower()}_items"
    return check


def check_optional(cls: type, what: str) -> Any:
    """Validator factory: an instance of ``cls`` or ``None``.

    Args:
        cls: the accepted class.
        what: the accepted value, with its article, as errors say it.

    Returns:
        The validator.
    """

    def check(inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is None or type(value) is cls or isinstance(value, cls):
            return
        raise TypeError(f"{_where(inst, attribute)} must be {what} or None, not {_kind(value)}")

    check.__name__ = f"check_optional_{cls.__name__.lower()}"
    return check


# --- raw attribute values ----------------------------------------------------------------------


#: The read-only empty mapping every entry without ``extra`` shares (one object, not one
#: per entry: 200,000 entries held about 20 MiB of empty proxies and dicts).
EMPTY_MAPPING: Final[Mapping[str, JSONValue]] = types.MappingProxyType({})


def as_frozen_mapping(value: Mapping[str, JSONValue]) -> Mapping[str, JSONValue]:
    """Converter: a read-only copy of a mapping; anything else is left for the validator."""
    if type(value) is types.MappingProxyType:
        return value
    if type(value) is dict and not value:
        return EMPTY_MAPPING
    if type(value) is dict or isinstance(value, Mapping):
        return types.MappingProxyType(dict(value))
    return value  # type: ignore[unreachable]  # a wrong type, left for the validator


def check_attribute_mapping(inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """Validator: a mapping of attribute name (a str) to value.

    The values themselves are JSON values checked when the entry is encoded (an
    :class:`~kanidm_sync.EncodeError` naming the path, never the value), not here:
    walking every nested value would make construction cost as much as encoding.
    """
    if not value and type(value) is types.MappingProxyType:
        return
    if not isinstance(value, Mapping):
        raise TypeError(
            f"{_where(inst, attribute)} must be a mapping of attribute name to JSON value, "
            f"not {_kind(value)}"
        )
    for key in value:
        if type(key) is not str and not isinstance(key, str):
            raise TypeError(
                f"{_where(inst, attribute)} keys must be attribute names (str), not {_kind(key)}"
            )
