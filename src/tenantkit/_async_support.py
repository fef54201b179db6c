"""SQLAlchemy's asyncio extension, imported only when a host hands tenantkit something other than a Session.

``sqlalchemy.ext.asyncio`` needs greenlet, which SQLAlchemy no longer installs by itself (``tenantkit[async]``
brings it). A sync host therefore never imports the extension, and an async host that lacks greenlet is
told which extra to install where its session first reaches tenantkit, instead of at ``import``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeGuard

from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["ASYNC_EXTRA_INSTALL", "async_session_class", "is_async_session"]

ASYNC_EXTRA_INSTALL = 'pip install "tenantkit[async]"'


def async_session_class(used_for: str = "an AsyncSession") -> type[AsyncSession]:
    """SQLAlchemy's ``AsyncSession``, imported now.

    Args:
        used_for: What needed it, for the error message.

    Raises:
        ModuleNotFoundError: The asyncio extension cannot be imported (greenlet is missing); the message
            names the ``tenantkit[async]`` extra.
    """
    try:
        from sqlalchemy.ext.asyncio import AsyncSession
    except ImportError as error:
        raise ModuleNotFoundError(
            f"{used_for} needs SQLAlchemy's asyncio extension, which needs greenlet ({error}); "
            f"install the async extra: {ASYNC_EXTRA_INSTALL}",
            name="greenlet",
        ) from error
    return AsyncSession


def is_async_session(session: object) -> TypeGuard[AsyncSession]:
    """Whether ``session`` is an ``AsyncSession``; a sync ``Session`` is answered without the extension.

    Raises:
        ModuleNotFoundError: ``session`` is not a ``Session`` and the asyncio extension is not installed.
    """
    if isinstance(session, Session):
        return False
    used_for = f"a session of type {type(session).__name__} (not a sqlalchemy.orm.Session)"
    return isinstance(session, async_session_class(used_for))
