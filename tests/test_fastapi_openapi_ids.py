"""The management router's OpenAPI operation ids and tags: stable, unique, per feature, host-configurable.

Client generators name their methods after ``operationId`` and their modules after tags, so the ids are
pinned here: changing one breaks every generated client and must be a deliberate, changelogged decision.
"""

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from hypothesis import given, settings
from hypothesis import strategies as st

from tenantkit import TenantKit, WebhookSettings
from tenantkit.fastapi import OPERATIONS, TenantKitFastAPI

# (method, path under the router's prefix) -> operationId; the contract generated clients are built on.
PINNED_OPERATION_IDS = {
    ("GET", "/organizations/{organization_id}/members"): "members.list",
    ("PATCH", "/organizations/{organization_id}/members/{user_id}"): "members.change_role",
    ("DELETE", "/organizations/{organization_id}/members/{user_id}"): "members.remove",
    ("POST", "/organizations/{organization_id}/leave"): "members.leave",
    ("POST", "/organizations/{organization_id}/transfer-ownership"): "members.transfer_ownership",
    ("POST", "/organizations/{organization_id}/members/{user_id}/suspend"): "members.suspend",
    ("POST", "/organizations/{organization_id}/members/{user_id}/resume"): "members.resume",
    ("GET", "/organizations/{organization_id}/lapsing-members"): "members.list_lapsing",
    ("GET", "/organizations/{organization_id}/roles"): "roles.list",
    ("POST", "/organizations/{organization_id}/roles"): "roles.create",
    ("PATCH", "/organizations/{organization_id}/roles/{key}"): "roles.update",
    ("DELETE", "/organizations/{organization_id}/roles/{key}"): "roles.delete",
    ("GET", "/organizations/{organization_id}/api-keys"): "api_keys.list",
    ("POST", "/organizations/{organization_id}/api-keys"): "api_keys.issue",
    ("POST", "/organizations/{organization_id}/api-keys/{key_id}/revoke"): "api_keys.revoke",
    ("POST", "/organizations/{organization_id}/api-keys/{key_id}/rotate"): "api_keys.rotate",
    ("PUT", "/organizations/{organization_id}/api-keys/{key_id}/credits"): "api_keys.set_credits",
    ("POST", "/organizations/{organization_id}/api-keys/{key_id}/credits/add"): "api_keys.add_credits",
    ("POST", "/organizations/{organization_id}/api-keys/revoke-subject"): "api_keys.revoke_subject",
    ("GET", "/organizations/{organization_id}/invitations"): "invitations.list",
    ("POST", "/organizations/{organization_id}/invitations"): "invitations.create",
    ("POST", "/organizations/{organization_id}/invitations/{invitation_id}/revoke"): "invitations.revoke",
    ("POST", "/organizations/{organization_id}/invitations/{invitation_id}/resend"): "invitations.resend",
    ("POST", "/invitations/preview"): "invitations.preview",
    ("POST", "/invitations/accept"): "invitations.accept",
    ("GET", "/organizations/{organization_id}/departments"): "departments.list",
    ("POST", "/organizations/{organization_id}/departments"): "departments.create",
    ("PATCH", "/organizations/{organization_id}/departments/{department_id}"): "departments.update",
    ("DELETE", "/organizations/{organization_id}/departments/{department_id}"): "departments.delete",
    (
        "GET",
        "/organizations/{organization_id}/departments/{department_id}/members",
    ): "departments.list_members",
    (
        "PUT",
        "/organizations/{organization_id}/departments/{department_id}/members/{user_id}",
    ): "departments.add_member",
    (
        "DELETE",
        "/organizations/{organization_id}/departments/{department_id}/members/{user_id}",
    ): "departments.remove_member",
    ("GET", "/organizations/{organization_id}/audit-events"): "audit.list",
    ("GET", "/organizations/{organization_id}/settings"): "settings.read",
    ("PATCH", "/organizations/{organization_id}/settings"): "settings.update",
    ("GET", "/organizations/{organization_id}/domains"): "domains.list",
    ("POST", "/organizations/{organization_id}/domains"): "domains.add",
    ("GET", "/organizations/{organization_id}/domains/{domain}"): "domains.get",
    ("POST", "/organizations/{organization_id}/domains/{domain}/verify"): "domains.verify",
    ("DELETE", "/organizations/{organization_id}/domains/{domain}"): "domains.remove",
    ("GET", "/organizations/{organization_id}/sso-connections"): "sso.list",
    ("POST", "/organizations/{organization_id}/sso-connections"): "sso.create",
    ("GET", "/organizations/{organization_id}/sso-connections/{connection_id}"): "sso.get",
    ("PATCH", "/organizations/{organization_id}/sso-connections/{connection_id}"): "sso.update",
    ("DELETE", "/organizations/{organization_id}/sso-connections/{connection_id}"): "sso.delete",
    ("GET", "/organizations/{organization_id}/webhook-endpoints"): "webhooks.list",
    ("POST", "/organizations/{organization_id}/webhook-endpoints"): "webhooks.create",
    ("GET", "/organizations/{organization_id}/webhook-endpoints/{endpoint_id}"): "webhooks.get",
    ("PATCH", "/organizations/{organization_id}/webhook-endpoints/{endpoint_id}"): "webhooks.update",
    ("DELETE", "/organizations/{organization_id}/webhook-endpoints/{endpoint_id}"): "webhooks.delete",
    ("POST", "/organizations/{organization_id}/webhook-endpoints/{endpoint_id}/enable"): "webhooks.enable",
    ("POST", "/organizations/{organization_id}/webhook-endpoints/{endpoint_id}/disable"): "webhooks.disable",
    (
        "POST",
        "/organizations/{organization_id}/webhook-endpoints/{endpoint_id}/rotate-secret",
    ): "webhooks.rotate_secret",
    (
        "GET",
        "/organizations/{organization_id}/webhook-endpoints/{endpoint_id}/deliveries",
    ): "webhooks.list_deliveries",
    ("POST", "/organizations/{organization_id}/webhook-endpoints/{endpoint_id}/recover"): "webhooks.recover",
    ("POST", "/organizations/{organization_id}/webhook-endpoints/{endpoint_id}/test"): "webhooks.send_test",
    (
        "GET",
        "/organizations/{organization_id}/webhook-messages/{message_id}/deliveries",
    ): "webhooks.list_message_deliveries",
    ("POST", "/organizations/{organization_id}/webhook-messages/{message_id}/resend"): "webhooks.resend",
}


