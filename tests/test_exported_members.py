"""The public surface: what `kanidm_sync` exports is exactly what it means to export."""

from __future__ import annotations

import importlib

import pytest

import kanidm_sync

PUBLIC_PACKAGES = ["kanidm_sync", "kanidm_sync.adapters", "kanidm_sync.testing"]


@pytest.mark.parametrize("name", PUBLIC_PACKAGES)
def test_all_is_sorted_and_complete(name: str) -> None:
    """__all__ lists every public name the package defines, once, and nothing private."""
    module = importlib.import_module(name)
    exported = list(module.__all__)
    public = sorted(
        n
        for n in vars(module)
        if not n.startswith("_")
        and n not in {"annotations"}
        and not isinstance(vars(module)[n], type(importlib))
    )
    assert sorted(set(exported)) == sorted(exported), "duplicates in __all__"
    assert set(public) | {"__version__"} >= set(exported)
    assert sorted(set(public) - {"annotations"}) == sorted(set(exported) - {"__version__"})


def test_all_names_resolve() -> None:
    """Every name in kanidm_sync.__all__ can be imported."""
    for name in kanidm_sync.__all__:
        assert getattr(kanidm_sync, name) is not None


def test_public_classes_present_as_top_level() -> None:
    """Public classes say kanidm_sync.X, not the private module they live in."""
    for name in kanidm_sync.__all__:
        obj = getattr(kanidm_sync, name)
        if isinstance(obj, type):
            assert "kanidm_sync" == obj.__module__, name


@pytest.mark.parametrize(
    "name",
    ["kanidm_sync.adapters.files", "kanidm_sync.adapters.ldap", "kanidm_sync.adapters.ad"],
)
def test_source_modules_export_what_they_define(name: str) -> None:
    """Each public source module's __all__ names what the module defines (ruff sorts it)."""
    module = pytest.importorskip(name) if name != "kanidm_sync.adapters.files" else None
    module = module or importlib.import_module(name)
    exported = list(module.__all__)
    assert len(set(exported)) == len(exported)
    defined = {
        n
        for n, v in vars(module).items()
        if not n.startswith("_") and getattr(v, "__module__", None) == module.__name__
    }
    assert defined <= set(exported)
    assert all(hasattr(module, n) for n in exported)


def test_uuid_for_is_public_where_every_adapter_finds_it() -> None:
    """uuid_for and its namespace are kanidm_sync.adapters names; files re-exports them."""
    adapters = importlib.import_module("kanidm_sync.adapters")
    files = importlib.import_module("kanidm_sync.adapters.files")
    for name in ("uuid_for", "EXTERNAL_ID_NAMESPACE"):
        assert name in adapters.__all__
        assert name in files.__all__
        assert getattr(adapters, name) is getattr(files, name)


def test_status_server_is_public() -> None:
    """The sync service's status server is a top-level name (issue 13)."""
    assert "StatusServer" in kanidm_sync.__all__
    assert "kanidm_sync" == kanidm_sync.StatusServer.__module__
