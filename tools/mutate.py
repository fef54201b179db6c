"""Mutation testing for tenantkit's security-critical modules: do the tests notice when the code is wrong?

One small change at a time (a mutant) is made to a module — a comparison or boolean operator swapped, a
constant or slice bound moved by one, a guard ``if …: raise`` removed, a condition negated, a return value
replaced — and that module's tests run against it. A mutant the tests fail on is *killed*; one they pass on
*survived*: a bug of that shape would go unnoticed. The mutant never touches the file on disk: a forked
child process imports the mutated source in place of the module (an import hook), so the src layout, the
editable install and hypothesis all work as usual, and an interrupted run leaves nothing behind.

Bounded for a shared machine: one pytest at a time, SQLite only, hypothesis derandomised (``CI=true`` loads
the suite's ``ci`` profile) with a fresh example database per mutant, a per-mutant timeout, an optional
seeded sample, a total time budget, and a cache of results keyed by the mutant's and the tests' text.

Usage::

    python tools/mutate.py                     # every target (``make mutation``)
    python tools/mutate.py tokens roles        # some targets
    python tools/mutate.py --sample 40 --seed 1 --budget 600
    python tools/mutate.py --list              # the mutants, without running anything

The modules, the code in them that is mutated and the tests that judge it are configured in
:data:`TARGETS` below, and nowhere else: when a module moves, change its dotted name there.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import difflib
import glob
import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
CACHE_FILE = ROOT / ".mutation-cache" / "results.json"
SHARED_TEST_FILES = ("tests/conftest.py", "tests/databases.py", "tests/strategies.py")
"""Test helpers every target's tests use: part of each cached result's key."""


@dataclass(frozen=True)
class Target:
    """One unit of the mutation table: a module, the parts of it to mutate, and the tests that judge them.

    Attributes:
        name: The row's name in the table (and on the command line).
        module: The module's dotted import name.
        tests: Test files (globs, relative to the repository) run against each mutant.
        scopes: Qualified names (``Class.method``, ``function``, ``Class``) whose code is mutated, nested
            code included; empty means the whole module.
    """

    name: str
    module: str
    tests: tuple[str, ...]
    scopes: tuple[str, ...] = ()


TARGETS: tuple[Target, ...] = (
    # The mutation-gap tests come first: pytest runs files in this order and stops at the first failure.
    Target(
        "key format",
        "tenantkit.api_keys._format",
        (
            "tests/test_mutation_gaps_keys.py",
            "tests/test_api_keys_pipeline.py",
            "tests/test_api_keys_properties.py",
            "tests/test_api_keys.py",
        ),
    ),
    Target(
        "hashers",
        "tenantkit.api_keys._hashers",
        (
            "tests/test_mutation_gaps_keys.py",
            "tests/test_api_keys_pipeline.py",
            "tests/test_api_keys.py",
            "tests/test_api_keys_properties.py",
        ),
    ),
    Target(
        "verification",
        "tenantkit.api_keys._service",
        (
            "tests/test_mutation_gaps_keys.py",
            "tests/test_api_keys_pipeline.py",
            "tests/test_api_keys.py",
            "tests/test_api_keys_cache_race.py",
            "tests/test_api_keys_properties.py",
        ),
        # The verify path: format, candidates, cache, fetch, match, the one decision, the side effects.
        scopes=(
            "check_scopes",
            "require_scopes",
            "_DigestCandidates",
            "_Argon2Candidates",
            "_decide",
            "_decide_cached",
            "ApiKeyService.verify",
            "ApiKeyService.verify_and_report",
            "ApiKeyService._verify",
            "ApiKeyService._verify_stored",
            "ApiKeyService.verify_cached",
            "ApiKeyService.authenticate",
            "ApiKeyService.authenticate_and_report",
            "ApiKeyService._begin",
            "ApiKeyService._complete",
            "ApiKeyService.begin_verification",
            "PendingVerification",
            "ApiKeyService._touch_due",
            "ApiKeyService._remember",
            "ApiKeyService._valid_result",
        ),
    ),
    Target(
        "tokens",
        "tenantkit.invitations._tokens",
        ("tests/test_mutation_gaps_tokens.py", "tests/test_tokens.py", "tests/test_invitations.py"),
    ),
    Target(
        "addresses",
        "tenantkit._addresses",
        ("tests/test_mutation_gaps_addresses.py", "tests/test_addresses.py", "tests/test_invitations.py"),
    ),
    Target(
        "roles",
        "tenantkit.roles._policy",
        (
            "tests/test_mutation_gaps_roles.py",
            "tests/test_policy.py",
            "tests/test_roles.py",
            "tests/test_membership.py",
        ),
        # All of it: Role, Action, the default table and the policy object every check goes through
        # (Permissions: can/require/can_grant/can_manage/with_actions).
    ),
    Target(
        "owner invariant",
        "tenantkit.members._service",
        (
            "tests/test_mutation_gaps_roles.py",
            "tests/test_membership.py",
            "tests/test_membership_stateful.py",
        ),
        scopes=(
            "_Locked",
            "MembershipService.change_role",
            "MembershipService.leave",
            "MembershipService._delete",
            "MembershipService.transfer_ownership",
        ),
    ),
)


@dataclass(frozen=True)
class Equivalent:
    """A surviving mutant that no test can kill, because the mutated program behaves the same.

    Matched by target, enclosing qualified name and the mutated line's text, not by line number, so the
    entry survives edits elsewhere in the module and a move of the module.
    """

    target: str
    scope: str
    mutated: str
    why: str


_IDEMPOTENT = (
    "the column processors are idempotent (see tenantkit._db.Plan) and pass None through: more conversion "
    "is a no-op"
)
_SIGNATURE_REFUSES = (
    "the signature check that follows refuses another number of parts and parts that do not decode"
)
_CANONICAL_REFUSES = "_canonical refuses the empty token and any 1-character one (a token needs three parts)"

EQUIVALENTS: tuple[Equivalent, ...] = (
    Equivalent("key format", "base62", "digits = ['0X'] * width", "the loop overwrites every position"),
    Equivalent(
        "verification",
        "_DigestCandidates.lookup",
        "if len(self._stores) == 0:",
        "with one hasher the general expression builds the same one-element tuple (cache_key,)",
    ),
    Equivalent(
        "verification",
        "_DigestCandidates.match",
        "if len(lookup) == 0:",
        "without the one-hasher fast path the general loop finds the same row at position 0",
    ),
    Equivalent(
        "verification",
        "_DigestCandidates.match",
        "if best is None or position <= best[1]:",
        "differs only when two rows hold stored forms of one key, which issuing never makes",
    ),
    Equivalent(
        "verification",
        "ApiKeyService._complete",
        "ticket = refusal_ticket = 1",
        "each ticket is read only when its cache is on, and then it is taken before the lookup",
    ),
    Equivalent(
        "verification",
        "ApiKeyService._verify_stored",
        "if last_used_at is not None or (type(last_used_at) is not datetime or last_used_at.tzinfo is None):",
        _IDEMPOTENT,
    ),
    Equivalent(
        "tokens",
        "TokenCodec.read",
        "if not isinstance(token, str) or not 1 < len(token) <= MAX_TOKEN_LENGTH or (not token.isascii()):",
        _CANONICAL_REFUSES,
    ),
    Equivalent(
        "tokens",
        "TokenCodec.read",
        "if not isinstance(token, str) or not 0 <= len(token) <= MAX_TOKEN_LENGTH or (not token.isascii()):",
        _CANONICAL_REFUSES,
    ),
    Equivalent("tokens", "_canonical", "return True", _SIGNATURE_REFUSES),
    Equivalent("tokens", "_canonical", "pass", _SIGNATURE_REFUSES),
    Equivalent(
        "roles",
        "Role.parse",
        "pass",
        "Role is a str enum of upper-case names, so the string path returns the same member",
    ),
    Equivalent(
        "addresses",
        "normalize_email",
        "domain = result.ascii_domain.lower().rstrip('.X')",
        "the domain is lower-cased first (no 'X' left), and email-validator refuses a trailing period",
    ),
    Equivalent(
        "tokens",
        "_canonical",
        "return None",
        "_canonical's only caller tests `not _canonical(token)`: None and False are both false",
    ),
)
"""The equivalent mutants of the targets, each with the reason no test can tell it from the original."""


# --- mutants ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mutant:
    """One change to a module: where it is, what it does, and the module's source with it applied."""

    target: Target
    index: int
    line: int
    scope: str
    description: str
    original: str
    mutated: str
    source: str = field(repr=False)

    @property
    def key(self) -> str:
        return f"{self.target.name}#{self.index}"


