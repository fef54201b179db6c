"""The public surface: ``tenantkit.__all__`` lists exactly the public names, and nothing leaks."""

from __future__ import annotations

import types

import tenantkit


def test_all_is_unique() -> None:
    """``__all__`` names each public object once."""
    assert len(set(tenantkit.__all__)) == len(tenantkit.__all__)


def test_every_public_name_is_exported() -> None:
    """Every public attribute of the package is in ``__all__``, and every name in ``__all__`` exists."""
    public = {
        name
        for name, value in vars(tenantkit).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    exported = set(tenantkit.__all__) - {"__version__"}
    assert public == exported
    for name in tenantkit.__all__:
        assert hasattr(tenantkit, name), name


def test_exported_names_come_from_private_modules() -> None:
    """Implementation lives in private modules; the package re-exports it."""
    for name in tenantkit.__all__:
        module = getattr(getattr(tenantkit, name), "__module__", None)
        if isinstance(module, str) and module.startswith("tenantkit"):
            assert module == "tenantkit" or module.split(".")[1].startswith("_"), (name, module)
