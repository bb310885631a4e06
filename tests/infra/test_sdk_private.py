"""The upgrade canary for infra/sdk_private.py, and the rule that nothing else reaches past an SDK's public API.

``PRIVATE_NAMES`` lists every unexported name the quarantine uses; each is looked up in the installed package,
so an upgrade that removes or renames one fails here naming it. The tree scan reads every Python file of the
repository, tests included, with ``ast`` and fails on any import or attribute use of an unexported name of
Pulumi, pulumi-policy, uvicorn or the MCP SDK outside infra/sdk_private.py.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from collections.abc import Iterator
from pathlib import Path

import pulumi
import pytest

from infra import sdk_private
from infra.recording import PreviewMocks

ROOT = Path(__file__).resolve().parents[2]
QUARANTINE = ROOT / "infra" / "sdk_private.py"
SKIPPED_DIRS = {".venv", "build", ".git", "node_modules", "__pycache__"}
SDK_ROOTS = {"pulumi", "pulumi_policy", "pulumi_kubernetes", "pulumi_docker_build", "pulumi_vault", "mcp",
             "mcp_types", "uvicorn"}
# Packages whose ``__all__`` is their public surface: a submodule or name outside it is not exported
# (``pulumi.output.Unknown``, ``pulumi.runtime.mocks.MockMonitor``, ``uvicorn.server.ServerState`` ...).
ALL_IS_PUBLIC = ("pulumi", "pulumi.runtime", "pulumi.dynamic", "uvicorn")
# Modules a package lists but whose own names are not API: pulumi.runtime.rpc has no ``__all__`` and is the
# SDK's wire format (UNKNOWN, unwrap_rpc_secret, serialize_properties ...); pulumi_policy.proxy is left out of
# pulumi_policy's exports.
UNEXPORTED_MODULES = ("pulumi.runtime.rpc", "pulumi_policy.proxy")
# Submodules a package leaves out of ``__all__`` but documents for use (``pulumi.log.info(...)``).
DOCUMENTED_MODULES = ("pulumi.log",)
# A uvicorn.Server's run loop and shutdown (main_loop, on_tick, server_state ...) are not API: loopback servers
# stop through ``should_exit`` and report readiness through ``started``.
UVICORN_SERVER_INTERNALS = {"main_loop", "on_tick", "server_state", "capture_signals", "handle_exit", "servers"}
UVICORN_INTERNALS = "uvicorn.Server's loop and shutdown are not API (public: should_exit, started)"
# What pulumi's resource classes keep on an instance under underscore names (_version, _name, _providers ...):
# read on any object of a module that imports pulumi, the value is almost surely one of them.
RESOURCE_PRIVATE_ATTRIBUTES = frozenset(
    re.findall(r"self\.(_[a-z]\w*)\s*[:=]", inspect.getsource(inspect.getmodule(pulumi.Resource))))


def _resolve(path: str) -> object | None:
    """The module or attribute at a dotted path of an installed package (None when it does not resolve)."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            if not hasattr(found, attribute):
                return None
            found = getattr(found, attribute)
        return found
    return None


def unexported(dotted: str) -> str | None:
    """Why ``dotted`` (a name of an installed SDK) is not public, or None when it is or is not an SDK's."""
    parts = dotted.split(".")
    if parts[0] not in SDK_ROOTS:
        return None
    private = next((p for p in parts if p.startswith("_") and not p.startswith("__")), None)
    if private:
        return f"underscore name {private}"
    for module in UNEXPORTED_MODULES:
        if dotted == module or dotted.startswith(module + "."):
            return f"{module} is not exported"
    if any(dotted == module or dotted.startswith(module + ".") for module in DOCUMENTED_MODULES):
        return None
    for package in ALL_IS_PUBLIC:
        prefix = package.split(".")
        if parts[:len(prefix)] == prefix and len(parts) > len(prefix):
            public = getattr(_resolve(package), "__all__", ())
            if parts[len(prefix)] not in public:
                return f"{parts[len(prefix)]} is not in {package}.__all__"
    return None


class _Uses(ast.NodeVisitor):
    """Dotted SDK names a module imports, reads, subclasses or loads with importlib, with their line."""

    def __init__(self) -> None:
        self.aliases: dict[str, str] = {}
        self.found: list[tuple[int, str]] = []
        self.internals: list[tuple[int, str]] = []  # uses of uvicorn.Server's internals

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.found.append((node.lineno, alias.name))
            if alias.asname:
                self.aliases[alias.asname] = alias.name
            else:
                root = alias.name.split(".")[0]
                self.aliases[root] = root

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level or not node.module:
            return
        for alias in node.names:
            dotted = f"{node.module}.{alias.name}"
            self.found.append((node.lineno, dotted))
            self.aliases[alias.asname or alias.name] = dotted

    def _dotted(self, node: ast.AST) -> str | None:
        if isinstance(node, ast.Name):
            return self.aliases.get(node.id)
        if isinstance(node, ast.Attribute):
            base = self._dotted(node.value)
            return f"{base}.{node.attr}" if base else None
        return None

    def visit_Attribute(self, node: ast.Attribute) -> None:
        dotted = self._dotted(node)
        if dotted:
            self.found.append((node.lineno, dotted))
        if node.attr in UVICORN_SERVER_INTERNALS and "uvicorn" in self.aliases:
            self.internals.append((node.lineno, f"uvicorn.Server.{node.attr}"))
        owner = node.value.id if isinstance(node.value, ast.Name) else ""
        if node.attr in RESOURCE_PRIVATE_ATTRIBUTES and owner not in ("self", "cls") and \
                any(name.split(".")[0] == "pulumi" for name in self.aliases.values()):
            self.found.append((node.lineno, f"pulumi.Resource.{node.attr}"))
        self.generic_visit(node)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for base in node.bases:
            dotted = self._dotted(base)
            if dotted and dotted.startswith("uvicorn."):
                self.internals.append((node.lineno, f"a subclass of {dotted}"))
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        name = getattr(node.func, "attr", getattr(node.func, "id", ""))
        if name in ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant):
            self.found.append((node.lineno, str(node.args[0].value)))
        self.generic_visit(node)


