"""The error tree: unique codes, documented in docs/errors.md, one kind per error deciding its HTTP status."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

import tenantkit
from tenantkit import _errors
from tenantkit._http import _STATUS_BY_KIND, status_for
from tenantkit.roles._policy import Role

DOC = Path(__file__).resolve().parent.parent / "docs" / "errors.md"
# A row of a table in docs/errors.md: | `SomeError` | `some_code` | ...
DOC_ROW = re.compile(r"^\| `(\w+)` \| `(\w+)` \|", re.M)

ERRORS: list[type[tenantkit.TenantKitError]] = sorted(
    (
        value
        for value in vars(_errors).values()
        if inspect.isclass(value) and issubclass(value, tenantkit.TenantKitError)
    ),
    key=lambda error_class: error_class.__name__,
)
KINDS = frozenset(_STATUS_BY_KIND)
FAMILIES = frozenset(
    {
        tenantkit.errors.ApiKeyError,
        tenantkit.errors.InvitationError,
        tenantkit.errors.RolesError,
        tenantkit.errors.WebhookError,
    }
)


def kinds_of(error_class: type[tenantkit.TenantKitError]) -> list[type[tenantkit.TenantKitError]]:
    """The kinds among ``error_class`` and its ancestors."""
    return [ancestor for ancestor in error_class.__mro__ if ancestor in KINDS]


def test_codes_are_unique() -> None:
    """No two error classes share a ``code``: a code names exactly one failure."""
    codes = [error_class.code for error_class in ERRORS]
    duplicates = sorted({code for code in codes if codes.count(code) > 1})
    assert not duplicates, duplicates


def test_every_class_defines_its_own_code() -> None:
    """Each class sets ``code`` itself, so a new subclass cannot silently reuse its parent's."""
    assert [error_class for error_class in ERRORS if "code" not in vars(error_class)] == []


def test_docs_list_every_error_with_its_code() -> None:
    """docs/errors.md lists each error class with its code, and nothing that does not exist."""
    documented = DOC_ROW.findall(DOC.read_text(encoding="utf-8"))
    assert len(documented) == len(set(documented)), "a row appears twice in docs/errors.md"
    assert set(documented) == {(error_class.__name__, error_class.code) for error_class in ERRORS}


def test_kinds_sit_directly_under_the_root() -> None:
    """A kind is a child of ``TenantKitError`` and of no other kind: the tree has one axis."""
    for kind in KINDS:
        assert kind.__bases__[0] is tenantkit.TenantKitError, kind
        assert kinds_of(kind) == [kind], kind


@pytest.mark.parametrize("error_class", ERRORS, ids=lambda error_class: error_class.__name__)
def test_each_error_has_one_kind_that_decides_its_status(error_class: type[tenantkit.TenantKitError]) -> None:
    """Every error but the root and the families is under exactly one kind, whose row gives its status."""
    kinds = kinds_of(error_class)
    if error_class is tenantkit.TenantKitError or error_class in FAMILIES:
        assert kinds == [], "the root and the families are not kinds and decide no status"
        return
    assert len(kinds) == 1, f"{error_class.__name__} is under {len(kinds)} kinds: {kinds}"
    (kind,) = kinds
    instance = error_class.__new__(error_class)  # the status depends on the class alone, not on arguments
    assert status_for(instance) == _STATUS_BY_KIND[kind]


def test_families_stay_out_of_the_status_table() -> None:
    """A family groups one feature's errors across kinds; its members keep their kinds' statuses."""
    members = [
        error
        for error in ERRORS
        if issubclass(error, tenantkit.errors.InvitationError) and error not in FAMILIES
    ]
    statuses = {status_for(error_class.__new__(error_class)) for error_class in members}
    assert statuses == {404, 410, 422}


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (tenantkit.InvalidApiKeyError("unknown"), 401),
        (tenantkit.errors.AmbiguousApiKeyError(), 401),
        (tenantkit.MissingScopeError(["reports:read"]), 403),
        (tenantkit.InvalidInputError("role", "unknown"), 422),
        (tenantkit.PermissionDeniedError("members:remove", "MEMBER"), 403),
        (tenantkit.errors.RoleEscalationError("ADMIN", "OWNER"), 403),
        (tenantkit.errors.LastOwnerError("org", "alice"), 403),
        (tenantkit.errors.MemberNotFoundError("org", "bob"), 404),
        (tenantkit.errors.ApiKeyNotFoundError("org", "key"), 404),
        (tenantkit.errors.InvitationNotFoundError(), 404),
        (tenantkit.errors.AlreadyMemberError("org", "bob", "ADMIN"), 409),
        (tenantkit.errors.ConcurrentUpdateError("org", "deadlock"), 409),
        (tenantkit.errors.InvalidInvitationTokenError(), 422),
        (tenantkit.errors.InvitationNotPendingError("accepted"), 410),
        (tenantkit.errors.InvitationExhaustedError(3), 422),
        (tenantkit.errors.UnverifiedEmailError(), 422),
        (tenantkit.errors.EmailMismatchError(), 422),
        (tenantkit.errors.DomainNotAllowedError("example.org"), 422),
        (tenantkit.errors.PublicEmailDomainError("gmail.com"), 422),
        (tenantkit.errors.InviterNoLongerAllowedError("alice", "ADMIN", "gone"), 422),
        (tenantkit.errors.DatabaseUnavailableError("down"), 503),
        (tenantkit.SchemaOutOfDateError(None, "0003"), 503),
        (tenantkit.errors.WriteNotAppliedError("api_keys", {"id": "k"}, ["revoked_at"], "kept"), 503),
        (tenantkit.errors.ConfigurationError("no keys"), 400),
        (tenantkit.errors.InvalidSettingError("api_keys.prefix", "empty"), 400),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
)
def test_statuses_are_those_of_the_http_contract(error: tenantkit.TenantKitError, status: int) -> None:
    """The status each error is answered with over HTTP, as it was before the tree had one axis."""
    assert status_for(error) == status


def test_errors_module_imports_nothing_of_tenantkit() -> None:
    """``tenantkit._errors`` is a leaf: it imports no tenantkit module, not even for type checking."""
    tree = ast.parse(Path(_errors.__file__).read_text(encoding="utf-8"))
    imported: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.append("." * node.level + (node.module or ""))
    assert [name for name in imported if name.startswith((".", "tenantkit"))] == []


def test_errors_carry_role_names_as_strings() -> None:
    """A role in an error is its name, a plain ``str``, so custom roles need no change to the errors."""
    escalation = tenantkit.errors.RoleEscalationError(Role.ADMIN.value, Role.OWNER.value)
    assert escalation.to_dict() == {
        "code": "role_escalation",
        "message": "an actor with ADMIN cannot grant OWNER",
        "actor_role": "ADMIN",
        "requested_role": "OWNER",
    }
    denied = tenantkit.PermissionDeniedError("reports:export", "NURSE")
    assert denied.to_dict()["role"] == "NURSE"
    assert str(denied) == "NURSE may not reports:export"
