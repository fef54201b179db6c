"""Clerk organization memberships kept in step with tenantkit: verify the Svix delivery, apply the event.

Clerk delivers its webhooks through Svix, which signs them as Standard Webhooks do (the headers are named
``svix-id``, ``svix-timestamp`` and ``svix-signature``). The receiver:

1. verifies the signature over the raw body with the reference verifier, ``standardwebhooks`` (the one
   tenantkit's own webhooks are proven against), after renaming the Svix headers to ``webhook-*``;
2. turns the body into a :class:`~tenantkit.sso.ProviderMembershipEvent` (``from_clerk``, with the ``svix-id``
   as the event id) and applies it with the connection's :class:`~tenantkit.sso.MembershipSync`: as the
   connection's identity-provider actor, audited, with the declared role mapping, idempotent on the event id,
   in order per member, never demoting an OWNER or removing the last one (a refusal is in the result);
3. commits, and answers 2xx (a refusal is answered 2xx too: redelivering it would be refused again).

Run it to replay the recorded payloads of ``examples/recorded/clerk_organization_membership.json`` (Clerk's
documented payload shape; ids of a test instance), signed here as Svix would sign them::

    pip install "tenantkit[domains]" standardwebhooks
    python examples/clerk_sync.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from standardwebhooks import Webhook

from tenantkit import HOST, Role, TenantKit
from tenantkit.sso import MembershipSync, ProviderMembershipEvent, SyncResult
from tenantkit.webhooks import generate_secret, sign

__all__ = ["CLERK_ORGANIZATION", "RECORDED", "receive", "replay", "set_up"]

RECORDED = Path(__file__).resolve().parent / "recorded" / "clerk_organization_membership.json"
CLERK_ORGANIZATION = "org_2m3PzZk0bVc9xN1qLr7tYe5wHsA"
ORGANIZATION = "st-marys"
CLERK_ROLES = {"org:admin": Role.ADMIN, "org:member": Role.MEMBER, "org:nurse": "nurse"}
"""The declared mapping: Clerk's basic roles to ranks, its custom ``org:nurse`` to tenantkit's ``nurse``."""


def receive(
    sync: MembershipSync, session: Any, secret: str, headers: dict[str, str], body: bytes
) -> SyncResult:
    """Verify one Svix delivery of a Clerk webhook and apply its membership event (in ``session``)."""
    standard = {name.replace("svix-", "webhook-"): value for name, value in headers.items()}
    payload = Webhook(secret).verify(body, standard)  # raises WebhookVerificationError: answer 400
    event = ProviderMembershipEvent.from_clerk(payload, event_id=standard["webhook-id"])
    return sync.apply(session, event)


def set_up(kit: TenantKit, engine: sa.Engine) -> MembershipSync:
    """The organization (its OWNER, a custom ``nurse`` role) and its Clerk connection (provider decides)."""
    tenantkit_tables(engine)
    with kit.transaction(engine) as session:
        kit.members.add(session, ORGANIZATION, "owner_olivia", Role.OWNER, actor=HOST)
        kit.roles.create(session, ORGANIZATION, "nurse", name="Nurse", rank=Role.MEMBER, actor=HOST)
        connection = kit.sso.create_connection(
            session,
            ORGANIZATION,
            provider="clerk",
            protocol="oidc",
            provider_connection_id=CLERK_ORGANIZATION,
            name="Clerk",
            role_authority="provider",
            actor=HOST,
        )
    return kit.sso.membership_sync(
        connection.id, roles=CLERK_ROLES, provider_organization_id=CLERK_ORGANIZATION
    )


def tenantkit_tables(engine: sa.Engine) -> None:
    import tenantkit

    tenantkit.upgrade(engine)


def replay(kit: TenantKit, engine: sa.Engine, sync: MembershipSync, *, now: int) -> list[SyncResult]:
    """Sign each recorded delivery as Svix would (a fresh secret), receive it, and receive the first again."""
    secret = generate_secret()
    deliveries = json.loads(RECORDED.read_text(encoding="utf-8"))
    results = []
    # The last is a late redelivery of the first: older than what was applied since, so it changes nothing.
    for delivery in [*deliveries, deliveries[0]]:
        body = json.dumps(delivery["body"]).encode()
        headers = {
            "svix-id": delivery["svix-id"],
            "svix-timestamp": str(now),
            "svix-signature": sign(secret, delivery["svix-id"], now, body),
        }
        with kit.transaction(engine) as session:
            results.append(receive(sync, session, secret, headers, body))
    return results


def main() -> int:
    import time

    kit = TenantKit()
    engine = sa.create_engine("sqlite://", poolclass=sa.pool.StaticPool)
    sync = set_up(kit, engine)
    for result in replay(kit, engine, sync, now=int(time.time())):
        role = None if result.member is None else result.member.custom_role or result.member.role.value
        print(
            f"{result.event_id}: {result.outcome}{f' ({result.reason})' if result.reason else ''} -> {role}"
        )
    with kit.transaction(engine) as session:
        for audited in kit.audit.list_events(session, ORGANIZATION, actor=HOST).items:
            print(f"audit: {audited.type} by {audited.actor.kind}:{audited.actor.id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
