"""A recording engine: runs a Pulumi program under ``pulumi.runtime.set_mocks`` and keeps what it registered.

Mocks are more lenient than the real engine, so this one makes up for it:
- two resources with the same URN are rejected (the engine does; plain mocks overwrite silently);
- every registration and every pending ``apply`` is awaited before results are read, so program
  exceptions and apply errors surface instead of racing the assertions;
- secrecy is read from what the program itself wrapped as secret on the wire, never from
  ``additional_secret_outputs`` (which the engine applies and mocks ignore);
- protobuf turns every number into a float: integral floats come back as ints.

One process can run it many times (one run per stack): Pulumi's global settings, root resource,
config and pending outputs are reset at the start of each run.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import json
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format
from pulumi.runtime import config as pulumi_config
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import resource as pulumi_resource
from pulumi.runtime import rpc, settings
from pulumi.runtime import stack as pulumi_stack
from pulumi.runtime.proto import resource_pb2, source_pb2

SECRET = "[secret]"
UNKNOWN = "[unknown]"
STACK_TYPE = "pulumi:pulumi:Stack"
DOCKER_BUILD_IMAGE = "docker-build:index:Image"

_SIG_KEY = rpc._special_sig_key
_SECRET_SIG = rpc._special_secret_sig
_RESOURCE_SIG = rpc._special_resource_sig
_OUTPUT_VALUE_SIG = rpc._special_output_value_sig
_ASSET_SIGS = {rpc._special_asset_sig: "asset", rpc._special_archive_sig: "archive"}

# pulumi.log.* from the program: kept off the terminal (the preview reports errors as one line itself).
PROGRAM_LOG = logging.getLogger("infra.preview.program")
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

    def get(self, urn: str) -> RecordedResource | None:
        for r in self.resources:
            if r.urn == urn:
                return r
        return None


def _plain(value: Any, path: str, secret_paths: list[str]) -> Any:
    """Wire value (Struct as python) -> plain python; secrets -> "[secret]" with their path noted."""
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if isinstance(value, list):
        return [_plain(v, f"{path}[{i}]", secret_paths) for i, v in enumerate(value)]
    if isinstance(value, str):
        return UNKNOWN if value == rpc.UNKNOWN else value
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


def _fake_digest(seed: str) -> str:
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


class PreviewMocks(pulumi_mocks.Mocks):
    """Mock outputs: inputs echoed plus an id; docker-build Image also gets ``ref`` and ``digest``."""

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str, dict]:
        state = dict(args.inputs)
        resource_id = args.resource_id or f"{args.name}-id"
        if args.typ.startswith("kubernetes:"):
            metadata = state.get("metadata") if isinstance(state.get("metadata"), dict) else {}
            name = metadata.get("name") or args.name
            namespace = metadata.get("namespace")
            resource_id = f"{namespace}/{name}" if namespace else str(name)
        if args.typ == DOCKER_BUILD_IMAGE:
            digest = _fake_digest(args.name)
            tags = state.get("tags") or []
            base = tags[0] if tags and isinstance(tags[0], str) else f"registry.invalid/{args.name}:latest"
            state["digest"] = digest
            state["ref"] = f"{base}@{digest}"
        return resource_id, state

    def call(self, args: pulumi_mocks.MockCallArgs) -> tuple[dict, list | None]:
        return dict(args.args), None


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """A MockMonitor that records raw registrations and refuses duplicate URNs."""

    def __init__(self, mocks: pulumi_mocks.Mocks):
        super().__init__(mocks)
        self._lock = threading.Lock()
        self.records: dict[str, RecordedResource] = {}
        self.order: list[str] = []
        self.errors: list[Exception] = []
        self.stack_urn: str | None = None
        self.stack_outputs: dict[str, Any] = {}
        self.stack_output_secrets: list[str] = []

    def _claim(self, urn: str) -> None:
        with self._lock:
            if urn in self.records:
                err = DuplicateUrnError(f"duplicate resource URN {urn}: two resources share this type, "
                                        "name and parent; give one of them another name")
                self.errors.append(err)
                raise err
            self.records[urn] = None  # type: ignore[assignment]  # reserved; filled below
            self.order.append(urn)

    def _record(self, request: Any, urn: str, custom: bool) -> None:
        inputs, secret_paths = struct_to_python(request.object if hasattr(request, "object")
                                                else request.properties)
        self.records[urn] = RecordedResource(
            urn=urn, type=request.type, name=request.name, parent=request.parent or None,
            custom=custom, inputs=inputs, secret_paths=secret_paths, outputs={},
            provider=request.provider or None, protect=bool(getattr(request, "protect", False)),
            depends_on=list(getattr(request, "dependencies", []) or []),
            additional_secret_outputs=list(getattr(request, "additionalSecretOutputs", []) or []),
        )

    def RegisterResource(self, request):
        urn = self.make_urn(request.parent, request.type, request.name)
        if request.type == STACK_TYPE:
            self.stack_urn = urn
            return super().RegisterResource(request)
        self._claim(urn)
        self._record(request, urn, bool(request.custom))
        response, echoed = self._register(request, urn)
        record = self.records[urn]
        record.id = response.id or None
        if not record.custom:
            record.outputs = {}
        elif echoed:
            record.outputs = record.inputs  # the very same wire object: same plain value
        else:
            record.outputs, _ = struct_to_python(response.object)
        return response

    def _register(self, request: Any, urn: str) -> tuple[Any, bool]:
        """MockMonitor.RegisterResource, except that when the mocks hand the inputs back unchanged
        (every resource but docker-build's Image) the request's own wire object is the response's,
        instead of serialising the deserialised copy again (~40% of each stack's run, measured).
        Returns the response and whether the object was echoed."""
        pulumi_mocks._ensure_event_loop()
        inputs = rpc.deserialize_properties(request.object)
        args = pulumi_mocks.MockResourceArgs(
            typ=request.type, name=request.name, inputs=inputs, provider=request.provider,
            resource_id=request.importId, custom=request.custom or False,
            transforms=pulumi_mocks._resolve_callbacks(request.transforms))
        resource_id, state = self.mocks.new_resource(args)
        echoed = state == inputs
        obj = request.object if echoed else pulumi_mocks._sync_await(rpc.serialize_properties(state, {}))
        self.resources[urn] = pulumi_mocks.MockMonitor.ResourceRegistration(urn, resource_id, state)
        return resource_pb2.RegisterResourceResponse(urn=urn, id=resource_id, object=obj), echoed

    def ReadResource(self, request):
        urn = self.make_urn(request.parent, request.type, request.name)
        self._claim(urn)
        self._record(request, urn, True)
        response = super().ReadResource(request)
        self.records[urn].id = request.id or None
        self.records[urn].outputs, _ = struct_to_python(response.properties)
        return response

    def RegisterResourceOutputs(self, request):
        outputs, secret_paths = struct_to_python(request.outputs)
        with self._lock:
            if request.urn == self.stack_urn:
                self.stack_outputs, self.stack_output_secrets = outputs, secret_paths
            elif self.records.get(request.urn) is not None:
                self.records[request.urn].registered_outputs = outputs
        return super().RegisterResourceOutputs(request)


def _config_key(project: str, key: str) -> str:
    return key if ":" in key else f"{project}:{key}"


def _encode_config(config: dict[str, Any], project: str) -> dict[str, str]:
    """Pulumi keeps config as strings; structured values are JSON, as the CLI passes them."""
    return {_config_key(project, k): v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}


def _reset_runtime(project: str, stack: str, config: dict[str, str], secret_keys: Iterable[str],
                   monitor: RecordingMonitor) -> None:
    """Fresh Pulumi globals for one run: settings, root resource, pending outputs, config."""
    settings.ROOT.set(None)
    settings.SETTINGS.outputs = set()
    settings.SETTINGS.lock = threading.Lock()
    pulumi_config.set_all_config(config, list(secret_keys))
    # set_mocks creates and finishes a root Stack when there is none; we want our own around the
    # program (so its exports are registered), so hold the slot while set_mocks runs.
    settings.ROOT.set(object())  # type: ignore[arg-type]
    try:
        pulumi_mocks.set_mocks(PreviewMocks(), project=project, stack=stack, preview=True, monitor=monitor,
                               logger=PROGRAM_LOG)
    finally:
        settings.ROOT.set(None)
    settings.SETTINGS.package_refs = {}
    settings.SETTINGS.base_providers_by_ref = {}


def run_program(program: Callable[[], Any], *, stack: str, config: dict[str, Any],
                secret_keys: set[str] | frozenset[str] = frozenset(), project: str = "cmp-platform") -> Recording:
    """Run ``program`` as stack ``stack`` with ``config`` under the recording engine; raise what it raises.

    ``config`` keys may be bare (``namespace``) or qualified (``cmp-platform:namespace``); values that
    are not strings are JSON-encoded. ``secret_keys`` marks config keys as secret, as
    ``pulumi config set --secret`` does.
    """
    monitor = RecordingMonitor(PreviewMocks())
    secrets = {_config_key(project, k) for k in secret_keys}
    _reset_runtime(project, stack, _encode_config(config, project), secrets, monitor)

    async def in_stack() -> None:
        root = pulumi_stack.Stack()
        try:
            result = program()
            if asyncio.iscoroutine(result):
                await result
        finally:
            root._finish()

    loop = asyncio.new_event_loop()
    # After a failure the SDK leaves dependent futures holding the same exception; the first one is
    # raised below, the echoes would only be printed at garbage collection.
    loop.set_exception_handler(_quiet_after_failure)
    previous = _current_loop()
    asyncio.set_event_loop(loop)
    try:
        with _fast_runtime():
            loop.run_until_complete(pulumi_stack.run_pulumi_func(in_stack))
    finally:
        _cancel_leftovers(loop)
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()
        asyncio.set_event_loop(previous)
        settings.ROOT.set(None)
    if monitor.errors:
        raise monitor.errors[0]
    resources = [monitor.records[urn] for urn in monitor.order if monitor.records.get(urn) is not None]
    return Recording(stack=stack, project=project, resources=resources, outputs=monitor.stack_outputs,
                     output_secret_paths=monitor.stack_output_secrets)


@contextlib.contextmanager
def _fast_runtime():
    """Two costs that buy nothing offline, measured on the real stacks (see docs/preview.md):
    - the cyclic GC: with pulumi_kubernetes' typed modules loaded, the heap holds millions of objects,
      and each full collection the run's allocations trigger took ~0.1-0.3 s; a run is short, so the
      collector is paused for it (its garbage is collected afterwards);
    - the source-position stack trace the SDK captures per resource (``traceback.extract_stack``,
      ~1-3 ms each) for the engine's diagnostics: mocks have no use for it.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    original = pulumi_resource._get_stack_trace
    pulumi_resource._get_stack_trace = source_pb2.StackTrace
    try:
        yield
    finally:
        pulumi_resource._get_stack_trace = original
        if was_enabled:
            gc.enable()


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
