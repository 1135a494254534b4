"""Type aliases shared by every layer.

Aliases only: no behaviour lives here. At run time they are real alias objects
(``typing_extensions.TypeAliasType``), so ``help()``, ``typing.get_type_hints`` and
documentation tools resolve them; type checkers read the equivalent ``TypeAlias`` form.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, TypeAlias, Union

from typing_extensions import TypeAliasType

__all__ = ["JSONObject", "JSONScalar", "JSONValue"]

if TYPE_CHECKING:
    JSONScalar: TypeAlias = str | int | float | bool | None
    JSONValue: TypeAlias = JSONScalar | Sequence["JSONValue"] | Mapping[str, "JSONValue"]
    JSONObject: TypeAlias = dict[str, JSONValue]
else:
    # mypy cannot yet resolve a recursive TypeAliasType, hence the two spellings.
    JSONScalar = TypeAliasType("JSONScalar", Union[str, int, float, bool, None])  # noqa: UP007
    JSONValue = TypeAliasType(
        "JSONValue",
        Union[JSONScalar, Sequence["JSONValue"], Mapping[str, "JSONValue"]],  # noqa: UP007
    )
    JSONObject = TypeAliasType("JSONObject", dict[str, JSONValue])

# JSONScalar: a JSON scalar as the standard library's json module produces it.
# JSONValue: any JSON value; decoders accept plain ``object`` and narrow it.
# JSONObject: a JSON object as produced by an encoder.
