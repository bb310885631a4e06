"""A recording engine: runs a Pulumi program under the SDK's mocks and keeps what it registered.

Only the SDK's public API runs the program (``reset_options``, ``set_all_config``, ``set_mocks`` and the
``pulumi.runtime.test`` runner, which awaits every registration and output). Mocks are more lenient than
the real engine, so this one makes up for it:
- two resources with the same URN are rejected (the engine does; plain mocks overwrite silently);
- every registration and every pending ``apply`` is awaited before results are read, so program
  exceptions and apply errors surface instead of racing the assertions;
- secrecy is read from what the program itself wrapped as secret on the wire, never from
  ``additional_secret_outputs`` (which the engine applies and mocks ignore);
- protobuf turns every number into a float: integral floats come back as ints;
- an output only a real deployment knows (a built image's digest) is unknown, as in ``pulumi preview``;
- a create is answered by the monitor itself, as the engine answers one in a preview: outputs are the
  inputs exactly as sent, without the mocks' decode and re-encode of every value.

``run_program`` takes a callable; ``run_main`` runs a program directory's ``__main__.py`` the way
Pulumi's Python language host does (config in ``PULUMI_CONFIG``, secret keys in
``PULUMI_CONFIG_SECRET_KEYS``). One process can run many stacks: each run starts from fresh settings.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import os
import runpy
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from google.protobuf import json_format, struct_pb2
from pulumi.runtime import (
    MockCallArgs,
    MockResourceArgs,
    Mocks,
    get_root_resource,
    reset_options,
    set_all_config,
    set_mocks,
)

from infra.environ import environ_set
from infra.sdk_private import UNKNOWN as WIRE_UNKNOWN
from infra.sdk_private import WIRE_SIGNATURES, EngineMonitor, serialize_properties

SECRET = "[secret]"
UNKNOWN = "[unknown]"
STACK_TYPE = "pulumi:pulumi:Stack"
DOCKER_BUILD_IMAGE = "docker-build:index:Image"

_SIG_KEY = WIRE_SIGNATURES.key
_SECRET_SIG = WIRE_SIGNATURES.secret
_RESOURCE_SIG = WIRE_SIGNATURES.resource
_OUTPUT_VALUE_SIG = WIRE_SIGNATURES.output_value
_ASSET_SIGS = {WIRE_SIGNATURES.asset: "asset", WIRE_SIGNATURES.archive: "archive"}

# pulumi.log.* from the program: kept off the terminal (the preview reports errors as one line itself).
PROGRAM_LOG = logging.getLogger("infra.recording.program")
PROGRAM_LOG.addHandler(logging.NullHandler())
PROGRAM_LOG.propagate = False


class DuplicateUrnError(RuntimeError):
    """Two resources registered under one URN: the real engine refuses this, so the preview does too."""


@dataclass
class RecordedResource:
    """One registration as the engine saw it (inputs are plain python, secrets already replaced)."""

    urn: str
    type: str
    name: str
    parent: str | None
    custom: bool
    inputs: dict[str, Any]
    secret_paths: list[str]
    outputs: dict[str, Any]
    id: str | None = None
    provider: str | None = None
    protect: bool = False
    depends_on: list[str] = field(default_factory=list)
    # As declared by the program; informational only: the engine applies it, mocks do not.
    additional_secret_outputs: list[str] = field(default_factory=list)
    # What a ComponentResource passed to register_outputs (secrets replaced).
    registered_outputs: dict[str, Any] = field(default_factory=dict)
    # The provider plugin the engine is asked to use (version, download URL), as the registration names them.
    plugin_version: str | None = None
    plugin_download_url: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The resources.json row."""
        return {"urn": self.urn, "type": self.type, "name": self.name, "parent": self.parent,
                "inputs": self.inputs}


@dataclass
class Recording:
    """Everything one program run registered, in registration order."""

    stack: str
    project: str
    resources: list[RecordedResource]
    outputs: dict[str, Any]
    output_secret_paths: list[str]

    def by_type(self, type_: str) -> list[RecordedResource]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str, name: str) -> RecordedResource:
        """The single resource of that type and name; a clear error when there is none or several."""
        found = [r for r in self.resources if r.type == type_ and r.name == name]
        if len(found) != 1:
            names = sorted(r.name for r in self.by_type(type_))
            raise LookupError(f"expected exactly one {type_} named {name!r}, found {len(found)} "
                              f"(names of that type: {names})")
        return found[0]

    def children_of(self, urn: str) -> list[RecordedResource]:
        return [r for r in self.resources if r.parent == urn]

    def in_tree_order(self) -> list[RecordedResource]:
        """Parents before their children, siblings by (type, name): registration order depends on
        thread scheduling, this order does not (files and tables compare across runs)."""
        by_urn = {r.urn: r for r in self.resources}

        def chain(r: RecordedResource) -> tuple[tuple[str, str], ...]:
            parent = by_urn.get(r.parent or "")
            return (*(chain(parent) if parent else ()), (r.type, r.name))

        return sorted(self.resources, key=chain)

