"""The layer rule: the pure protocol core imports nothing that does I/O."""

from __future__ import annotations

import ast
import pathlib

PROTO = pathlib.Path(__file__).parent.parent / "kanidm_sync" / "_proto"
ALLOWED_TOP = {
    "__future__",
    "attrs",
    "typing_extensions",
    "base64",
    "binascii",
    "collections",
    "dataclasses",
    "datetime",
    "enum",
    "functools",
    "hashlib",
    "html",
    "ipaddress",
    "itertools",
    "json",
    "math",
    "operator",
    "re",
    "string",
    "types",
    "typing",
    "unicodedata",
    "uuid",
    "fnmatch",
    "bisect",
    "struct",
    "heapq",
    "urllib",
}
# Relative imports may reach the package's own pure modules only.
ALLOWED_RELATIVE = {"_types", "_exceptions", "_proto"}


def _imports(path: pathlib.Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((0, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.append((node.level, node.module or ""))
    return found


def test_proto_imports_only_pure_modules() -> None:
    """No module in kanidm_sync/_proto imports httpx, sockets, logging, clocks or randomness."""
    bad = []
    for path in sorted(PROTO.glob("*.py")):
        for level, module in _imports(path):
            top = module.split(".")[0]
            if level == 0 and top not in ALLOWED_TOP:
                bad.append(f"{path.name}: import {module}")
            if level == 2 and top not in ALLOWED_RELATIVE:
                bad.append(f"{path.name}: from ..{module}")
    assert [] == bad


def test_proto_has_modules() -> None:
    """The check above looks at real files (it cannot pass vacuously)."""
    assert len(list(PROTO.glob("*.py"))) >= 5
