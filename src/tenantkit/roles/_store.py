"""Reading an organization's custom roles from ``custom_roles``, and the short-lived permission cache.

Prebuilt statements, as every service keeps them. A role read to *assign* it is read with a shared row lock
(``FOR SHARE`` / ``LOCK IN SHARE MODE``) held until the assigning transaction ends, and a role read to edit
or delete it with ``FOR UPDATE``: a deletion therefore waits for an assignment in flight and then counts its
holder, and an assignment that comes second finds the role gone. Role rows are always locked before member
rows, the same order on every path, so the two never deadlock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Collection, Mapping
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from tenantkit._invalidation import MEMBER, ROLE, CacheKey
from tenantkit._tables import custom_roles
from tenantkit.roles._policy import CustomRole, EffectivePermissions, Role

_ROLE = sa.select(custom_roles).where(
    custom_roles.c.organization_id == sa.bindparam("organization_id"),
    custom_roles.c.key == sa.bindparam("key"),
)
_ROLE_SHARED = _ROLE.with_for_update(read=True)
_ROLE_EXCLUSIVE = _ROLE.with_for_update()

_ORGANIZATION_ROLES = (
    sa.select(custom_roles)
    .where(custom_roles.c.organization_id == sa.bindparam("organization_id"))
    .order_by(custom_roles.c.key)
)

Lock = Literal["share", "update"] | None


def role_from_row(row: Any) -> CustomRole:
    """The :class:`CustomRole` a ``custom_roles`` row holds."""
    return CustomRole(
        key=row.key,
        name=row.name,
        description=row.description or "",
        rank=Role(row.rank),
        permissions=frozenset(row.permissions or ()),
        organization_id=row.organization_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def load_role(
    session: Session | Connection,
    organization_id: str,
    key: str,
    execution_options: Mapping[str, Any],
    *,
    lock: Lock = None,
) -> CustomRole | None:
    """The organization's role ``key`` as stored, or ``None``; ``lock`` locks its row until the end of the
    transaction."""
    statement = _ROLE if lock is None else _ROLE_SHARED if lock == "share" else _ROLE_EXCLUSIVE
    row = session.execute(
        statement, {"organization_id": organization_id, "key": key}, execution_options=execution_options
    ).first()
    return role_from_row(row) if row is not None else None


def load_organization_roles(
    session: Session | Connection, organization_id: str, execution_options: Mapping[str, Any]
) -> list[CustomRole]:
    """Every role the organization defined, by key."""
    rows = session.execute(
        _ORGANIZATION_ROLES, {"organization_id": organization_id}, execution_options=execution_options
    ).all()
    return [role_from_row(row) for row in rows]


class PermissionCache:
    """Effective permissions of members, kept for a short TTL (``None`` entries: not a member).

    Evicted through the event dispatcher's invalidation seam (:mod:`tenantkit._invalidation`): a member's
    entry by ``CacheKey.member`` (added, role changed, removed), every entry holding a custom role by
    ``CacheKey.role`` (the role was edited or deleted), all of them by ``clear()``. What another process
    changed reaches this one through a cross-process invalidator, or after ``ttl`` seconds at the latest.
    """

    def __init__(self, ttl: float, size: int = 10_000) -> None:
        self.ttl = ttl
        self.size = size
        # By (organization, user), then by the schema the tables were read in: a service without a schema
        # of its own follows each connection's schema translation, so one organization id may be two
        # tenants in two schemas.
        self._entries: dict[tuple[str, str], dict[str | None, tuple[float, EffectivePermissions | None]]] = {}
        self._lock = threading.Lock()

    def get(
        self, organization_id: str, user_id: str, schema: str | None = None
    ) -> tuple[bool, EffectivePermissions | None]:
        """``(True, value)`` for a fresh entry, ``(False, None)`` for none."""
        entry = self._entries.get((organization_id, user_id), {}).get(schema)
        if entry is None or entry[0] < time.monotonic():
            return False, None
        return True, entry[1]

    def put(
        self,
        organization_id: str,
        user_id: str,
        value: EffectivePermissions | None,
        schema: str | None = None,
    ) -> None:
        with self._lock:
            if len(self._entries) >= self.size:
                # Drop the oldest entry (dicts keep insertion order).
                self._entries.pop(next(iter(self._entries)))
            self._entries.setdefault((organization_id, user_id), {})[schema] = (
                time.monotonic() + self.ttl,
                value,
            )

    def invalidate(self, keys: Collection[CacheKey]) -> None:
        with self._lock:
            for key in keys:
                if key.kind == MEMBER:
                    self._entries.pop((key.organization_id, key.id), None)
                elif key.kind == ROLE:
                    stale = [
                        cached
                        for cached, by_schema in self._entries.items()
                        if cached[0] == key.organization_id
                        and any(
                            value is not None and value.custom_role == key.id
                            for _, value in by_schema.values()
                        )
                    ]
                    for cached in stale:
                        del self._entries[cached]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