def _plain(value: Any, path: str, secret_paths: list[str]) -> Any:
    """Wire value (Struct as python) -> plain python; secrets -> "[secret]" with their path noted."""
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if isinstance(value, list):
        return [_plain(v, f"{path}[{i}]", secret_paths) for i, v in enumerate(value)]
    if isinstance(value, str):
        return UNKNOWN if value == WIRE_UNKNOWN else value
    if not isinstance(value, dict):
        return value
    sig = value.get(_SIG_KEY)
    if sig == _SECRET_SIG:
        secret_paths.append(path)
        return SECRET
    if sig == _OUTPUT_VALUE_SIG:
        if value.get("secret"):
            secret_paths.append(path)
            return SECRET
        return _plain(value["value"], path, secret_paths) if "value" in value else UNKNOWN
    if sig == _RESOURCE_SIG:
        return value.get("urn")
    if sig in _ASSET_SIGS:
        return {"kind": _ASSET_SIGS[sig], **{k: v for k, v in value.items() if k != _SIG_KEY}}
    return {k: _plain(v, f"{path}.{k}" if path else k, secret_paths) for k, v in value.items()}


def struct_to_python(struct: Any) -> tuple[dict[str, Any], list[str]]:
    """A protobuf Struct as plain python plus the list of secret paths within it."""
    secret_paths: list[str] = []
    if struct is None:
        return {}, secret_paths
    raw = json_format.MessageToDict(struct)
    return _plain(raw, "", secret_paths), secret_paths


class PreviewMocks(Mocks):
    """Answers for reads (``Resource.get``), invokes and calls: what was asked, echoed. Registrations never
    reach it: the monitor answers them itself (``RecordingMonitor.RegisterResource``)."""

    def new_resource(self, args: MockResourceArgs) -> tuple[str, dict]:
        return preview_id(args.typ, args.name, args.inputs, args.resource_id), dict(args.inputs)

    def call(self, args: MockCallArgs) -> tuple[dict, list | None]:
        return dict(args.args), None


def preview_id(type_: str, name: str, inputs: dict[str, Any], given: str | None = None) -> str:
    """The id a preview shows: a Kubernetes object's ``namespace/name`` (as the provider reports it), else
    ``<name>-id``."""
    if given:
        return given
    if type_.startswith("kubernetes:"):
        metadata = inputs.get("metadata") if isinstance(inputs.get("metadata"), dict) else {}
        object_name = metadata.get("name") or name
        namespace = metadata.get("namespace")
        return f"{namespace}/{object_name}" if namespace else str(object_name)
    return f"{name}-id"


class RecordingMonitor(EngineMonitor):
    """The SDK's mock monitor, recording raw registrations and refusing duplicate URNs."""

    def __init__(self, mocks: Mocks):
        super().__init__(mocks)
        self._lock = threading.Lock()
        self.records: dict[str, RecordedResource | None] = {}
        self.order: list[str] = []
        self.errors: list[Exception] = []

    def _claim(self, urn: str) -> None:
        with self._lock:
            if urn in self.records:
                err = DuplicateUrnError(f"duplicate resource URN {urn}: two resources share this type, "
                                        "name and parent; give one of them another name")
                self.errors.append(err)
                raise err
            self.records[urn] = None  # reserved; filled by _record
            self.order.append(urn)

    def _record(self, request: Any, urn: str, custom: bool) -> RecordedResource:
        inputs, secret_paths = struct_to_python(request.object if hasattr(request, "object")
                                                else request.properties)
        record = RecordedResource(
            urn=urn, type=request.type, name=request.name, parent=request.parent or None,
            custom=custom, inputs=inputs, secret_paths=secret_paths, outputs={},
            provider=request.provider or None, protect=bool(getattr(request, "protect", False)),
            depends_on=list(getattr(request, "dependencies", []) or []),
            additional_secret_outputs=list(getattr(request, "additionalSecretOutputs", []) or []),
            plugin_version=request.version or None, plugin_download_url=request.pluginDownloadURL or None,
        )
        self.records[urn] = record
        return record

    def RegisterResource(self, request):
        """A create in a preview: the outputs are the inputs, on the wire as the SDK sent them (secrets,
        unknowns and resource references intact), so the SDK reads them back as its own round trip would.
        A docker-build Image's ``ref`` and ``digest`` exist only after a real build and push: unknown."""
        urn = self.urn_of(request.parent, request.type, request.name)
        if request.type == STACK_TYPE:
            return self.registered(urn)
        self._claim(urn)
        record = self._record(request, urn, bool(request.custom))
        if not record.custom:
            return self.registered(urn)
        record.id = preview_id(request.type, request.name, record.inputs, request.importId)
        outputs = struct_pb2.Struct()
        outputs.CopyFrom(request.object)
        record.outputs = dict(record.inputs)
        if request.type == DOCKER_BUILD_IMAGE:
            outputs.update({"digest": WIRE_UNKNOWN, "ref": WIRE_UNKNOWN})
            record.outputs.update(digest=UNKNOWN, ref=UNKNOWN)
        self.remember(urn, record.id, record.outputs)
        return self.registered(urn, record.id, outputs)

    def ReadResource(self, request):
        urn = self.urn_of(request.parent, request.type, request.name)
        self._claim(urn)
        record = self._record(request, urn, True)
        response = super().ReadResource(request)
        record.id = request.id or None
        record.outputs, _ = struct_to_python(response.properties)
        return response

    def RegisterResourceOutputs(self, request):
        outputs, _ = struct_to_python(request.outputs)
        with self._lock:
            record = self.records.get(request.urn)
            if record is not None:
                record.registered_outputs = outputs
        return super().RegisterResourceOutputs(request)


