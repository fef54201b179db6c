"""The audit log: one row per recorded event, written in the change's own transaction, read and kept.

:class:`AuditService` subscribes to its kit's event dispatcher *at record time* (``on_record``): every event a
service records becomes one ``audit_events`` row through the service's own ``Session``, so the row commits or
rolls back with the change (a rolled-back savepoint takes its rows along). An acceptance records two events,
so two rows, both naming the accepting user. Listening after commit would lose a change to a crash between
commit and delivery; writing inside the transaction cannot.

The request context (:func:`~tenantkit.audit.audit_context`) in force when the event is recorded fills the
IP address, user agent and request id. With ``chain`` on, each row is also linked into its organization's
hash chain (:mod:`tenantkit.audit._chain`), under a lock of the organization's chain head.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TextIO

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import FunctionElement

from tenantkit._actor import HOST, Actor, ActorKind
from tenantkit._addresses import normalize_email
from tenantkit._clock import Clock, as_utc, system_clock
from tenantkit._context import RequestContext, current_context
from tenantkit._db import begin_write, fetch_page, rowcount, typed_concurrency_errors
from tenantkit._errors import InvalidInputError
from tenantkit._events import EVENT_TYPES, Event, EventDispatcher, PersonalDataRedacted
from tenantkit._missing_schema import translate_missing_schema
from tenantkit._pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Keyset, Page
from tenantkit._tables import audit_chain_heads, audit_events
from tenantkit._validation import check_identifier
from tenantkit.audit._chain import (
    ChainReport,
    link_hash,
    lock_head,
    move_head,
    personal_values,
    redacted_seals,
    seal,
    verify_chains,
)
from tenantkit.audit._export import ExportFormat, write_records
from tenantkit.audit._model import (
    PERSONAL_COLUMNS,
    AuditEvent,
    AuditTarget,
    event_from_row,
    json_record,
    targets_of,
    time_ordered_id,
)
from tenantkit.members._service import MembershipService
from tenantkit.roles._policy import Action

__all__ = ["AuditService", "PurgeResult", "RedactionResult"]

_INSERT = audit_events.insert()
_NEWEST_FIRST = Keyset("audit_events", audit_events.c.occurred_at, audit_events.c.id, descending=True)
_OLDEST_FIRST = Keyset("audit_export", audit_events.c.occurred_at, audit_events.c.id)
DEFAULT_PURGE_BATCH = 1000
_REDACT_BATCH = 500


# -- "this row names this target": a JSON containment test, spelled per dialect -------------------------


class _has_target(FunctionElement[bool]):
    """Whether the JSON list ``targets`` holds ``{"type": kind, "id": identifier}``."""

    type = sa.Boolean()
    inherit_cache = True
    name = "has_target"


@compiles(_has_target)
def _has_target_sqlite(element: _has_target, compiler: Any, **kw: Any) -> str:
    column, kind, identifier = (compiler.process(clause, **kw) for clause in element.clauses)
    # The three parts are the compiler's own rendering of a column and two bound parameters.
    return (
        f"EXISTS (SELECT 1 FROM json_each({column}) AS target "  # noqa: S608  no value is inlined (above)
        f"WHERE json_extract(target.value, '$.type') = {kind} AND json_extract(target.value, '$.id') = "
        f"{identifier})"
    )


@compiles(_has_target, "postgresql")
def _has_target_postgresql(element: _has_target, compiler: Any, **kw: Any) -> str:
    column, kind, identifier = (compiler.process(clause, **kw) for clause in element.clauses)
    return (
        f"{column} @> jsonb_build_array(jsonb_build_object('type', CAST({kind} AS TEXT), "
        f"'id', CAST({identifier} AS TEXT)))"
    )


@compiles(_has_target, "mysql")
@compiles(_has_target, "mariadb")
def _has_target_mysql(element: _has_target, compiler: Any, **kw: Any) -> str:
    column, kind, identifier = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"JSON_CONTAINS({column}, JSON_OBJECT('type', {kind}, 'id', {identifier}))"


def _target_clause(target: AuditTarget | tuple[str, str]) -> sa.ColumnElement[bool]:
    kind, identifier = (target.type, target.id) if isinstance(target, AuditTarget) else target
    check_identifier(kind, "target")
    check_identifier(identifier, "target")
    return _has_target(
        audit_events.c.targets,
        sa.bindparam(None, kind, type_=sa.String()),
        sa.bindparam(None, identifier, type_=sa.String()),
    )


def _event_type_names(event_types: Iterable[str | type[Event]]) -> list[str]:
    if isinstance(event_types, str):
        raise InvalidInputError("event_types", "a list of event types, not a string")
    names = []
    for event_type in event_types:
        name = event_type if isinstance(event_type, str) else getattr(event_type, "event_type", None)
        if not isinstance(name, str) or name not in EVENT_TYPES:
            known = ", ".join(sorted(EVENT_TYPES))
            raise InvalidInputError(
                "event_types", f"unknown event type {event_type!r}; expected one of {known}"
            )
        names.append(name)
    if not names:
        raise InvalidInputError("event_types", "name at least one event type, or leave it out")
    return names


def _actor_clause(performed_by: Actor | str) -> sa.ColumnElement[bool]:
    acting = performed_by if isinstance(performed_by, Actor) else Actor.user(performed_by)
    kind = audit_events.c.actor_kind == acting.kind.value
    if acting.id is None:
        return sa.and_(kind, audit_events.c.actor_id.is_(None))
    return sa.and_(kind, audit_events.c.actor_id == acting.id)


def _window(query: sa.Select[Any], since: datetime | None, until: datetime | None) -> sa.Select[Any]:
    if since is not None:
        query = query.where(audit_events.c.occurred_at >= as_utc(since, "since"))
    if until is not None:
        query = query.where(audit_events.c.occurred_at < as_utc(until, "until"))
    if since is not None and until is not None and since >= until:
        raise InvalidInputError("until", "must be later than since")
    return query


@dataclass(frozen=True)
class PurgeResult:
    """What :meth:`AuditService.purge` removed (or, in a dry run, would remove).

    Attributes:
        cutoff: Rows that occurred before this instant were due.
        rows: How many rows were (or would be) deleted.
        batches: How many transactions the deletion took (0 in a dry run).
        dry_run: Whether nothing was deleted.
    """

    cutoff: datetime
    rows: int
    batches: int
    dry_run: bool


@dataclass(frozen=True)
class RedactionResult:
    """What :meth:`AuditService.redact` cleared.

    Attributes:
        rows: How many rows lost personal fields.
        organizations: The organizations those rows belong to (each got a ``PersonalDataRedacted`` row).
    """

    rows: int
    organizations: tuple[str, ...]


# ``write`` runs inside a service call, which translates for it.
@translate_missing_schema(done_inline=("write",))
class AuditService:
    """The audit log of a kit: written as events are recorded, read by organization, exported and purged.

    A :class:`~tenantkit.TenantKit` builds one (``kit.audit``) on its dispatcher; ``AuditSettings`` turns the
    writing off or the hash chain on. Services built by hand, outside a kit, are audited by building one
    on their dispatcher: ``AuditService(membership=members, events=members.events)``.

    Args:
        membership: The membership service whose permission table (``audit:read``) and schema it uses.
        clock: Where the current time comes from (purge cut-offs, redaction times).
        events: The dispatcher to subscribe to (the membership service's by default).
        enabled: Write a row per recorded event. Off, nothing is written but the log can still be read.
        chain: Link each organization's rows into a hash chain (see :meth:`verify`).
    """

    def __init__(
        self,
        *,
        membership: MembershipService,
        clock: Clock = system_clock,
        events: EventDispatcher | None = None,
        enabled: bool = True,
        chain: bool = False,
    ) -> None:
        self.membership = membership
        self.clock = clock
        self.events: EventDispatcher = events or membership.events
        self.enabled = enabled
        self.chain = chain
        self._unsubscribe: Callable[[], None] | None = None
        if enabled:
            self._unsubscribe = self.events.on_record(self.write)

    @property
    def _options(self) -> Mapping[str, Any]:
        return self.membership.execution_options

    def close(self) -> None:
        """Stop writing rows (unsubscribe from the dispatcher); reading still works."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    # -- writing ---------------------------------------------------------------------------------------

    def write(self, session: Session, event: Event, context: RequestContext | None = None) -> None:
        """Write the audit row of ``event`` in ``session``'s transaction (the dispatcher calls this).

        Args:
            session: The session the change runs in.
            event: The recorded event.
            context: The request context; the one :func:`~tenantkit.audit.audit_context` set by default.

        Raises:
            ConcurrentUpdateError: The chain head's lock was lost to a deadlock; retry the transaction.
        """
        if context is None:
            context = current_context()
        payload = event.to_payload()
        values: dict[str, Any] = {
            "id": time_ordered_id(),
            "organization_id": event.organization_id,
            "occurred_at": event.occurred_at,
            "event_type": payload["type"],
            "event_version": payload["version"],
            "actor_kind": payload["actor"]["kind"],
            "actor_id": payload["actor"]["id"],
            "targets": targets_of(event),
            "data": payload["data"],
            "ip_address": context.ip_address if context else None,
            "user_agent": context.user_agent if context else None,
            "request_id": context.request_id if context else None,
            "redacted_at": None,
            "chain_seq": None,
            "chain_prev": None,
            "chain_hash": None,
            "chain_seals": None,
        }
        with typed_concurrency_errors(event.organization_id):
            if not self.chain:
                session.connection().execute(_INSERT, values, execution_options=self._options)
                return
            sequence, previous = lock_head(session, event.organization_id, self._options)
            seals = seal(personal_values(values["ip_address"], values["user_agent"], values["data"]))
            values.update(chain_seq=sequence + 1, chain_prev=previous, chain_seals=seals)
            values["chain_hash"] = link_hash(previous, values, seals)
            session.connection().execute(_INSERT, values, execution_options=self._options)
            move_head(session, event.organization_id, sequence + 1, values["chain_hash"], self._options)

    # -- reading ---------------------------------------------------------------------------------------

    def list_events(
        self,
        session: Session | Connection,
        organization_id: str,
        *,
        actor: Actor | str,
        performed_by: Actor | str | None = None,
        event_types: Iterable[str | type[Event]] | None = None,
        target: AuditTarget | tuple[str, str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = DEFAULT_PAGE_SIZE,
        cursor: str | None = None,
    ) -> Page[AuditEvent]:
        """One page of the organization's audit log, newest first.

        ``actor`` is who asks, as in every service call; ``performed_by`` filters on who acted.

        Args:
            session: The caller's session (or connection).
            organization_id: The organization.
            actor: Who asks: needs ``audit:read`` (OWNER and ADMIN have it), or :data:`tenantkit.HOST`.
            performed_by: Only what this actor did: an :class:`Actor` (``HOST``, ``Actor.api_key(...)``) or
                a user id.
            event_types: Only these types (dotted names or event classes).
            target: Only changes to this target, as an :class:`AuditTarget` or ``(type, id)``:
                ``("member", "bob")``, ``("api_key", key_id)``, ``("invitation", invitation_id)``.
            since: Only what occurred at or after this instant (aware).
            until: Only what occurred before this instant (aware).
            limit: Page size, 1 to 500.
            cursor: ``next_cursor`` of the previous page.

        Returns:
            The page; ``next_cursor`` is ``None`` on the last one.

        Raises:
            InvalidInputError: A malformed id, filter, limit or cursor, or a naive datetime.
            PermissionDeniedError: The actor may not read the organization's audit log.
        """
        check_identifier(organization_id, "organization_id")
        seek = _NEWEST_FIRST.seek(limit=limit, cursor=cursor)
        query = _window(
            sa.select(audit_events).where(audit_events.c.organization_id == organization_id), since, until
        )
        if performed_by is not None:
            query = query.where(_actor_clause(performed_by))
        if event_types is not None:
            query = query.where(audit_events.c.event_type.in_(_event_type_names(event_types)))
        if target is not None:
            query = query.where(_target_clause(target))
        self.membership.authorize(session, organization_id, actor, Action.READ_AUDIT)
        return fetch_page(session, query, seek, event_from_row, execution_options=self._options)

    def _export_query(
        self,
        organization_id: str | None,
        since: datetime | None,
        until: datetime | None,
        event_types: Iterable[str | type[Event]] | None = None,
    ) -> sa.Select[Any]:
        query = _window(sa.select(audit_events), since, until)
        if organization_id is not None:
            check_identifier(organization_id, "organization_id")
            query = query.where(audit_events.c.organization_id == organization_id)
        if event_types is not None:
            query = query.where(audit_events.c.event_type.in_(_event_type_names(event_types)))
        return query

    def iter_rows(
        self,
        session: Session | Connection,
        *,
        organization_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        event_types: Iterable[str | type[Event]] | None = None,
    ) -> Iterator[Any]:
        """Every row (of one organization, or of all), oldest first, fetched in pages of 500.

        Memory stays bounded however many rows there are: each page is read after the one before it by
        its sort key, as the listings page. Rows written while the iteration runs may or may not appear.
        ``event_types`` keeps only those types (dotted names or event classes), as in :meth:`list_events`.
        """
        query = self._export_query(organization_id, since, until, event_types)
        cursor: str | None = None
        while True:
            seek = _OLDEST_FIRST.seek(limit=MAX_PAGE_SIZE, cursor=cursor)
            page_query = query.where(seek.after) if seek.after is not None else query
            rows = session.execute(
                page_query.order_by(*_OLDEST_FIRST.order_by()).limit(MAX_PAGE_SIZE),
                execution_options=self._options,
            ).all()
            yield from rows
            if len(rows) < MAX_PAGE_SIZE:
                return
            cursor = _OLDEST_FIRST.cursor_after(rows[-1])

    def iter_events(
        self,
        session: Session | Connection,
        *,
        organization_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        event_types: Iterable[str | type[Event]] | None = None,
    ) -> Iterator[AuditEvent]:
        """Every :class:`AuditEvent` (of one organization, or of all), oldest first, in bounded memory.

        The host's view of the whole log (for exports and jobs): no actor is checked.

        Raises:
            InvalidInputError: A malformed id, an unknown event type or a naive datetime.
        """
        rows = self.iter_rows(
            session, organization_id=organization_id, since=since, until=until, event_types=event_types
        )
        for row in rows:
            yield event_from_row(row)

    def iter_records(
        self,
        session: Session | Connection,
        *,
        organization_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        event_types: Iterable[str | type[Event]] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Like :meth:`iter_events`, as JSON-ready dicts (``AuditEvent.model_dump(mode="json")``), faster."""
        rows = self.iter_rows(
            session, organization_id=organization_id, since=since, until=until, event_types=event_types
        )
        for row in rows:
            yield json_record(row)

    def export(
        self,
        session: Session | Connection,
        out: TextIO,
        *,
        export_format: ExportFormat = "jsonl",
        organization_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        event_types: Iterable[str | type[Event]] | None = None,
        actor: Actor | str | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Write the log (of one organization, or of all) to ``out``, oldest first, in constant memory.

        Args:
            session: A session or connection to read with.
            out: A text stream; open a file with ``newline=""`` for CSV.
            export_format: ``"jsonl"`` (one :class:`AuditEvent` per line) or ``"csv"``.
            organization_id: Only this organization (every one by default).
            since: Only what occurred at or after this instant.
            until: Only what occurred before this instant.
            event_types: Only these types (dotted names or event classes), as in :meth:`list_events`.
            actor: Who asks, checked like :meth:`list_events` (``audit:read`` in ``organization_id``, which
                it then requires). Left out, nothing is checked: the operator's export (the CLI's).
            progress: Called with each thousand rows written (and the rest at the end).

        Returns:
            How many rows were written.

        Raises:
            InvalidInputError: An unknown format or event type, a malformed id, a naive datetime, or an
                ``actor`` without ``organization_id``.
            PermissionDeniedError: ``actor`` may not read the organization's audit log (nothing is written).
        """
        # The rows are read lazily: the filters are checked now, before anything is written to ``out``
        # (and ``event_types`` is read once, should it be an iterator).
        names = None if event_types is None else _event_type_names(event_types)
        self._export_query(organization_id, since, until, names)
        if actor is not None:
            if organization_id is None:
                raise InvalidInputError("organization_id", "is required when an actor asks")
            self.membership.authorize(session, organization_id, actor, Action.READ_AUDIT)
        records = self.iter_records(
            session, organization_id=organization_id, since=since, until=until, event_types=names
        )
        return write_records(records, out, export_format, progress=progress)

    def count(
        self,
        session: Session | Connection,
        *,
        organization_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        event_types: Iterable[str | type[Event]] | None = None,
    ) -> int:
        """How many rows :meth:`iter_events` would yield now (the host's view; no actor is checked)."""
        query = self._export_query(organization_id, since, until, event_types)
        query = query.with_only_columns(sa.func.count())
        return int(session.execute(query, execution_options=self._options).scalar_one())

    def verify(self, session: Session | Connection, *, organization_id: str | None = None) -> ChainReport:
        """Check the hash chain of one organization (or of every one) and report the first broken link.

        Reads each chain in bounded batches, in order. Rows written while the chain was off are not part of
        any chain and are not checked.

        Returns:
            The report: ``ok``, the broken links (first per organization) and each chain's head.

        Raises:
            InvalidInputError: A malformed organization id.
        """
        if organization_id is not None:
            check_identifier(organization_id, "organization_id")
        return verify_chains(session, organization_id, self._options)

    # -- keeping ---------------------------------------------------------------------------------------

    def redact(
        self,
        session: Session,
        *,
        user_id: str | None = None,
        email: str | None = None,
        organization_id: str | None = None,
    ) -> RedactionResult:
        """Erase a person's personal fields from the log on request; the rows stay, the erasure is audited.

        With ``user_id``: the IP addresses and user agents of every row that user acted in. With ``email``:
        the invited address in invitation rows. Each organization whose rows changed gets a
        ``PersonalDataRedacted`` row naming what went (never the address itself), acted by the host. A
        chained row keeps verifying: its seal keeps the field's commitment (see ``_chain``).

        Args:
            session: The caller's session; the caller commits.
            user_id: Whose request context to erase.
            email: Which invited address to erase.
            organization_id: Only in this organization (every one by default).

        Returns:
            How many rows changed, and in which organizations.

        Raises:
            InvalidInputError: Neither or both of ``user_id`` and ``email``, or a malformed one.
        """
        if (user_id is None) == (email is None):
            raise InvalidInputError("user_id", "give either user_id or email")
        if organization_id is not None:
            check_identifier(organization_id, "organization_id")
        if user_id is not None:
            check_identifier(user_id, "user_id")
            subject, fields = "user", PERSONAL_COLUMNS
            match = sa.and_(
                audit_events.c.actor_kind == ActorKind.USER.value,
                audit_events.c.actor_id == user_id,
                sa.or_(audit_events.c.ip_address.is_not(None), audit_events.c.user_agent.is_not(None)),
            )
        else:
            address = normalize_email(email)
            subject, fields = "email", ("data.email",)
            match = audit_events.c.data["email"].as_string() == address
        if organization_id is not None:
            match = sa.and_(audit_events.c.organization_id == organization_id, match)
        now = self.clock()
        begin_write(session, audit_events, self._options)
        counts = self._redact_rows(session, match, fields, now)
        for organization, rows in sorted(counts.items()):
            self.events.record(
                session,
                PersonalDataRedacted(
                    organization_id=organization,
                    actor=HOST,
                    occurred_at=now,
                    subject=subject,
                    subject_user_id=user_id,
                    fields=fields,
                    rows=rows,
                ),
            )
        return RedactionResult(rows=sum(counts.values()), organizations=tuple(sorted(counts)))

    def _redact_rows(
        self, session: Session, match: sa.ColumnElement[bool], fields: tuple[str, ...], now: datetime
    ) -> dict[str, int]:
        counts: dict[str, int] = {}
        connection = session.connection()
        after = ""
        while True:
            rows = connection.execute(
                sa.select(audit_events)
                .where(match, audit_events.c.id > after)
                .order_by(audit_events.c.id)
                .limit(_REDACT_BATCH),
                execution_options=self._options,
            ).all()
            if not rows:
                return counts
            connection.execute(
                _REDACT, [_redaction(row, fields, now) for row in rows], execution_options=self._options
            )
            for row in rows:
                counts[row.organization_id] = counts.get(row.organization_id, 0) + 1
            after = rows[-1].id

    def purge(
        self,
        engine: sa.Engine,
        *,
        older_than: timedelta,
        organization_id: str | None = None,
        batch_size: int = DEFAULT_PURGE_BATCH,
        dry_run: bool = False,
    ) -> PurgeResult:
        """Delete the rows older than ``older_than``, in batches of at most ``batch_size``, each committed.

        Each batch is a short transaction of its own, so no lock is held for long and writers go on. A
        chain is cut only from its oldest end: its rows are removed in order up to the first row that is
        not yet due, and the last removed row becomes the chain's anchor, so the rest still verifies.

        Args:
            engine: The database; each batch opens and commits its own transaction.
            older_than: Keep what occurred within this long before now.
            organization_id: Only this organization's rows (every organization's by default).
            batch_size: Rows per transaction, 1 to 100,000.
            dry_run: Count what would go and delete nothing.

        Returns:
            The cut-off, the number of rows removed (or due) and the transactions it took.

        Raises:
            InvalidInputError: ``older_than`` is not a positive timedelta, or a bad id or batch size.
        """
        if not isinstance(older_than, timedelta) or older_than <= timedelta(0):
            raise InvalidInputError("older_than", "must be a positive timedelta")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= 100_000:
            raise InvalidInputError("batch_size", "must be a whole number from 1 to 100000")
        if organization_id is not None:
            check_identifier(organization_id, "organization_id")
        now = self.clock()
        cutoff = now - older_than
        purge = _Purge(engine, self._options, now, cutoff, organization_id, batch_size)
        if dry_run:
            return PurgeResult(cutoff=cutoff, rows=purge.count(), batches=0, dry_run=True)
        rows, batches = purge.run()
        return PurgeResult(cutoff=cutoff, rows=rows, batches=batches, dry_run=False)

    def __repr__(self) -> str:
        return f"AuditService(enabled={self.enabled}, chain={self.chain})"


_REDACT = (
    audit_events.update()
    .where(audit_events.c.id == sa.bindparam("b_id"))
    .values(
        ip_address=sa.bindparam("b_ip"),
        user_agent=sa.bindparam("b_user_agent"),
        data=sa.bindparam("b_data", type_=audit_events.c.data.type),
        chain_seals=sa.bindparam("b_seals", type_=audit_events.c.chain_seals.type),
        redacted_at=sa.bindparam("b_now", type_=audit_events.c.redacted_at.type),
    )
)


def _redaction(row: Any, fields: tuple[str, ...], now: datetime) -> dict[str, Any]:
    """The new values of ``row`` once ``fields`` are cleared (its seals updated when it is chained)."""
    data = dict(row.data)
    values = personal_values(row.ip_address, row.user_agent, data)
    seals = row.chain_seals
    if seals is not None:
        seals = redacted_seals(values, seals, fields)
    cleared = {name: (None if name in fields else value) for name, value in values.items()}
    for name, value in cleared.items():
        if name.startswith("data.") and name.removeprefix("data.") in data:
            data[name.removeprefix("data.")] = value
    return {
        "b_id": row.id,
        "b_ip": cleared["ip_address"],
        "b_user_agent": cleared["user_agent"],
        "b_data": data,
        "b_seals": seals,
        "b_now": now,
    }


class _Purge:
    """One purge: unchained rows by time, then each chain's due prefix, a batch per transaction."""

    def __init__(
        self,
        engine: sa.Engine,
        options: Mapping[str, Any],
        now: datetime,
        cutoff: datetime,
        organization_id: str | None,
        batch_size: int,
    ) -> None:
        self.engine = engine
        self.options = options
        self.now = now
        self.cutoff = cutoff
        self.organization_id = organization_id
        self.batch_size = batch_size

    def _scope(self) -> list[sa.ColumnElement[bool]]:
        if self.organization_id is None:
            return []
        return [audit_events.c.organization_id == self.organization_id]

    def _unchained(self) -> sa.Select[Any]:
        return sa.select(audit_events.c.id).where(
            audit_events.c.occurred_at < self.cutoff, audit_events.c.chain_seq.is_(None), *self._scope()
        )

    def _heads(self, connection: Connection) -> list[str]:
        query = sa.select(audit_chain_heads.c.organization_id).order_by(audit_chain_heads.c.organization_id)
        if self.organization_id is not None:
            query = query.where(audit_chain_heads.c.organization_id == self.organization_id)
        return list(connection.execute(query, execution_options=self.options).scalars())

    def _due_through(self, connection: Connection, organization_id: str, head: Any) -> int:
        """The last position of the chain's due prefix: before its first row that is not yet due."""
        first_kept = connection.execute(
            sa.select(sa.func.min(audit_events.c.chain_seq)).where(
                audit_events.c.organization_id == organization_id,
                audit_events.c.chain_seq > head.anchor_seq,
                audit_events.c.occurred_at >= self.cutoff,
            ),
            execution_options=self.options,
        ).scalar_one()
        return int(head.head_seq) if first_kept is None else int(first_kept) - 1

    def count(self) -> int:
        with self.engine.connect() as connection:
            total = int(
                connection.execute(
                    self._unchained().with_only_columns(sa.func.count()), execution_options=self.options
                ).scalar_one()
            )
            for organization_id in self._heads(connection):
                head = self._head(connection, organization_id, lock=False)
                due = self._due_through(connection, organization_id, head)
                total += int(
                    connection.execute(
                        sa.select(sa.func.count()).where(
                            audit_events.c.organization_id == organization_id,
                            audit_events.c.chain_seq > head.anchor_seq,
                            audit_events.c.chain_seq <= due,
                        ),
                        execution_options=self.options,
                    ).scalar_one()
                )
        return total

    def _head(self, connection: Connection, organization_id: str, *, lock: bool) -> Any:
        query = sa.select(audit_chain_heads).where(audit_chain_heads.c.organization_id == organization_id)
        return connection.execute(
            query.with_for_update() if lock else query, execution_options=self.options
        ).one()

    def run(self) -> tuple[int, int]:
        rows = batches = 0
        while True:
            with self.engine.begin() as connection:
                ids = list(
                    connection.execute(
                        self._unchained()
                        .order_by(audit_events.c.occurred_at, audit_events.c.id)
                        .limit(self.batch_size),
                        execution_options=self.options,
                    ).scalars()
                )
                if not ids:
                    break
                connection.execute(
                    audit_events.delete().where(audit_events.c.id.in_(ids)), execution_options=self.options
                )
            rows, batches = rows + len(ids), batches + 1
        with self.engine.connect() as connection:
            organizations = self._heads(connection)
        for organization_id in organizations:
            while True:
                removed = self._cut_chain(organization_id)
                if not removed:
                    break
                rows, batches = rows + removed, batches + 1
        return rows, batches

    def _cut_chain(self, organization_id: str) -> int:
        """Remove one batch of the chain's due prefix and move its anchor; return how many rows went."""
        with self.engine.begin() as connection:
            if connection.dialect.name == "sqlite":
                begin_write(connection, audit_events, self.options)
            head = self._head(connection, organization_id, lock=True)
            through = min(
                int(head.anchor_seq) + self.batch_size, self._due_through(connection, organization_id, head)
            )
            if through <= head.anchor_seq:
                return 0
            anchor = connection.execute(
                sa.select(audit_events.c.chain_seq, audit_events.c.chain_hash)
                .where(
                    audit_events.c.organization_id == organization_id,
                    audit_events.c.chain_seq <= through,
                    audit_events.c.chain_seq > head.anchor_seq,
                )
                .order_by(audit_events.c.chain_seq.desc())
                .limit(1),
                execution_options=self.options,
            ).first()
            if anchor is None:
                return 0
            removed = rowcount(
                connection.execute(
                    audit_events.delete().where(
                        audit_events.c.organization_id == organization_id,
                        audit_events.c.chain_seq > head.anchor_seq,
                        audit_events.c.chain_seq <= anchor.chain_seq,
                    ),
                    execution_options=self.options,
                )
            )
            connection.execute(
                audit_chain_heads.update()
                .where(audit_chain_heads.c.organization_id == organization_id)
                .values(anchor_seq=anchor.chain_seq, anchor_hash=anchor.chain_hash, anchored_at=self.now),
                execution_options=self.options,
            )
            return removed
