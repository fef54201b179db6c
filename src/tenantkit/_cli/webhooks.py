"""``tenantkit webhooks``: run the delivery worker, and manage endpoints from the command line.

``work`` runs a worker (stop it with Ctrl-C or SIGTERM: it finishes the delivery in hand); start as many as
you like, on as many machines, against PostgreSQL or MariaDB. The management commands act as the host
(or ``--as USER``, who needs ``webhooks:manage`` / ``webhooks:read``), like every other command group.
"""

from __future__ import annotations

import signal
import threading
from datetime import datetime, timedelta
from types import FrameType

import click

from tenantkit._actor import HOST, Actor
from tenantkit._cli._common import (
    emit,
    engine_for,
    handle_errors,
    json_option,
    kit_for,
    load_settings,
    main,
    page_options,
    url_option,
)
from tenantkit._cli._formats import TIMESTAMP, Column, echo_page, format_timestamp
from tenantkit._cli.members import as_option
from tenantkit._session import transaction
from tenantkit._validation import parse_duration
from tenantkit.webhooks._models import WebhookDelivery, WebhookEndpoint
from tenantkit.webhooks._service import WebhookService
from tenantkit.webhooks._worker import run_worker


def _actor(user_id: str | None) -> Actor:
    return HOST if user_id is None else Actor.user(user_id)


def _service() -> WebhookService:
    return kit_for(load_settings()).webhooks


def _duration(context: click.Context, parameter: click.Parameter, value: str) -> timedelta:
    try:
        return timedelta(seconds=float(value))
    except ValueError:
        pass
    duration = parse_duration(value)
    if duration is None:
        raise click.BadParameter("use seconds (0.5) or a whole number and a unit: 1s, 5m")
    return duration


ENDPOINT_COLUMNS: list[Column[WebhookEndpoint]] = [
    ("ID", lambda endpoint: endpoint.id),
    ("URL", lambda endpoint: endpoint.url),
    ("EVENTS", lambda endpoint: ",".join(endpoint.event_types)),
    ("STATE", lambda endpoint: "enabled" if endpoint.enabled else f"disabled ({endpoint.disabled_reason})"),
]
DELIVERY_COLUMNS: list[Column[WebhookDelivery]] = [
    ("CREATED", lambda delivery: format_timestamp(delivery.created_at)),
    ("MESSAGE", lambda delivery: delivery.message_id),
    ("ENDPOINT", lambda delivery: delivery.endpoint_id),
    ("TYPE", lambda delivery: delivery.event_type),
    ("STATUS", lambda delivery: delivery.status),
    ("ATTEMPTS", lambda delivery: str(delivery.attempts)),
    ("LAST", lambda delivery: str(delivery.last_status_code or delivery.last_error or "-")),
]


@main.group()
def webhooks() -> None:
    """Run the webhook worker; create, list and change endpoints; resend and recover deliveries."""


@webhooks.command("work")
@url_option
@json_option
@click.option(
    "--batch", type=click.IntRange(1, 500), default=100, show_default=True, help="Deliveries per round."
)
@click.option("--idle", default="1s", show_default=True, callback=_duration, help="Wait when nothing is due.")
@click.option("--once", is_flag=True, help="Deliver what is due now, then exit.")
@handle_errors
def work(url: str | None, as_json: bool, batch: int, idle: timedelta, once: bool) -> None:
    """Deliver due webhooks until stopped (SIGTERM or Ctrl-C finish the delivery in hand)."""
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    with engine_for(url) as engine:
        with engine.connect():
            pass  # an unreachable database is an error at start, not a loop of retries
        total = run_worker(_service(), engine, batch=batch, idle=idle, stop=stop, once=once)
    emit(
        total,
        as_json,
        lambda: click.echo(
            f"delivered {total.succeeded}, retrying {total.retrying}, "
            f"failed {total.failed}, lost {total.lost}",
            err=True,
        ),
    )


@webhooks.command("health")
@url_option
@json_option
@handle_errors
def health(url: str | None, as_json: bool) -> None:
    """The outbox's depth and the age of its oldest due delivery."""
    with engine_for(url, read_only=True) as engine, engine.connect() as connection:
        report = _service().health(connection)
    emit(
        report,
        as_json,
        lambda: click.echo(
            f"pending {report.depth}, due {report.due}, oldest due "
            + ("-" if report.oldest_due_age_seconds is None else f"{report.oldest_due_age_seconds:.1f}s")
        ),
    )


@webhooks.command("create")
@url_option
@json_option
@as_option
@click.argument("organization")
@click.argument("endpoint_url", metavar="URL")
@click.option("--event", "event_types", multiple=True, required=True, help="An event type (repeatable).")
@click.option("--description", default=None)
@handle_errors
def create(
    url: str | None,
    as_json: bool,
    acting_user: str | None,
    organization: str,
    endpoint_url: str,
    event_types: tuple[str, ...],
    description: str | None,
) -> None:
    """Register an endpoint; its signing secret is printed this once."""
    with engine_for(url) as engine, transaction(engine) as session:
        service = _service()
        created = service.create_endpoint(
            session,
            organization,
            endpoint_url,
            event_types,
            actor=_actor(acting_user),
            description=description,
        )
    data = {"endpoint": created.endpoint.model_dump(mode="json"), "secret": created.reveal()}
    emit(data, as_json, lambda: click.echo(f"{created.endpoint.id}\nsecret (shown once): {created.reveal()}"))


