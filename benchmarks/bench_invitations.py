"""What an invitation token costs: refusing a forged one (no query) and previewing a valid one.

Both are compared with the raw driver's primary-key lookup of the same row.

It fills ``invitations`` on a SQLite file with ``--invitations`` link invitations and times, in the same run:

* the floor: ``SELECT token FROM invitations WHERE organization_id = ? AND id = ?`` through the ``sqlite3``
  module, on one connection;
* ``InvitationService.preview`` on a forged token (one character changed): refused before any query;
* ``InvitationService.preview`` on a valid token: signature check, one indexed query, digest comparison.

It prints the median µs per call of each and their ratio to the floor. Run::

    .venv/bin/python benchmarks/bench_invitations.py
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

import tenantkit
from tenantkit import HOST, InvitationService, MembershipService, Role
from tenantkit.errors import InvalidInvitationTokenError


def per_call(function: Callable[[int], object], calls: int, rounds: int) -> float:
    """Median over ``rounds`` of the mean µs per call of ``function(i)`` for i in range(calls)."""
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for index in range(calls):
            function(index)
        samples.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invitations", type=int, default=2000)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "bench.sqlite3"
        engine = sa.create_engine(f"sqlite:///{path}")
        tenantkit.upgrade(engine)
        membership = MembershipService()
        service = InvitationService(membership=membership, secret_keys=["benchmark-signing-key-0123456789"])
        tokens: list[str] = []
        ids: list[tuple[str, str]] = []
        with Session(engine) as session:
            membership.add(session, "org_1", "owner", Role.OWNER, actor=HOST)
            for _ in range(args.invitations):
                created = service.create_link_invitation(session, "org_1", ["example.com"], actor=HOST)
                tokens.append(created.token.get_secret_value())
                ids.append(("org_1", created.invitation.id))
            session.commit()
        rng = random.Random(7)
        order = [rng.randrange(len(tokens)) for _ in range(args.calls)]

        def tamper(token: str) -> str:
            index = len(token) // 2
            return token[:index] + ("A" if token[index] != "A" else "B") + token[index + 1 :]

        forged = [tamper(tokens[i]) for i in order]

        raw = sqlite3.connect(path)
        cursor = raw.cursor()

        def floor(index: int) -> object:
            cursor.execute(
                "SELECT token FROM invitations WHERE organization_id = ? AND id = ?", ids[order[index]]
            )
            return cursor.fetchone()

        session = Session(engine)
        session.connection()

        def refuse(index: int) -> object:
            try:
                service.preview(session, forged[index])
            except InvalidInvitationTokenError:
                return None
            raise AssertionError("a forged token was accepted")

        def preview(index: int) -> object:
            return service.preview(session, tokens[order[index]])

        base = per_call(floor, args.calls, args.rounds)
        refused = per_call(refuse, args.calls, args.rounds)
        previewed = per_call(preview, args.calls, args.rounds)
        session.close()
        raw.close()
        engine.dispose()

    print(f"SQLite, {args.invitations} invitations, {args.calls} calls x {args.rounds} rounds")
    print("median µs per call")
    print(f"  raw sqlite3 primary-key lookup (floor)  {base:8.1f}")
    print(f"  preview, forged token (no query)        {refused:8.1f}   {refused / base:5.1f}x floor")
    print(f"  preview, valid token (1 query)          {previewed:8.1f}   {previewed / base:5.1f}x floor")


if __name__ == "__main__":
    main()