def _config_key(project: str, key: str) -> str:
    return key if ":" in key else f"{project}:{key}"


def encode_config(config: dict[str, Any], project: str) -> dict[str, str]:
    """Pulumi hands a program its config as strings; structured values as JSON, as the CLI passes them."""
    return {_config_key(project, k): v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}


@contextmanager
def _language_host_env(config: dict[str, str], secret_keys: list[str]) -> Iterator[None]:
    """The two variables Pulumi's Python language host sets for a program, and the config store it fills
    from them; both undone afterwards."""
    with environ_set({"PULUMI_CONFIG": json.dumps(config), "PULUMI_CONFIG_SECRET_KEYS": json.dumps(secret_keys)}):
        set_all_config(dict(config), list(secret_keys))
        try:
            yield
        finally:
            set_all_config({}, [])


def run_program(program: Callable[[], Any], *, stack: str, config: dict[str, Any],
                secret_keys: Iterable[str] = frozenset(), project: str = "cmp-platform") -> Recording:
    """Run ``program`` as stack ``stack`` with ``config`` under the recording engine; raise what it raises.

    ``config`` keys may be bare (``namespace``) or qualified (``cmp-platform:namespace``); values that
    are not strings are JSON-encoded. ``secret_keys`` marks config keys as secret, as
    ``pulumi config set --secret`` does.
    """
    mocks = PreviewMocks()
    monitor = RecordingMonitor(mocks)
    secrets = sorted({_config_key(project, k) for k in secret_keys})
    exported: dict[str, Any] = {}

    async def capture_exports() -> None:
        # The root Stack collects pulumi.export()s; serialising them is what the engine receives.
        root = get_root_resource()
        struct = await serialize_properties(dict(getattr(root, "outputs", {}) or {}), {})
        exported["struct"] = struct

    async def finish(pending: Any) -> None:
        if pending is not None:  # an async program
            await pending
        await capture_exports()

    @pulumi.runtime.test
    def run() -> Any:
        result = program()
        return pulumi.Output.from_input(asyncio.ensure_future(finish(result if inspect.isawaitable(result) else None)))

    loop = asyncio.new_event_loop()
    loop.set_exception_handler(_quiet_after_failure)
    previous = _current_loop()
    asyncio.set_event_loop(loop)
    try:
        with _language_host_env(encode_config(config, project), secrets):
            reset_options(project=project, stack=stack, preview=True)
            set_mocks(mocks, project=project, stack=stack, preview=True, monitor=monitor,
                      logger=PROGRAM_LOG)
            run()
    finally:
        _cancel_leftovers(loop)
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()
        asyncio.set_event_loop(previous)
        reset_options()
    if monitor.errors:
        raise monitor.errors[0]
    outputs, output_secrets = struct_to_python(exported.get("struct"))
    resources = [r for urn in monitor.order if (r := monitor.records.get(urn)) is not None]
    return Recording(stack=stack, project=project, resources=resources, outputs=outputs,
                     output_secret_paths=output_secrets)


def run_main(program_dir: Path, *, stack: str, config: dict[str, Any], secret_keys: Iterable[str] = frozenset(),
             project: str = "cmp-platform") -> Recording:
    """Run the program in ``program_dir`` (its ``__main__.py``) as the language host does: as ``__main__``,
    with the directory first on ``sys.path`` and as the working directory."""
    program_dir = Path(program_dir).resolve()
    if not (program_dir / "__main__.py").is_file():
        # runpy would go on to the next sys.path entry and run some other __main__.py.
        raise FileNotFoundError(f"no program: {program_dir / '__main__.py'} does not exist")

    def program() -> None:
        cwd, path = os.getcwd(), list(sys.path)
        os.chdir(program_dir)
        sys.path.insert(0, str(program_dir))
        try:
            runpy.run_path(str(program_dir), run_name="__main__")
        finally:
            os.chdir(cwd)
            sys.path[:] = path

    return run_program(program, stack=stack, config=config, secret_keys=secret_keys, project=project)


def _cancel_leftovers(loop: asyncio.AbstractEventLoop) -> None:
    """Tasks still pending after a failed run (registrations waiting on the failed apply)."""
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))


def _quiet_after_failure(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    message = str(context.get("message", ""))
    if message.startswith(("Future exception was never retrieved", "Task exception was never retrieved",
                           "Task was destroyed but it is pending")):
        return
    loop.default_exception_handler(context)


def _current_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:
        return None
