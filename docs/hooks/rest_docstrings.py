"""A griffe extension: tenantkit's API as its users see it, with docstrings rendered as Markdown.

The reference shows the curated API: a public module's members are those its ``__all__`` names (not its
type variables or constants kept for itself), and pydantic's ``model_config`` is left out of every model.

The docstrings use two reStructuredText habits that Markdown does not share: cross-reference roles
(``:class:`~tenantkit.TenantKit```) and literal blocks introduced by ``::``. No maintained package
converts them (griffe and mkdocstrings parse Google-style sections but leave roles and ``::`` as text),
so this does the two conversions, at build time, leaving the source readable in a terminal:

* a role becomes a link to the reference entry when it names something the reference shows (resolved
  the way Python would: a method of the class at hand, a name of the module, an absolute path), and
  inline code otherwise (a private helper, another library's class);
* an indented block after a paragraph ending in ``::`` becomes a fenced code block, highlighted as Python
  when it parses as Python and shown as plain text otherwise (the error hierarchy's tree, say).
"""

from __future__ import annotations

import ast
import re
import textwrap
from collections.abc import Callable, Iterator
from typing import Any

import griffe

_ROLE = re.compile(r":(?:class|meth|func|attr|mod|exc|data|obj):`(?P<tilde>~?)(?P<target>[^`]+)`")
# The modules with a reference page; the exceptions' page shows the private module that defines them all.
_PUBLIC_MODULES = (
    "tenantkit.api_keys",
    "tenantkit.fastapi",
    "tenantkit.flask",
    "tenantkit.invitations",
    "tenantkit.members",
    "tenantkit.roles",
    "tenantkit.starlette",
    "tenantkit.testing",
)
_ERRORS_MODULE = "_errors"

# Resolves a role's target, as written, to the canonical path of an object the reference shows.
Resolver = Callable[[str], "str | None"]


def convert_roles(text: str, resolve: Resolver) -> str:
    """Rewrite every reST cross-reference role in ``text`` as a Markdown link or inline code."""

    def replace(match: re.Match[str]) -> str:
        target = match["target"].strip()
        shown = target.rsplit(".", 1)[-1] if match["tilde"] else target
        path = resolve(target)
        return f"[`{shown}`][{path}]" if path else f"`{shown}`"

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


def _target(member: griffe.Object | griffe.Alias) -> griffe.Object | None:
    """The object an alias finally points to (``None`` outside the loaded packages), or the object itself."""
    if isinstance(member, griffe.Alias):
        try:
            final = member.final_target
        except (griffe.AliasResolutionError, griffe.CyclicAliasError):
            return None
        return final if isinstance(final, griffe.Object) else None
    return member


def _objects(module: griffe.Module) -> Iterator[griffe.Object]:
    """Every object defined in ``module`` and its submodules (aliases are skipped)."""
    pending: list[griffe.Object] = [module]
    while pending:
        obj = pending.pop()
        yield obj
        pending.extend(member for member in obj.members.values() if isinstance(member, griffe.Object))


def _shown(pkg: griffe.Module) -> set[str]:
    """The canonical paths of every object the reference pages render."""
    shown: set[str] = set()
    pending: list[griffe.Object] = []
    for name in (*_PUBLIC_MODULES, f"tenantkit.{_ERRORS_MODULE}"):
        module = pkg.members[name.split(".", 1)[1]]
        assert isinstance(module, griffe.Module)  # noqa: S101  narrowing: these names are modules
        pending.append(module)
    pending.append(pkg)
    while pending:
        obj = pending.pop()
        shown.add(obj.canonical_path)
        for name, member in obj.members.items():
            target = _target(member)
            if target is None or name.startswith("_") or isinstance(target, griffe.Module):
                continue
            if target.canonical_path not in shown:
                pending.append(target)
    return shown


class RestDocstrings(griffe.Extension):
    """Curate tenantkit's loaded API, then convert each of its docstrings once."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        if pkg.name != "tenantkit":
            return
        self._curate(pkg)
        shown = _shown(pkg)
        for obj in _objects(pkg):
            if obj.docstring is not None:
                resolve = self._resolver(pkg, obj, shown)
                obj.docstring.value = convert_literal_blocks(convert_roles(obj.docstring.value, resolve))

    @staticmethod
    def _curate(pkg: griffe.Module) -> None:
        for module_name in ("tenantkit", *_PUBLIC_MODULES):
            module = pkg if module_name == "tenantkit" else pkg.members[module_name.split(".", 1)[1]]
            assert isinstance(module, griffe.Module)  # noqa: S101  narrowing: these names are modules
            exported = {str(name) for name in module.exports or ()}
            for name, member in list(module.members.items()):
                if not isinstance(member, griffe.Module) and name not in exported:
                    module.del_member(name)
        for obj in list(_objects(pkg)):
            if isinstance(obj, griffe.Class) and "model_config" in obj.members:
                obj.del_member("model_config")

    @staticmethod
    def _resolver(pkg: griffe.Module, context: griffe.Object, shown: set[str]) -> Resolver:
        def lookup(scope: griffe.Object, dotted: str) -> griffe.Object | None:
            try:
                found = scope[dotted] if "." in dotted else scope.all_members[dotted]
            except (KeyError, ValueError, griffe.AliasResolutionError):
                return None
            return _target(found)

        def resolve(target: str) -> str | None:
            found: griffe.Object | None = None
            if target.startswith("tenantkit."):
                found = lookup(pkg, target.removeprefix("tenantkit."))
            elif target == "tenantkit":
                found = pkg
            else:
                # Innermost scope first: the object itself, its class, its module; then the package.
                scope: griffe.Object | None = context
                while scope is not None and found is None:
                    if isinstance(scope, (griffe.Class, griffe.Module)):
                        found = lookup(scope, target)
                    scope = scope.parent
                if found is None:
                    found = lookup(pkg, target)
            if found is None or found.canonical_path not in shown:
                return None
            return found.canonical_path

        return resolve
