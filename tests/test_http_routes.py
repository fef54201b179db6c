"""The management HTTP surface is declared once (``tenantkit._routes``) and both adapters serve exactly it.

The contract of each endpoint (bodies, statuses, errors) is in ``test_http_contract.py``; here the table
itself is checked, and that the FastAPI router and the Flask blueprint mount every entry of it (all
features or the ones a host picks) and nothing else.
"""

from __future__ import annotations

import dataclasses
import gc
import inspect
import itertools
import weakref
from collections.abc import Callable, Iterable
from typing import Any

import flask
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import BaseModel
from sqlalchemy.orm import Session

from tenantkit import TenantKit, WebhookSettings
from tenantkit._http import (
    AddDomainRequest,
    ChangeRoleRequest,
    CreateInvitationRequest,
    CreateRoleRequest,
    CreateSsoConnectionRequest,
    CreateWebhookEndpointRequest,
    CreditsRequest,
    DepartmentRequest,
    IssueApiKeyRequest,
    Principal,
    RecoverWebhookDeliveriesRequest,
    RevokeSubjectRequest,
    RotateApiKeyRequest,
    RotateWebhookSecretRequest,
    SuspendRequest,
    TokenRequest,
    TransferOwnershipRequest,
    UpdateRoleRequest,
    UpdateSettingsRequest,
    UpdateSsoConnectionRequest,
    UpdateWebhookEndpointRequest,
)
from tenantkit._routes import FEATURES, NO_STORE, OPERATIONS, ROUTES, Route, select_routes
from tenantkit.errors import ConfigurationError
from tenantkit.fastapi import TenantKitFastAPI
from tenantkit.flask import TenantKitFlask

PREFIX = "/tk"
# Every single feature, every pair, every set but one, and all of them: each feature is mounted alone, beside
# each other one and left out once (every subset of ten features would be 1023 apps to build, per adapter).
ALL_FEATURE_CHOICES = [
    *itertools.combinations(FEATURES, 1),
    *itertools.combinations(FEATURES, 2),
    *itertools.combinations(FEATURES, len(FEATURES) - 1),
    FEATURES,
]


def full_kit() -> TenantKit:
    """A kit configured for every feature, webhooks included (without their key they are not mounted)."""
    return TenantKit(webhooks=WebhookSettings(secret_keys=["route-table-webhook-key-0001"]))


def no_session() -> None:
    """Routes are only built here, never called, so no session is ever asked for."""


def no_user() -> str:
    return "user_1"


def surface(routes: Iterable[Route]) -> set[tuple[str, str]]:
    return {(route.method, route.path) for route in routes}


def fastapi_surface(include: Iterable[str] | None = None) -> set[tuple[str, str]]:
    """(method, path) of every route of the tenantkit router, and the same as an app mounting it documents."""
    tk = TenantKitFastAPI(full_kit(), session=no_session, current_user=no_user)
    router = tk.router(include=include)
    served = set()
    for route in router.routes:
        assert isinstance(route, APIRoute), route
        served |= {(method, route.path) for method in route.methods or set()}
    app = FastAPI()
    app.include_router(router, prefix=PREFIX)
    documented = {
        (method.upper(), path.removeprefix(PREFIX))
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }
    assert documented == served
    return served


def flask_surface(include: Iterable[str] | None = None) -> set[tuple[str, str]]:
    """(method, path template under the prefix) of every rule the tenantkit blueprint adds to an app."""
    tk = TenantKitFlask(full_kit(), session=no_session, current_user=no_user)  # type: ignore[arg-type]
    app = flask.Flask(__name__)
    app.register_blueprint(tk.blueprint(include=include), url_prefix=PREFIX)
    served = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        assert rule.endpoint.startswith("tenantkit."), rule.endpoint
        template = rule.rule.removeprefix(PREFIX).replace("<", "{").replace(">", "}")
        served |= {(method, template) for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}}
    return served