def no_session() -> None:
    """The OpenAPI document is built without a request, so the session dependency is never called."""


def no_user() -> str:
    return "user_1"


def tenantkit_fastapi() -> TenantKitFastAPI:
    """The adapter for a kit with every feature configured (webhooks are mounted only with their key)."""
    kit = TenantKit(webhooks=WebhookSettings(secret_keys=["openapi-ids-webhook-key-0001"]))
    return TenantKitFastAPI(kit, session=no_session, current_user=no_user)


TENANTKIT_FASTAPI = tenantkit_fastapi()


def document(*mounts: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    """The OpenAPI document of an app that mounts the router at each ``(prefix, router options)``."""
    tk = tenantkit_fastapi()
    app = FastAPI()
    tk.install(app)
    for prefix, options in mounts:
        app.include_router(tk.router(**options), prefix=prefix)
    return app.openapi()


def operations(schema: dict[str, Any], prefix: str = "") -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path.removeprefix(prefix)): operation
        for path, item in schema["paths"].items()
        if path.startswith(prefix)
        for method, operation in item.items()
    }


class TestDefaults:
    def test_operation_ids_are_the_pinned_names(self) -> None:
        """Every operation's id is its ``feature.action`` name, exactly as pinned, whatever the prefix."""
        found = operations(document(("/tenantkit", {})), "/tenantkit")
        assert {key: operation["operationId"] for key, operation in found.items()} == PINNED_OPERATION_IDS

    def test_operation_ids_are_unique_and_listed(self) -> None:
        """The ids are unique, and ``OPERATIONS`` lists exactly them."""
        assert len(set(OPERATIONS)) == len(OPERATIONS)
        assert set(OPERATIONS) == set(PINNED_OPERATION_IDS.values())

    def test_each_operation_is_tagged_with_its_feature(self) -> None:
        """The tag is the feature part of the name: ``members``, ``api_keys``, ``invitations``, ..."""
        for operation in operations(document(("/tk", {}))).values():
            assert operation["tags"] == [operation["operationId"].partition(".")[0]]

    def test_two_routers_give_the_same_ids(self) -> None:
        """The ids do not depend on the order routes are built in or on the instance: two builds agree."""
        first = operations(document(("/a", {})), "/a")
        second = operations(document(("/b", {})), "/b")
        assert {k: v["operationId"] for k, v in first.items()} == {
            k: v["operationId"] for k, v in second.items()
        }