@webhooks.command("list")
@url_option
@json_option
@as_option
@click.argument("organization")
@page_options
@handle_errors
def list_(
    url: str | None, as_json: bool, acting_user: str | None, organization: str, limit: int, cursor: str | None
) -> None:
    """List ORGANIZATION's endpoints."""
    with engine_for(url, read_only=True) as engine, transaction(engine) as session:
        service = _service()
        page = service.list_endpoints(
            session, organization, actor=_actor(acting_user), limit=limit, cursor=cursor
        )
    emit(page, as_json, lambda: echo_page(page, ENDPOINT_COLUMNS))


@webhooks.command("update")
@url_option
@json_option
@as_option
@click.argument("organization")
@click.argument("endpoint_id")
@click.option("--endpoint-url", default=None, help="The new URL.")
@click.option("--event", "event_types", multiple=True, help="The new event types (repeatable).")
@click.option("--description", default=None)
@handle_errors
def update(
    url: str | None,
    as_json: bool,
    acting_user: str | None,
    organization: str,
    endpoint_id: str,
    endpoint_url: str | None,
    event_types: tuple[str, ...],
    description: str | None,
) -> None:
    """Change an endpoint's URL, event types or description."""
    with engine_for(url) as engine, transaction(engine) as session:
        service = _service()
        endpoint = service.update_endpoint(
            session,
            organization,
            endpoint_id,
            actor=_actor(acting_user),
            url=endpoint_url,
            event_types=event_types or None,
            description=description,
        )
    emit(endpoint, as_json, lambda: click.echo(endpoint.id))


def _endpoint_command(name: str, method: str, summary: str) -> None:
    @webhooks.command(name, help=summary)
    @url_option
    @json_option
    @as_option
    @click.argument("organization")
    @click.argument("endpoint_id")
    @handle_errors
    def command(
        url: str | None, as_json: bool, acting_user: str | None, organization: str, endpoint_id: str
    ) -> None:
        with engine_for(url) as engine, transaction(engine) as session:
            service = _service()
            result = getattr(service, method)(session, organization, endpoint_id, actor=_actor(acting_user))
        if method == "rotate_secret":
            data = {"endpoint": result.endpoint.model_dump(mode="json"), "secret": result.reveal()}
            emit(data, as_json, lambda: click.echo(f"new secret (shown once): {result.reveal()}"))
        else:
            emit(result, as_json, lambda: click.echo(f"{name}: {endpoint_id}"))


_endpoint_command("enable", "enable_endpoint", "Enable an endpoint again.")
_endpoint_command("disable", "disable_endpoint", "Disable an endpoint.")
_endpoint_command("delete", "delete_endpoint", "Delete an endpoint and its deliveries.")
_endpoint_command("rotate-secret", "rotate_secret", "Give an endpoint a new signing secret (printed once).")
_endpoint_command("test", "send_test", "Queue a webhook.test message for one endpoint.")


@webhooks.command("deliveries")
@url_option
@json_option
@as_option
@click.argument("organization")
@click.option("--endpoint", "endpoint_id", default=None, help="The deliveries of this endpoint.")
@click.option("--message", "message_id", default=None, help="The deliveries of this message.")
@page_options
@handle_errors
def deliveries(
    url: str | None,
    as_json: bool,
    acting_user: str | None,
    organization: str,
    endpoint_id: str | None,
    message_id: str | None,
    limit: int,
    cursor: str | None,
) -> None:
    """List the deliveries of an endpoint or of a message, newest first."""
    with engine_for(url, read_only=True) as engine, transaction(engine) as session:
        service = _service()
        page = service.list_deliveries(
            session,
            organization,
            actor=_actor(acting_user),
            endpoint_id=endpoint_id,
            message_id=message_id,
            limit=limit,
            cursor=cursor,
        )
    emit(page, as_json, lambda: echo_page(page, DELIVERY_COLUMNS))


@webhooks.command("resend")
@url_option
@json_option
@as_option
@click.argument("organization")
@click.argument("message_id")
@handle_errors
def resend(
    url: str | None, as_json: bool, acting_user: str | None, organization: str, message_id: str
) -> None:
    """Queue a message again for the enabled endpoints it went to."""
    with engine_for(url) as engine, transaction(engine) as session:
        service = _service()
        queued = service.resend(session, organization, message_id, actor=_actor(acting_user))
    emit(queued, as_json, lambda: click.echo(f"queued {len(queued)} deliveries"))


@webhooks.command("recover")
@url_option
@json_option
@as_option
@click.argument("organization")
@click.argument("endpoint_id")
@click.option("--since", type=TIMESTAMP, required=True, help="Resend what failed since then (ISO 8601).")
@handle_errors
def recover(
    url: str | None,
    as_json: bool,
    acting_user: str | None,
    organization: str,
    endpoint_id: str,
    since: datetime,
) -> None:
    """Queue again every delivery of the endpoint that failed for good since --since."""
    with engine_for(url) as engine, transaction(engine) as session:
        service = _service()
        count = service.recover(session, organization, endpoint_id, since=since, actor=_actor(acting_user))
    emit({"requeued": count}, as_json, lambda: click.echo(f"queued {count} deliveries again"))
