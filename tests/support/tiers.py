"""The two test tiers, decided from what a test uses, never from where its file lives.

A test is in the **server** tier (run by ``make test`` only) when it needs something that listens or that
outlives the call starting it: a real server (OpenBao, PostgreSQL, Redis, nginx, docker-registry), a
loopback fake served over HTTP, a provider-host or policy-analyzer process, or an image build. Everything
else is the **fast** tier (``make test-fast``). A test is in the server tier when

- it carries one of ``SERVER_MARKERS``, or
- its own body, or any fixture it uses (directly or through other fixtures) that the test tree defines,
  mentions one of ``STARTERS``, runs one of ``SERVER_COMMANDS`` (an argv list or ``shutil.which``), or uses a
  function or class of the test tree that does, at any depth.

So a new server class in tests/support that starts its binary with ``subprocess.Popen`` or runs
``redis-server``, and every test that reaches it through a fixture or a helper, lands in the server tier
without being listed anywhere. The fast tier also refuses a listening socket at run time (see conftest),
so a test this reading misses fails there with a line saying what to mark, rather than slowing the tier.
"""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.util
import inspect
import textwrap
import types
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parents[1]
SERVER_MARKERS = frozenset({"server", "e2e", "images", "registry"})
STARTERS = frozenset({
    # a process that outlives the call that started it
    "Popen",
    # HTTP or TCP servers on loopback, fakes included
    "listen", "run_uvicorn_in_thread", "uvicorn", "serve_forever", "HTTPServer", "ThreadingHTTPServer",
    "TCPServer", "start_server", "create_server", "TCPSite", "TestServer",
    # image builds and the registry they push to
    "Buildah", "build_all", "build_service", "LocalRegistry",
})
# Server binaries, seen as the first item of an argv list, or the argument of a lookup such as
# ``shutil.which("nginx")`` or ``_binary("pg_ctl")``.
SERVER_COMMANDS = frozenset({"pg_ctl", "initdb", "postgres", "redis-server", "nginx", "docker-registry", "buildah"})
_LOOKUPS = ("which", "binary")


def _source_tree(obj: object) -> ast.AST | None:
    """The definition's syntax tree without its decorators (parametrize data is not what the test runs)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(obj)))
    except (OSError, TypeError, SyntaxError):
        return None
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            node.decorator_list = []
    return tree


def _in_test_tree(obj: object) -> bool:
    try:
        return _file_in_test_tree(inspect.getfile(obj))
    except (OSError, TypeError):
        return False


@functools.cache
def _file_in_test_tree(filename: str) -> bool:
    return Path(filename).resolve().is_relative_to(TESTS_DIR)


def _is_command(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and \
        Path(node.value).name in SERVER_COMMANDS


def _runs_server_command(node: ast.AST) -> bool:
    if isinstance(node, ast.List | ast.Tuple):
        return bool(node.elts) and _is_command(node.elts[0])
    if isinstance(node, ast.Call) and node.args and _is_command(node.args[0]):
        name = getattr(node.func, "attr", getattr(node.func, "id", ""))
        return any(word in name for word in _LOOKUPS)
    return False


def _namespace(obj: object, tree: ast.AST) -> dict:
    """The names the definition sees: its module's globals, plus what it imports itself from the test tree."""
    if isinstance(obj, type):
        module = inspect.getmodule(obj)
        names = dict(vars(module)) if module else {}
    else:
        names = dict(getattr(obj, "__globals__", {}))
    package = names.get("__package__") or ""
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom):
            continue
        try:
            module_name = importlib.util.resolve_name("." * node.level + (node.module or ""), package)
        except ImportError:
            continue
        if module_name.split(".")[0] != TESTS_DIR.name:
            continue
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        for alias in node.names:
            names[alias.asname or alias.name] = getattr(module, alias.name, None)
    return names


class Classifier:
    """Answers "does this reach a server, and through what?" for functions and classes, remembering answers."""

    def __init__(self) -> None:
        self._known: dict[object, str | None] = {}

    def reason(self, obj: object) -> str | None:
        """None, or the chain that reaches a server, e.g. ``OpenBaoServer -> Popen``."""
        obj = inspect.unwrap(getattr(obj, "__func__", obj))
        key = obj if isinstance(obj, type) else getattr(obj, "__code__", obj)
        if key in self._known:
            return self._known[key]
        self._known[key] = None  # a cycle adds nothing
        self._known[key] = found = self._scan(obj)
        return found

    def _scan(self, obj: object) -> str | None:
        tree = _source_tree(obj)
        if tree is None:
            return None
        namespace = _namespace(obj, tree)
        helpers: list[object] = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Name):
                if node.id in STARTERS:
                    return node.id
                helpers.append(namespace.get(node.id))
            elif isinstance(node, ast.Attribute):
                if node.attr in STARTERS:
                    return node.attr
                if isinstance(node.value, ast.Name) and isinstance(namespace.get(node.value.id), types.ModuleType):
                    helpers.append(getattr(namespace[node.value.id], node.attr, None))
            elif _runs_server_command(node):
                return ast.unparse(node)[:60]
        for helper in helpers:
            if isinstance(helper, type | types.FunctionType) and helper is not obj and _in_test_tree(helper):
                found = self.reason(helper)
                if found:
                    return f"{helper.__name__} -> {found}"
        return None

    def why_server(self, item: pytest.Item) -> str | None:
        """None for the fast tier; for the server tier, what puts the test there."""
        marker = next((name for name in sorted(SERVER_MARKERS) if item.get_closest_marker(name)), None)
        if marker:
            return f"marker {marker}"
        test = getattr(item, "obj", None)
        found = self.reason(test) if test is not None else None
        if found:
            return f"test body -> {found}"
        # pytest keeps the resolved fixture closure on the item; plugins read it there (no public accessor).
        info = getattr(item, "_fixtureinfo", None)
        for name, defs in (info.name2fixturedefs.items() if info else ()):
            for fixturedef in defs:
                if _in_test_tree(fixturedef.func):
                    found = self.reason(fixturedef.func)
                    if found:
                        return f"fixture {name} -> {found}"
        return None