class TestHostOverrides:
    def test_operation_id_function_renames_every_operation(self) -> None:
        """``operation_id=`` maps each name to the host's id."""
        found = operations(document(("/tk", {"operation_id": lambda name: "tk_" + name.replace(".", "_")})))
        assert {operation["operationId"] for operation in found.values()} == {
            "tk_" + name.replace(".", "_") for name in OPERATIONS
        }

    @settings(max_examples=25)
    @given(prefix=st.text(st.characters(codec="ascii", categories=["L", "N"]), min_size=1, max_size=12))
    def test_any_prefix_keeps_ids_unique(self, prefix: str) -> None:
        """Prefixing the names keeps one id per operation, each the prefix and the name."""
        router = TENANTKIT_FASTAPI.router(operation_id=lambda name: f"{prefix}.{name}")
        ids = [route.operation_id for route in router.routes if isinstance(route, APIRoute)]
        assert sorted(str(identifier) for identifier in ids) == sorted(
            f"{prefix}.{name}" for name in OPERATIONS
        )

    def test_the_router_mounted_twice_with_distinct_ids(self) -> None:
        """Two mounts with distinct id functions give a document whose ids are all unique."""
        schema = document(("/tk", {}), ("/admin", {"operation_id": lambda name: "admin." + name}))
        ids = [operation["operationId"] for operation in operations(schema).values()]
        assert len(ids) == 2 * len(OPERATIONS) == len(set(ids))

    def test_a_list_of_tags_applies_to_every_operation(self) -> None:
        """``tags=[...]`` puts the same tags on every operation, as before per-feature tags."""
        for operation in operations(document(("/tk", {"tags": ["tenantkit"]}))).values():
            assert operation["tags"] == ["tenantkit"]

    def test_a_mapping_of_tags_replaces_the_features_it_names(self) -> None:
        """``tags={"api_keys": [...]}`` retags API-key operations; the other features keep theirs."""
        found = operations(document(("/tk", {"tags": {"api_keys": ["API keys"]}})))
        for operation in found.values():
            feature = operation["operationId"].partition(".")[0]
            assert operation["tags"] == (["API keys"] if feature == "api_keys" else [feature])


class TestBadOptions:
    def test_an_unknown_feature_in_tags_is_refused(self) -> None:
        """A mapping that names no feature of the router is a mistake, said at once."""
        with pytest.raises(ValueError, match=r"unknown feature\(s\) \['keys'\]"):
            tenantkit_fastapi().router(tags={"keys": ["API keys"]})

    def test_a_bare_string_of_tags_is_refused(self) -> None:
        """``tags="tenantkit"`` would tag each letter; it is refused."""
        with pytest.raises(TypeError, match="not a string"):
            tenantkit_fastapi().router(tags="tenantkit")

    def test_an_id_function_that_collides_is_refused(self) -> None:
        """Two operations with one id would break generated clients; the router refuses to build."""
        with pytest.raises(ValueError, match="same id"):
            tenantkit_fastapi().router(operation_id=lambda name: name.partition(".")[0])
