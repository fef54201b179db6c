"""The typed constructors that type checkers see for the settings objects match the fields pydantic builds."""

from __future__ import annotations

import ast
import inspect

import pytest
from pydantic import BaseModel

from tenantkit import ApiKeySettings, DatabaseSettings, InvitationSettings


def _checked_signature(model: type[BaseModel]) -> list[str]:
    """The keyword names of the ``__init__`` a class declares under ``if TYPE_CHECKING:``."""
    tree = ast.parse(inspect.getsource(model))
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for statement in node.body:
                if isinstance(statement, ast.FunctionDef) and statement.name == "__init__":
                    return [argument.arg for argument in statement.args.kwonlyargs]
    raise AssertionError(f"{model.__name__} declares no typed __init__")


@pytest.mark.parametrize("model", [ApiKeySettings, InvitationSettings, DatabaseSettings])
def test_the_typed_constructor_names_every_field(model: type[BaseModel]) -> None:
    """Each settings class declares, for type checkers, one keyword per field, in field order."""
    assert _checked_signature(model) == list(model.model_fields)
