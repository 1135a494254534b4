"""Client and AsyncClient expose the same public methods with the same parameters."""

from __future__ import annotations

import inspect

from kanidm_sync import AsyncClient, Client

LIFECYCLE = {"close": "aclose"}


def _public(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in inspect.getmembers(cls)
        if not name.startswith("_") and callable(member)
    }


def test_same_public_methods() -> None:
    """Same names (close/aclose aside), same parameter names, kinds and defaults."""
    sync, async_ = _public(Client), _public(AsyncClient)
    assert {LIFECYCLE.get(n, n) for n in sync} == set(async_)
    for name, signature in sync.items():
        other = async_[LIFECYCLE.get(name, name)]
        mine = [(p.name, p.kind, p.default) for p in signature.parameters.values()]
        theirs = [(p.name, p.kind, p.default) for p in other.parameters.values()]
        assert mine == theirs, name


def test_async_methods_are_coroutines() -> None:
    """Every async twin (except the classmethod constructor) is a coroutine function."""
    for name, member in inspect.getmembers(AsyncClient):
        if name.startswith("_") or not callable(member) or name == "from_config":
            continue
        assert inspect.iscoroutinefunction(member), name
        assert not inspect.iscoroutinefunction(getattr(Client, name, None) or Client.close), name


def test_constructor_parameters_match() -> None:
    """The constructors take the same parameters (http_client differs only in type)."""
    a = inspect.signature(Client.__init__).parameters
    b = inspect.signature(AsyncClient.__init__).parameters
    assert list(a) == list(b)
    assert [p.default for p in a.values()] == [p.default for p in b.values()]
