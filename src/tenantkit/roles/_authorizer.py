"""The delegation hook for hosts whose decisions live in an external policy engine (OPA, Cedar, Cerbos, Oso).

tenantkit asks an :class:`Authorizer` every permission question its services ask ("may this actor do this
action in this organization, to this resource?"), handing it what tenantkit knows about the actor's
membership. The default, :class:`TableAuthorizer`, answers from tenantkit's own permission table.

An external engine decides *what an actor may do*; it never widens *what an actor may grant*: the escalation
rule (:meth:`Permissions.require_may_grant`) and the rank invariants (the last OWNER, no reaching above one's
rank) stay tenantkit's, judged on the membership's own rank and custom role.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from tenantkit._actor import Actor
from tenantkit.roles._policy import EffectivePermissions


@dataclass(frozen=True, slots=True)
class AccessRequest:
    """One permission question.

    Attributes:
        actor: Who acts (a user; the host is never asked about: it may do everything).
        action: The permission's name (``members:remove``, ``orders:sign``), checked against the registry.
        organization_id: The organization it happens in.
        resource: What it acts on, as ``"type:id"`` (``"member:alice"``, ``"api_key:…"``, ``"role:nurse"``),
            or ``None`` for the organization itself.
        membership: The actor's rank, custom role and permissions in the organization, or ``None`` when it
            is not a member.

    .. versionadded:: 0.2
    """

    actor: Actor
    action: str
    organization_id: str
    resource: str | None
    membership: EffectivePermissions | None


@runtime_checkable
class Authorizer(Protocol):
    """Decides whether an :class:`AccessRequest` is allowed; tenantkit raises ``PermissionDeniedError`` when
    it is not. Pass one as ``TenantKit(authorizer=...)``.

    .. versionadded:: 0.2
    """

    def authorize(self, request: AccessRequest) -> bool:
        """``True`` to allow, ``False`` to deny."""


class TableAuthorizer:
    """The default: a member may do what its rank and custom role hold in the permission table."""

    __slots__ = ()

    def authorize(self, request: AccessRequest) -> bool:
        """Allow when the membership's effective permissions include the action."""
        return request.membership is not None and request.action in request.membership.permissions

    def __repr__(self) -> str:
        return "TableAuthorizer()"
