"""Every Python block of the docs and the README is valid Python whose tenantkit imports exist.

The quick-starts and the host-Alembic ``env.py`` are run as printed by their own tests; this guard covers the
other blocks, so that a block a user copies never names a module or a name tenantkit does not have.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

import tenantkit

ROOT = Path(__file__).resolve().parent.parent
PAGES = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def python_blocks() -> list[tuple[str, str]]:
    """Each ``python`` block of the pages, with ``page:line`` naming where it starts."""
    blocks = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for match in BLOCK.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            blocks.append((f"{page.relative_to(ROOT)}:{line}", match.group(1)))
    return blocks


BLOCKS = python_blocks()


def test_the_pages_have_python_blocks() -> None:
    """The block pattern finds the pages' code (a pattern that matched nothing would pass every check)."""
    assert len(BLOCKS) > 50


def missing_names(tree: ast.AST) -> list[str]:
    """The ``tenantkit`` modules and names ``tree`` imports or reads that tenantkit does not have."""
    missing = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "tenantkit":
            module = importlib.import_module(node.module)
            missing += [
                f"{node.module}.{alias.name}" for alias in node.names if not hasattr(module, alias.name)
            ]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "tenantkit":
                    importlib.import_module(alias.name)
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "tenantkit"
            and not hasattr(tenantkit, node.attr)
        ):
            missing.append(f"tenantkit.{node.attr}")
    return missing


@pytest.mark.parametrize(("where", "code"), BLOCKS, ids=[where for where, _ in BLOCKS])
def test_a_block_parses_and_names_what_exists(where: str, code: str) -> None:
    """The block is valid Python, and every tenantkit module and name it uses exists."""
    tree = ast.parse(code, filename=where)

    assert missing_names(tree) == []


def test_a_moved_name_is_caught() -> None:
    """A name that left the top level (tables live in ``tenantkit.tables``) is reported."""
    tree = ast.parse("from tenantkit import api_key_table\nimport tenantkit\ntenantkit.team_members\n")

    assert missing_names(tree) == ["tenantkit.api_key_table", "tenantkit.team_members"]
