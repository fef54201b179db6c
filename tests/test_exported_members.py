"""The public surface: each public module's ``__all__`` lists exactly its public names, and nothing leaks."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import types

import pytest
import sqlalchemy as sa

import tenantkit
import tenantkit._errors
import tenantkit._events
import tenantkit.errors
import tenantkit.events
import tenantkit.tables

PUBLIC_MODULES = (
    "tenantkit",
    "tenantkit.api_keys",
    "tenantkit.audit",
    "tenantkit.credentials",
    "tenantkit.departments",
    "tenantkit.bus",
    "tenantkit.domains",
    "tenantkit.errors",
    "tenantkit.events",
    "tenantkit.fastapi",
    "tenantkit.flask",
    "tenantkit.invitations",
    "tenantkit.members",
    "tenantkit.metrics",
    "tenantkit.organizations",
    "tenantkit.roles",
    "tenantkit.sso",
    "tenantkit.starlette",
    "tenantkit.tables",
    "tenantkit.testing",
    "tenantkit.ui",
    "tenantkit.webhooks",
)
"""Every public module. A new one is added here on purpose, and then guarded like the others."""

# A package per feature: its public names, re-exported from the feature's private modules.
FEATURE_PACKAGES = (
    "tenantkit.api_keys",
    "tenantkit.audit",
    "tenantkit.credentials",
    "tenantkit.departments",
    "tenantkit.bus",
    "tenantkit.domains",
    "tenantkit.invitations",
    "tenantkit.members",
    "tenantkit.organizations",
    "tenantkit.roles",
    "tenantkit.webhooks",
    "tenantkit.sso",
)

# The modules that only re-export, each from private modules: their implementation lives elsewhere.
REEXPORTING_MODULES = (
    "tenantkit",
    "tenantkit.errors",
    "tenantkit.events",
    "tenantkit.tables",
    *FEATURE_PACKAGES,
)

# Alembic's script directory: a package by Alembic's convention, not an API (its env.py runs on import).
NOT_AN_API = "tenantkit.migrations"


def is_public(name: str) -> bool:
    return not any(part.startswith("_") for part in name.split("."))


def test_the_public_modules_are_the_listed_ones() -> None:
    """Every module whose dotted name has no private part is listed in ``PUBLIC_MODULES``."""
    found = {
        module.name
        for module in pkgutil.walk_packages(tenantkit.__path__, "tenantkit.")
        if is_public(module.name) and not module.name.startswith(NOT_AN_API)
    }
    assert found | {"tenantkit"} == set(PUBLIC_MODULES)


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
class TestEveryPublicModule:
    def test_all_is_unique(self, module_name: str) -> None:
        """``__all__`` names each public object once."""
        exported = importlib.import_module(module_name).__all__
        assert len(set(exported)) == len(exported)

    def test_every_name_in_all_exists(self, module_name: str) -> None:
        """Every name in ``__all__`` is an attribute of the module."""
        module = importlib.import_module(module_name)
        for name in module.__all__:
            assert hasattr(module, name), name

    def test_what_the_module_defines_is_exported_or_private(self, module_name: str) -> None:
        """A class or function the module defines is in ``__all__`` or has a private name."""
        module = importlib.import_module(module_name)
        defined = {
            name
            for name, value in vars(module).items()
            if (inspect.isclass(value) or inspect.isfunction(value)) and value.__module__ == module_name
        }
        assert {name for name in defined if not name.startswith("_")} <= set(module.__all__)


@pytest.mark.parametrize("module_name", REEXPORTING_MODULES)
def test_a_reexporting_module_exports_every_public_name(module_name: str) -> None:
    """Every public attribute of a re-exporting module (submodules aside) is in ``__all__``, and only they."""
    module = importlib.import_module(module_name)
    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(module.__all__) - {"__version__"}


@pytest.mark.parametrize("module_name", REEXPORTING_MODULES)
def test_exported_names_come_from_private_modules(module_name: str) -> None:
    """A re-exporting module holds no implementation: each name it exports lives in a private module."""
    module = importlib.import_module(module_name)
    for name in module.__all__:
        home = getattr(getattr(module, name), "__module__", None)
        if isinstance(home, str) and home.startswith("tenantkit"):
            assert not is_public(home), (name, home)


def test_the_top_level_has_no_tables() -> None:
    """``tenantkit.api_keys`` and ``tenantkit.invitations`` are feature packages, not tables (``kit.api_keys``
    is a service)."""
    for name in vars(tenantkit):
        assert not isinstance(getattr(tenantkit, name), (sa.Table, sa.MetaData)), name
    for package in FEATURE_PACKAGES:
        assert getattr(tenantkit, package.removeprefix("tenantkit.")) is importlib.import_module(package)


def test_every_exception_has_its_home_in_tenantkit_errors() -> None:
    """``tenantkit.errors`` exports every exception and warning class tenantkit defines."""
    defined = {
        name
        for name, value in vars(tenantkit._errors).items()
        if inspect.isclass(value)
        and issubclass(value, (tenantkit.TenantKitError, Warning))
        and value.__module__ == "tenantkit._errors"
    }
    assert defined == set(tenantkit.errors.__all__)


def test_every_event_has_its_home_in_tenantkit_events() -> None:
    """``tenantkit.events`` exports every event class, the dispatcher and the payload schema."""
    defined = {
        name
        for name, value in vars(tenantkit._events).items()
        if inspect.isclass(value)
        and issubclass(value, tenantkit.events.Event)
        and value.__module__ == "tenantkit._events"
    }
    payload_schema = {"EVENT_TYPES", "EventPayload", "ActorPayload"}
    assert defined | {"EventDispatcher"} | payload_schema == set(tenantkit.events.__all__)


def test_every_table_has_its_home_in_tenantkit_tables() -> None:
    """``tenantkit.tables`` exports every table of its ``metadata``, under the table's own name."""
    tables = {
        name for name in tenantkit.tables.__all__ if isinstance(getattr(tenantkit.tables, name), sa.Table)
    }
    assert tables == set(tenantkit.tables.metadata.tables)
    for name in tables:
        assert getattr(tenantkit.tables, name) is tenantkit.tables.metadata.tables[name]


def test_the_top_level_reexports_the_same_objects() -> None:
    """A name both at the top level and in a home module is one object, not a copy."""
    homes = (tenantkit.errors, tenantkit.events, tenantkit.tables)
    for home in (*homes, *map(importlib.import_module, FEATURE_PACKAGES)):
        for name in set(home.__all__) & set(tenantkit.__all__):
            assert getattr(tenantkit, name) is getattr(home, name), name