class TestTheTable:
    def test_each_endpoint_is_declared_once(self) -> None:
        """No two entries share a method and path, or an operation name."""
        assert len(surface(ROUTES)) == len(ROUTES)
        assert len(set(OPERATIONS)) == len(OPERATIONS) == len(ROUTES)

    def test_operations_and_features_derive_from_the_table(self) -> None:
        """``OPERATIONS`` and ``FEATURES`` are the table's names, in its order, for the router to use."""
        assert tuple(route.operation for route in ROUTES) == OPERATIONS
        assert FEATURES == (
            "members", "roles", "api_keys", "invitations", "departments", "audit", "settings", "domains",
            "sso", "webhooks",
        )  # fmt: skip
        assert all(
            route.operation == f"{route.feature}.{route.operation.partition('.')[2]}" for route in ROUTES
        )

    @pytest.mark.parametrize("route", ROUTES, ids=lambda route: route.operation)
    def test_each_call_takes_what_the_adapters_pass(self, route: Route) -> None:
        """The ``Management`` method accepts exactly the session and the arguments the entry implies."""
        parameters = list(inspect.signature(route.call).parameters)
        assert parameters[:2] == ["self", "session"]
        assert sorted(parameters[2:]) == sorted(route.arguments_of())

    def test_reads_never_write(self) -> None:
        """A GET is a read: no adapter commits after it."""
        assert [route.operation for route in ROUTES if route.method == "GET" and route.writes] == []

    def test_every_answer_showing_a_secret_is_not_stored(self) -> None:
        """Exactly the answers that show a secret once are ``no-store``: a new or rotated API key, an
        invitation's token (created or resent), a webhook endpoint's signing secret (created or rotated), a
        claimed domain's TXT record value (its verification token)."""
        assert {route.operation for route in ROUTES if route.headers == NO_STORE} == {
            "domains.add",
            "api_keys.issue",
            "api_keys.rotate",
            "invitations.create",
            "invitations.resend",
            "webhooks.create",
            "webhooks.rotate_secret",
        }
        assert dict(NO_STORE) == {"Cache-Control": "no-store"}

    def test_an_optional_body_stands_for_its_defaults(self) -> None:
        """Rotating without a body rotates with the body model's defaults; a given body passes through."""
        (rotate,) = (route for route in ROUTES if route.operation == "api_keys.rotate")
        assert rotate.body is not None
        assert rotate.body_or_default(None) == rotate.body()
        given = rotate.body(grace_seconds=60)
        assert rotate.body_or_default(given) is given


class TestBothAdaptersServeTheTable:
    def test_the_router_serves_every_entry_and_nothing_else(self) -> None:
        """The FastAPI router's methods and paths are the table's, exactly."""
        assert fastapi_surface() == surface(ROUTES)

    def test_the_blueprint_serves_every_entry_and_nothing_else(self) -> None:
        """The Flask blueprint's methods and rules are the table's, exactly."""
        assert flask_surface() == surface(ROUTES)

    @pytest.mark.parametrize("include", ALL_FEATURE_CHOICES, ids="+".join)
    def test_a_choice_of_features_mounts_just_those(self, include: tuple[str, ...]) -> None:
        """``include=`` mounts the chosen features' entries in both adapters, and no other."""
        expected = surface(route for route in ROUTES if route.feature in include)
        assert fastapi_surface(include) == expected
        assert flask_surface(include) == expected

    def test_endpoint_names_come_from_the_table(self) -> None:
        """Each route is named after its ``Management`` method in both frameworks (Flask's ``url_for``)."""
        tk = TenantKitFastAPI(full_kit(), session=no_session, current_user=no_user)
        names = {route.name for route in tk.router().routes if isinstance(route, APIRoute)}
        blueprint_app = flask.Flask(__name__)
        flask_tk = TenantKitFlask(full_kit(), session=no_session, current_user=no_user)  # type: ignore[arg-type]
        blueprint_app.register_blueprint(flask_tk.blueprint())
        endpoints = {endpoint for endpoint in blueprint_app.view_functions if endpoint != "static"}
        assert names == {route.name for route in ROUTES}
        assert endpoints == {f"tenantkit.{route.name}" for route in ROUTES}

    def test_statuses_and_summaries_come_from_the_table(self) -> None:
        """The router's success status, summary, documented errors and success headers are each entry's."""
        tk = TenantKitFastAPI(full_kit(), session=no_session, current_user=no_user)
        by_operation = {route.operation: route for route in ROUTES}
        for served in tk.router().routes:
            assert isinstance(served, APIRoute)
            entry = by_operation[str(served.operation_id)]
            assert served.status_code == entry.status
            assert served.summary == entry.summary
            documented = set(entry.errors) | ({entry.status} if entry.headers else set())
            assert set(served.responses) == documented
            if entry.headers:
                assert set(served.responses[entry.status]["headers"]) == {name for name, _ in entry.headers}