def _python_files() -> Iterator[Path]:
    for path in sorted(ROOT.rglob("*.py")):
        if not SKIPPED_DIRS.intersection(path.relative_to(ROOT).parts) and path != QUARANTINE:
            yield path


def offenders_in(source: str, where: str) -> list[str]:
    uses = _Uses()
    uses.visit(ast.parse(source))
    lines = []
    for line, dotted in uses.found:
        reason = unexported(dotted)
        if reason:
            lines.append(f"{where}:{line}: {dotted} ({reason})")
    lines += [f"{where}:{line}: {what} ({UVICORN_INTERNALS})" for line, what in uses.internals]
    return sorted(set(lines))


@pytest.mark.parametrize(("module", "name"), sdk_private.PRIVATE_NAMES, ids=lambda v: v)
def test_private_name_still_exists(module, name):
    found: object = importlib.import_module(module)
    for attribute in name.split("."):
        assert hasattr(found, attribute), (
            f"{module}.{name} is gone from the installed SDK: update infra/sdk_private.py")
        found = getattr(found, attribute)


def test_the_monitor_keeps_the_registrations_the_recording_engine_writes():
    """``EngineMonitor.remember`` writes where the SDK's getResource invoke reads (an instance attribute)."""
    monitor = sdk_private.EngineMonitor(PreviewMocks())
    monitor.remember("urn:x", "x-id", {"a": 1})
    assert monitor.get_registered_resources()["urn:x"].state == {"a": 1}


def test_wire_signatures_mark_what_the_sdk_reads_as_a_secret():
    signatures = sdk_private.WIRE_SIGNATURES
    assert sdk_private.unwrap_secret({signatures.key: signatures.secret, "value": "x"}) == "x"


@pytest.mark.parametrize(("source", "reason"), [
    ("from pulumi.runtime.mocks import MockMonitor", "mocks is not in pulumi.runtime.__all__"),
    ("from pulumi.runtime.proto import resource_pb2", "proto is not in pulumi.runtime.__all__"),
    ("from pulumi.output import Unknown", "output is not in pulumi.__all__"),
    ("from pulumi.runtime.rpc import UNKNOWN", "pulumi.runtime.rpc is not exported"),
    ("from pulumi.dynamic.dynamic import serialize_provider", "dynamic is not in pulumi.dynamic.__all__"),
    ("from pulumi.runtime.rpc import unwrap_rpc_secret", "pulumi.runtime.rpc is not exported"),
    ("import pulumi_policy.proxy", "pulumi_policy.proxy is not exported"),
    ("importlib.import_module('pulumi_policy.proxy')", "pulumi_policy.proxy is not exported"),
    ("import uvicorn\nclass S(uvicorn.Server):\n    pass", "a subclass of uvicorn.Server"),
    ("import uvicorn\nserver = uvicorn.Server(config)\nserver.server_state", "uvicorn.Server.server_state"),
    ("from uvicorn.server import ServerState", "server is not in uvicorn.__all__"),
    ("import mcp\nmcp.server._private", "underscore name _private"),
    ("from mcp.server.mcpserver import _helper", "underscore name _helper"),
    ("import pulumi\nmade = {}\nmade['x']._version", "underscore name _version"),
])
def test_the_scan_sees_each_kind_of_unexported_use(source, reason):
    (offence,) = offenders_in(source, "example.py")
    assert reason in offence


@pytest.mark.parametrize("source", [
    "import pulumi\npulumi.Output.secret('x')\npulumi.contains_unknowns(1)\npulumi.UNKNOWN",
    "from pulumi.runtime import Mocks, set_mocks\nfrom pulumi.dynamic import ResourceProvider",
    "import uvicorn\nserver = uvicorn.Server(uvicorn.Config(app))\nserver.should_exit = True\nserver.started",
    "from mcp.server.mcpserver import MCPServer",
    "from infra.sdk_private import UNKNOWN, EngineMonitor",
    "import pulumi\npulumi.log.warn('w')",
])
def test_public_names_pass_the_scan(source):
    assert offenders_in(source, "example.py") == []


def test_no_module_outside_the_quarantine_uses_an_unexported_sdk_name():
    offenders = []
    for path in _python_files():
        offenders += offenders_in(path.read_text(), str(path.relative_to(ROOT)))
    assert offenders == [], "move these into infra/sdk_private.py (with the reason) or use the public API"
