"""A griffe extension: tenantkit's API as its users see it, with docstrings rendered as Markdown.

The reference shows the curated API: a public module's members are those its ``__all__`` names (not its
type variables or constants kept for itself), and pydantic's ``model_config`` is left out of every model.

The docstrings use two reStructuredText habits that Markdown does not share: cross-reference roles
(``:class:`~tenantkit.TenantKit```) and literal blocks introduced by ``::``. No maintained package
converts them (griffe and mkdocstrings parse Google-style sections but leave roles and ``::`` as text),
so this does the two conversions, at build time, leaving the source readable in a terminal:

* a role becomes a link to the reference entry when the name is part of tenantkit's public API, and
  inline code otherwise (a private helper, another library's class);
* an indented block after a paragraph ending in ``::`` becomes a fenced code block, highlighted as Python
  when it parses as Python and shown as plain text otherwise (the error hierarchy's tree, say).
"""

from __future__ import annotations

import ast
import re
import textwrap
from typing import Any

import griffe

_ROLE = re.compile(r":(?:class|meth|func|attr|mod|exc|data|obj):`(?P<tilde>~?)(?P<target>[^`]+)`")
_PUBLIC_MODULES = ("tenantkit.fastapi", "tenantkit.flask", "tenantkit.testing")


def _public_names() -> dict[str, str]:
    """Each public name, bare and module-qualified, to the path of its reference entry."""
    import importlib

    names: dict[str, str] = {}
    for module_name in ("tenantkit", *_PUBLIC_MODULES):
        module = importlib.import_module(module_name)
        for name in module.__all__:
            names.setdefault(name, f"{module_name}.{name}")
            names[f"{module_name}.{name}"] = f"{module_name}.{name}"
    for module_name in _PUBLIC_MODULES:
        names[module_name] = module_name
    return names


def convert_roles(text: str, public: dict[str, str]) -> str:
    """Rewrite every reST cross-reference role in ``text`` as a Markdown link or inline code."""

    def replace(match: re.Match[str]) -> str:
        target = match["target"].strip()
        shown = target.rsplit(".", 1)[-1] if match["tilde"] else target
        head, _, attribute = target.partition(".")
        if target in public:
            return f"[`{shown}`][{public[target]}]"
        # ``ApiKeyService.verify``: a member of a public class.
        if attribute and head in public and "." not in public[head].removeprefix("tenantkit."):
            return f"[`{shown}`][{public[head]}.{attribute}]"
        return f"`{shown}`"

    return _ROLE.sub(replace, text)


def convert_literal_blocks(text: str) -> str:
    """Turn each ``::`` literal block of ``text`` into a fenced code block."""
    lines = text.splitlines()
    converted: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if not line.rstrip().endswith("::"):
            converted.append(line)
            index += 1
            continue
        introduction = line.rstrip()[:-2].rstrip()
        # "Example::" reads "Example:"; a "::" alone on its line (after a colon already) disappears.
        if introduction:
            converted.append(introduction if introduction.endswith(":") else introduction + ":")
        margin = len(line) - len(line.lstrip())
        block_start = index + 1
        while block_start < len(lines) and not lines[block_start].strip():
            block_start += 1
        block_end = block_start
        while block_end < len(lines) and (
            not lines[block_end].strip() or len(lines[block_end]) - len(lines[block_end].lstrip()) > margin
        ):
            block_end += 1
        while block_end > block_start and not lines[block_end - 1].strip():
            block_end -= 1
        code = textwrap.dedent("\n".join(lines[block_start:block_end]))
        language = "python" if _is_python(code) else "text"
        indent = " " * margin
        converted.extend(["", f"{indent}```{language}"])
        converted.extend(f"{indent}{code_line}" if code_line else "" for code_line in code.splitlines())
        converted.append(f"{indent}```")
        if block_end < len(lines) and lines[block_end].strip():
            converted.append("")
        index = block_end
    return "\n".join(converted)


def _is_python(code: str) -> bool:
    try:
        ast.parse(code)
    except SyntaxError:
        return False
    return True


def _classes(module: griffe.Module) -> list[griffe.Class]:
    """Every class defined in ``module`` and its submodules, nested ones included (aliases are skipped)."""
    found: list[griffe.Class] = []
    pending: list[griffe.Object] = [module]
    while pending:
        obj = pending.pop()
        for member in obj.members.values():
            if isinstance(member, (griffe.Module, griffe.Class)):
                pending.append(member)
            if isinstance(member, griffe.Class):
                found.append(member)
    return found


class RestDocstrings(griffe.Extension):
    """Convert each tenantkit docstring once, before mkdocstrings parses its sections."""

    def __init__(self) -> None:
        self._public = _public_names()

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        if pkg.name != "tenantkit":
            return
        for module_name in ("tenantkit", *_PUBLIC_MODULES):
            module = pkg if module_name == "tenantkit" else pkg.members[module_name.split(".", 1)[1]]
            assert isinstance(module, griffe.Module)
            exported = {str(name) for name in module.exports or ()}
            for name, member in list(module.members.items()):
                if not isinstance(member, griffe.Module) and name not in exported:
                    module.del_member(name)
        for cls in _classes(pkg):
            if "model_config" in cls.members:
                cls.del_member("model_config")

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = convert_literal_blocks(convert_roles(obj.docstring.value, self._public))