class TestFeaturesTheKitLacks:
    """Webhook routes are mounted only for a kit with webhooks: a kit without them has nothing to serve."""

    def test_by_default_a_kit_without_webhooks_mounts_everything_else(self) -> None:
        """Without ``WebhookSettings(secret_keys=...)`` both adapters leave the webhook routes out."""
        expected = surface(route for route in ROUTES if route.feature != "webhooks")
        router = TenantKitFastAPI(TenantKit(), session=no_session, current_user=no_user).router()
        served = {
            (method, route.path)
            for route in router.routes
            if isinstance(route, APIRoute)
            for method in route.methods or set()
        }
        assert served == expected
        flask_tk = TenantKitFlask(TenantKit(), session=no_session, current_user=no_user)  # type: ignore[arg-type]
        app = flask.Flask(__name__)
        app.register_blueprint(flask_tk.blueprint(), url_prefix=PREFIX)
        rules = {rule.endpoint for rule in app.url_map.iter_rules()}
        assert rules == {"static"} | {
            f"tenantkit.{route.name}" for route in ROUTES if route.feature != "webhooks"
        }

    def test_asking_for_webhooks_without_them_is_refused(self) -> None:
        """``include=("webhooks",)`` on a kit without webhook settings: ``ConfigurationError`` at set-up."""
        with pytest.raises(ConfigurationError, match="not configured for webhooks"):
            TenantKitFastAPI(TenantKit(), session=no_session, current_user=no_user).router(
                include=["webhooks"]
            )
        flask_tk = TenantKitFlask(TenantKit(), session=no_session, current_user=no_user)  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError, match="not configured for webhooks"):
            flask_tk.blueprint(include=["webhooks"])

    def test_the_table_alone_knows_no_kit(self) -> None:
        """``select_routes()`` without a kit is the whole table; with a full kit, too."""
        assert select_routes() == ROUTES == select_routes(kit=full_kit())


class TestBadChoices:
    @pytest.mark.parametrize(
        ("include", "error", "match"),
        [
            ("members", TypeError, "not a string"),
            (("members", "keys"), ValueError, r"unknown feature\(s\) \['keys'\]"),
            ((), ValueError, "at least one feature"),
        ],
    )
    def test_both_adapters_refuse_a_bad_include(
        self, include: Any, error: type[Exception], match: str
    ) -> None:
        """A bare string, an unknown feature or no feature at all is refused at set-up, by both adapters."""
        with pytest.raises(error, match=match):
            select_routes(include)
        with pytest.raises(error, match=match):
            TenantKitFastAPI(TenantKit(), session=no_session, current_user=no_user).router(include=include)
        with pytest.raises(error, match=match):
            TenantKitFlask(TenantKit(), session=no_session, current_user=no_user).blueprint(include=include)  # type: ignore[arg-type]


class TestDependencyErrorRegistry:
    @pytest.mark.parametrize("make", ["api_key", "permission"])
    def test_a_dependency_nothing_uses_is_not_kept(self, make: str) -> None:
        """The error statuses recorded for a dependency go with it: building many leaks none."""
        tk = TenantKitFastAPI(TenantKit(), session=no_session, current_user=no_user)
        dependency = tk.api_key("reports:read") if make == "api_key" else tk.permission("members:read")
        collected = weakref.ref(dependency)
        del dependency
        gc.collect()
        assert collected() is None


# A valid body for each body model of the table (the work itself is stubbed, so only the shape matters).
SAMPLE_BODIES: dict[type[BaseModel], dict[str, Any]] = {
    ChangeRoleRequest: {"role": "ADMIN"},
    TransferOwnershipRequest: {"to_user_id": "user_2", "demote_to": "MEMBER"},
    IssueApiKeyRequest: {
        "name": "ci",
        "scopes": ["reports:read"],
        "subject": {"type": "device", "id": "SN-4711"},
        "limits": {"credits": 10, "rate_limits": ["100/minute"], "allowed_cidrs": ["10.0.0.0/8"]},
    },
    CreditsRequest: {"credits": 50},
    RevokeSubjectRequest: {"subject": {"type": "user", "id": "user_2"}},
    RotateApiKeyRequest: {"grace_seconds": 60},
    CreateInvitationRequest: {"email": "new@example.com"},
    CreateRoleRequest: {"key": "nurse", "name": "Nurse", "rank": "MEMBER"},
    UpdateRoleRequest: {"permissions": ["members:read"]},
    TokenRequest: {"token": "t0ken"},
    UpdateSettingsRequest: {"expected_version": 3, "changes": {"require_sso": True}},
    SuspendRequest: {"reason": "licence expired"},
    DepartmentRequest: {"name": "Cardiology"},
    CreateWebhookEndpointRequest: {"url": "https://hooks.example.com/x", "event_types": ["member.added"]},
    UpdateWebhookEndpointRequest: {"description": "renamed"},
    RotateWebhookSecretRequest: {"grace_seconds": 60},
    RecoverWebhookDeliveriesRequest: {"since": "2030-01-01T00:00:00Z"},
    AddDomainRequest: {"domain": "example.com"},
    CreateSsoConnectionRequest: {
        "provider": "workos",
        "protocol": "saml",
        "provider_connection_id": "conn_1",
        "name": "Okta",
    },
    UpdateSsoConnectionRequest: {"enforce": True},
}


class Answer(BaseModel):
    """What every stubbed ``Management`` call answers."""

    operation: str