_COMPARE_SWAPS: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}
_BINOP_SWAPS: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Add,
    ast.FloorDiv: ast.Mult,
    ast.Mod: ast.FloorDiv,
    ast.BitOr: ast.BitAnd,
    ast.BitAnd: ast.BitOr,
}
_CALL_SWAPS = {"all": "any", "any": "all", "min": "max", "max": "min"}
_UNMUTATED_CALLS = ("logger.", "logging.")
"""Calls whose arguments are not mutated: log lines are not behaviour the tests pin."""
_UNMUTATED_ASSIGNMENTS = ("__all__", "__slots__")


class _Mutator(ast.NodeTransformer):
    """Walks a module in a fixed order, numbering every possible change; applies the ``wanted``-th one.

    With ``wanted`` at -1 nothing is applied and :attr:`found` lists the changes (line, scope, text).
    """

    def __init__(self, scopes: tuple[str, ...], wanted: int = -1) -> None:
        self.scopes = scopes
        self.wanted = wanted
        self.count = 0
        self.found: list[tuple[int, str, str]] = []
        self.applied_line = 0
        self._names: list[str] = []
        self._frozen = 0
        self.defined: set[str] = set()

    # -- bookkeeping ---------------------------------------------------------------------------------------

    @property
    def scope(self) -> str:
        return ".".join(self._names)

    def _in_scope(self) -> bool:
        if self._frozen:
            return False
        if not self.scopes:
            return True
        here = self.scope
        return any(here == scope or here.startswith(scope + ".") for scope in self.scopes)

    def _offer(self, node: ast.AST, description: str) -> bool:
        """Count a possible change at ``node``; true when it is the one to apply."""
        if not self._in_scope():
            return False
        index = self.count
        self.count += 1
        line = getattr(node, "lineno", 0)
        self.found.append((line, self.scope, description))
        if index == self.wanted:
            self.applied_line = line
            return True
        return False

    def _named(self, node: ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) -> ast.AST:
        # Decorators, annotations and defaults are not mutated: annotations are strings at run time here.
        self._names.append(node.name)
        self.defined.add(self.scope)
        node.body = self._body(node.body)
        self._names.pop()
        return node

    def _body(self, body: list[ast.stmt]) -> list[ast.stmt]:
        result: list[ast.stmt] = []
        for statement in body:
            if _is_docstring(statement):  # a docstring, also one documenting the attribute above it
                result.append(statement)
                continue
            visited = self.visit(statement)
            if visited is None:
                continue
            result.extend(visited if isinstance(visited, list) else [visited])
        return result or [ast.Pass()]

    def _frozen_visit(self, node: ast.AST) -> ast.AST:
        self._frozen += 1
        try:
            return self.generic_visit(node)
        finally:
            self._frozen -= 1

    # -- what is not mutated -------------------------------------------------------------------------------

    def visit_Module(self, node: ast.Module) -> ast.AST:
        node.body = self._body(node.body)
        return node

    visit_ClassDef = _named
    visit_FunctionDef = _named
    visit_AsyncFunctionDef = _named

    def visit_Import(self, node: ast.Import) -> ast.AST:
        return node

    def visit_ImportFrom(self, node: ast.ImportFrom) -> ast.AST:
        return node

    def visit_Assert(self, node: ast.Assert) -> ast.AST:
        # Asserts narrow types for mypy; ``python -O`` drops them, so they are not behaviour.
        return node

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST:
        if node.value is not None:
            node.value = self.visit(node.value)
        return node

    def visit_Assign(self, node: ast.Assign) -> ast.AST:
        names = {target.id for target in node.targets if isinstance(target, ast.Name)}
        if names & set(_UNMUTATED_ASSIGNMENTS):
            return node
        return self.generic_visit(node)

    def visit_JoinedStr(self, node: ast.JoinedStr) -> ast.AST:
        # The text of an f-string is wording; its interpolated expressions are still mutated.
        for value in node.values:
            if isinstance(value, ast.FormattedValue):
                value.value = self.visit(value.value)
        return node

    def visit_Raise(self, node: ast.Raise) -> ast.AST:
        # Which error is raised is behaviour; its message's wording is not mutated.
        if isinstance(node.exc, ast.Call):
            call = node.exc
            call.args = [arg if _is_text(arg) else self.visit(arg) for arg in call.args]
        return node

    # -- what is mutated -----------------------------------------------------------------------------------

    def visit_Call(self, node: ast.Call) -> ast.AST:
        if ast.unparse(node.func).startswith(_UNMUTATED_CALLS):
            return node
        self.generic_visit(node)
        if isinstance(node.func, ast.Name) and node.func.id in _CALL_SWAPS:
            swapped = _CALL_SWAPS[node.func.id]
            if self._offer(node, f"{node.func.id}() → {swapped}()"):
                node.func = ast.Name(id=swapped, ctx=ast.Load())
        return node

    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        self.generic_visit(node)
        for position, operator in enumerate(node.ops):
            swapped = _COMPARE_SWAPS.get(type(operator))
            if swapped is not None and self._offer(node, "comparison operator swapped"):
                node.ops[position] = swapped()
        return node

    def visit_BoolOp(self, node: ast.BoolOp) -> ast.AST:
        self.generic_visit(node)
        if self._offer(node, "and ↔ or"):
            node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        return node

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        swapped = _BINOP_SWAPS.get(type(node.op))
        if swapped is not None and self._offer(node, "arithmetic operator swapped"):
            node.op = swapped()
        return node

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.op, ast.Not | ast.USub) and self._offer(node, "unary operator removed"):
            return node.operand
        return node

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        value = node.value
        if isinstance(value, bool):
            if self._offer(node, "boolean flipped"):
                return ast.Constant(not value)
        elif isinstance(value, int):
            if self._offer(node, f"{value} → {value + 1}"):
                return ast.Constant(value + 1)
            if value != 0 and self._offer(node, f"{value} → {value - 1}"):
                return ast.Constant(value - 1)
        elif isinstance(value, str) and self._offer(node, "string changed"):
            return ast.Constant(value + "X" if value else "X")
        return node

    def visit_If(self, node: ast.If) -> ast.AST | list[ast.stmt]:
        node.test = self.visit(node.test)
        node.body = self._body(node.body)
        node.orelse = self._body(node.orelse) if node.orelse else []
        if self._offer(node, "condition negated"):
            node.test = ast.UnaryOp(op=ast.Not(), operand=node.test)
            return node
        guard = not node.orelse and len(node.body) == 1 and isinstance(node.body[0], ast.Raise | ast.Return)
        if guard and self._offer(node, "guard removed"):
            return ast.Pass()
        return node

    def visit_IfExp(self, node: ast.IfExp) -> ast.AST:
        self.generic_visit(node)
        if self._offer(node, "condition negated"):
            node.test = ast.UnaryOp(op=ast.Not(), operand=node.test)
        return node

    def visit_Return(self, node: ast.Return) -> ast.AST:
        self.generic_visit(node)
        if node.value is not None and not _is_none(node.value) and self._offer(node, "return value → None"):
            node.value = ast.Constant(None)
        return node


