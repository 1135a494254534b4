"""Type aliases shared by every layer.

Aliases only: no behaviour lives here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeAlias

__all__ = ["JSONObject", "JSONScalar", "JSONValue"]

JSONScalar: TypeAlias = "str | int | float | bool | None"
"""A JSON scalar as the standard library's :mod:`json` module produces it."""

JSONValue: TypeAlias = "JSONScalar | Sequence[JSONValue] | Mapping[str, JSONValue]"
"""Any JSON value.

Decoders accept plain ``object`` and narrow it; encoders return these.
"""

JSONObject: TypeAlias = "dict[str, JSONValue]"
"""A JSON object as produced by an encoder."""