class CountingSession(Session):
    """A session that only counts how the adapter ends the transaction."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def commit(self) -> None:
        self.calls.append("commit")

    def rollback(self) -> None:
        self.calls.append("rollback")


class Recorder:
    """Stands in for the ``Management`` calls: records each call's session and arguments."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Session, dict[str, Any]]] = []

    def stub(self, route: Route) -> Callable[..., BaseModel]:
        def call(management: object, session: Session, **arguments: Any) -> BaseModel:
            self.calls.append((route.operation, session, arguments))
            return Answer(operation=route.operation)

        call.__name__ = route.name
        return call


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    """The route table with every entry's work replaced by a recording stub."""
    recording = Recorder()
    stubbed = tuple(
        dataclasses.replace(route, call=recording.stub(route), response=Answer) for route in ROUTES
    )
    monkeypatch.setattr("tenantkit._routes.ROUTES", stubbed)
    return recording


def request_for(route: Route) -> tuple[str, dict[str, Any] | None, dict[str, Any]]:
    """A URL for ``route`` (each path parameter named after itself), its JSON body, and the arguments due."""
    values = {name: f"{name}_value" for name in route.path_parameters}
    url = PREFIX + route.path.format(**values)
    expected: dict[str, Any] = dict(values)
    if route.signed_in:
        expected["principal"] = Principal(user_id="user_1")
    body = None
    if route.body is not None:
        body = SAMPLE_BODIES[route.body]
        expected["body"] = route.body.model_validate(body)
    if route.query is not None:
        # The query model's other fields (the audit log's filters) arrive with their defaults.
        expected.update(route.query().model_dump())
        if "limit" in route.query.model_fields:
            url += "?limit=7&cursor=abc"
            expected.update({"limit": 7, "cursor": "abc"})
    return url, body, expected


@pytest.mark.parametrize("route", ROUTES, ids=lambda route: route.operation)
class TestEachEntryIsServedAsDeclared:
    def test_fastapi(self, route: Route, recorder: Recorder) -> None:
        """The router passes the entry's arguments, answers its status and headers, commits if it writes."""
        session = CountingSession()
        tk = TenantKitFastAPI(full_kit(), session=lambda: session, current_user=no_user)
        app = FastAPI()
        tk.install(app)
        app.include_router(tk.router(), prefix=PREFIX)
        url, body, expected = request_for(route)
        response = TestClient(app).request(route.method, url, json=body)
        assert (response.status_code, response.json()) == (route.status, {"operation": route.operation})
        assert {name: response.headers.get(name) for name, _ in route.headers} == dict(route.headers)
        assert response.headers.get("Cache-Control") == dict(route.headers).get("Cache-Control")
        assert recorder.calls == [(route.operation, session, expected)]
        assert session.calls == (["commit"] if route.writes else [])

    def test_flask(self, route: Route, recorder: Recorder) -> None:
        """The blueprint passes an entry's arguments, gives its status and headers, commits if it wrote."""
        session = CountingSession()
        tk = TenantKitFlask(full_kit(), session=lambda: session, current_user=no_user)
        app = flask.Flask(__name__)
        tk.init_app(app)
        app.register_blueprint(tk.blueprint(), url_prefix=PREFIX)
        url, body, expected = request_for(route)
        response = app.test_client().open(url, method=route.method, json=body)
        assert (response.status_code, response.get_json()) == (route.status, {"operation": route.operation})
        assert {name: response.headers.get(name) for name, _ in route.headers} == dict(route.headers)
        assert response.headers.get("Cache-Control") == dict(route.headers).get("Cache-Control")
        assert recorder.calls == [(route.operation, session, expected)]
        assert session.calls == (["commit"] if route.writes else [])


@pytest.mark.parametrize(
    "route", [route for route in ROUTES if route.body_optional], ids=lambda route: route.operation
)
def test_an_optional_body_may_be_left_out(route: Route, recorder: Recorder) -> None:
    """Without a body, an optional-body entry gets its model's defaults, in both adapters."""
    assert route.body is not None
    url, _, _ = request_for(route)
    fastapi_tk = TenantKitFastAPI(full_kit(), session=CountingSession, current_user=no_user)
    app = FastAPI()
    app.include_router(fastapi_tk.router(), prefix=PREFIX)
    assert TestClient(app).request(route.method, url).status_code == route.status
    flask_tk = TenantKitFlask(full_kit(), session=CountingSession, current_user=no_user)
    flask_app = flask.Flask(__name__)
    flask_app.register_blueprint(flask_tk.blueprint(), url_prefix=PREFIX)
    assert flask_app.test_client().open(url, method=route.method).status_code == route.status
    assert [arguments["body"] for _, _, arguments in recorder.calls] == [route.body()] * 2
