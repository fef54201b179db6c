"""The tamper-evidence chain: each organization's audit rows linked by hash, and its verification.

**A link.** Row *n* of an organization stores ``chain_prev`` (the hash of row *n-1*; the anchor's for the
first row) and ``chain_hash = SHA-256(prev ‖ SHA-256(content))``, where *content* is the canonical JSON of
every column that states what happened (id, organization, position, time, type, version, actor, targets,
data, the request id) and, for each personal field, a **commitment** in place of its value.

**Personal fields and redaction.** The IP address, the user agent and an invited address (``data.email``)
are personal data a user may have erased. Each one present is committed to as ``SHA-256(nonce ‖ value)``
with a random 128-bit nonce kept in ``chain_seals``. Redaction clears the value and replaces its nonce by the
commitment itself, so the hash still verifies while neither the value nor the means to guess it remain (an
unsalted hash of an IPv4 address would be undone by trying all 2³² of them).

**Order and locking.** Positions are consecutive per organization, assigned under a lock of the
organization's row in ``audit_chain_heads`` (``SELECT … FOR UPDATE`` on PostgreSQL and MySQL/MariaDB;
SQLite serialises writers with its database write lock, taken first). Concurrent writers in one
organization therefore take turns: each reads the head the previous one committed. A unique index on
(organization, position) refuses a duplicate even if a lock were ever missing.

**Purge.** A purge removes only a prefix of a chain, oldest first, and records the last removed row's
position and hash as the chain's **anchor**, which the oldest remaining row must link to.

What the chain proves: a row changed, removed or inserted out of turn after it was written breaks a link.
What it cannot: someone able to rewrite the table *and* recompute every later hash and the head. Keep the
head hashes ``tenantkit audit verify --json`` prints somewhere the database's writers cannot reach.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from tenantkit._errors import AuditChainBrokenError
from tenantkit._tables import audit_chain_heads, audit_events
from tenantkit.audit._model import PERSONAL_COLUMNS, PERSONAL_DATA_KEYS, timestamp_text

__all__ = [
    "GENESIS",
    "PERSONAL_FIELDS",
    "BrokenLink",
    "ChainHead",
    "ChainReport",
    "link_hash",
    "lock_head",
    "move_head",
    "personal_values",
    "redacted_seals",
    "seal",
    "verify_chains",
]

GENESIS = "0" * 64
"""The hash the first row of every chain links to."""

PERSONAL_FIELDS: tuple[str, ...] = (*PERSONAL_COLUMNS, *(f"data.{key}" for key in PERSONAL_DATA_KEYS))
"""The personal fields, as ``chain_seals`` names them."""

_ABSENT = hashlib.sha256(b"tenantkit.audit.absent").hexdigest()
_BATCH = 1000


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _commitment(nonce: str, value: Any) -> str:
    return hashlib.sha256(b"tenantkit.audit.field\x00" + bytes.fromhex(nonce) + _canonical(value)).hexdigest()


def personal_values(
    ip_address: str | None, user_agent: str | None, data: Mapping[str, Any]
) -> dict[str, Any]:
    """The personal fields of a row by their seal names; ``None`` for each one absent."""
    values: dict[str, Any] = {"ip_address": ip_address, "user_agent": user_agent}
    for key in PERSONAL_DATA_KEYS:
        values[f"data.{key}"] = data.get(key)
    return values


def seal(values: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """Fresh seals for a new row: a random nonce for each personal field that holds a value."""
    return {name: {"nonce": secrets.token_hex(16)} for name, value in values.items() if value is not None}


def redacted_seals(
    values: Mapping[str, Any], seals: Mapping[str, Mapping[str, str]], fields: tuple[str, ...]
) -> dict[str, dict[str, str]]:
    """The seals after ``fields`` are cleared: each sealed one's nonce replaced by its commitment."""
    updated = {name: dict(entry) for name, entry in seals.items()}
    for name in fields:
        entry = updated.get(name)
        if entry is not None and "nonce" in entry and values.get(name) is not None:
            updated[name] = {"digest": _commitment(entry["nonce"], values[name])}
    return updated