def _is_docstring(statement: ast.stmt) -> bool:
    return isinstance(statement, ast.Expr) and _is_text(statement.value)


def _is_text(node: ast.expr) -> bool:
    return isinstance(node, ast.JoinedStr) or (isinstance(node, ast.Constant) and isinstance(node.value, str))


def _is_none(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def module_path(module: str) -> Path:
    """The source file of ``module``, found without importing it or its packages.

    (``importlib.util.find_spec`` imports the parent packages, which would import the unmutated module into
    the process that forks the children.)
    """
    parts = module.split(".")
    spec = importlib.machinery.PathFinder.find_spec(parts[0])
    for depth in range(2, len(parts) + 1):
        if spec is None or spec.submodule_search_locations is None:
            break
        spec = importlib.machinery.PathFinder.find_spec(
            ".".join(parts[:depth]), list(spec.submodule_search_locations)
        )
    if spec is None or spec.origin is None:
        raise SystemExit(f"mutation target {module!r} cannot be found: update TARGETS in tools/mutate.py")
    return Path(spec.origin)


def mutants(target: Target) -> list[Mutant]:
    """Every mutant of ``target``, in source order."""
    path = module_path(target.module)
    text = path.read_text()
    survey = _Mutator(target.scopes)
    survey.visit(ast.parse(text))
    missing = sorted(set(target.scopes) - survey.defined)
    if missing or not survey.found:
        raise SystemExit(f"{target.name}: {missing or 'nothing'} not found in {path}; update TARGETS")
    plain_lines = ast.unparse(ast.parse(text)).splitlines()
    result: list[Mutant] = []
    for index, (line, scope, description) in enumerate(survey.found):
        applier = _Mutator(target.scopes, wanted=index)
        tree = applier.visit(ast.parse(text))
        source = ast.unparse(ast.fix_missing_locations(tree))
        removed, added = _changed_lines(plain_lines, source.splitlines())
        result.append(Mutant(target, index, line, scope, description, removed, added, source))
    return result


def _changed_lines(before: list[str], after: list[str]) -> tuple[str, str]:
    removed: list[str] = []
    added: list[str] = []
    for change in difflib.unified_diff(before, after, lineterm="", n=0):
        if change.startswith("-") and not change.startswith("---"):
            removed.append(change[1:].strip())
        elif change.startswith("+") and not change.startswith("+++"):
            added.append(change[1:].strip())
    return " / ".join(removed), " / ".join(added)


def equivalent(mutant: Mutant) -> Equivalent | None:
    for entry in EQUIVALENTS:
        if (entry.target, entry.scope, entry.mutated) == (mutant.target.name, mutant.scope, mutant.mutated):
            return entry
    return None


# --- running --------------------------------------------------------------------------------------------


class _MutantFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves one module's mutated source in place of the file on disk."""

    def __init__(self, module: str, path: Path, source: str) -> None:
        self.module = module
        self.path = path
        self.source = source

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != self.module:
            return None
        is_package = self.path.name == "__init__.py"
        return importlib.util.spec_from_file_location(
            fullname,
            self.path,
            loader=self,
            submodule_search_locations=[str(self.path.parent)] if is_package else None,
        )

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        exec(compile(self.source, str(self.path), "exec"), module.__dict__)  # noqa: S102 - the mutant itself


def test_files(target: Target) -> list[str]:
    files: list[str] = []
    for pattern in target.tests:
        files.extend(sorted(glob.glob(str(ROOT / pattern))))
    return files


def _run_pytest(target: Target, source: str | None, timeout: float, log: Path) -> tuple[str, float]:
    """Run ``target``'s tests in a forked child, against ``source`` (``None``: the unmutated module).

    Returns the outcome (``killed``, ``survived``, ``timeout`` or ``error``) and the seconds it took.
    """
    import pytest

    _check_not_imported()
    started = time.monotonic()
    storage = tempfile.mkdtemp(prefix="tenantkit-mutant-")
    pid = os.fork()
    if pid == 0:  # the child: import the mutant, run the tests, report by exit status
        code = 4
        try:
            os.setpgid(0, 0)
            os.environ["HYPOTHESIS_STORAGE_DIRECTORY"] = storage
            with open(log, "w") as output:
                os.dup2(output.fileno(), 1)
                os.dup2(output.fileno(), 2)
            if source is not None:
                sys.meta_path.insert(0, _MutantFinder(target.module, module_path(target.module), source))
            code = int(pytest.main(["-x", "-q", "-p", "no:cacheprovider", *test_files(target)]))
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    deadline = started + timeout
    status = None
    try:
        while status is None:
            finished, wait_status = os.waitpid(pid, os.WNOHANG)
            if finished:
                status = os.waitstatus_to_exitcode(wait_status)
            elif time.monotonic() > deadline:
                os.killpg(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return "timeout", time.monotonic() - started
            else:
                time.sleep(0.05)
    except BaseException:  # Ctrl-C or SIGTERM: the child must not outlive the run
        os.killpg(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise
    finally:
        shutil.rmtree(storage, ignore_errors=True)
    elapsed = time.monotonic() - started
    # pytest: 0 all passed, 1 a test failed, 2 a collection error, 3 an internal error, 4 a conftest that
    # failed to import (the mutant broke the import; the unmutated baseline ran, so the arguments are fine);
    # anything else (5: no tests collected, a signal) means the run proved nothing.
    outcome = {0: "survived", 1: "killed", 2: "killed", 3: "killed", 4: "killed"}.get(status, "error")
    return outcome, elapsed


def _cache_key(mutant: Mutant) -> str:
    digest = hashlib.sha256(mutant.source.encode())
    for name in [*test_files(mutant.target), *(str(ROOT / helper) for helper in SHARED_TEST_FILES)]:
        digest.update(name.encode())
        digest.update(Path(name).read_bytes())
    return digest.hexdigest()


def _load_cache() -> dict[str, str]:
    try:
        loaded = json.loads(CACHE_FILE.read_text())
    except (OSError, ValueError):
        return {}
    return {str(key): str(value) for key, value in loaded.items()} if isinstance(loaded, dict) else {}


def _save_cache(cache: dict[str, str]) -> None:
    CACHE_FILE.parent.mkdir(exist_ok=True)
    CACHE_FILE.write_text(json.dumps(cache, indent=0, sort_keys=True))


def _preimport() -> None:
    # Imported once in the parent, so that each forked child only imports tenantkit and the tests. Not
    # hypothesis: its pytest plugin must be imported by pytest (assertion rewriting).
    for name in ("pytest", "sqlalchemy", "pydantic", "argon2", "itsdangerous", "email_validator"):
        with contextlib.suppress(ImportError):
            __import__(name)
    _check_not_imported()


def _check_not_imported() -> None:
    if any(
        name in ("tenantkit", "tests") or name.startswith(("tenantkit.", "tests.")) for name in sys.modules
    ):
        raise SystemExit("tenantkit was imported before the mutants: it must be imported by each child")


@dataclass
class Row:
    """One target's line in the table."""

    name: str
    mutants: int = 0
    killed: int = 0
    survived: int = 0
    timeout: int = 0
    equivalent: int = 0
    error: int = 0
    not_run: int = 0

    @property
    def judged(self) -> int:
        return self.killed + self.survived + self.timeout

    @property
    def percent(self) -> float:
        # A timeout counts as killed (the tests noticed something), an equivalent mutant not at all.
        return 100.0 * (self.killed + self.timeout) / self.judged if self.judged else 100.0


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run(  # noqa: C901  one loop over targets and mutants with its budget, cache and timeout branches
    selected: Sequence[Target],
    *,
    sample: int | None,
    seed: int,
    budget: float,
    use_cache: bool,
    fail_under: float,
) -> int:
    """Run the mutants of ``selected``, print the table; 1 when a target is below ``fail_under`` % killed."""
    os.environ["CI"] = "true"
    os.environ["TENANTKIT_TEST_DIALECTS"] = "sqlite"
    signal.signal(signal.SIGTERM, _terminate)
    _preimport()
    cache = _load_cache() if use_cache else {}
    log_dir = Path(tempfile.mkdtemp(prefix="tenantkit-mutation-logs-"))
    started = time.monotonic()
    rows: list[Row] = []
    survivors: list[tuple[Mutant, str]] = []
    equivalents: list[tuple[Mutant, Equivalent]] = []
    for target in selected:
        row = Row(target.name)
        rows.append(row)
        chosen = mutants(target)
        if sample is not None and sample < len(chosen):
            sampler = random.Random(f"{seed}:{target.name}")  # noqa: S311 - a reproducible sample, no secret
            chosen = sorted(sampler.sample(chosen, sample), key=lambda mutant: mutant.index)
        row.mutants = len(chosen)
        baseline, seconds = _run_pytest(target, None, 600, log_dir / "baseline.log")
        if baseline != "survived":
            print(f"{target.name}: the unmutated tests fail ({baseline}); see {log_dir / 'baseline.log'}")
            row.error = len(chosen)
            continue
        timeout = max(10.0, 3 * seconds + 5)
        print(f"{target.name}: {len(chosen)} mutants, tests take {seconds:.1f} s", flush=True)
        for mutant in chosen:
            known = equivalent(mutant)
            if known is not None:
                row.equivalent += 1
                equivalents.append((mutant, known))
                continue
            key = _cache_key(mutant)
            outcome = cache.get(key)
            if outcome is None:
                if time.monotonic() - started > budget:
                    row.not_run += 1
                    continue
                log = log_dir / f"{target.name.replace(' ', '_')}-{mutant.index}.log"
                outcome, _ = _run_pytest(target, mutant.source, timeout, log)
                if outcome != "error":
                    cache[key] = outcome
                    if use_cache:
                        _save_cache(cache)
            setattr(row, outcome, getattr(row, outcome) + 1)
            if outcome in ("survived", "error"):
                survivors.append((mutant, outcome))
    _print_report(rows, survivors, equivalents, time.monotonic() - started)
    shutil.rmtree(log_dir, ignore_errors=True)
    below = [row.name for row in rows if row.percent < fail_under or row.error or row.not_run]
    if below:
        print(f"\nbelow {fail_under:g} % killed, or not completely run: {', '.join(below)}")
        return 1
    return 0


def _print_report(
    rows: list[Row],
    survivors: list[tuple[Mutant, str]],
    equivalents: list[tuple[Mutant, Equivalent]],
    took: float,
) -> None:
    print()
    print(f"| {'module':<16} | mutants | killed | survived | timeout | equivalent | not run | % killed |")
    print(f"|{'-' * 18}|---------|--------|----------|---------|------------|---------|----------|")
    total = Row("total")
    for row in rows:
        print(_table_line(row))
        for name in ("mutants", "killed", "survived", "timeout", "equivalent", "error", "not_run"):
            setattr(total, name, getattr(total, name) + getattr(row, name))
    print(_table_line(total))
    print(f"\n{took:.0f} s")
    for mutant, outcome in survivors:
        print(f"\n{outcome.upper()} {_where(mutant)}  [{mutant.scope or '<module>'}] {mutant.description}")
        print(f"  - {mutant.original}\n  + {mutant.mutated}")
    if equivalents:
        print(f"\n{len(equivalents)} equivalent mutants (see EQUIVALENTS in tools/mutate.py)")


def _table_line(row: Row) -> str:
    return (
        f"| {row.name:<16} | {row.mutants:>7} | {row.killed:>6} | {row.survived:>8} | {row.timeout:>7} "
        f"| {row.equivalent:>10} | {row.not_run + row.error:>7} | {row.percent:>7.1f}% |"
    )


def _where(mutant: Mutant) -> str:
    path = module_path(mutant.target.module)
    try:
        shown = path.relative_to(ROOT)
    except ValueError:
        shown = path
    return f"{shown}:{mutant.line}"


def _list(selected: Sequence[Target]) -> None:
    for target in selected:
        found = mutants(target)
        print(f"{target.name}: {len(found)} mutants")
        for mutant in found:
            print(f"  {_where(mutant)} [{mutant.scope or '<module>'}] {mutant.description}: {mutant.mutated}")


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    names = [target.name for target in TARGETS]
    parser.add_argument("targets", nargs="*", metavar="TARGET", help=f"targets to run (default all): {names}")
    parser.add_argument("--sample", type=int, help="at most this many mutants per target (seeded sample)")
    parser.add_argument("--seed", type=int, default=0, help="the sample's seed (default 0)")
    parser.add_argument("--budget", type=float, default=3600, help="stop starting mutants after N seconds")
    parser.add_argument("--no-cache", action="store_true", help="ignore and do not write cached results")
    parser.add_argument("--fail-under", type=float, default=90, help="exit 1 below this %% killed (90)")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _parse(sys.argv[1:] if argv is None else argv)
    by_name = {target.name.replace(" ", "-"): target for target in TARGETS}
    wanted = [name.replace(" ", "-") for name in arguments.targets]
    unknown = [name for name in wanted if name not in by_name]
    if unknown:
        raise SystemExit(f"unknown targets {unknown}; known: {sorted(by_name)}")
    selected = [by_name[name] for name in wanted] if wanted else list(TARGETS)
    if arguments.list:
        _list(selected)
        return 0
    return run(
        selected,
        sample=arguments.sample,
        seed=arguments.seed,
        budget=arguments.budget,
        use_cache=not arguments.no_cache,
        fail_under=arguments.fail_under,
    )


if __name__ == "__main__":
    sys.exit(main())