class _Broken(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _commitments(values: Mapping[str, Any], seals: Mapping[str, Any]) -> dict[str, str]:
    found = {}
    for name in PERSONAL_FIELDS:
        value, entry = values.get(name), seals.get(name)
        if not isinstance(entry, Mapping):
            if entry is not None or value is not None:
                raise _Broken(f"{name} holds a value it was not written with")
            found[name] = _ABSENT
        elif isinstance(entry.get("nonce"), str) and value is not None:
            found[name] = _commitment(entry["nonce"], value)
        elif isinstance(entry.get("digest"), str) and value is None:
            found[name] = entry["digest"]
        else:
            raise _Broken(f"{name} does not match its seal")
    return found


def _content_digest(fields: Mapping[str, Any], seals: Mapping[str, Any]) -> bytes:
    data = fields["data"]
    document = {
        "v": 1,
        "id": fields["id"],
        "organization_id": fields["organization_id"],
        "seq": fields["chain_seq"],
        "occurred_at": timestamp_text(fields["occurred_at"]),
        "type": fields["event_type"],
        "version": fields["event_version"],
        "actor": [fields["actor_kind"], fields["actor_id"]],
        "targets": fields["targets"],
        "data": {key: value for key, value in data.items() if key not in PERSONAL_DATA_KEYS},
        "request_id": fields["request_id"],
        "personal": _commitments(personal_values(fields["ip_address"], fields["user_agent"], data), seals),
    }
    return hashlib.sha256(_canonical(document)).digest()


def link_hash(previous: str, fields: Mapping[str, Any], seals: Mapping[str, Any]) -> str:
    """The hash of a row whose columns are ``fields``, linked to ``previous`` (the row before's hash).

    Raises:
        ValueError: The personal fields do not match ``seals`` (only a tampered row can get here).
    """
    try:
        digest = _content_digest(fields, seals)
    except _Broken as broken:
        raise ValueError(broken.reason) from None
    return hashlib.sha256(bytes.fromhex(previous) + digest).hexdigest()


# -- the head, locked per write ------------------------------------------------------------------------

_HEAD_FOR_UPDATE = (
    sa.select(audit_chain_heads.c.head_seq, audit_chain_heads.c.head_hash)
    .where(audit_chain_heads.c.organization_id == sa.bindparam("organization_id"))
    .with_for_update()
)
_TOUCH_HEAD = (
    audit_chain_heads.update()
    .where(audit_chain_heads.c.organization_id == sa.bindparam("b_organization_id"))
    .values(head_seq=audit_chain_heads.c.head_seq)
)
_NEW_HEAD = audit_chain_heads.insert()
_MOVE_HEAD = (
    audit_chain_heads.update()
    .where(audit_chain_heads.c.organization_id == sa.bindparam("b_organization_id"))
    .values(head_seq=sa.bindparam("b_seq"), head_hash=sa.bindparam("b_hash"))
)


def lock_head(
    session: Session, organization_id: str, execution_options: Mapping[str, Any]
) -> tuple[int, str]:
    """Lock the organization's chain head (creating it at the first chained row); return (position, hash).

    The lock is held until the caller's transaction ends: the next writer in the organization waits here.
    """
    connection = session.connection()
    parameters = {"organization_id": organization_id}
    if connection.dialect.name == "sqlite":
        # SQLite ignores FOR UPDATE: a write takes its one write lock now, so what is read next is current.
        connection.execute(
            _TOUCH_HEAD, {"b_organization_id": organization_id}, execution_options=execution_options
        )
    row = connection.execute(_HEAD_FOR_UPDATE, parameters, execution_options=execution_options).first()
    if row is None:
        try:
            # The savepoint is emitted when the session hands out its connection inside the block.
            with session.begin_nested():
                session.connection().execute(
                    _NEW_HEAD,
                    {
                        "organization_id": organization_id,
                        "head_seq": 0,
                        "head_hash": GENESIS,
                        "anchor_seq": 0,
                        "anchor_hash": GENESIS,
                        "anchored_at": None,
                    },
                    execution_options=execution_options,
                )
        except sa.exc.IntegrityError:
            pass  # a concurrent first writer created it; its row is locked and read below
        row = connection.execute(_HEAD_FOR_UPDATE, parameters, execution_options=execution_options).one()
    return int(row.head_seq), str(row.head_hash)


def move_head(
    session: Session, organization_id: str, sequence: int, hash_: str, execution_options: Mapping[str, Any]
) -> None:
    """Record row ``sequence`` with hash ``hash_`` as the organization's newest chained row."""
    session.connection().execute(
        _MOVE_HEAD,
        {"b_organization_id": organization_id, "b_seq": sequence, "b_hash": hash_},
        execution_options=execution_options,
    )


# -- verification ----------------------------------------------------------------------------------------


class BrokenLink(BaseModel):
    """The first place an organization's chain does not verify."""

    model_config: ClassVar[ConfigDict] = ConfigDict(frozen=True)

    organization_id: str
    sequence: int
    event_id: str | None
    reason: str


class ChainHead(BaseModel):
    """Where an organization's chain ends: keep these outside the database to detect a rewritten chain."""

    model_config: ClassVar[ConfigDict] = ConfigDict(frozen=True)

    organization_id: str
    sequence: int
    hash: str
    anchor_sequence: int


class ChainReport(BaseModel):
    """What :meth:`AuditService.verify` found.

    Attributes:
        organizations: How many organizations' chains were checked.
        rows: How many chained rows were checked.
        broken: The first broken link of each organization whose chain breaks; empty when all verify.
        heads: Each checked chain's end.
    """

    model_config: ClassVar[ConfigDict] = ConfigDict(frozen=True)

    organizations: int
    rows: int
    broken: list[BrokenLink]
    heads: list[ChainHead]

    @property
    def ok(self) -> bool:
        """Whether every chain verified."""
        return not self.broken

    def raise_if_broken(self) -> None:
        """Raise for the first broken link found.

        Raises:
            AuditChainBrokenError: A chain does not verify.
        """
        if self.broken:
            first = self.broken[0]
            raise AuditChainBrokenError(first.organization_id, first.sequence, first.event_id, first.reason)


def _rows(
    bind: Session | Connection, organization_id: str, execution_options: Mapping[str, Any]
) -> Iterator[Any]:
    """The organization's chained rows in chain order, fetched in bounded batches."""
    after: int | None = None
    while True:
        query = sa.select(audit_events).where(
            audit_events.c.organization_id == organization_id, audit_events.c.chain_seq.is_not(None)
        )
        if after is not None:
            query = query.where(audit_events.c.chain_seq > after)
        batch = bind.execute(
            query.order_by(audit_events.c.chain_seq).limit(_BATCH), execution_options=execution_options
        ).all()
        yield from batch
        if len(batch) < _BATCH:
            return
        after = batch[-1].chain_seq


def _check_row(row: Any, expected: int, previous: str) -> str | None:
    """What is wrong with ``row`` as position ``expected`` after a row hashed ``previous``, or ``None``."""
    if row.chain_seq != expected:
        if row.chain_seq < expected:
            return (
                f"position {row.chain_seq} comes after position {expected - 1} (a row older than the anchor)"
            )
        return f"position {expected} is missing (the next row is at {row.chain_seq})"
    if row.chain_prev != previous:
        return "the row does not link to the row before it"
    try:
        recomputed = link_hash(previous, row._mapping, row.chain_seals or {})
    except ValueError as error:
        return f"a personal field was changed: {error}"
    if recomputed != row.chain_hash:
        return "the row's content was changed after it was written"
    return None


def _verify_one(
    bind: Session | Connection, head: Any, execution_options: Mapping[str, Any]
) -> tuple[int, BrokenLink | None]:
    organization_id = head.organization_id
    expected, previous, checked = int(head.anchor_seq) + 1, str(head.anchor_hash), 0
    for row in _rows(bind, organization_id, execution_options):
        reason = _check_row(row, expected, previous)
        if reason is not None:
            event_id = row.id if row.chain_seq == expected else None
            return checked, BrokenLink(
                organization_id=organization_id, sequence=expected, event_id=event_id, reason=reason
            )
        checked += 1
        expected, previous = expected + 1, str(row.chain_hash)
    if expected - 1 != head.head_seq or previous != head.head_hash:
        return checked, BrokenLink(
            organization_id=organization_id,
            sequence=expected,
            event_id=None,
            reason=f"the chain ends at position {expected - 1} but its head says {head.head_seq}",
        )
    return checked, None


def verify_chains(
    bind: Session | Connection, organization_id: str | None, execution_options: Mapping[str, Any]
) -> ChainReport:
    """Check the chain of ``organization_id`` (every one when ``None``); see the module docstring."""
    query = sa.select(audit_chain_heads).order_by(audit_chain_heads.c.organization_id)
    orphans = (
        sa.select(audit_events.c.organization_id)
        .distinct()
        .where(
            audit_events.c.chain_seq.is_not(None),
            ~sa.exists().where(audit_chain_heads.c.organization_id == audit_events.c.organization_id),
        )
    )
    if organization_id is not None:
        query = query.where(audit_chain_heads.c.organization_id == organization_id)
        orphans = orphans.where(audit_events.c.organization_id == organization_id)
    heads = bind.execute(query, execution_options=execution_options).all()
    broken: list[BrokenLink] = [
        BrokenLink(organization_id=orphan, sequence=1, event_id=None, reason="chained rows but no chain head")
        for orphan in bind.execute(orphans, execution_options=execution_options).scalars()
    ]
    rows = 0
    for head in heads:
        checked, link = _verify_one(bind, head, execution_options)
        rows += checked
        if link is not None:
            broken.append(link)
    return ChainReport(
        organizations=len(heads),
        rows=rows,
        broken=sorted(broken, key=lambda link: link.organization_id),
        heads=[
            ChainHead(
                organization_id=head.organization_id,
                sequence=int(head.head_seq),
                hash=str(head.head_hash),
                anchor_sequence=int(head.anchor_seq),
            )
            for head in heads
        ],
    )
